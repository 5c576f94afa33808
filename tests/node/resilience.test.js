'use strict';
// Resilience through the Node package (issue 4): breakers, backoff, health and
// multi-endpoint pools under real faults, with a loopback echo server behind the fault
// proxy (tests/fixtures/fault_proxy.py). Every wait is bounded; timing is only asserted
// as "finished within its deadline plus a generous margin".

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { setTimeout: sleep } = require('node:timers/promises');

const { sb, within, startEchoServer, deadPort, readExactly, rejectsWithCode, throwsWithCode } = require('./helpers');
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

/** Runs `fn(manager, proxy)` with a manager and a proxy in front of the echo server, closing both. */
async function withProxy(fn) {
  const proxy = await new FaultProxy(server.port).start();
  const m = new Manager({ workerThreads: 2 });
  try {
    return await fn(m, proxy);
  } finally {
    await within(20_000, m.close(2000), 'manager.close');
    await proxy.close();
  }
}

/** Milliseconds `promise` took to settle, and its error (or null). */
async function timed(promise) {
  const t0 = performance.now();
  try {
    const value = await promise;
    return { ms: performance.now() - t0, value, err: null };
  } catch (err) {
    return { ms: performance.now() - t0, value: undefined, err };
  }
}

/** One echo round trip on `lease`; resolves with how long it took (ms). */
async function echoOnce(lease, timeout = 2000) {
  const t0 = performance.now();
  await lease.write('hi\n', { timeout });
  const got = await readExactly({ read: (n) => lease.read(n, { timeout }) }, 3);
  assert.equal(got.toString(), 'hi\n');
  return performance.now() - t0;
}

/** The queued events of `kind`, polled (others skipped) until the queue is empty. */
function pollAll(m, kind) {
  const out = [];
  for (let i = 0; i < 10_000; i++) {
    const e = m.pollEvent();
    if (e === null) break;
    if (e.kind === kind) out.push(e);
  }
  return out;
}

/** Calls `check()` (may be async) until it returns true, every `every` ms, for at most `ms`. */
async function waitUntil(ms, check, every = 20) {
  const end = Date.now() + ms;
  for (let i = 0; i < 100_000; i++) {
    if (await check()) return true;
    if (Date.now() >= end) return false;
    await sleep(every);
  }
  return false;
}

/** Asserts that each event continues where the one before it ended, in time order. */
function assertInOrder(events) {
  for (let i = 1; i < events.length; i++) {
    const [a, b] = [events[i - 1], events[i]];
    assert.equal(b.oldState, a.newState, `in order: ${JSON.stringify(events.map((e) => [e.oldState, e.newState]))}`);
    assert.ok(a.time.getTime() <= b.time.getTime(), 'times do not go back');
  }
}

test('options: resilience keys in every spelling, fractional numbers included; bad ones name the key', T, async () => {
  const m = new Manager({ workerThreads: 1 });
  try {
    const target = 'tcp://127.0.0.1:9';
    m.pool('floats', target, {
      backoff: { multiplier: 1.6, jitter: 0.2, initial: 10, strategy: 'decorrelated' },
      breaker: { failureRateThreshold: 50, slowCallRateThreshold: 12.5, openWaitMultiplier: 1.5, slowCallDuration: 50 },
      'breaker.window_type': 'time',
      breakerMinimumCalls: 4,
      retry_max_attempts: 3,
      healthInterval: '50ms',
    });
    for (const [options, key] of [
      [{ backoffJitter: 1.5 }, 'backoff.jitter'],
      [{ backoff: { multiplier: 'fast' } }, 'backoff.multiplier'],
      [{ breaker: { failureRateThreshold: 150 } }, 'breaker.failure_rate_threshold'],
      [{ breaker: { mode: 'sometimes' } }, 'breaker.mode'],
      [{ breaker: { nope: 1 } }, 'breaker.nope'],
    ]) {
      const err = throwsWithCode(() => m.pool(`bad-${key}`, target, options), ErrorCode.InvalidArgument);
      assert.ok(err.message.includes(key), `${err.message} names ${key}`);
    }
    const err = throwsWithCode(() => m.pool('arr', target, { breaker: [1] }), ErrorCode.InvalidArgument);
    assert.match(err.message, /breaker/);
  } finally {
    await m.close();
  }
});

test('endpoint down at start: the pool builds, acquire fails within its timeout with SB_UNAVAILABLE, then fails fast naming the backoff', T, async () => {
  const m = new Manager({ workerThreads: 1 });
  try {
    const target = `tcp://127.0.0.1:${await deadPort()}`;
    const pool = m.pool('down', target);
    const first = await timed(pool.acquire({ timeout: 2000 }));
    assert.equal(first.err?.code, ErrorCode.Unavailable, String(first.err));
    assert.ok(first.ms < 2000 + 3000, `within its timeout plus margin: ${first.ms} ms`);
    // Backing off now (backoff.initial 1 s): the next acquire fails at once, not after its 10 s.
    const second = await timed(pool.acquire({ timeout: 10_000 }));
    assert.equal(second.err?.code, ErrorCode.Unavailable, String(second.err));
    assert.match(second.err.message, /backing off/);
    assert.match(second.err.message, /refused/);
    assert.ok(second.ms < 5000, `failed fast, not at its 10 s timeout: ${second.ms} ms`);

    const h = pool.health();
    assert.equal(h.pool, 'down');
    assert.equal(h.failures, 1);
    assert.equal(h.endpoints.length, 1);
    const e = h.endpoints[0];
    assert.equal(e.endpoint, target);
    assert.equal(e.state, 'reconnecting');
    assert.equal(e.breaker, 'closed');
    assert.equal(typeof e.backoffRemaining, 'number');
    assert.ok(e.backoffRemaining >= 0 && e.backoffRemaining < 60_000, `backoffRemaining ${e.backoffRemaining} ms`);
    assert.match(e.lastError, /refused/);
    assert.equal(e.lastSuccess, null);
    assert.deepEqual(pool.healthyEndpoints(), [], 'a reconnecting endpoint is not healthy');
    const st = pool.stats().endpoints;
    assert.deepEqual(st.map((x) => [x.endpoint, x.state, x.failures]), [[target, 'reconnecting', 1]]);
    await sleep(50);
    const states = pollAll(m, 'endpoint_state').map((x) => [x.endpoint, x.oldState, x.newState]);
    assert.deepEqual(states, [
      [target, 'idle', 'connecting'],
      [target, 'connecting', 'reconnecting'],
    ]);
    // resetBackoff(): the next acquire tries again (and fails again: nothing listens).
    pool.resetBackoff();
    const third = await timed(pool.acquire({ timeout: 2000 }));
    assert.equal(third.err?.code, ErrorCode.Unavailable);
    assert.doesNotMatch(third.err.message, /backing off/, 'a fresh connect was tried');
    assert.equal(pool.health().failures, 2);
  } finally {
    await m.close();
  }
});

test('blackhole: a read with a timeout and an acquire honour their deadlines', T, async () => {
  await withProxy(async (m, proxy) => {
    const pool = m.pool('bh', proxy.target, { maxSize: 1, connectTimeout: 300 });
    const lease = await pool.acquire({ timeout: 2000 });
    await echoOnce(lease);
    await proxy.command('blackhole');
    await lease.write('hi\n', { timeout: 1000 });
    const read = await timed(lease.read(16, { timeout: 200 }));
    assert.equal(read.err?.code, ErrorCode.Timeout, String(read.err));
    assert.match(read.err.message, /read timed out/);
    assert.ok(read.ms < 200 + 3000, `the read gave up on time: ${read.ms} ms`);
    // The pool is full (one lease): a second caller times out on time.
    const acq = await timed(pool.acquire({ timeout: 300 }));
    assert.equal(acq.err?.code, ErrorCode.Timeout, String(acq.err));
    assert.ok(acq.ms < 300 + 3000, `acquire gave up on time: ${acq.ms} ms`);
    lease.discard();
    // A new connect is accepted by the proxy and never answered: the lease comes back
    // (TCP connects), and its first read times out on time too.
    const fresh = await pool.acquire({ timeout: 2000 });
    await fresh.write('hi\n', { timeout: 1000 });
    const again = await timed(fresh.read(16, { timeout: 200 }));
    assert.equal(again.err?.code, ErrorCode.Timeout);
    assert.ok(again.ms < 200 + 3000, `${again.ms} ms`);
    // A timed-out read consumed nothing: the lease is still usable (and released normally).
    assert.equal(fresh.released, false);
    fresh.release();
    await rejectsWithCode(lease.read(1, { timeout: 'soon' }), ErrorCode.InvalidArgument);
  });
});

test('reset mid-lease: the next call fails, the connection is discarded on release, the next acquire gets a fresh one', T, async () => {
  await withProxy(async (m, proxy) => {
    const pool = m.pool('rst', proxy.target);
    const lease = await pool.acquire({ timeout: 2000 });
    await echoOnce(lease);
    const { id } = lease;
    await proxy.command('reset_existing');
    // The RST arrives shortly; a call on the lease then fails.
    let failure = null;
    for (let i = 0; i < 100 && failure === null; i++) {
      try {
        await lease.write('x\n', { timeout: 1000 });
        const got = await lease.read(16, { timeout: 1000 });
        if (got.length === 0) failure = new Error('peer closed');
      } catch (err) {
        failure = err;
      }
      if (failure === null) await sleep(20);
    }
    assert.notEqual(failure, null, 'a call after the reset failed');
    assert.ok(sb.isSwitchboardError(failure) || failure.message === 'peer closed', String(failure));
    lease.release();
    const s = pool.stats();
    assert.equal(s.closedBy.broken, 1, 'discarded on release, not reused');
    assert.equal(s.idle, 0);
    assert.equal(s.endpoints[0].failures, 1, 'the broken lease counted against its endpoint');
    const fresh = await pool.acquire({ timeout: 2000 });
    assert.notEqual(fresh.id, id, 'a new connection');
    await echoOnce(fresh);
    fresh.release();
  });
});

test('slow calls reported with lease.report() trip the breaker: acquire then fails fast, with a closed->open event and metrics', T, async () => {
  await withProxy(async (m, proxy) => {
    const heard = [];
    const rejected = [];
    m.on('event', (e) => {
      if (e.kind === 'breaker_state') heard.push(e);
      if (e.kind === 'rejected') rejected.push(e);
    });
    const pool = m.pool('slow', proxy.target, {
      breaker: { failureThreshold: 0, slowCallDuration: 50, slowCallRateThreshold: 50, minimumCalls: 4, openWait: '30s' },
    });
    await proxy.command('latency 150');
    // The window holds the (fast) connect and the slow round trips: with a minimum of
    // four calls it opens on the third slow one (3 of 4 slow >= 50%).
    let slowCalls = 0;
    while (pool.breakerState() === 'closed' && slowCalls < 10) {
      const lease = await pool.acquire({ timeout: 2000 });
      assert.equal(lease.endpoint, proxy.target);
      const took = await echoOnce(lease);
      assert.ok(took >= 100, `a round trip through 150 ms of latency took ${took} ms`);
      lease.report(true, took);
      lease.release();
      slowCalls += 1;
    }
    assert.equal(slowCalls, 3);
    assert.equal(pool.breakerState(), 'open');
    assert.equal(pool.breakerState(proxy.target), 'open');
    const failed = await timed(pool.acquire({ timeout: 10_000 }));
    assert.equal(failed.err?.code, ErrorCode.Unavailable, String(failed.err));
    assert.match(failed.err.message, /breaker open/);
    assert.ok(failed.ms < 5000, `failed fast: ${failed.ms} ms`);
    assert.ok(await waitUntil(5000, () => heard.length >= 1), 'the breaker event reached the listener');
    assert.equal(heard.length, 1);
    const [ev] = heard;
    assert.deepEqual([ev.oldState, ev.newState], ['closed', 'open']);
    assert.equal(ev.pool, 'slow');
    assert.equal(ev.endpoint, proxy.target);
    assert.match(ev.message, /slow-call rate/);
    assert.ok(ev.time instanceof Date);
    assert.equal(pool.stats().idle, 0, 'the open breaker evicted the idle connection');
    const e = pool.health().endpoints[0];
    assert.equal(e.breaker, 'open');
    assert.equal(e.breakerOpened, 1);
    // The refused acquire is an event of its own.
    assert.ok(await waitUntil(5000, () => rejected.length >= 1), 'a rejected event arrived');
    assert.equal(rejected[0].pool, 'slow');
    assert.match(rejected[0].message, /breaker open/);
    assert.ok(e.latencyEwma >= 50, `latencyEwma ${e.latencyEwma} ms`);
    // A gauge: OpenMetrics writes its value as 1 or 1.0.
    const series = `switchboard_endpoint_breaker_state{pool="slow",endpoint="${proxy.target}",state="open"}`;
    const text = m.metricsText();
    const lines = text.split('\n');
    assert.ok(lines.some((l) => l === `${series} 1` || l === `${series} 1.0`), `metrics text has ${series} 1\n${text}`);
    assert.ok(lines.some((l) => /^switchboard_endpoint_breaker_state\{pool="slow",.*state="closed"\} 0(\.0)?$/.test(l)), 'closed is 0');
  });
});

test('HALF_OPEN admits exactly halfOpenProbes connects (a custom connector behind a gate) and closes after they succeed', T, async () => {
  const m = new Manager({ workerThreads: 2 });
  try {
    let fail = true;
    let started = 0;
    let openGate;
    const gate = new Promise((resolve) => {
      openGate = resolve;
    });
    const pool = m.pool('half', 'svc://one', {
      maxSize: 8,
      maxConnecting: 8,
      breaker: { failureThreshold: 1, openWait: 200, halfOpenProbes: 2 },
      backoff: { initial: 10, max: 20 },
      healthInterval: 0,
      connect: async (endpoint) => {
        started += 1;
        if (fail) throw new Error('refused (test)');
        await gate;
        return { endpoint, n: started };
      },
    });
    const first = await timed(pool.acquire({ timeout: 2000 }));
    assert.equal(first.err?.code, ErrorCode.Unavailable, String(first.err));
    assert.match(first.err.message, /refused \(test\)/);
    assert.equal(pool.breakerState(), 'open');
    // Still open: refused without a connect.
    const before = started;
    await rejectsWithCode(pool.acquire({ timeout: 2000 }), ErrorCode.Unavailable);
    assert.equal(started, before, 'no connect while open');
    // Past the open wait (200 ms, give or take its jitter).
    await sleep(600);
    fail = false;
    const settled = [];
    const acquires = Array.from({ length: 5 }, (_, i) => pool.acquire({ timeout: 10_000 }).then(
      (lease) => settled.push({ i, lease }),
      (err) => settled.push({ i, err }),
    ));
    // (The refusals and the connect calls reach the JS thread through different queues.)
    assert.ok(
      await waitUntil(5000, () => settled.length === 3 && started === before + 2),
      `three refused while two probes run (settled ${settled.length}, connects ${started - before})`,
    );
    assert.equal(pool.breakerState(), 'half_open');
    for (const { err } of settled) {
      assert.equal(err?.code, ErrorCode.Unavailable, String(err));
      assert.match(err.message, /half_open/);
    }
    openGate();
    await within(10_000, Promise.all(acquires), 'the probes');
    const leases = settled.filter((s) => s.lease).map((s) => s.lease);
    assert.equal(leases.length, 2);
    assert.equal(started, before + 2, 'no third connect');
    assert.equal(pool.breakerState(), 'closed');
    for (const l of leases) {
      assert.equal(l.endpoint, 'svc://one');
      assert.equal(l.obj.endpoint, 'svc://one');
      l.release();
    }
    const states = pollAll(m, 'breaker_state').map((e) => e.newState);
    assert.deepEqual(states, ['open', 'half_open', 'closed']);
  } finally {
    await m.close();
  }
});

test('flap: the breaker opens while the endpoint flaps, recovers after pass within its bounds, and its events arrive in order', T, async () => {
  await withProxy(async (m, proxy) => {
    const events = [];
    m.on('event', (e) => {
      if (e.kind === 'breaker_state') events.push(e);
    });
    const pool = m.pool('flap', proxy.target, {
      connectTimeout: '1s',
      breaker: { failureThreshold: 2, openWait: 100, maxOpenWait: 300, halfOpenProbes: 1 },
      backoff: { initial: 20, max: 50 },
      health: { interval: 50 },
    });
    await proxy.command('flap 200 200');
    let sawOpen = false;
    const end = Date.now() + 20_000;
    for (let round = 0; round < 2000 && Date.now() < end; round++) {
      try {
        const lease = await pool.acquire({ timeout: 300 });
        try {
          await echoOnce(lease, 300);
          lease.release();
        } catch {
          lease.discard();
        }
      } catch (err) {
        assert.ok([ErrorCode.Unavailable, ErrorCode.Timeout].includes(err.code), String(err));
      }
      sawOpen ||= pool.breakerState() === 'open';
      if (sawOpen && round > 50) break;
      await sleep(5);
    }
    assert.ok(sawOpen, 'the breaker opened while the endpoint flapped');
    await proxy.command('pass');
    // Recovers on its own (health checks probe in half-open) within max_open_wait +
    // backoff + a generous margin.
    const t0 = Date.now();
    const recovered = await waitUntil(10_000, async () => {
      if (pool.breakerState() !== 'closed') return false;
      try {
        const lease = await pool.acquire({ timeout: 300 });
        await echoOnce(lease, 1000);
        lease.release();
        return true;
      } catch {
        return false;
      }
    });
    assert.ok(recovered, `recovered: ${JSON.stringify(pool.health().endpoints[0])}`);
    assert.ok(Date.now() - t0 < 300 + 10_000);
    // Let the last events reach the JS thread.
    await sleep(100);
    assert.ok(events.length >= 3, JSON.stringify(events));
    assert.equal(events[0].oldState, 'closed');
    assertInOrder(events);
    assert.equal(events.at(-1).newState, 'closed');
    assert.ok(events.some((e) => e.newState === 'open'));
    assert.ok(events.some((e) => e.newState === 'half_open'));
    assert.ok(events.every((e) => e.endpoint === proxy.target && e.pool === 'flap'));
  });
});

test('two endpoints, one down: every acquire goes to the healthy one; healthyEndpoints() and selectBest() pick it', T, async () => {
  const m = new Manager({ workerThreads: 2 });
  try {
    const good = server.target;
    const bad = `tcp://127.0.0.1:${await deadPort()}`;
    const pool = m.pool('two', `${bad},${good}`, { maxSize: 20 });
    const leases = [];
    for (let i = 0; i < 20; i++) leases.push(await pool.acquire({ timeout: 3000 }));
    assert.deepEqual([...new Set(leases.map((l) => l.endpoint))], [good]);
    for (const l of leases) await echoOnce(l);
    for (const l of leases) l.release();
    const best = pool.healthyEndpoints();
    assert.equal(best[0].endpoint, good);
    assert.ok(best.every((e) => e.endpoint !== bad), JSON.stringify(best));
    assert.equal(pool.selectBest(), good);
    assert.equal(pool.selectBest([]), good);
    assert.equal(pool.selectBest([good, bad]), good);
    throwsWithCode(() => pool.selectBest([bad]), ErrorCode.Unavailable);
    throwsWithCode(() => pool.selectBest(['tcp://nowhere:1']), ErrorCode.NotFound);
    throwsWithCode(() => pool.selectBest('tcp://x:1'), ErrorCode.InvalidArgument);
    const h = pool.health();
    assert.deepEqual(h.endpoints.map((e) => e.endpoint), [bad, good], 'in target order');
    assert.equal(h.endpoints[0].state, 'reconnecting');
    assert.equal(h.endpoints[1].state, 'connected');
    assert.equal(h.endpoints[1].openConnections, 20);
    assert.ok(h.endpoints[1].connectedSince instanceof Date);
    assert.ok(h.lastSuccess instanceof Date);
    assert.ok(h.endpoints[1].quality > h.endpoints[0].quality, JSON.stringify(h.endpoints));
    assert.ok(h.endpoints.every((e) => e.quality >= 0 && e.quality <= 1));
    // Several endpoints: breakerState() needs a name.
    throwsWithCode(() => pool.breakerState(), ErrorCode.InvalidArgument);
    assert.equal(pool.breakerState(good), 'closed');
    // drain(): the healthy endpoint's idle connections close.
    pool.drain(good);
    assert.equal(pool.stats().idle, 0);
    assert.equal(pool.stats().closedBy.evicted, 20);
    throwsWithCode(() => pool.drain('tcp://nowhere:1'), ErrorCode.NotFound);
  } finally {
    await m.close();
  }
});

test('operators: force_open fails acquires fast, reset makes it work again; disable and metrics_only; bad names are rejected', T, async () => {
  const m = new Manager({ workerThreads: 1 });
  try {
    const pool = m.pool('ops', server.target);
    (await pool.acquire({ timeout: 2000 })).release();
    pool.breakerOp('force_open');
    assert.equal(pool.breakerState(), 'forced_open');
    assert.equal(pool.stats().idle, 0, 'forcing open evicts idle connections');
    const failed = await timed(pool.acquire({ timeout: 10_000 }));
    assert.equal(failed.err?.code, ErrorCode.Unavailable, String(failed.err));
    assert.match(failed.err.message, /forced_open/);
    assert.ok(failed.ms < 5000, `failed fast: ${failed.ms} ms`);
    pool.breakerOp('reset');
    assert.equal(pool.breakerState(), 'closed');
    const lease = await pool.acquire({ timeout: 2000 });
    await echoOnce(lease);
    lease.release();
    pool.breakerOp('disable', server.target);
    assert.equal(pool.breakerState(server.target), 'disabled');
    pool.breakerOp('metrics_only');
    assert.equal(pool.breakerState(), 'metrics_only');
    const err = throwsWithCode(() => pool.breakerOp('open-ish'), ErrorCode.InvalidArgument);
    assert.match(err.message, /force_open \| disable \| metrics_only \| reset/);
    throwsWithCode(() => pool.breakerOp('reset', 'tcp://127.0.0.1:1'), ErrorCode.NotFound);
    throwsWithCode(() => pool.breakerOp(7), ErrorCode.InvalidArgument);
    throwsWithCode(() => pool.breakerState(42), ErrorCode.InvalidArgument);
    const raw = pollAll(m, 'breaker_state');
    assertInOrder(raw);
    assert.deepEqual(raw.map((e) => [e.oldState, e.newState]), [
      ['closed', 'forced_open'],
      ['forced_open', 'closed'],
      ['closed', 'disabled'],
      ['disabled', 'metrics_only'],
    ]);
  } finally {
    await m.close();
  }
});

test('runHealthChecks(): probes an idle connection off the event loop, and reconnects an endpoint that came back', T, async () => {
  await withProxy(async (m, proxy) => {
    const pool = m.pool('hc', proxy.target, {
      probeSend: 'PING\\r\\n',
      probeExpect: 'PING',
      health: { interval: 0 },
      backoff: { initial: 10, max: 20 },
    });
    (await pool.acquire({ timeout: 2000 })).release();
    const checks = pool.runHealthChecks();
    assert.ok(checks instanceof Promise, 'a promise: the checks run on the library runtime');
    assert.equal(await within(10_000, checks, 'runHealthChecks'), undefined);
    let e = pool.health().endpoints[0];
    assert.deepEqual([e.checks, e.checksFailed], [1, 0]);
    assert.equal(typeof e.latencyEwma, 'number');
    const ok = pollAll(m, 'health_check');
    assert.equal(ok.length, 1);
    assert.equal(ok[0].newState, 'ok');
    assert.equal(ok[0].endpoint, proxy.target);
    assert.equal(typeof ok[0].ageMs, 'number');
    // The endpoint goes away: a check fails and the connection is let go.
    await proxy.command('refuse');
    await proxy.command('reset_existing');
    assert.ok(await waitUntil(5000, async () => {
      await pool.runHealthChecks();
      return pool.health().endpoints[0].checksFailed >= 1;
    }), 'a check failed');
    await rejectsWithCode(pool.acquire({ timeout: 500 }), [ErrorCode.Unavailable, ErrorCode.Timeout]);
    // It comes back: a health check reconnects it on its own (auto-recovery).
    await proxy.command('pass');
    assert.ok(await waitUntil(5000, async () => {
      await pool.runHealthChecks();
      return pool.stats().idle === 1;
    }), `reconnected: ${JSON.stringify(pool.health())}`);
    e = pool.health().endpoints[0];
    assert.equal(e.state, 'connected');
    assert.ok(pool.health().reconnects >= 1);
    const lease = await pool.acquire({ timeout: 2000 });
    await echoOnce(lease);
    lease.release();
  });
});

test('runHealthChecks() after close rejects with SB_UNAVAILABLE; lease.report() checks its arguments and its lease', T, async () => {
  const m = new Manager({ workerThreads: 1 });
  const pool = m.pool('after', server.target);
  const lease = await pool.acquire({ timeout: 2000 });
  throwsWithCode(() => lease.report('yes', 1), ErrorCode.InvalidArgument);
  throwsWithCode(() => lease.report(true, -1), ErrorCode.InvalidArgument);
  throwsWithCode(() => lease.report(true, Number.NaN), ErrorCode.InvalidArgument);
  lease.report(false, 3.5);
  assert.equal(pool.health().endpoints[0].failures, 1);
  // Busy with a read: report() waits for nobody, it says so.
  const pending = lease.read(1, { timeout: 100 });
  throwsWithCode(() => lease.report(true, 1), ErrorCode.FailedPrecondition);
  await rejectsWithCode(pending, ErrorCode.Timeout);
  lease.release();
  throwsWithCode(() => lease.report(true, 1), ErrorCode.FailedPrecondition);
  assert.equal(lease.endpoint, server.target, 'still known after release');
  await m.close();
  await rejectsWithCode(pool.runHealthChecks(), ErrorCode.Unavailable);
});
