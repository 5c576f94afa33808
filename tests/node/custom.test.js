'use strict';
// Custom connectors through Node: the program's connect / check / close make and
// manage its own JS objects, and the pool treats them exactly like sockets.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');

const { ROOT, sb, within, startEchoServer, readExactly, rejectsWithCode, throwsWithCode } = require('./helpers');

const { Manager, ErrorCode } = sb;
const T = { timeout: 30_000 };

let server;

before(async () => {
  server = await startEchoServer();
});

after(() => {
  if (server) server.stop();
});

/** Polls `pred()` every 25 ms, at most `ms`; fails naming `what`. */
async function waitFor(pred, what, ms = 8000) {
  const limit = Math.ceil(ms / 25);
  for (let i = 0; i < limit; i++) {
    if (await pred()) return;
    await sleep(25);
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

/** A connector that records what the pool does with its objects. */
function recorder({ async = true, checkResult = () => true } = {}) {
  const log = { connects: [], checks: [], closes: [], threads: new Set() };
  let n = 0;
  return {
    log,
    callbacks: {
      connect(endpoint) {
        log.threads.add(process.pid);
        n += 1;
        const obj = { n, endpoint, closed: 0 };
        log.connects.push(obj);
        return async ? sleep(5).then(() => obj) : obj;
      },
      check(obj) {
        log.checks.push(obj);
        return checkResult(obj);
      },
      close(obj) {
        obj.closed += 1;
        log.closes.push(obj);
      },
    },
  };
}

/** After the manager closed: every object made was closed, exactly once. */
function assertAllClosedOnce(log) {
  assert.equal(log.closes.length, log.connects.length, 'one close per connect');
  for (const obj of log.connects) assert.equal(obj.closed, 1, `object ${obj.n} closed once`);
}

for (const async of [true, false]) {
  test(`custom pool lifecycle (${async ? 'Promise' : 'synchronous'} connect)`, T, async () => {
    const manager = new Manager({ workerThreads: 2 });
    const { log, callbacks } = recorder({ async });
    const pool = manager.pool('db', 'db://primary', { maxSize: 2, ...callbacks });

    const a = await pool.acquire();
    assert.equal(log.connects.length, 1);
    assert.equal(a.obj, log.connects[0], 'the lease gives the object connect made');
    assert.equal(a.value, a.obj);
    assert.equal(a.obj.endpoint, 'db://primary', 'connect gets the target');
    a.release();
    throwsWithCode(() => a.obj, ErrorCode.FailedPrecondition);

    // Released objects come back, not new ones.
    const b = await pool.acquire();
    assert.equal(b.obj, log.connects[0]);
    const c = await pool.acquire();
    assert.equal(c.obj, log.connects[1]);
    assert.equal(log.connects.length, 2);
    assert.equal(pool.stats().leased, 2);

    // discard closes it (queued: it runs on the JS thread a moment later).
    c.discard();
    await waitFor(() => log.closes.length === 1, 'close after discard');
    assert.equal(log.closes[0], log.connects[1]);
    b.release();
    assert.equal(pool.stats().closedBy.discarded, 1);

    // tryAcquire works on custom pools too.
    const d = pool.tryAcquire();
    assert.ok(d, 'an idle object');
    assert.equal(d.obj, log.connects[0]);
    d.release();

    await within(10_000, manager.close(), 'manager.close');
    assertAllClosedOnce(log);
    assert.equal(log.checks.length, 0, 'no check given: none ran');
    // Every callback ran in this process's JS thread (no worker thread can call JS).
    assert.deepEqual([...log.threads], [process.pid]);
  });
}

test('custom lease: fd/read/write fail with SB_FAILED_PRECONDITION; a socket lease has no obj', T, async () => {
  const manager = new Manager({ workerThreads: 1 });
  try {
    const custom = manager.pool('objs', 'anything', { connect: () => ({}) });
    const lease = await custom.acquire();
    const err = throwsWithCode(() => lease.fd, ErrorCode.FailedPrecondition);
    assert.match(err.message, /custom connection/);
    await rejectsWithCode(lease.read(1), ErrorCode.FailedPrecondition);
    await rejectsWithCode(lease.write('x'), ErrorCode.FailedPrecondition);
    lease.release();

    const sockets = manager.pool('socks', server.target, {});
    const s = await sockets.acquire();
    const e2 = throwsWithCode(() => s.obj, ErrorCode.FailedPrecondition);
    assert.match(e2.message, /built-in socket/);
    await s.write('ok');
    assert.equal((await readExactly(s, 2)).toString(), 'ok');
    s.release();
  } finally {
    await manager.close();
  }
});

test('a failing check closes the object and the acquirer gets a new one', T, async () => {
  const manager = new Manager({ workerThreads: 2 });
  let verdict = () => true;
  const { log, callbacks } = recorder({ checkResult: (obj) => verdict(obj) });
  // validateAfter 0: every checkout of an idle object is checked.
  const pool = manager.pool('checked', 'svc://x', { maxSize: 1, validateAfter: 0, ...callbacks });
  const first = await pool.acquire();
  const obj1 = first.obj;
  first.release();
  await sleep(5);

  // tryAcquire never runs a check on the JS thread (the check itself needs that
  // thread): an object due for a check is left for acquire().
  assert.equal(pool.tryAcquire(), null);
  const again = await pool.acquire();
  assert.equal(again.obj, obj1, 'check passed (true): the same object');
  assert.ok(log.checks.includes(obj1));
  again.release();
  await sleep(5);

  for (const [how, fail] of [
    ['returns false', () => false],
    ['throws', () => {
      throw new Error('stale handle');
    }],
    ['rejects', () => Promise.reject(new Error('no answer'))],
  ]) {
    const before = log.connects.length;
    const old = log.connects[before - 1];
    verdict = (obj) => (obj === old ? fail() : undefined); // undefined accepts
    const lease = await within(5000, pool.acquire(), `acquire after a check that ${how}`);
    assert.notEqual(lease.obj, old, `check ${how}: a new object`);
    assert.equal(log.connects.length, before + 1);
    await waitFor(() => old.closed === 1, `the object whose check ${how} is closed`);
    lease.release();
    await sleep(5);
  }
  const s = pool.stats();
  assert.equal(s.closedBy.broken, 3, JSON.stringify(s));
  assert.equal(s.probeFailedTotal, 3);
  await manager.close();
  assertAllClosedOnce(log);
});

test('errors from connect reach the acquirer with their message', T, async () => {
  const manager = new Manager({ workerThreads: 2 });
  try {
    const cases = [
      ['throws', () => {
        throw new Error('cannot reach the primary');
      }, /cannot reach the primary/],
      ['rejects', async () => {
        throw new TypeError('bad credentials');
      }, /bad credentials/],
      ['rejects with a string', () => Promise.reject('plain string reason'), /plain string reason/],
    ];
    for (const [how, connect, message] of cases) {
      const pool = manager.pool(`fail-${how}`, 'db://down', { connect, acquireTimeout: 5000 });
      const err = await rejectsWithCode(pool.acquire(), ErrorCode.Unavailable);
      assert.match(err.message, message, `connect ${how}`);
      assert.match(err.message, new RegExp(`fail-${how}`), 'the message names the pool');
      assert.equal(pool.stats().connectFailedTotal, 1);
      assert.equal(pool.stats().size, 0);
    }
    // An SB_* code on the thrown error is kept.
    const coded = manager.pool('fail-coded', 'db://down', {
      connect() {
        const e = new Error('quota reached');
        e.code = ErrorCode.ResourceExhausted;
        throw e;
      },
    });
    const err = await rejectsWithCode(coded.acquire(), ErrorCode.ResourceExhausted);
    assert.match(err.message, /quota reached/);
  } finally {
    await manager.close();
  }
});

test('a connect that finishes after its acquirer gave up is still closed exactly once', T, async () => {
  const manager = new Manager({ workerThreads: 2 });
  const log = { connects: [], closes: [] };
  const pool = manager.pool('slow', 'db://slow', {
    maxSize: 2,
    connectTimeout: 150,
    async connect() {
      const obj = { closed: 0 };
      log.connects.push(obj);
      await sleep(400);
      return obj;
    },
    close(obj) {
      obj.closed += 1;
      log.closes.push(obj);
    },
  });
  await rejectsWithCode(pool.acquire({ timeout: 2000 }), [ErrorCode.Timeout, ErrorCode.Unavailable]);
  // The late object has nobody waiting for it: it is closed when it arrives.
  await waitFor(() => log.closes.length === 1, 'the late object closed');
  assert.equal(log.connects[0].closed, 1);
  await manager.close();
  assertAllClosedOnce(log);
});

test('custom pools obey sizing: overflow closes on return, evictAll, minIdle, warm', T, async () => {
  const manager = new Manager({ workerThreads: 2 });
  const { log, callbacks } = recorder();
  const pool = manager.pool('sized', 'db://x', { maxSize: 1, maxOverflow: 1, ...callbacks });
  const a = await pool.acquire();
  const b = await pool.acquire();
  a.release();
  b.release();
  await waitFor(() => log.closes.length === 1, 'the overflow object closed on return');
  assert.equal(pool.stats().closedBy.overflow, 1);
  pool.evictAll();
  await waitFor(() => log.closes.length === 2, 'evictAll closed the idle object');

  const warm = manager.pool('warm-custom', 'db://y', { maxSize: 4, minIdle: 2, ...recorder().callbacks });
  await within(5000, warm.warm(), 'warm');
  assert.ok(warm.stats().idle >= 2);
  await manager.close();
  assertAllClosedOnce(log);
});

test('custom pool options are checked', T, async () => {
  const manager = new Manager({ workerThreads: 1 });
  try {
    throwsWithCode(() => manager.pool('x1', 'db://x', { connect: 'nope' }), ErrorCode.InvalidArgument);
    throwsWithCode(() => manager.pool('x2', 'db://x', { check: () => true }), ErrorCode.InvalidArgument);
    throwsWithCode(() => manager.pool('x3', 'db://x', { connect: () => 1, close: 5 }), ErrorCode.InvalidArgument);
    throwsWithCode(() => manager.pool('x4', 'db://x', { connect: () => 1, maxSize: 0 }), ErrorCode.InvalidArgument);
    // The built-in connector still refuses targets it cannot open.
    throwsWithCode(() => manager.pool('x5', 'db://x', {}), ErrorCode.InvalidArgument);
  } finally {
    await manager.close();
  }
});

test('examples/node/custom.js runs and exits on its own', T, () => {
  const nodePath = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-node-path-'));
  try {
    fs.symlinkSync(path.join(ROOT, 'bindings', 'node'), path.join(nodePath, 'switchboard'), 'dir');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'examples', 'node', 'custom.js')], {
      env: { ...process.env, NODE_PATH: nodePath },
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(r.status, 0, `exit ${r.status} ${r.signal}; stderr: ${r.stderr}`);
    assert.match(r.stdout, /after a failed check got client #2/);
    assert.match(r.stdout, /closed clients \[1,2\]/);
  } finally {
    fs.rmSync(nodePath, { recursive: true, force: true });
  }
});

test('custom pool under churn: random connect/check outcomes, timeouts and abandoned acquires', T, async () => {
  const manager = new Manager({ workerThreads: 2 });
  // A fixed-seed generator, so that a failure can be replayed.
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const log = { connects: [], closes: [] };
  const pool = manager.pool('churn', 'db://churn', {
    maxSize: 4,
    maxOverflow: 2,
    validateAfter: 0,
    connectTimeout: 40,
    validationTimeout: 40,
    async connect() {
      const r = rand();
      await sleep(Math.floor(r * 60)); // some beyond connectTimeout
      if (r < 0.15) throw new Error('connect refused');
      const obj = { closed: 0 };
      log.connects.push(obj);
      return obj;
    },
    async check() {
      const r = rand();
      await sleep(Math.floor(r * 60)); // some beyond validationTimeout
      return r > 0.2;
    },
    close(obj) {
      obj.closed += 1;
      log.closes.push(obj);
    },
  });
  const outcomes = { ok: 0, failed: 0 };
  const work = [];
  for (let i = 0; i < 150; i++) {
    const timeout = Math.floor(rand() * 80);
    const p = pool.acquire({ timeout }).then(
      async (lease) => {
        outcomes.ok += 1;
        const s = pool.stats();
        assert.ok(s.size <= 6, `size ${s.size} beyond maxSize + maxOverflow`);
        await sleep(Math.floor(rand() * 5));
        if (rand() < 0.1) lease.discard();
        else lease.release();
      },
      (err) => {
        outcomes.failed += 1;
        assert.ok(
          [ErrorCode.Timeout, ErrorCode.Unavailable].includes(err.code),
          `unexpected ${err.code}: ${err.message}`,
        );
      },
    );
    // Every fifth acquire is abandoned: nobody awaits it (its lease, if any, is released above).
    if (i % 5 !== 0) work.push(p);
    if (i % 10 === 0) await sleep(1);
  }
  await within(20_000, Promise.all(work), 'every awaited acquire settled');
  assert.ok(outcomes.ok > 0, JSON.stringify(outcomes));
  // Everything comes back (bounded wait for the abandoned ones).
  await waitFor(() => pool.stats().leased === 0 && pool.stats().waiting === 0, 'all leases back');
  const s = pool.stats();
  assert.ok(s.size <= 6, JSON.stringify(s));
  await within(15_000, manager.close(), 'manager.close');
  // Each object connect made (including late ones nobody took) is closed exactly once.
  await waitFor(() => log.closes.length === log.connects.length, 'every object closed');
  assertAllClosedOnce(log);
});
