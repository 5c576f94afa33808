'use strict';
// Self-test of the fault proxy fixture (tests/fixtures/fault_proxy.py) through its Node
// wrapper (tests/node/fault_proxy.js): plain sockets through the proxy to the echo
// server, one test per fault.

const { test, before, after, beforeEach, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');

const { startEchoServer } = require('./helpers');
const { FaultProxy } = require('./fault_proxy');

const T = { timeout: 60_000 };

let server;
let proxy;

before(async () => {
  server = await startEchoServer();
});

after(() => {
  if (server) server.stop();
});

beforeEach(async () => {
  proxy = await new FaultProxy(server.port).start();
});

afterEach(async () => {
  if (proxy) assert.equal(await proxy.close(), 0, 'the proxy exits with 0 when its stdin closes');
  proxy = null;
});

/** A client socket whose events are queued from the start (no error goes unheard). */
class Peer {
  constructor(sock) {
    this.sock = sock;
    this.events = [];
    this.wake = null;
    sock.on('data', (data) => this.push({ type: 'data', data }));
    sock.on('end', () => this.push({ type: 'end' }));
    sock.on('error', (err) => this.push({ type: 'error', err }));
  }

  push(ev) {
    this.events.push(ev);
    if (this.wake) this.wake();
  }

  /** The next event, or { type: 'timeout' } when none came within `ms`. */
  async next(ms = 10_000) {
    if (!this.events.length) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, ms);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    return this.events.shift() || { type: 'timeout' };
  }

  /** Reads until `n` bytes or EOF; throws on an error or after 10 s without data. */
  async read(n) {
    let got = Buffer.alloc(0);
    for (let i = 0; i < 1000 && got.length < n; i++) {
      const ev = await this.next();
      if (ev.type === 'data') got = Buffer.concat([got, ev.data]);
      else if (ev.type === 'end') {
        this.events.unshift(ev);
        break;
      } else if (ev.type === 'error') throw ev.err;
      else throw new Error(`no data within 10 s (got ${got.length} of ${n} bytes)`);
    }
    return got;
  }

  async roundTrip(text) {
    this.sock.write(text);
    return (await this.read(Buffer.byteLength(text))).toString();
  }

  close() {
    this.sock.destroy();
  }
}

/** Connects to the proxy; rejects with the connect error (err.code ECONNREFUSED, ...). */
function connect(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const peer = new Peer(sock);
    const onError = (err) => reject(err);
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.removeListener('error', onError);
      resolve(peer);
    });
  });
}

async function refused(port) {
  try {
    (await connect(port)).close();
    return false;
  } catch (err) {
    if (err.code === 'ECONNREFUSED') return true;
    throw err;
  }
}

test('pass forwards both ways and stats count accepts', T, async () => {
  assert.deepEqual(await proxy.stats(), { accepted: 0, active: 0, mode: 'pass' });
  const a = await connect(proxy.port);
  const b = await connect(proxy.port);
  assert.equal(await a.roundTrip('hello\n'), 'hello\n');
  assert.equal(await b.roundTrip('world\n'), 'world\n');
  assert.deepEqual(await proxy.stats(), { accepted: 2, active: 2, mode: 'pass' });
  assert.equal(proxy.target, `tcp://127.0.0.1:${proxy.port}`);
  a.close();
  b.close();
});

test('refuse, then pass listens again on the same port', T, async () => {
  const old = await connect(proxy.port);
  assert.match(await proxy.command('refuse'), /^OK/);
  assert.ok(await refused(proxy.port));
  assert.equal(await old.roundTrip('still here'), 'still here'); // existing ones stay
  await proxy.command('pass');
  const fresh = await connect(proxy.port);
  assert.equal(await fresh.roundTrip('back'), 'back');
  old.close();
  fresh.close();
});

test('reset resets existing and new connections until pass', T, async () => {
  const old = await connect(proxy.port);
  assert.equal(await old.roundTrip('x'), 'x');
  await proxy.command('reset');
  // The proxy answers after the RST went out.
  const ev = await old.next();
  assert.equal(ev.type, 'error');
  assert.equal(ev.err.code, 'ECONNRESET');
  // Accepted, then reset at once: the RST may come before or after 'connect'.
  try {
    const s = await connect(proxy.port);
    const e = await s.next();
    assert.equal(e.type, 'error', `expected a reset, got ${e.type}`);
    assert.equal(e.err.code, 'ECONNRESET');
    s.close();
  } catch (err) {
    assert.equal(err.code, 'ECONNRESET');
  }
  await proxy.command('pass');
  const again = await connect(proxy.port);
  assert.equal(await again.roundTrip('ok'), 'ok');
  again.close();
});

test('reset_existing resets once and keeps forwarding', T, async () => {
  const old = await connect(proxy.port);
  assert.equal(await old.roundTrip('x'), 'x');
  assert.equal(await proxy.command('reset_existing'), 'OK reset_existing connections=1');
  const ev = await old.next();
  assert.equal(ev.type, 'error');
  assert.equal(ev.err.code, 'ECONNRESET');
  const fresh = await connect(proxy.port);
  assert.equal(await fresh.roundTrip('fine'), 'fine');
  fresh.close();
});

test('blackhole answers nothing and holds existing connections', T, async () => {
  const old = await connect(proxy.port);
  assert.equal(await old.roundTrip('x'), 'x');
  await proxy.command('blackhole');
  const fresh = await connect(proxy.port); // the connect itself succeeds
  fresh.sock.write('anyone?');
  const t0 = Date.now();
  assert.deepEqual(await fresh.next(300), { type: 'timeout' });
  assert.ok(Date.now() - t0 < 10_000);
  old.sock.write('held');
  assert.deepEqual(await old.next(300), { type: 'timeout' });
  assert.equal((await proxy.stats()).mode, 'blackhole');
  await proxy.command('pass');
  assert.equal((await old.read(4)).toString(), 'held'); // held, not lost
  old.close();
  fresh.close();
});

test('latency delays each direction', T, async () => {
  const s = await connect(proxy.port);
  await proxy.command('latency 200');
  const t0 = Date.now();
  assert.equal(await s.roundTrip('slow'), 'slow');
  assert.ok(Date.now() - t0 >= 150, `round trip took ${Date.now() - t0} ms`);
  await proxy.command('latency 0');
  assert.equal(await s.roundTrip('fast'), 'fast');
  s.close();
});

test('close_after cuts the stream, then closes', T, async () => {
  await proxy.command('close_after 5');
  const s = await connect(proxy.port);
  s.sock.write('0123456789');
  const got = await s.read(10); // stops at EOF
  assert.equal(got.toString(), '01234');
  assert.equal((await s.next()).type, 'end');
  await proxy.command('close_after 0');
  const again = await connect(proxy.port);
  assert.equal(await again.roundTrip('0123456789'), '0123456789');
  again.close();
});

test('drop closes existing connections with FIN', T, async () => {
  const s = await connect(proxy.port);
  assert.equal(await s.roundTrip('x'), 'x');
  assert.equal(await proxy.command('drop'), 'OK drop connections=1');
  assert.equal((await s.next()).type, 'end'); // EOF, not a reset
  assert.equal((await proxy.stats()).active, 0);
  s.close();
});

test('flap alternates refused and working', T, async () => {
  await proxy.command('flap 100 100');
  let sawRefused = false;
  let sawEcho = false;
  const deadline = Date.now() + 10_000; // 2 s is plenty; a loaded machine gets more
  for (let i = 0; i < 2000 && !(sawRefused && sawEcho) && Date.now() < deadline; i++) {
    try {
      const s = await connect(proxy.port);
      s.sock.write('f');
      const ev = await s.next(2000); // a switch to down mid-way resets it: neither
      if (ev.type === 'data' && ev.data.toString() === 'f') sawEcho = true;
      s.close();
    } catch (err) {
      if (err.code === 'ECONNREFUSED') sawRefused = true;
      else assert.equal(err.code, 'ECONNRESET');
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(sawRefused && sawEcho, `refused ${sawRefused}, echo ${sawEcho}`);
  assert.equal((await proxy.stats()).mode, 'flap');
  await proxy.command('pass');
  const s = await connect(proxy.port);
  assert.equal(await s.roundTrip('steady'), 'steady');
  s.close();
});

test('bad commands reject; close stops the proxy', T, async () => {
  await assert.rejects(proxy.command('explode'), /unknown command/);
  await assert.rejects(proxy.command('latency soon'), /whole numbers/);
  assert.equal(await proxy.close(), 0);
  assert.ok(await refused(proxy.port));
  await assert.rejects(proxy.command('pass'), /closed/);
  assert.equal(await proxy.close(), 0); // safe twice
});
