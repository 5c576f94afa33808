'use strict';
// pool.queue_mode through the Node boundary: which idle connection comes next.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { sb, within, startEchoServer, throwsWithCode } = require('./helpers');

const { Manager, ErrorCode } = sb;

let server;
let manager;

before(async () => {
  server = await startEchoServer();
  manager = new Manager();
});

after(async () => {
  if (manager) await within(15_000, manager.close(2000), 'manager.close');
  if (server) server.stop();
});

for (const mode of ['fifo', 'lifo']) {
  test(`queueMode ${mode}: the ${mode === 'lifo' ? 'most recent' : 'oldest'} idle connection comes next`, async () => {
    const pool = manager.pool(`q-${mode}`, server.target, { queueMode: mode });
    const a = await pool.acquire({ timeout: 5000 });
    const b = await pool.acquire({ timeout: 5000 });
    const [ida, idb] = [a.id, b.id];
    a.release();
    b.release();
    const next = await pool.acquire({ timeout: 5000 });
    assert.equal(next.id, mode === 'lifo' ? idb : ida);
    next.release();
  });
}

test('a bad queueMode names the choices', () => {
  const err = throwsWithCode(
    () => manager.pool('q-bad', server.target, { queueMode: 'random' }),
    ErrorCode.InvalidArgument,
  );
  assert.match(err.message, /pool\.queue_mode must be one of fifo \| lifo/);
});
