'use strict';
// HikariCP's spike test through the Node boundary: 50 acquires at once against a
// 150 ms connect end with far fewer than 50 connections, because returned
// connections serve waiters while only a few new ones open (maxConnecting).

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { setTimeout: sleep } = require('node:timers/promises');

const { sb, within } = require('./helpers');

const manager = new sb.Manager();
after(async () => {
  await within(15_000, manager.close(2000), 'manager.close');
});

test('a demand spike opens only what demand needs', { timeout: 60_000 }, async () => {
  let next = 0;
  const pool = manager.pool('spike', 'db://x', {
    connect: async () => {
      await sleep(150);
      next += 1;
      return { n: next };
    },
    maxSize: 50,
    minIdle: 5,
  });
  await pool.warm();
  assert.equal(pool.stats().idle, 5);
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      const lease = await pool.acquire({ timeout: 30_000 });
      await sleep(20);
      lease.release();
    }),
  );
  const s = pool.stats();
  assert.equal(s.acquiredTotal, 50);
  assert.ok(s.createdTotal < 25, `a spike of 50 opened ${s.createdTotal} connections`);
});
