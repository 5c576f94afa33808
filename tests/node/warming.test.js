'use strict';
// Connection warming and preemptive scaling from Node (issue 13 item 8): the endpoint's
// warming state in its health record (`warming`: cold, warming, warm) and `scaleAhead`
// opening the next connection before any caller waits (createdTotal rising while
// waiting stays 0), off by default.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');

const { ROOT, sb, within } = require('./helpers');

const manager = new sb.Manager();
after(async () => {
  await within(15_000, manager.close(2000), 'manager.close');
});

function slowConnect(ms) {
  let next = 0;
  return async () => {
    await sleep(ms);
    next += 1;
    return { n: next };
  };
}

async function until(cond, what, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`still not ${what} after ${ms} ms`);
    await sleep(5);
  }
}

test('the warming names are the declared ones', () => {
  const dts = fs.readFileSync(path.join(ROOT, 'bindings', 'node', 'index.d.ts'), 'utf8');
  assert.match(dts, /export type WarmingState = 'cold' \| 'warming' \| 'warm';/);
});

test('an endpoint warms up to minIdle', { timeout: 30_000 }, async () => {
  const pool = manager.pool('warming', 'db://x', {
    connect: slowConnect(100),
    minIdle: 3,
    maxConnecting: 1,
  });
  const seen = [];
  const end = Date.now() + 10_000;
  for (;;) {
    const e = pool.health().endpoints[0];
    if (seen.length === 0 || seen[seen.length - 1][0] !== e.warming) {
      seen.push([e.warming, e.openConnections]);
    }
    if (e.warming === 'warm') break;
    if (Date.now() > end) assert.fail(`never warm: ${JSON.stringify(seen)}`);
    await sleep(5);
  }
  // A first look may come before the upkeep's first connect has started.
  if (seen[0][0] === 'cold') seen.shift();
  assert.deepEqual(seen.map((s) => s[0]), ['warming', 'warm'], JSON.stringify(seen));
  assert.equal(seen[1][1], 3, 'warm once minIdle is open');
  assert.equal(pool.stats().endpoints[0].warming, 'warm');
});

test('an endpoint with nothing open is cold', async () => {
  const pool = manager.pool('cold', 'db://x', { connect: slowConnect(10) });
  assert.equal(pool.health().endpoints[0].warming, 'cold');
  const lease = await pool.acquire({ timeout: 5000 });
  assert.equal(pool.health().endpoints[0].warming, 'warm');
  lease.discard();
  // A custom object's close is queued to this thread; the count drops at once.
  assert.equal(pool.health().endpoints[0].warming, 'cold');
});

test('scaleAhead opens the next connection before anyone waits', { timeout: 30_000 }, async () => {
  const pool = manager.pool('ahead', 'db://x', {
    connect: slowConnect(30),
    maxSize: 4,
    scaleAhead: 0.5,
  });
  const a = await pool.acquire({ timeout: 5000 });
  await sleep(100);
  assert.equal(pool.stats().createdTotal, 1, 'one leased of 4: below 0.5');
  const b = await pool.acquire({ timeout: 5000 });
  // Two leased of 4: the third opens ahead, with nobody waiting for it.
  let maxWaiting = 0;
  await until(() => {
    const s = pool.stats();
    maxWaiting = Math.max(maxWaiting, s.waiting);
    return s.idle === 1;
  }, 'a third connection idle');
  let s = pool.stats();
  assert.deepEqual([s.createdTotal, s.size, s.leased, s.idle], [3, 3, 2, 1]);
  assert.equal(maxWaiting, 0);
  // Taken without waiting: three of 4 leased, the fourth opens ahead.
  const c = pool.tryAcquire();
  assert.ok(c);
  await until(() => pool.stats().createdTotal === 4, 'a fourth connection');
  s = pool.stats();
  assert.deepEqual([s.createdTotal, s.waiting, s.acquiredWaitedTotal], [4, 0, 2]);
  for (const l of [a, b, c]) l.release();
});

test('scaleAhead is off by default', async () => {
  const pool = manager.pool('on_demand', 'db://x', { connect: slowConnect(30), maxSize: 4 });
  const a = await pool.acquire({ timeout: 5000 });
  const b = await pool.acquire({ timeout: 5000 });
  await sleep(150);
  const s = pool.stats();
  assert.deepEqual([s.createdTotal, s.size, s.idle], [2, 2, 0]);
  assert.equal(pool.tryAcquire(), null);
  a.release();
  b.release();
});
