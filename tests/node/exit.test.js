'use strict';
// The process exits on its own after `await manager.close()` (and also when the
// manager is never closed): no threadsafe function or handle keeps Node alive.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');

const { startEchoServer } = require('./helpers');

const LIMIT_MS = 20_000;
let server;

before(async () => {
  server = await startEchoServer();
});

after(() => {
  if (server) server.stop();
});

/** Runs exit_child.js; resolves with { code, signal, stdout, stderr, ms } or kills it at LIMIT_MS. */
function runChild(mode) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [path.join(__dirname, 'exit_child.js'), server.target, mode], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child (${mode}) did not exit within ${LIMIT_MS} ms; stdout: ${stdout} stderr: ${stderr}`));
    }, LIMIT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

for (const mode of ['close', 'no-close', 'pending-read', 'custom', 'custom-no-close', 'events', 'events-no-close', 'health-no-close', 'sessions-no-close']) {
  test(`a script exits on its own (${mode})`, { timeout: LIMIT_MS + 5000 }, async () => {
    const r = await runChild(mode);
    assert.equal(r.signal, null, `killed by ${r.signal}; stderr: ${r.stderr}`);
    assert.equal(r.code, 0, `exit code ${r.code}; stderr: ${r.stderr}`);
    assert.match(r.stdout, /^ok$/m);
    if (mode === 'pending-read') assert.match(r.stdout, /pending read ended: SB_(UNAVAILABLE|CANCELLED)/);
  });
}
