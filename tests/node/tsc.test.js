'use strict';
// index.d.ts is checked by the TypeScript compiler: tests/node/types_check.ts (every
// public type used the way a program would) must compile with tsc --strict against it.
// typescript and @types/node are devDependencies of bindings/node, installed by npm ci.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { ROOT } = require('./helpers');

const PKG = path.join(ROOT, 'bindings', 'node');
const TSC = path.join(PKG, 'node_modules', 'typescript', 'bin', 'tsc');

test('index.d.ts compiles with tsc --strict against types_check.ts', () => {
  assert.ok(fs.existsSync(TSC), `missing ${TSC}: run npm ci in bindings/node (make build-node does)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-tsc-'));
  try {
    const mods = path.join(dir, 'node_modules');
    fs.mkdirSync(path.join(mods, '@types'), { recursive: true });
    fs.symlinkSync(PKG, path.join(mods, 'switchboard'), 'dir');
    fs.symlinkSync(path.join(PKG, 'node_modules', '@types', 'node'), path.join(mods, '@types', 'node'), 'dir');
    fs.copyFileSync(path.join(ROOT, 'tests', 'node', 'types_check.ts'), path.join(dir, 'types_check.ts'));
    const args = [TSC, '--noEmit', '--strict', '--target', 'es2022', '--module', 'commonjs',
      '--moduleResolution', 'node', '--lib', 'es2022,esnext.disposable', '--types', 'node',
      'types_check.ts'];
    const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
    // And it can fail: a wrong use of the API is rejected.
    fs.writeFileSync(path.join(dir, 'wrong.ts'),
      "import { Manager } from 'switchboard';\nconst m = new Manager();\nm.pool('p', 42);\n");
    const bad = spawnSync(process.execPath, [...args.slice(0, -1), 'wrong.ts'],
      { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    assert.notEqual(bad.status, 0, 'a wrong call compiled');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
