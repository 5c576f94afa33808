'use strict';
// The cluster (issue 12: `cluster.redis_url`, docs/cluster.md) through the Node package:
//
// - the shared scenarios of tests/fixtures/cluster_driver.py (a real redis-server, the
//   fault proxy, three instances of tests/node/cluster_node.js): membership, ids unique
//   across instances, acknowledged and plain broadcasts, cluster list/stats/disconnect,
//   resource status, shared breakers, SIGKILL of an instance, Redis killed and back;
// - direct checks of `manager.cluster`: `null` without `cluster.redis_url`; a bad URL
//   is SB_INVALID_ARGUMENT naming the key; one instance on its own redis-server (its
//   properties, members(), the Promise-returning calls and their result shapes, the
//   `cluster_joined` event, argument errors as rejections, SB_UNAVAILABLE once closed);
//   one whose Redis is unreachable serves locally (`cluster_lost`, partial answers).
//
// Needs redis-server on PATH (or SB_REDIS_SERVER) and python3 (or SB_TEST_PYTHON) for the
// stdlib-only driver.

const assert = require('node:assert/strict');
const { test } = require('node:test');
const { spawn, spawnSync } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');

const { ROOT, sb, within, deadPort, rejectsWithCode, throwsWithCode } = require('./helpers');

const { Manager, Cluster, ErrorCode } = sb;
const REDIS = process.env.SB_REDIS_SERVER || 'redis-server';
const PYTHON = process.env.SB_TEST_PYTHON || 'python3';

function listening(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Runs `fn(url)` with an in-memory redis-server on a free loopback port, killed afterwards. */
async function withRedis(fn) {
  const port = await deadPort(); // a free loopback port
  const proc = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  try {
    let up = false;
    for (let i = 0; i < 200 && !up; i++) {
      up = await listening(port);
      if (!up) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(up, `redis-server did not listen on ${port}`);
    return await fn(`redis://127.0.0.1:${port}/0`);
  } finally {
    proc.kill('SIGKILL');
    await within(10_000, exited, 'redis-server exit');
  }
}

/** Polls `cond()` every 20 ms for at most `ms`; fails naming `what`. */
async function until(what, cond, ms = 10_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`${what}: not within ${ms} ms`);
}

/** Every queued event as `kind:reason`. */
function events(m) {
  const out = [];
  for (let i = 0; i < 10_000; i++) {
    const e = m.pollEvent();
    if (e === null) break;
    out.push(`${e.kind}:${e.reason}`);
  }
  return out;
}

test('redis-server and python3 are here', () => {
  const r = spawnSync(REDIS, ['--version'], { stdio: 'ignore' });
  assert.ok(!r.error, `${REDIS} is not installed (Debian: apt-get install -y redis-server), or set SB_REDIS_SERVER`);
});

test('the shared cluster scenarios pass with three Node instances', { timeout: 300_000 }, async () => {
  const driver = spawn(
    PYTHON,
    [path.join(ROOT, 'tests', 'fixtures', 'cluster_driver.py'), '--', process.execPath, path.join(__dirname, 'cluster_node.js')],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  driver.stdout.setEncoding('utf8');
  driver.stderr.setEncoding('utf8');
  driver.stdout.on('data', (c) => (out += c));
  driver.stderr.on('data', (c) => (out += c));
  const code = await within(
    290_000,
    new Promise((resolve, reject) => {
      driver.once('error', reject);
      driver.once('exit', (c, signal) => resolve(c ?? signal));
    }),
    'cluster_driver.py',
  ).finally(() => driver.kill('SIGKILL'));
  assert.equal(code, 0, `cluster_driver.py failed:\n${out}`);
  assert.match(out, /all cluster checks passed/);
});

test('manager.cluster is null without cluster.redis_url', async () => {
  const m = new Manager({ workerThreads: 1 });
  try {
    assert.equal(m.cluster, null);
    assert.equal(m.cluster, null);
  } finally {
    await m.close();
  }
});

test('a bad cluster.redis_url is SB_INVALID_ARGUMENT naming the key', () => {
  for (const url of ['nope://x', 'not a url']) {
    const err = throwsWithCode(() => new Manager({ 'cluster.redis_url': url }), ErrorCode.InvalidArgument);
    assert.match(err.message, /cluster\.redis_url/);
  }
  const err = throwsWithCode(() => new Manager({ cluster: { redisUrl: 'nope://x' } }), 'SB_INVALID_ARGUMENT');
  assert.match(err.message, /cluster\.redis_url/);
});

test('one instance on its own Redis: the cluster API and its shapes', { timeout: 60_000 }, async () => {
  await withRedis(async (url) => {
    const m = new Manager({
      workerThreads: 1,
      cluster: { redisUrl: url, name: `sbnode${process.pid}`, nodeId: 'solo', heartbeatInterval: '200ms', requestTimeout: '1s' },
    });
    try {
      const c = m.cluster;
      assert.ok(c instanceof Cluster);
      assert.equal(m.cluster, c, 'the same object every time');
      assert.equal(c.manager, m);
      assert.equal(c.name, `sbnode${process.pid}`);
      assert.equal(c.nodeId, 'solo');
      assert.ok(Number.isSafeInteger(c.nodeNumber) && c.nodeNumber > 0, `nodeNumber ${c.nodeNumber}`);
      await until('joined and a member of its own cluster', () => c.joined && c.members().length === 1);
      const [me] = c.members();
      assert.equal(me.nodeId, 'solo');
      assert.equal(me.number, c.nodeNumber);
      assert.equal(me.local, true);
      assert.equal(typeof me.lastSeenMs, 'number');
      assert.match(String(c), /Cluster\(sbnode\d+, node solo, joined\)/);
      await until('cluster_joined (joined) is emitted', () => events(m).includes('cluster_joined:joined'));

      const news = m.registry.registerOutbox({ user: 'ann', topics: ['news'], metadata: { role: 'x' } });
      const other = m.registry.registerOutbox({ topics: ['sport'] });
      assert.equal(Math.floor(news.id / 2 ** 32), c.nodeNumber, 'ids carry the node number');

      const p = c.broadcast('hello', { topic: 'news', except: [other] });
      assert.ok(p instanceof Promise, 'broadcast() returns a Promise');
      const b = await p;
      assert.equal(b.local.recipients, 1);
      assert.equal(b.recipients, 1);
      assert.deepEqual(b.remote, {});
      assert.equal(b.unacknowledged, 0);
      assert.equal(news.tryNext(), 'hello');

      const page = await c.list({ user: 'ann' });
      assert.equal(page.connections.length, 1);
      const [info] = page.connections;
      assert.equal(info.node, 'solo');
      assert.equal(info.id, news.id);
      assert.deepEqual(info.metadata, { role: 'x' });
      assert.deepEqual(info.topics, ['news']);
      assert.equal(page.nextCursor, null);
      assert.deepEqual(page.answered, { nodes: ['solo'], missing: [] });
      const first = await c.list({ limit: 1 });
      assert.deepEqual(first.connections.map((x) => x.id), [news.id]);
      const second = await c.list({ limit: 1, cursor: first.nextCursor });
      assert.deepEqual(second.connections.map((x) => x.id), [other.id]);

      const s = await c.stats();
      assert.equal(s.total.connections, 2);
      assert.deepEqual(Object.keys(s.byNode), ['solo']);
      assert.equal(s.byNode.solo.connections, 2);
      assert.equal(typeof s.total.disconnects, 'object');
      assert.deepEqual(s.answered.missing, []);

      const r = await c.resourceStatus('nothing-here');
      assert.deepEqual(r, { id: 'nothing-here', byNode: { solo: 'absent' }, answered: { nodes: ['solo'], missing: [] } });

      await rejectsWithCode(c.broadcast('x', { bogus: true }), ErrorCode.InvalidArgument);
      await rejectsWithCode(c.list({ state: 'sleepy' }), ErrorCode.InvalidArgument);
      await rejectsWithCode(c.broadcast(42, { all: true }), ErrorCode.InvalidArgument);

      const d = await c.disconnect({ topic: 'sport' }, 'bye');
      assert.deepEqual(d, { total: 1, byNode: { solo: 1 }, answered: { nodes: ['solo'], missing: [] } });
      assert.equal(other.tryNext(), null);
      assert.equal(other.closedReason, 'bye');
    } finally {
      await m.close();
    }
    // Closed: the waiting calls reject, the others still answer.
    const c = m.cluster;
    await rejectsWithCode(c.stats(), ErrorCode.Unavailable);
    await rejectsWithCode(c.list(), ErrorCode.Unavailable);
  });
});

test('an instance whose Redis is unreachable serves locally and answers for itself', { timeout: 30_000 }, async () => {
  const port = await deadPort();
  const m = new Manager({
    workerThreads: 1,
    'cluster.redis_url': `redis://127.0.0.1:${port}/0`,
    'cluster.node_id': 'alone',
    'cluster.request_timeout': '200ms',
  });
  try {
    const c = m.cluster;
    await until('cluster_lost (redis_unavailable) is emitted', () => events(m).includes('cluster_lost:redis_unavailable'));
    assert.equal(c.joined, false);
    assert.deepEqual(c.members(), []);
    const o = m.registry.registerOutbox({ topics: ['local'] });
    const b = await c.broadcast('still here', { topic: 'local' });
    assert.equal(b.local.recipients, 1);
    assert.equal(o.tryNext(), 'still here');
    const s = await c.stats();
    assert.equal(s.total.connections, 1);
    assert.deepEqual(s.answered, { nodes: ['alone'], missing: [] });
  } finally {
    await m.close();
  }
});
