'use strict';
// The Node examples in the docs run: every ```js block that requires 'switchboard' in
// README.md, docs/node.md, docs/registry.md and docs/resources.md is run as a script against the echo server
// and must exit 0 on its own.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { ROOT, startEchoServer } = require('./helpers');

/** Every such block of README.md, docs/node.md, docs/registry.md and docs/resources.md, as { file, code }. */
function snippets() {
  const out = [];
  const docs = ['README.md', path.join('docs', 'node.md'), path.join('docs', 'registry.md'), path.join('docs', 'resources.md')];
  for (const file of docs.map((d) => path.join(ROOT, d))) {
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
      // The package under test, and the package's own dev dependencies (ws, for the
      // registry's WebSocket example).
      env: { ...process.env, NODE_PATH: [nodePath, path.join(ROOT, 'bindings', 'node', 'node_modules')].join(path.delimiter) },
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(r.error, undefined, `${file} example ${i}: ${r.error}`);
    assert.equal(r.status, 0, `${file} example ${i} exited ${r.status}: ${r.stderr}`);
  });
});
