'use strict';
// The Node examples in the docs run: every ```js block that requires 'switchboard' in
// README.md and in docs/node.md is run as a script against the echo server
// and must exit 0 on its own.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { ROOT, startEchoServer } = require('./helpers');

/** Every such block of README.md and of docs/node.md, as { file, code }. */
function snippets() {
  const out = [];
  for (const file of [path.join(ROOT, 'README.md'), path.join(ROOT, 'docs', 'node.md')]) {
    if (!fs.existsSync(file)) continue;
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/```js\n([\s\S]*?)```/g)) {
      if (m[1].includes("require('switchboard')")) out.push({ file: path.relative(ROOT, file), code: m[1] });
    }
  }
  return out;
}

let server;
let nodePath;

before(async () => {
  server = await startEchoServer();
  // A NODE_PATH of our own in which `switchboard` is the package under test.
  nodePath = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-node-path-'));
  fs.symlinkSync(path.join(ROOT, 'bindings', 'node'), path.join(nodePath, 'switchboard'), 'dir');
});

after(() => {
  if (server) server.stop();
  if (nodePath) fs.rmSync(nodePath, { recursive: true, force: true });
});

test('the documented Node examples run', { timeout: 60_000 }, () => {
  const blocks = snippets();
  assert.ok(blocks.length > 0, 'a js example that requires switchboard is documented');
  blocks.forEach(({ file, code }, i) => {
    const script = path.join(nodePath, `snippet-${i}.js`);
    fs.writeFileSync(script, code);
    const r = spawnSync(process.execPath, [script, server.target], {
      env: { ...process.env, NODE_PATH: nodePath },
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(r.error, undefined, `${file} example ${i}: ${r.error}`);
    assert.equal(r.status, 0, `${file} example ${i} exited ${r.status}: ${r.stderr}`);
  });
});
