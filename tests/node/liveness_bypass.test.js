'use strict';
// pool.liveness_bypass through the Node package: within the window after its return a
// connection is handed out without the FIN/RST check (so a socket the server reset
// meanwhile reaches the caller); past it, the check closes the reset socket. Off by
// default. Time moves by the manual clock; the only real wait lets an RST cross loopback.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { setTimeout: sleep } = require('node:timers/promises');

const { sb, within, startEchoServer, throwsWithCode } = require('./helpers');
const { FaultProxy } = require('./fault_proxy');

const { Manager, ErrorCode } = sb;
const T = { timeout: 60_000 };

let server;

before(async () => {
  server = await startEchoServer();
});

after(() => {
  if (server) server.stop();
});

async function resetAndSettle(proxy) {
  assert.match(await proxy.command('reset_existing'), /^OK/);
  await sleep(100); // the RST crosses loopback; what follows holds however long it took
}

test('the FIN/RST check is skipped only within pool.liveness_bypass', T, async () => {
  const proxy = await new FaultProxy(server.port).start();
  const m = new Manager({ workerThreads: 2, runtime: { clock: 'manual' } });
  try {
    const checked = m.pool('checked', proxy.target);
    (await checked.acquire({ timeout: 5000 })).release();
    await resetAndSettle(proxy);
    assert.equal(checked.tryAcquire(), null, 'a reset socket was handed out');
    assert.equal(checked.stats().closedBy.broken, 1);

    const hot = m.pool('hot', proxy.target, { livenessBypass: '1s' });
    const lease = await hot.acquire({ timeout: 5000 });
    const first = lease.id;
    lease.release();
    await resetAndSettle(proxy);
    m.advanceClock(900);
    const again = hot.tryAcquire();
    assert.ok(again !== null, 'within the window: no check');
    assert.equal(again.id, first);
    again.release(); // returned: its window starts again
    assert.equal(hot.stats().closedBy.broken, 0);
    m.advanceClock(1001);
    assert.equal(hot.tryAcquire(), null, 'past the window: checked');
    assert.equal(hot.stats().closedBy.broken, 1);
  } finally {
    await within(20_000, m.close(2000), 'manager.close');
    await proxy.close();
  }
});

test('a bad pool.liveness_bypass names the key and what is accepted', T, async () => {
  const m = new Manager({ workerThreads: 1 });
  try {
    const err = throwsWithCode(
      () => m.pool('bad', 'tcp://127.0.0.1:1', { livenessBypass: 'soon' }),
      ErrorCode.InvalidArgument,
    );
    assert.match(err.message, /pool\.liveness_bypass.*duration/);
  } finally {
    await m.close(2000);
  }
});
