'use strict';
// The Node package against a real echo server on a free loopback port.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const v8 = require('node:v8');
const vm = require('node:vm');

const {
  sb,
  within,
  startEchoServer,
  serverAccepted,
  deadPort,
  readExactly,
  rejectsWithCode,
  throwsWithCode,
} = require('./helpers');

const { Manager, ErrorCode } = sb;
const T = { timeout: 30_000 };

let server;
let manager;

before(async () => {
  server = await startEchoServer();
  manager = new Manager({ workerThreads: 2 });
});

after(async () => {
  if (manager) await within(15_000, manager.close(2000), 'manager.close');
  if (server) server.stop();
});

test('echo round trip, release, reacquire reuses the same connection', T, async () => {
  // A server of its own, so that its accepted count is this test's alone.
  const own = await startEchoServer();
  try {
    const pool = manager.pool('reuse', own.target, { maxSize: 2 });
    const lease = await pool.acquire();
    assert.equal(typeof lease.id, 'number');
    assert.ok(Number.isInteger(lease.fd) && lease.fd >= 0);
    assert.equal(lease.poolName, 'reuse');
    assert.equal(lease.pool, pool);
    await lease.write(Buffer.from('hello switchboard\n'));
    const echoed = await readExactly(lease, 18);
    assert.equal(echoed.toString(), 'hello switchboard\n');
    const { id, fd } = lease;
    lease.release();
    assert.equal(lease.released, true);

    const again = await pool.acquire();
    assert.equal(again.id, id, 'the same connection comes back');
    assert.equal(again.fd, fd);
    await again.write('again');
    assert.equal((await readExactly(again, 5)).toString(), 'again');
    again.release();

    assert.equal(await serverAccepted(own.port), 1, 'the server saw one connection');
    const stats = pool.stats();
    assert.equal(stats.name, 'reuse');
    assert.equal(stats.maxSize, 2);
    assert.equal(stats.size, 1);
    assert.equal(stats.idle, 1);
    assert.equal(stats.leased, 0);
    assert.equal(stats.createdTotal, 1);
    pool.close();
  } finally {
    own.stop();
  }
});

test('max size reached: acquire times out within its deadline, event loop keeps running', T, async () => {
  const pool = manager.pool('full', server.target, { maxSize: 1 });
  const held = await pool.acquire();
  let ticks = 0;
  const ticker = setInterval(() => {
    ticks += 1;
  }, 10);
  try {
    const started = process.hrtime.bigint();
    const err = await rejectsWithCode(pool.acquire({ timeout: 200 }), 'SB_TIMEOUT');
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    assert.ok(elapsedMs >= 150, `failed after ${elapsedMs} ms, before its deadline`);
    assert.ok(elapsedMs < 200 + 3000, `failed after ${elapsedMs} ms, long after its deadline`);
    assert.match(err.message, /full/);
    assert.ok(ticks >= 3, `the event loop was blocked: ${ticks} ticks of 10 ms in ${elapsedMs} ms`);
    // A string timeout works the same way.
    await rejectsWithCode(pool.acquire({ timeout: '50ms' }), ErrorCode.Timeout);
    assert.equal(pool.stats().timedOutTotal, 2);
  } finally {
    clearInterval(ticker);
    held.release();
    pool.close();
  }
});

test('tryAcquire: null when none is idle, a lease when one is', T, async () => {
  const pool = manager.pool('try', server.target, { maxSize: 1 });
  assert.equal(pool.tryAcquire(), null, 'nothing opened yet');
  const lease = await pool.acquire();
  assert.equal(pool.tryAcquire(), null, 'the only connection is leased');
  const id = lease.id;
  lease.release();
  const fast = pool.tryAcquire();
  assert.ok(fast instanceof sb.Lease);
  assert.equal(fast.id, id);
  fast.release();
  pool.close();
});

test('server down: SB_UNAVAILABLE or SB_IO naming the address', T, async () => {
  const port = await deadPort();
  const pool = manager.pool('down', `tcp://127.0.0.1:${port}`, { acquireTimeout: 2000 });
  const err = await rejectsWithCode(pool.acquire(), ['SB_UNAVAILABLE', 'SB_IO']);
  assert.ok(err.message.includes(`127.0.0.1:${port}`), err.message);
  assert.equal(pool.stats().connectFailedTotal, 1);
  pool.close();
});

test('bad config: SB_INVALID_ARGUMENT naming the key', T, () => {
  let err = throwsWithCode(() => new Manager({ bogusKey: 1 }), 'SB_INVALID_ARGUMENT');
  assert.match(err.message, /bogusKey/);
  err = throwsWithCode(() => manager.pool('bad', server.target, { maxSize: 'abc' }), 'SB_INVALID_ARGUMENT');
  assert.match(err.message, /pool\.max_size/);
  err = throwsWithCode(() => manager.pool('bad', server.target, { nope: true }), 'SB_INVALID_ARGUMENT');
  assert.match(err.message, /nope/);
  err = throwsWithCode(() => manager.pool('bad', server.target, { maxSize: { n: 1 } }), 'SB_INVALID_ARGUMENT');
  assert.match(err.message, /maxSize/);
  err = throwsWithCode(() => manager.pool('bad', 'tcp://127.0.0.1', {}), 'SB_INVALID_ARGUMENT');
  assert.match(err.message, /tcp:\/\/127\.0\.0\.1/);
  throwsWithCode(() => manager.pool('', server.target), 'SB_INVALID_ARGUMENT');
});

test('every natural spelling of a key is accepted', T, async () => {
  const m = new Manager({ 'runtime.worker_threads': 1, poolMaxSize: 3, pool_acquire_timeout: '1.5s', tcpNodelay: true });
  try {
    const a = m.pool('a', server.target);
    assert.equal(a.stats().maxSize, 3, 'pool defaults come from the manager');
    const b = m.pool('b', server.target, { 'pool.max_size': 4, max_waiters: 10, connectTimeout: 500 });
    assert.equal(b.stats().maxSize, 4);
    const c = m.pool('c', server.target, { max_size: 5, tcpKeepalive: 0 });
    assert.equal(c.stats().maxSize, 5);
  } finally {
    await within(10_000, m.close(), 'close');
  }
});

test('use after release: SB_FAILED_PRECONDITION, never a crash', T, async () => {
  const pool = manager.pool('after', server.target);
  const lease = await pool.acquire();
  lease.release();
  lease.release(); // safe twice
  lease.discard(); // and a no-op after release
  throwsWithCode(() => lease.fd, 'SB_FAILED_PRECONDITION');
  await rejectsWithCode(lease.write('x'), 'SB_FAILED_PRECONDITION');
  await rejectsWithCode(lease.read(1), 'SB_FAILED_PRECONDITION');
  assert.equal(pool.stats().leased, 0);
  pool.close();
});

test('one read or write at a time; release during a pending read cancels it', T, async () => {
  const pool = manager.pool('pending', server.target);
  const lease = await pool.acquire();
  const pending = lease.read(10); // the echo server sends nothing unasked
  await rejectsWithCode(lease.write('x'), 'SB_FAILED_PRECONDITION');
  lease.release(); // does not block, does not wait for the read
  await within(5000, rejectsWithCode(pending, 'SB_CANCELLED'), 'cancelled read');
  throwsWithCode(() => lease.fd, 'SB_FAILED_PRECONDITION');
  // The interrupted connection was closed, not returned.
  const s = pool.stats();
  assert.equal(s.leased, 0);
  assert.equal(s.idle, 0);
  assert.equal(s.closedTotal, 1);
  pool.close();
});

test('discard closes the connection instead of returning it', T, async () => {
  const pool = manager.pool('discard', server.target);
  const lease = await pool.acquire();
  const id = lease.id;
  lease.discard();
  assert.equal(pool.stats().closedTotal, 1);
  const next = await pool.acquire();
  assert.notEqual(next.id, id);
  next.release();
  pool.close();
});

test('withLease releases in finally, on success and on throw', T, async () => {
  const pool = manager.pool('with', server.target);
  const out = await pool.withLease(async (lease) => {
    await lease.write('ping');
    return (await readExactly(lease, 4)).toString();
  });
  assert.equal(out, 'ping');
  assert.equal(pool.stats().leased, 0);
  await assert.rejects(
    pool.withLease(async () => {
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(pool.stats().leased, 0);
  await rejectsWithCode(pool.withLease('not a function'), 'SB_INVALID_ARGUMENT');
  pool.close();
});

test('Symbol.asyncDispose releases a lease', T, async () => {
  const pool = manager.pool('dispose', server.target);
  const lease = await pool.acquire();
  await lease[Symbol.asyncDispose]();
  assert.equal(lease.released, true);
  assert.equal(pool.stats().leased, 0);
  pool.close();
});

test('bad call arguments: SB_INVALID_ARGUMENT', T, async () => {
  const pool = manager.pool('args', server.target);
  await rejectsWithCode(pool.acquire({ timeout: 'soon' }), 'SB_INVALID_ARGUMENT');
  await rejectsWithCode(pool.acquire({ timeout: -1 }), 'SB_INVALID_ARGUMENT');
  await rejectsWithCode(pool.acquire({ priority: 1.5 }), 'SB_INVALID_ARGUMENT');
  const lease = await pool.acquire({ priority: 5, timeout: 2000 });
  await rejectsWithCode(lease.read(0), 'SB_INVALID_ARGUMENT');
  await rejectsWithCode(lease.write(42), 'SB_INVALID_ARGUMENT');
  await lease.write(new Uint8Array([104, 105]));
  assert.equal((await readExactly(lease, 2)).toString(), 'hi');
  lease.release();
  pool.close();
});

test('a lease that is garbage-collected unreleased returns its connection', T, async () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  const pool = manager.pool('gc', server.target, { maxSize: 1 });
  await (async () => {
    const lease = await pool.acquire();
    assert.equal(pool.stats().leased, 1);
    return lease.id; // the lease itself becomes unreachable here
  })();
  for (let i = 0; i < 100 && pool.stats().leased !== 0; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(pool.stats().leased, 0, 'the finalizer returned the connection');
  const lease = await pool.acquire({ timeout: 1000 });
  lease.release();
  pool.close();
});

test('closing: waiters fail, later calls fail with SB_UNAVAILABLE, close is idempotent', T, async () => {
  const m = new Manager();
  const pool = m.pool('closing', server.target, { maxSize: 1 });
  const held = await pool.acquire();
  const waiter = pool.acquire({ timeout: 10_000 });
  // Checked at once, so the rejection is handled when it comes.
  const pendingRead = rejectsWithCode(held.read(10), ['SB_UNAVAILABLE', 'SB_CANCELLED']);
  const closing = m.close(300);
  assert.equal(m.close(), closing, 'a second close returns the same promise');
  await rejectsWithCode(waiter, 'SB_UNAVAILABLE');
  await within(10_000, closing, 'close');
  // The read in flight ended with the runtime; it rejected, it did not hang.
  await within(5000, pendingRead, 'read after close');
  assert.equal(m.closed, true);
  assert.equal(pool.closed, true);
  await rejectsWithCode(pool.acquire(), 'SB_UNAVAILABLE');
  throwsWithCode(() => pool.tryAcquire(), 'SB_UNAVAILABLE');
  throwsWithCode(() => m.pool('late', server.target), 'SB_UNAVAILABLE');
  held.release(); // after close: no crash
  await within(5000, m.close(), 'second close');
});

test('many concurrent round trips share max_size connections', T, async () => {
  const own = await startEchoServer();
  try {
    const pool = manager.pool('many', own.target, { maxSize: 4, acquireTimeout: 10_000 });
    const N = 200;
    const results = await within(
      20_000,
      Promise.all(
        Array.from({ length: N }, (_, i) =>
          pool.withLease(async (lease) => {
            const msg = `message ${i}\n`;
            await lease.write(msg);
            return (await readExactly(lease, Buffer.byteLength(msg))).toString() === msg;
          }),
        ),
      ),
      'concurrent round trips',
    );
    assert.equal(results.filter(Boolean).length, N);
    const s = pool.stats();
    assert.equal(s.leased, 0);
    assert.equal(s.waiting, 0);
    assert.ok(s.size <= 4, `size ${s.size}`);
    assert.ok((await serverAccepted(own.port)) <= 4);
    pool.close();
  } finally {
    own.stop();
  }
});

test('error codes are exported and every error is an Error with one of them', T, async () => {
  assert.equal(ErrorCode.Timeout, 'SB_TIMEOUT');
  assert.equal(Object.keys(ErrorCode).length, 12);
  assert.equal(ErrorCode.Unauthenticated, 'SB_UNAUTHENTICATED');
  assert.equal(ErrorCode.PermissionDenied, 'SB_PERMISSION_DENIED');
  assert.ok(Object.isFrozen(ErrorCode));
  const err = throwsWithCode(() => new Manager({ workerThreads: 0 }), 'SB_INVALID_ARGUMENT');
  assert.ok(err instanceof Error);
  assert.ok(sb.isSwitchboardError(err));
  assert.ok(!sb.isSwitchboardError(new Error('x')));
  assert.match(sb.version, /^\d+\.\d+\.\d+/);
});
