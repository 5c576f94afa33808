'use strict';
// Named shared connections (manager.resources): one physical connection shared by
// consumers, through a server close, a down endpoint (the fault proxy) and a
// configuration error; delete with and without force; anonymous resources; update;
// report_failure; the status metrics; persistence across a reopen; a registered type of
// the program's own objects. Real loopback servers, generous deadlines, bounded loops.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const { sb, startEchoServer, deadPort, rejectsWithCode, throwsWithCode } = require('./helpers');
const { FaultProxy } = require('./fault_proxy');

const LONG = 10_000;
const servers = [];
test.after(() => Promise.all(servers.map((stop) => stop())));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `fn` every 10 ms until it is truthy (bounded by `ms`); resolves with whether it was. */
async function waitUntil(fn, ms = LONG) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await sleep(10);
  }
  return Boolean(await fn());
}

/**
 * An echo server in this process: counts the connections it accepted, closes one that
 * sends `CLOSE\n`, and keeps its server-side sockets (to close them or see them close).
 */
async function echoServer() {
  const sockets = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    s.on('data', (d) => {
      if (d.toString() === 'CLOSE\n') s.destroy();
      else s.write(d);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const stop = () => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  // Stopped after the last test too, so a failed test that skipped stop() cannot hang the run.
  servers.push(stop);
  return {
    port,
    target: `tcp://127.0.0.1:${port}`,
    sockets,
    get accepted() {
      return sockets.length;
    },
    stop,
  };
}

/** The resource_state transitions of `id` queued so far, appended to `seen` as 'a->b'. */
function transitions(m, id, seen) {
  for (let i = 0; i < 10_000; i++) {
    const e = m.pollEvent();
    if (e === null) break;
    if (e.kind === 'resource_state' && e.resource === id) seen.push(`${e.oldState}->${e.newState}`);
  }
  return seen;
}

/** Every queued event of `kind` for resource `id` (drains the queue). */
function eventsOf(m, kind, id) {
  const out = [];
  for (let i = 0; i < 10_000; i++) {
    const e = m.pollEvent();
    if (e === null) break;
    if (e.kind === kind && e.resource === id) out.push(e);
  }
  return out;
}

/** Waits until `h` is ready, writes `text` and reads it back through the handle. */
async function roundtrip(h, text) {
  await h.waitReady(LONG);
  await h.write(text);
  let got = '';
  for (let i = 0; i < 100 && got.length < text.length; i++) {
    const buf = await h.read(text.length - got.length, { timeout: LONG });
    assert.notEqual(buf.length, 0, 'the echo closed');
    got += buf.toString();
  }
  assert.equal(got, text);
}

test('three consumers share one connection through a server close', async () => {
  const server = await echoServer();
  const m = new sb.Manager();
  const r = m.resources;
  r.create('bus', 'tcp', { endpoint: server.target, healthInterval: 20 });
  const [a, b, c] = ['feed', 'control', 'audit'].map((name) => r.attach('bus', name));
  await r.waitReady('bus', LONG);
  await roundtrip(a, 'one\n');
  await roundtrip(b, 'two\n');
  assert.equal(server.accepted, 1, 'one physical connection for three consumers');
  const info = r.get('bus');
  assert.equal(info.status, 'connected');
  assert.equal(info.type, 'tcp');
  assert.deepEqual(info.consumers, ['feed', 'control', 'audit']);
  assert.equal(a.id, 'bus');
  assert.equal(c.consumer, 'audit');

  // The server closes it: recovering, then connected again, for every consumer.
  await a.write('CLOSE\n');
  const seen = [];
  assert.ok(await waitUntil(() => transitions(m, 'bus', seen).length >= 3), JSON.stringify(seen));
  assert.deepEqual(seen, ['connecting->connected', 'connected->recovering', 'recovering->connected']);
  for (const h of [a, b, c]) {
    await roundtrip(h, 'again\n');
    assert.equal(h.id, 'bus');
    assert.equal(h.status, 'connected');
  }
  assert.equal(server.accepted, 2);
  assert.equal(r.get('bus').reconnects, 1);
  for (const h of [a, b, c]) h.detach();
  await m.close();
  await server.stop();
});

test('a down endpoint is connecting until it comes up', async () => {
  const server = await startEchoServer();
  const proxy = await new FaultProxy(server.port).start();
  try {
    await proxy.command('refuse');
    const m = new sb.Manager();
    const r = m.resources;
    r.create('feed', 'tcp', { endpoint: proxy.target, backoff: { initial: 20, max: 50 } });
    const h = r.attach('feed', 'reader');
    // Until a dial was refused (not a fixed sleep: a slow machine may not have dialled yet).
    await waitUntil(() => /refused/.test(r.get('feed').lastError ?? ''));
    const info = r.get('feed');
    assert.equal(info.status, 'connecting');
    assert.match(info.lastError ?? '', /refused/);
    const e = await rejectsWithCode(h.write('x'), 'SB_UNAVAILABLE');
    assert.match(e.message, /is connecting/);
    await rejectsWithCode(r.waitReady('feed', 50), 'SB_TIMEOUT');
    await rejectsWithCode(h.waitReady(50), 'SB_TIMEOUT');
    await proxy.command('pass');
    await roundtrip(h, 'up\n');
    assert.deepEqual(transitions(m, 'feed', []), ['connecting->connected']);
    h.detach();
    await m.close();
  } finally {
    await proxy.close();
    server.stop();
  }
});

test('a configuration error stops with disconnected and the reason; bad props are named', async () => {
  const m = new sb.Manager();
  const r = m.resources;
  r.create('sock', 'unix', { endpoint: `unix:///tmp/${'x'.repeat(200)}` });
  assert.ok(await waitUntil(() => r.get('sock').status === 'disconnected'));
  const info = r.get('sock');
  assert.equal(info.stopped, true);
  assert.notEqual(info.lastError, null);
  assert.deepEqual(transitions(m, 'sock', []), ['connecting->disconnected']);
  await rejectsWithCode(r.waitReady('sock', LONG), 'SB_UNAVAILABLE');

  let e = throwsWithCode(() => r.create('x', 'tcp', { endpoint: 'tcp://127.0.0.1:1', connectTimeout: 'soon' }), 'SB_INVALID_ARGUMENT');
  assert.match(e.message, /pool\.connect_timeout/);
  e = throwsWithCode(() => r.create('x', 'tcp', { endpoint: 'unix:///tmp/a.sock' }), 'SB_INVALID_ARGUMENT');
  assert.match(e.message, /is not a tcp address/);
  e = throwsWithCode(() => r.create('x', 'carrier-pigeon', { endpoint: 'x' }), 'SB_INVALID_ARGUMENT');
  assert.match(e.message, /built-in types are tcp and unix/);
  e = throwsWithCode(() => r.create('x', 'tcp', {}), 'SB_INVALID_ARGUMENT');
  assert.match(e.message, /needs an endpoint/);
  e = throwsWithCode(() => r.create('x', 'tcp', { endpoint: 'tcp://127.0.0.1:1', noSuchKey: 1 }), 'SB_INVALID_ARGUMENT');
  assert.match(e.message, /noSuchKey/);
  throwsWithCode(() => r.create(7, 'tcp', {}), 'SB_INVALID_ARGUMENT');
  throwsWithCode(() => r.attach('nope', 'me'), 'SB_NOT_FOUND');
  await rejectsWithCode(r.waitReady('sock'), 'SB_INVALID_ARGUMENT');
  await m.close();
  throwsWithCode(() => r.list(), 'SB_UNAVAILABLE');
});

test('delete is refused while attached unless forced', async () => {
  const server = await echoServer();
  const m = new sb.Manager();
  const r = m.resources;
  r.create('a', 'tcp', { endpoint: server.target });
  const h1 = r.attach('a', 'one');
  const h2 = r.attach('a', 'two');
  const e = throwsWithCode(() => r.delete('a'), 'SB_FAILED_PRECONDITION');
  assert.match(e.message, /"one", "two"/);
  h1.detach();
  h1.detach();
  assert.equal(h1.detached, true);
  await rejectsWithCode(h1.write('x'), 'SB_FAILED_PRECONDITION');
  h2.detach();
  r.delete('a');
  throwsWithCode(() => r.get('a'), 'SB_NOT_FOUND');

  r.create('b', 'tcp', { endpoint: server.target });
  const h = r.attach('b', 'stubborn');
  await h.waitReady(LONG);
  r.delete('b', { force: true });
  const detached = eventsOf(m, 'resource_detached', 'b');
  assert.equal(detached.length, 1);
  assert.match(detached[0].message, /stubborn/);
  assert.equal(h.status, 'disconnected');
  await rejectsWithCode(h.write('x'), 'SB_UNAVAILABLE');
  throwsWithCode(() => r.attach('b', 'late'), 'SB_NOT_FOUND');
  h.detach();
  await m.close();
  await server.stop();
});

test('anonymous resources are shared by equal props and closed by the last detach', async () => {
  const server = await echoServer();
  const m = new sb.Manager();
  const r = m.resources;
  const props = { endpoint: server.target, tcp: { nodelay: true } };
  const x = r.attachAnonymous('tcp', 'x', props);
  const y = r.attachAnonymous('tcp', 'y', props);
  assert.equal(x.id, y.id);
  assert.match(x.id, /^anonymous-\d+$/);
  await x.waitReady(LONG);
  assert.ok(await waitUntil(() => server.accepted === 1));
  const serverSide = server.sockets[0];
  const closed = new Promise((resolve) => serverSide.once('close', resolve));
  const other = r.attachAnonymous('tcp', 'z', { endpoint: server.target });
  assert.notEqual(other.id, x.id, 'different props, another resource');
  assert.equal(r.list().filter((i) => i.anonymous).length, 2);
  const id = x.id;
  x.detach();
  assert.deepEqual(r.get(id).consumers, ['y'], 'still has y');
  y.detach();
  await closed; // the server sees the close
  throwsWithCode(() => r.get(id), 'SB_NOT_FOUND');
  await rejectsWithCode(r.update(other.id, { endpoint: server.target }), 'SB_FAILED_PRECONDITION');
  other.detach();
  await m.close();
  await server.stop();
});

test('update swaps every consumer to the new endpoint while the old one drains', async () => {
  const oldServer = await echoServer();
  const newServer = await echoServer();
  const m = new sb.Manager();
  const r = m.resources;
  r.create('bus', 'tcp', { endpoint: oldServer.target, healthInterval: 20 });
  const a = r.attach('bus', 'a');
  const b = r.attach('bus', 'b');
  await roundtrip(a, 'old\n');
  const oldSide = oldServer.sockets[0];
  const oldClosed = new Promise((resolve) => oldSide.once('close', resolve));

  // An update that cannot connect changes nothing.
  const dead = `tcp://127.0.0.1:${await deadPort()}`;
  const e = await rejectsWithCode(r.update('bus', { endpoint: dead }), 'SB_UNAVAILABLE');
  assert.match(e.message, /was not updated/);
  assert.equal(r.get('bus').endpoint, oldServer.target);

  // A read in flight on the old connection while the update swaps it.
  const inFlight = a.read(100, { timeout: LONG });
  await r.update('bus', { endpoint: newServer.target, healthInterval: 20 });
  assert.equal(eventsOf(m, 'resource_rebound', 'bus').length, 1);
  for (const h of [b, a]) {
    if (h === a) {
      oldSide.write('last words');
      assert.equal((await inFlight).toString(), 'last words', 'the old connection drains');
    }
    await roundtrip(h, 'on the new one\n');
  }
  assert.equal(newServer.accepted, 1, 'one new connection for both consumers');
  const info = r.get('bus');
  assert.equal(info.endpoint, newServer.target);
  assert.equal(info.status, 'connected');
  await oldClosed; // once its last user let go
  await sleep(100);
  assert.equal(newServer.accepted, 1, 'nothing redials');
  await rejectsWithCode(r.update('nope', { endpoint: oldServer.target }), 'SB_NOT_FOUND');
  a.detach();
  b.detach();
  await m.close();
  await oldServer.stop();
  await newServer.stop();
});

test('reportFailure checks at once instead of at the next health check', async () => {
  const server = await echoServer();
  const m = new sb.Manager();
  const r = m.resources;
  r.create('ctl', 'tcp', { endpoint: server.target, health: { interval: 0 } });
  const h = r.attach('ctl', 'c');
  await h.waitReady(LONG);
  assert.ok(await waitUntil(() => server.accepted === 1));
  server.sockets[0].destroy();
  await sleep(100);
  assert.equal(h.status, 'connected', 'nothing checks on its own');
  h.reportFailure();
  assert.ok(await waitUntil(() => r.get('ctl').reconnects === 1));
  await roundtrip(h, 'back\n');
  r.reportFailure('ctl');
  throwsWithCode(() => r.reportFailure('nope'), 'SB_NOT_FOUND');
  h.detach();
  await m.close();
  await server.stop();
});

test('status metric lines with their values, and events on the EventEmitter', async () => {
  const server = await echoServer();
  const m = new sb.Manager();
  const events = [];
  m.on('event', (e) => {
    if (e.resource !== null) events.push(e);
  });
  const r = m.resources;
  r.create('bus', 'tcp', { endpoint: server.target });
  r.create('dead', 'unix', { endpoint: `/tmp/${'y'.repeat(200)}` });
  const h = r.attach('bus', 'feed');
  await roundtrip(h, 'abc\n');
  assert.ok(await waitUntil(() => r.get('dead').status === 'disconnected'));
  const info = r.get('bus');
  assert.equal(info.bytesOut, 4);
  assert.equal(info.bytesIn, 4);
  assert.equal(typeof info.connectedForMs, 'number');
  const text = m.metricsText();
  for (const line of [
    'switchboard_resource_status{resource="bus",type="tcp"} 1',
    'switchboard_resource_status{resource="dead",type="unix"} -1',
    'switchboard_resource_consumers{resource="bus",type="tcp"} 1',
    'switchboard_resource_reconnects_total{resource="bus",type="tcp"} 0',
    'switchboard_resource_bytes_total{resource="bus",type="tcp",direction="out"} 4',
    'switchboard_resource_bytes_total{resource="bus",type="tcp",direction="in"} 4',
  ]) {
    assert.ok(text.includes(line), `missing ${line} in\n${text}`);
  }
  assert.ok(await waitUntil(() => events.filter((e) => e.kind === 'resource_state').length >= 2));
  const states = events.filter((e) => e.kind === 'resource_state').map((e) => `${e.resource}:${e.oldState}->${e.newState}`);
  assert.ok(states.includes('bus:connecting->connected'), JSON.stringify(states));
  assert.ok(states.includes('dead:connecting->disconnected'), JSON.stringify(states));
  const dead = events.find((e) => e.resource === 'dead');
  assert.notEqual(dead.reason, null);
  h.detach();
  await m.close();
  assert.equal(h.status, 'disconnected');
  await server.stop();
});

test('named resources persist across a manager reopen', async () => {
  const server = await echoServer();
  const other = await echoServer();
  const file = path.join(os.tmpdir(), `sb-node-resources-${process.pid}.redb`);
  fs.rmSync(file, { force: true });
  const opts = { resources: { path: file } };
  const bus = { connect: (endpoint) => ({ endpoint, n: 7 }) };
  {
    const m = new sb.Manager(opts);
    const r = m.resources;
    r.create('kept', 'tcp', { endpoint: server.target, 'health.interval': '1s' });
    r.create('moved', 'tcp', { endpoint: server.target });
    r.create('gone', 'tcp', { endpoint: server.target });
    await r.update('moved', { endpoint: other.target });
    r.delete('gone');
    r.registerType('bus', bus);
    r.create('mine', 'bus', { endpoint: 'bus://x' });
    const anon = r.attachAnonymous('tcp', 'x', { endpoint: server.target });
    anon.detach();
    await m.close();
  }
  const m = new sb.Manager(opts);
  const r = m.resources;
  assert.deepEqual(r.list().map((i) => i.id), ['kept', 'moved'], 'named ones only, as last updated');
  r.registerType('bus', bus);
  const mine = r.attach('mine', 'me');
  await mine.waitReady(LONG);
  assert.deepEqual(mine.object(), { endpoint: 'bus://x', n: 7 });
  mine.detach();
  assert.equal(r.get('moved').endpoint, other.target);
  const h = r.attach('kept', 'again');
  await roundtrip(h, 'back\n');
  h.detach();
  await m.close();
  fs.rmSync(file, { force: true });
  await server.stop();
  await other.stop();
});

test('a registered type shares the program\'s objects', async () => {
  const m = new sb.Manager();
  const r = m.resources;
  let made = 0;
  let closed = 0;
  let healthy = true;
  r.registerType('bus', {
    connect: async (endpoint) => {
      assert.equal(endpoint, 'bus://primary');
      made += 1;
      return { n: made };
    },
    check: (client) => healthy || client.n < 0,
    close: () => {
      closed += 1;
    },
  });
  throwsWithCode(() => r.registerType('tcp', { connect: () => 0 }), 'SB_INVALID_ARGUMENT');
  throwsWithCode(() => r.registerType('bus', { connect: () => 0 }), 'SB_INVALID_ARGUMENT');
  throwsWithCode(() => r.registerType('x', { connect: 1 }), 'SB_INVALID_ARGUMENT');
  r.create('main', 'bus', { endpoint: 'bus://primary', healthInterval: 20 });
  const a = r.attach('main', 'a');
  const b = r.attach('main', 'b');
  await a.waitReady(LONG);
  assert.equal(a.object().n, 1);
  assert.equal(b.object(), a.object(), 'one object for both');
  await rejectsWithCode(a.write('x'), 'SB_FAILED_PRECONDITION');
  // The check fails: the object is replaced (and the old one closed), same id.
  healthy = false;
  assert.ok(await waitUntil(() => made >= 2));
  healthy = true;
  assert.ok(await waitUntil(async () => {
    try {
      return a.object().n >= 2;
    } catch {
      return false;
    }
  }));
  assert.ok(await waitUntil(() => closed >= 1));
  assert.equal(a.id, 'main');
  a.detach();
  b.detach();
  r.delete('main');
  await m.close();
  assert.ok(await waitUntil(() => closed === made), `made ${made}, closed ${closed}`);
  const tcp = new sb.Manager();
  const server = await echoServer();
  tcp.resources.create('sock', 'tcp', { endpoint: server.target });
  const h = tcp.resources.attach('sock', 's');
  await h.waitReady(LONG);
  throwsWithCode(() => h.object(), 'SB_FAILED_PRECONDITION');
  h.detach();
  await tcp.close();
  await server.stop();
});

test('detach cancels a read in flight; a read timeout consumes nothing', async () => {
  const server = await echoServer();
  const m = new sb.Manager();
  const r = m.resources;
  r.create('bus', 'tcp', { endpoint: server.target, onConnect: 'hello\n' });
  const reader = r.attach('bus', 'reader');
  const writer = r.attach('bus', 'writer');
  await reader.waitReady(LONG);
  // resources.on_connect went first, echoed back.
  assert.equal((await reader.read(6, { timeout: LONG })).toString(), 'hello\n');
  await rejectsWithCode(reader.read(10, { timeout: 50 }), 'SB_TIMEOUT');
  // A read waiting while another consumer writes on the same connection.
  const pending = reader.read(10, { timeout: LONG });
  await writer.write(Buffer.from('ping\n'));
  assert.equal((await pending).toString(), 'ping\n');
  const stuck = reader.read(10);
  reader.detach();
  await rejectsWithCode(stuck, 'SB_CANCELLED');
  await rejectsWithCode(writer.read(0), 'SB_INVALID_ARGUMENT');
  await rejectsWithCode(writer.write(42), 'SB_INVALID_ARGUMENT');
  writer.detach();
  await m.close();
  await server.stop();
});
