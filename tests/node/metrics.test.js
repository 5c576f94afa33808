'use strict';
// Metrics text, latency summaries in stats() and leak events, against a real echo server.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { setTimeout: sleep } = require('node:timers/promises');

const { sb, within, startEchoServer, rejectsWithCode } = require('./helpers');

const { Manager, ErrorCode } = sb;
const T = { timeout: 30_000 };

let server;

before(async () => {
  server = await startEchoServer();
});

after(() => {
  if (server) server.stop();
});

/** A manager of the test's own (events and metrics are per manager), closed afterwards. */
async function withManager(fn) {
  const m = new Manager({ workerThreads: 1 });
  try {
    return await fn(m);
  } finally {
    await within(15_000, m.close(2000), 'manager.close');
  }
}

/**
 * The next queued event of `kind`, skipping (and returning in `skipped`) the others:
 * connections and endpoints also report their state changes. `null` when none is queued.
 */
function pollKind(m, kind, skipped = []) {
  for (let i = 0; i < 10_000; i++) {
    const e = m.pollEvent();
    if (e === null || e.kind === kind) return e;
    skipped.push(e);
  }
  throw new Error(`more than 10000 events queued without a ${kind}`);
}

/** Every queued event (bounded). */
function drainEvents(m) {
  const out = [];
  for (let e = m.pollEvent(); e !== null && out.length < 10_000; e = m.pollEvent()) out.push(e);
  return out;
}

/** The sample lines of `text` (no comments), as a Map from series to value text. */
function samples(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

test('metricsText(): exact series after acquire, release, a timed-out acquire and a discard', T, async () => {
  await withManager(async (m) => {
    const pool = m.pool('x', server.target, { maxSize: 1 });
    const held = await pool.acquire();
    await rejectsWithCode(pool.acquire({ timeout: 50 }), ErrorCode.Timeout);
    held.release();
    const again = await pool.acquire();
    again.discard();

    const text = m.metricsText();
    assert.equal(typeof text, 'string');
    assert.ok(text.trimEnd().endsWith('# EOF'), 'OpenMetrics text ends with # EOF');
    const lines = text.split('\n');
    for (const want of [
      'switchboard_pool_acquires_total{pool="x",result="timed_out"} 1',
      'switchboard_pool_acquires_total{pool="x",result="rejected"} 0',
      'switchboard_pool_connections_closed_total{pool="x",reason="discarded"} 1',
      'switchboard_pool_connections_closed_total{pool="x",reason="broken"} 0',
      'switchboard_pool_connections_created_total{pool="x"} 1',
      'switchboard_pool_connections{pool="x",state="leased"} 0',
      'switchboard_pool_connections{pool="x",state="idle"} 0',
      'switchboard_pool_max_size{pool="x"} 1',
      'switchboard_pool_wait_seconds_count{pool="x"} 2',
      'switchboard_pool_lease_seconds_count{pool="x"} 2',
    ]) {
      assert.ok(lines.includes(want), `metrics text has the line ${want}\n${text}`);
    }
    // The text and stats() tell the same story.
    const s = samples(text);
    const st = pool.stats();
    assert.equal(st.acquiredTotal, 2);
    assert.equal(Number(s.get('switchboard_pool_acquires_total{pool="x",result="direct"}')), st.acquiredDirectTotal);
    assert.equal(Number(s.get('switchboard_pool_acquires_total{pool="x",result="waited"}')), st.acquiredWaitedTotal);
    assert.equal(st.acquiredDirectTotal + st.acquiredWaitedTotal, 2);

    // A closed pool leaves the text.
    pool.close();
    assert.ok(!m.metricsText().includes('pool="x"'), 'a closed pool is not reported');
  });
});

test('metricsText() lists every open pool; after close it lists none and pollEvent() is null', T, async () => {
  const m = new Manager({ workerThreads: 1 });
  m.pool('a', server.target);
  m.pool('b', server.target);
  const text = m.metricsText();
  assert.ok(text.includes('switchboard_pool_size{pool="a"} 0'), text);
  assert.ok(text.includes('switchboard_pool_size{pool="b"} 0'), text);
  await within(15_000, m.close(2000), 'manager.close');
  // After close: no pool is open any more, and what was queued before can still be
  // polled (state changes), then nothing.
  assert.ok(!m.metricsText().includes('pool="a"'));
  const left = drainEvents(m);
  assert.ok(left.length < 10_000, 'the queue drains');
  assert.ok(left.every((e) => e.kind !== 'leak_suspected'), JSON.stringify(left));
  assert.equal(m.pollEvent(), null);
});

test('stats().wait and stats().lease: counts match, peak covers a lease held ~50 ms', T, async () => {
  await withManager(async (m) => {
    const pool = m.pool('lat', server.target, { maxSize: 2 });
    const empty = pool.stats();
    for (const h of [empty.wait, empty.lease]) {
      assert.deepEqual(h, { count: 0, avg: 0, peak: 0, p50: 0, p90: 0, p99: 0 });
    }

    const long = await pool.acquire();
    const t0 = performance.now();
    await sleep(50);
    // Held at least this long (measured by the test, before release).
    const heldAtLeast = performance.now() - t0;
    long.release();
    for (let i = 0; i < 3; i++) (await pool.acquire()).release();

    const s = pool.stats();
    assert.equal(s.acquiredTotal, 4);
    assert.equal(s.wait.count, s.acquiredTotal, 'one wait per successful acquire');
    assert.equal(s.lease.count, 4, 'one lease time per returned lease');
    for (const [name, h] of [['wait', s.wait], ['lease', s.lease]]) {
      for (const k of ['count', 'avg', 'peak', 'p50', 'p90', 'p99']) {
        assert.equal(typeof h[k], 'number', `${name}.${k} is a number`);
        assert.ok(Number.isFinite(h[k]) && h[k] >= 0, `${name}.${k} = ${h[k]}`);
      }
      assert.ok(h.p50 <= h.p90 && h.p90 <= h.p99 && h.p99 <= h.peak, `${name} quantiles ordered: ${JSON.stringify(h)}`);
      assert.ok(h.avg <= h.peak, `${name} avg <= peak`);
    }
    // Milliseconds, not seconds or nanoseconds. Lease times come from the coarse monotonic
    // clock (docs/metrics.md): one kernel tick, at most 10 ms, of resolution.
    assert.ok(s.lease.peak >= heldAtLeast - 10, `lease peak ${s.lease.peak} ms >= held ${heldAtLeast} ms`);
    assert.ok(s.lease.peak < 60_000, `lease peak ${s.lease.peak} is in milliseconds`);
  });
});

test('pollEvent(): a lease held past leakDetectionThreshold is reported once, with pool, id, age and message', T, async () => {
  await withManager(async (m) => {
    assert.equal(m.pollEvent(), null, 'no event yet');
    const pool = m.pool('leaky', server.target, { maxSize: 1, leakDetectionThreshold: 100 });
    const lease = await pool.acquire();
    const before = Date.now();
    let event = null;
    const skipped = [];
    for (let i = 0; i < 200 && event === null; i++) {
      await sleep(25);
      await pool.runUpkeep();
      event = pollKind(m, 'leak_suspected', skipped);
    }
    assert.notEqual(event, null, 'a leak_suspected event arrived');
    assert.ok(skipped.some((e) => e.kind === 'connection_state' && e.connectionId === lease.id),
      `the lease's connection reported its state first: ${JSON.stringify(skipped.map((e) => e.kind))}`);
    assert.deepEqual(Object.keys(event).sort(), [
      'ageMs', 'connectionId', 'endpoint', 'kind', 'message', 'newState', 'oldState', 'pool', 'reason', 'resource', 'sessionId', 'stream', 'time', 'topic', 'user',
    ]);
    // A leak concerns a connection; its endpoint may be given (core leaves it out today).
    assert.ok(event.endpoint === null || event.endpoint === server.target, `endpoint ${event.endpoint}`);
    assert.equal(event.sessionId, null);
    assert.equal(event.stream, null);
    assert.equal(event.kind, 'leak_suspected');
    assert.equal(event.pool, 'leaky');
    assert.equal(event.connectionId, lease.id);
    assert.equal(typeof event.ageMs, 'number');
    assert.ok(event.ageMs >= 100, `age ${event.ageMs} ms >= the 100 ms threshold`);
    assert.match(event.message, /leaky/);
    assert.match(event.message, new RegExp(`#${lease.id}\\b`));
    assert.ok(event.time instanceof Date);
    assert.ok(event.time.getTime() >= before - 5000 && event.time.getTime() <= Date.now() + 5000, `time ${event.time.toISOString()}`);

    // Once: further upkeep passes report nothing new for the same lease.
    await pool.runUpkeep();
    await pool.runUpkeep();
    assert.equal(pollKind(m, 'leak_suspected'), null, 'reported once');
    assert.equal(m.eventsDropped(), 0);
    lease.release();
  });
});

test('pollEvent(): no event without leakDetectionThreshold, nor for a lease released in time', T, async () => {
  await withManager(async (m) => {
    const off = m.pool('off', server.target, { maxSize: 1 });
    const quick = m.pool('quick', server.target, { maxSize: 1, leakDetectionThreshold: '10s' });
    const a = await off.acquire();
    const b = await quick.acquire();
    await sleep(150);
    await off.runUpkeep();
    await quick.runUpkeep();
    a.release();
    b.release();
    await quick.runUpkeep();
    const all = drainEvents(m);
    assert.ok(all.length > 0, 'connections reported their state');
    assert.deepEqual(all.filter((e) => e.kind === 'leak_suspected'), []);
  });
});

/** Runs upkeep passes until `done()` or the bound; returns whether it got there. */
async function upkeepUntil(pool, done) {
  for (let i = 0; i < 200; i++) {
    if (done()) return true;
    await sleep(25);
    await pool.runUpkeep();
  }
  return done();
}

test("on('event'): leak events reach the listener on the JS thread instead of the queue", T, async () => {
  await withManager(async (m) => {
    const seen = [];
    let heardOthers = 0;
    const listener = (e) => {
      if (e.kind === 'leak_suspected') seen.push({ e, sync: true });
      else heardOthers += 1;
    };
    m.on('event', listener);
    const pool = m.pool('heard', server.target, { maxSize: 2, leakDetectionThreshold: 100 });
    const lease = await pool.acquire();
    assert.ok(await upkeepUntil(pool, () => seen.length > 0), 'the listener got an event');
    const { e } = seen[0];
    assert.equal(e.kind, 'leak_suspected');
    assert.equal(e.pool, 'heard');
    assert.equal(e.connectionId, lease.id);
    assert.ok(e.ageMs >= 100, `age ${e.ageMs}`);
    assert.ok(e.time instanceof Date);
    assert.match(e.message, /heard/);
    assert.ok(heardOthers > 0, 'state changes reached the listener too');
    assert.equal(m.pollEvent(), null, 'nothing queued while listening');

    // Without listeners events queue again.
    m.off('event', listener);
    const second = await pool.acquire();
    assert.ok(await upkeepUntil(pool, () => {
      const ev = pollKind(m, 'leak_suspected');
      if (ev !== null) seen.push({ e: ev, sync: false });
      return seen.length > 1;
    }), 'a later event was queued');
    assert.equal(seen[1].e.connectionId, second.id);
    assert.equal(seen[1].sync, false, 'not delivered to the removed listener');
    assert.equal(seen.length, 2);
    lease.release();
    second.release();
  });
});

test("on('event') after removeAllListeners() still listens; a throwing listener becomes a warning", T, async () => {
  await withManager(async (m) => {
    m.on('event', () => {});
    m.removeAllListeners();
    const warnings = [];
    const onWarning = (w) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      m.on('event', () => {
        throw new Error('listener boom');
      });
      const pool = m.pool('again', server.target, { maxSize: 1, leakDetectionThreshold: 50 });
      const lease = await pool.acquire();
      assert.ok(await upkeepUntil(pool, () => warnings.length > 0), 'the throw became a warning');
      assert.equal(warnings[0].code, 'SWITCHBOARD_CALLBACK');
      assert.match(warnings[0].message, /listener boom/);
      assert.equal(m.pollEvent(), null);
      lease.release();
    } finally {
      process.off('warning', onWarning);
    }
  });
});

test("close() stops delivery: on('event') afterwards gets nothing and throws nothing", T, async () => {
  const m = new Manager({ workerThreads: 1 });
  m.on('event', () => {});
  await within(15_000, m.close(2000), 'manager.close');
  m.on('event', () => {});
  assert.equal(m.listenerCount('event'), 2);
  m.removeAllListeners('event');
  assert.equal(m.pollEvent(), null);
});

test("close() with a bad timeout rejects and leaves 'event' listening", T, async () => {
  await withManager(async (m) => {
    const seen = [];
    m.on('event', (e) => {
      if (e.kind === 'leak_suspected') seen.push(e);
    });
    await rejectsWithCode(m.close('soon'), ErrorCode.InvalidArgument);
    assert.equal(m.closed, false);
    const pool = m.pool('still', server.target, { maxSize: 1, leakDetectionThreshold: 50 });
    const lease = await pool.acquire();
    assert.ok(await upkeepUntil(pool, () => seen.length > 0), 'still delivered');
    m.removeAllListeners('event');
    assert.equal(m.listenerCount('event'), 0);
    lease.release();
    // Without listeners the next event is queued again (the native listener was let go).
    const next = await pool.acquire();
    let queued = null;
    assert.ok(await upkeepUntil(pool, () => (queued ??= pollKind(m, 'leak_suspected')) !== null), 'queued after the listeners left');
    assert.equal(queued.connectionId, next.id);
    assert.equal(seen.length, 1);
    next.release();
  });
});
