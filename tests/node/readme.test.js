'use strict';
// The Node examples in the docs run: every ```js block that requires 'switchboard' in
// README.md (or, before the README has a Node section, .notes/node-readme.md) is run as
// a script against the echo server and must exit 0 on its own.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { ROOT, startEchoServer } = require('./helpers');

function snippets() {
  const sources = [path.join(ROOT, 'README.md'), path.join(ROOT, '.notes', 'node-readme.md')];
  for (const file of sources) {
    if (!fs.existsSync(file)) continue;
    const text = fs.readFileSync(file, 'utf8');
    const blocks = [...text.matchAll(/```js\n([\s\S]*?)```/g)]
      .map((m) => m[1])
      .filter((code) => code.includes("require('switchboard')"));
    if (blocks.length > 0) return { file, blocks };
  }
  return { file: null, blocks: [] };
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
  const { file, blocks } = snippets();
  assert.ok(blocks.length > 0, 'a js example that requires switchboard is documented');
  blocks.forEach((code, i) => {
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
