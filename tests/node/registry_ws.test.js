'use strict';
// A real WebSocket server on the registry, as a new user would build it: `ws` (a
// devDependency of bindings/node) on 127.0.0.1:0, each accepted socket registered
// (even clients with a send callback, odd ones with an outbox drained by a writer
// loop), 200 real `ws` clients that subscribe with a JSON envelope; a broadcast
// reaches exactly the subscribers; a client that stops answering pings is removed
// within connection_timeout plus a cleanup interval (real small intervals, generous
// deadline); an admin disconnect by user closes that user's sockets with the reason
// as the WebSocket close reason.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { sb, ROOT, within } = require('./helpers');

const { WebSocket, WebSocketServer } = require(path.join(ROOT, 'bindings', 'node', 'node_modules', 'ws'));

const { Manager, PING, envelope, parseEnvelope } = sb;
const CLIENTS = 200;
const TOPICS = ['t0', 't1', 't2', 't3'];

async function until(what, pred, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The server: every socket registered, subscribe envelopes turned into registry.subscribe. */
function startServer(registry) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  const byId = new Map();
  wss.on('connection', (ws, req) => {
    const url = new URL(req.url, 'ws://x');
    const user = url.searchParams.get('user');
    const form = url.searchParams.get('form');
    let conn;
    if (form === 'callback') {
      conn = registry.register({
        user,
        send: (msg) => new Promise((resolve, reject) => ws.send(msg, (err) => (err ? reject(err) : resolve()))),
        ping: () => ws.ping(),
        close: (reason) => ws.close(4000, reason),
      });
    } else {
      conn = registry.registerOutbox({ user });
      (async () => {
        for await (const item of conn) {
          if (item === PING) ws.ping();
          else ws.send(item);
        }
        ws.close(4000, conn.closedReason);
      })();
    }
    byId.set(conn.id, ws);
    ws.on('pong', () => conn.touch());
    ws.on('message', (data) => {
      conn.touch();
      const env = parseEnvelope(data.toString());
      if (env.type === 'subscribe') {
        conn.subscribe(env.topic);
        registry.send(conn, envelope('subscribed', { topic: env.topic, data: { id: conn.id } }));
      }
    });
    ws.on('close', () => {
      byId.delete(conn.id);
      if (registry.has(conn)) registry.unregister(conn, 'client_closed');
    });
  });
  return new Promise((resolve) => wss.on('listening', () => resolve({ wss, port: wss.address().port, byId })));
}

/** A client: connects, subscribes to `topic`, records every envelope and its close. */
function client(port, { user, form, topic, autoPong = true }) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/?user=${user}&form=${form}`, { autoPong });
  const c = { ws, user, form, topic, got: [], id: null, closed: null };
  c.ready = new Promise((resolve, reject) => {
    ws.on('error', reject);
    ws.on('open', () => ws.send(envelope('subscribe', { topic })));
    ws.on('message', (data) => {
      const env = parseEnvelope(data.toString());
      if (env.type === 'subscribed') {
        c.id = env.data.id;
        resolve();
      } else c.got.push(env);
    });
  });
  ws.on('close', (code, reason) => {
    c.closed = { code, reason: reason.toString() };
  });
  return c;
}

test('a ws server on the registry: 200 clients, exact broadcasts, a silent client removed, an admin disconnect by user', { timeout: 120_000 }, async () => {
  const m = new Manager({ registry: { heartbeatInterval: '100ms', connectionTimeout: '1s', cleanupInterval: '100ms' } });
  const r = m.registry;
  const { wss, port, byId } = await startServer(r);
  const clients = [];
  try {
    for (let i = 0; i < CLIENTS; i++) {
      const user = i < 3 ? 'victim' : `u${i}`;
      clients.push(client(port, { user, form: i % 2 === 0 ? 'callback' : 'outbox', topic: TOPICS[i % TOPICS.length] }));
    }
    const silent = client(port, { user: 'silent', form: 'callback', topic: 't1', autoPong: false });
    await within(30_000, Promise.all([...clients, silent].map((c) => c.ready)), 'clients subscribed');
    assert.equal(r.size, CLIENTS + 1);
    assert.equal(r.stats().topicCounts.find(([t]) => t === 't1')[1], CLIENTS / TOPICS.length + 1);

    // Broadcasts reach exactly the subscribers (the except set too), asserted per client.
    const excluded = clients.find((c) => c.topic === 't2');
    const rep1 = r.broadcast(envelope('notification', { topic: 't1', data: { n: 1 } }), { topic: 't1' });
    const rep2 = r.broadcast(envelope('notification', { topic: 't2', data: { n: 2 } }), { topic: 't2', except: [excluded.id] });
    assert.equal(rep1.recipients, CLIENTS / TOPICS.length + 1);
    assert.equal(rep2.recipients, CLIENTS / TOPICS.length - 1);
    const expected = (c) => (c.topic === 't1' ? [1] : c.topic === 't2' && c !== excluded ? [2] : []);
    await until('broadcast deliveries', () => clients.every((c) => c.got.length >= expected(c).length));
    // Let anything misdirected arrive before asserting nobody else got it.
    await new Promise((res) => setTimeout(res, 300));
    for (const c of clients) {
      assert.deepEqual(c.got.map((e) => e.data.n), expected(c), `client ${c.id} (${c.form}, ${c.topic})`);
      assert.ok(c.got.every((e) => e.type === 'notification' && e.topic === c.topic));
    }

    // The client that never answers pings (and says nothing) is removed as stale; the
    // others answer the pings and stay.
    const t0 = Date.now();
    await until('silent client removed', () => silent.closed !== null, 15_000);
    assert.equal(silent.closed.code, 4000);
    assert.equal(silent.closed.reason, 'stale');
    assert.equal(r.has(silent.id), false);
    assert.ok(Date.now() - t0 < 15_000);
    assert.ok(r.stats().disconnects.stale >= 1);
    assert.equal(clients.filter((c) => c.closed !== null).length, 0, 'the clients that pong stay');

    // An admin disconnect by user closes that user's sockets (both forms) with the reason.
    assert.equal(r.disconnect({ user: 'victim' }, 'banned by admin'), 3);
    const victims = clients.filter((c) => c.user === 'victim');
    await until('victims closed', () => victims.every((c) => c.closed !== null));
    for (const c of victims) assert.deepEqual(c.closed, { code: 4000, reason: 'banned by admin' }, `${c.form} client ${c.id}`);
    await new Promise((res) => setTimeout(res, 100));
    assert.equal(clients.filter((c) => c.closed !== null).length, 3, 'only the victims');
    assert.equal(r.list({ user: 'victim' }).connections.length, 0);
    assert.equal(r.size, CLIENTS - 3);
  } finally {
    for (const c of clients) c.ws.terminate();
    await within(10_000, new Promise((res) => wss.close(res)), 'server close');
    await until('server sockets gone', () => byId.size === 0, 10_000).catch(() => {});
    await within(15_000, m.close(2000), 'manager.close');
  }
});
