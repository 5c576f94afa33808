'use strict';
// The package as npm would publish it holds every file its code requires: `npm pack
// --dry-run` lists what goes in, and each relative require() of the packed JS files
// must be among them (cluster.js was once left out of package.json's "files").

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { ROOT } = require('./helpers');

const PKG = path.join(ROOT, 'bindings', 'node');

test('npm pack includes every file the package requires', () => {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: PKG,
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `npm pack --dry-run failed: ${r.stderr}`);
  const packed = new Set(JSON.parse(r.stdout)[0].files.map((f) => f.path));
  assert.ok(packed.has('index.js') && packed.has('index.d.ts'), [...packed].join(', '));
  const missing = [];
  for (const file of packed) {
    if (!file.endsWith('.js')) continue;
    const src = fs.readFileSync(path.join(PKG, file), 'utf8');
    for (const m of src.matchAll(/require\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)) {
      let dep = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]));
      if (!path.posix.extname(dep)) dep += '.js';
      if (!packed.has(dep)) missing.push(`${file} requires ${m[1]}`);
    }
  }
  assert.deepEqual(missing, [], 'files required but not packed (package.json "files")');
});
