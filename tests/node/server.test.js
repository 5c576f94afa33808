'use strict';
// The embedded server (issue 11) from Node.
//
// The shared recipe (.notes/server-api.md, "The server test recipe"): a Node program
// starts the server on 127.0.0.1:0 with a token, a pool, a session key and the registry
// auth hook (JS functions, which the hub calls from the library's threads), then runs
// the shared driver tests/fixtures/server_client.py ($SB_TEST_PYTHON) and answers its
// `broadcast` / `advance` commands pulled with `await manager.hub.recv(100)`.
//
// Then what Node adds: `hub.on('message')` with a real `ws` client answered by
// `registry.send`, a refused token and subscribe through the JS hooks, the address
// getters with the server off, recv after close, and a script that exits on its own
// after `manager.close()` with a server, a listener and the hooks installed.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { sb, ROOT, startEchoServer, within } = require('./helpers');

const TOKEN = 'secret-token';
const DRIVER_LIMIT_MS = 240_000;
const { WebSocket: WS } = require(path.join(ROOT, 'bindings', 'node', 'node_modules', 'ws'));

let echo;

before(async () => {
  echo = await startEchoServer();
});

after(() => {
  if (echo) echo.stop();
});

/** The python that runs the driver: $SB_TEST_PYTHON, else build/venv/bin/python. */
function python() {
  const p = process.env.SB_TEST_PYTHON || path.join(ROOT, 'build', 'venv', 'bin', 'python');
  assert.ok(
    fs.existsSync(p),
    `the server test runs tests/fixtures/server_client.py with SB_TEST_PYTHON, and ${p} does not exist: ` +
      'run `make server-tools`, or set SB_TEST_PYTHON to a python with websockets, grpcio and grpcio-tools',
  );
  return p;
}

/** The recipe's hooks: token `tok-<user>` is user `<user>`; topic `forbidden` is refused. */
function installHooks(registry) {
  registry.setAuthenticator(
    (token) => {
      if (typeof token === 'string' && token.startsWith('tok-') && token.length > 4) {
        return { user: token.slice(4), metadata: { auth: 'token' } };
      }
      throw new Error('unknown token');
    },
    (_id, _user, topic) => {
      if (topic === 'forbidden') throw new Error('topic forbidden is closed');
      return true;
    },
  );
}

/** The recipe's manager: server on, token, manual clock, the registry's timings. */
function recipeManager() {
  return new sb.Manager({
    'server.listen': '127.0.0.1:0',
    'server.token': TOKEN,
    'runtime.clock': 'manual',
    'registry.heartbeat_interval': '30s',
    'registry.connection_timeout': '90s',
  });
}

/** What the program does with a hub message: the driver's commands. */
function act(m, msg) {
  if (msg.type !== 'data') return;
  const data = msg.json().data ?? {};
  if (data.cmd === 'broadcast') {
    for (let k = 0; k < 4; k++) {
      const topic = `t${k}`;
      m.registry.broadcast(sb.envelope('data', { topic, data: { n: k } }), { topic });
    }
    m.registry.broadcast(sb.envelope('fence'), { all: true });
  } else if (data.cmd === 'advance') {
    assert.equal(typeof data.seconds, 'number', `cmd advance names its seconds: ${msg.text}`);
    // Only the clock: the driver runs the registry's pass itself (POST /registry/cleanup)
    // once it sees the clock moved; a second pass here would count a missed heartbeat
    // twice (server-api.md's recipe says "then registry.cleanup()": see
    // .notes/server-node-requests.md).
    m.advanceClock(data.seconds * 1000);
  }
}

/** Starts the driver; `exited` resolves with { code, signal }, `lines` collects its output. */
function startDriver(addr) {
  const child = spawn(
    python(),
    [path.join(ROOT, 'tests', 'fixtures', 'server_client.py'), '--addr', addr, '--token', TOKEN, '--echo', `127.0.0.1:${echo.port}`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines = [];
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      rest += chunk;
      const parts = rest.split('\n');
      rest = parts.pop();
      for (const l of parts) {
        lines.push(l);
        if (process.env.SB_TEST_VERBOSE) console.log(`driver: ${l}`);
      }
    });
  }
  const exited = new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, lines, exited };
}

const tail = (lines, n = 40) => lines.slice(-n).join('\n');

test('the shared driver against a Node program (hub.recv)', { timeout: DRIVER_LIMIT_MS + 30_000 }, async () => {
  // 1-3. The manager, the pool, the session key, the hooks.
  const m = recipeManager();
  try {
    m.pool('echo', echo.target);
    assert.equal(m.sessions.register('telemetry', 'race-1'), true);
    installHooks(m.registry);
    // 4. A non-loopback bind without a token.
    assert.throws(() => new sb.Manager({ 'server.listen': '0.0.0.0:0' }), (err) => {
      assert.equal(err.code, sb.ErrorCode.InvalidArgument, err.message);
      assert.match(err.message, /server\.token/);
      return true;
    });

    // 5. The driver, answered until it exits.
    const addr = m.serverAddress;
    assert.match(addr, /^127\.0\.0\.1:\d+$/);
    assert.notEqual(addr, '127.0.0.1:0');
    assert.equal(m.grpcAddress, addr, 'gRPC shares server.listen');
    const driver = startDriver(addr);
    let done = null;
    driver.exited.then((r) => {
      done = r;
    });
    const deadline = Date.now() + DRIVER_LIMIT_MS;
    let handled = 0;
    while (done === null) {
      if (Date.now() > deadline) {
        driver.child.kill('SIGKILL');
        assert.fail(`the driver still ran after ${DRIVER_LIMIT_MS} ms; its last lines:\n${tail(driver.lines)}`);
      }
      const msg = await m.hub.recv(100);
      if (msg !== null) {
        assert.equal(typeof msg.connectionId, 'number');
        act(m, msg);
        handled++;
      }
    }
    // 6. It passed; close.
    assert.deepEqual(done, { code: 0, signal: null }, `the driver failed; its last lines:\n${tail(driver.lines)}`);
    assert.ok(handled > 0, 'the driver sent commands through the hub');
  } finally {
    await m.close();
  }
  await assert.rejects(m.hub.recv(10), (err) => err.code === sb.ErrorCode.Unavailable);
});

/** Opens a ws client to the hub; resolves with { ws, frames(), next(pred) } once open, or rejects with the HTTP status. */
function hubClient(addr, query) {
  return new Promise((resolve, reject) => {
    const ws = new WS(`ws://${addr}/ws?${query}`);
    const frames = [];
    const waiters = [];
    ws.on('message', (data) => {
      const f = JSON.parse(String(data));
      frames.push(f);
      for (const w of [...waiters]) {
        if (w.pred(f)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(f);
        }
      }
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode, body })));
    });
    ws.once('error', reject);
    ws.once('open', () =>
      resolve({
        ws,
        frames,
        next(pred, what) {
          const seen = frames.find(pred);
          if (seen) return Promise.resolve(seen);
          return within(5_000, new Promise((res) => waiters.push({ pred, resolve: res })), what);
        },
      }),
    );
  });
}

test("hub.on('message') gets what a ws client sends, registry.send answers it, the JS hooks decide", { timeout: 60_000 }, async () => {
  const m = new sb.Manager({ 'server.listen': '127.0.0.1:0', 'server.token': TOKEN });
  try {
    installHooks(m.registry);
    const addr = m.serverAddress;

    // A refused token: HTTP 401 before the upgrade, with the hook's reason.
    await assert.rejects(hubClient(addr, 'token=nope'), (err) => {
      assert.equal(err.status, 401, err.message);
      assert.match(err.body, /unknown token/);
      return true;
    });

    const got = [];
    const listener = (msg) => {
      got.push(msg);
      m.registry.send(msg.connectionId, sb.envelope('reply', { data: { echo: msg.json().data, user: msg.user } }));
    };
    m.hub.on('message', listener);
    const c = await hubClient(addr, 'token=tok-alice&topics=news');
    try {
      const welcome = await c.next((f) => f.type === 'welcome', 'welcome');
      assert.equal(welcome.data.user, 'alice');
      assert.deepEqual(welcome.data.topics, ['news']);

      // The authorize hook refuses a topic, with its reason.
      c.ws.send(JSON.stringify({ type: 'subscribe', topic: 'forbidden' }));
      const refused = await c.next((f) => f.type === 'error' && f.topic === 'forbidden', 'refused subscribe');
      assert.equal(refused.data.code, 'PermissionDenied');
      assert.match(refused.error, /topic forbidden is closed/);
      c.ws.send(JSON.stringify({ type: 'subscribe', topic: 'sports' }));
      await c.next((f) => f.type === 'subscribed' && f.topic === 'sports', 'subscribed');

      // A data message reaches the listener; the program answers it.
      c.ws.send(JSON.stringify({ type: 'data', topic: 'news', data: { n: 7 } }));
      const reply = await c.next((f) => f.type === 'reply', 'reply');
      assert.deepEqual(reply.data, { echo: { n: 7 }, user: 'alice' });
      assert.equal(got.length, 1);
      const [msg] = got;
      assert.ok(msg instanceof sb.HubMessage);
      assert.equal(msg.type, 'data');
      assert.equal(msg.topic, 'news');
      assert.equal(msg.user, 'alice');
      assert.deepEqual(msg.json().data, { n: 7 });
      assert.equal(m.registry.get(msg.connectionId).user, 'alice');
      assert.equal(m.hub.queued, 0, 'the listener took it, not the queue');

      // Off again: messages queue for recv.
      m.hub.off('message', listener);
      c.ws.send(JSON.stringify({ type: 'chat', data: 'hi' }));
      const pulled = await m.hub.recv(5_000);
      assert.ok(pulled !== null, 'a message after off() is queued');
      assert.equal(pulled.type, 'chat');
      assert.equal(pulled.topic, null);
      assert.equal(got.length, 1);
      assert.equal(await m.hub.recv(0), null);
      await assert.rejects(m.hub.recv(-1), (err) => err.code === sb.ErrorCode.InvalidArgument);
      await assert.rejects(m.hub.recv('1s'), (err) => err.code === sb.ErrorCode.InvalidArgument);

      // A hook that holds the JS thread past the hub's wait (5 s): the hub refuses the
      // token with a reason that says so, and the late answer is ignored.
      m.registry.setAuthenticator((token) => {
        const until = Date.now() + 5_500;
        while (Date.now() < until);
        return { user: token };
      });
      await assert.rejects(hubClient(addr, 'token=tok-slow'), (err) => {
        assert.equal(err.status, 401, err.message);
        assert.match(err.body, /did not answer within 5 s/);
        return true;
      });

      // The hooks cleared: the hub falls back to server.token.
      m.registry.setAuthenticator(null);
      await assert.rejects(hubClient(addr, 'token=tok-bob'), (err) => err.status === 401);
      const plain = await hubClient(addr, `token=${TOKEN}`);
      const w = await plain.next((f) => f.type === 'welcome', 'welcome with server.token');
      assert.equal(w.data.user, null);
      plain.ws.close();
    } finally {
      c.ws.close();
    }
  } finally {
    await m.close();
  }
});

test('without server.listen there is no server', async () => {
  const m = new sb.Manager();
  try {
    assert.equal(m.serverAddress, null);
    assert.equal(m.grpcAddress, null);
    assert.equal(await m.hub.recv(10), null);
  } finally {
    await m.close();
  }
  await assert.rejects(m.hub.recv(), (err) => err.code === sb.ErrorCode.Unavailable);
});

test('a port in use is SB_UNAVAILABLE', async () => {
  const m = new sb.Manager({ 'server.listen': '127.0.0.1:0' });
  try {
    assert.throws(() => new sb.Manager({ 'server.listen': m.serverAddress }), (err) => err.code === sb.ErrorCode.Unavailable);
  } finally {
    await m.close();
  }
});

// A script with a server, a hub listener, a pending recv and the hooks installed exits
// on its own after close: nothing the server face made keeps the event loop alive.
const CHILD = `
const sb = require(${JSON.stringify(path.join(ROOT, 'bindings', 'node'))});
const m = new sb.Manager({ 'server.listen': '127.0.0.1:0', 'server.token': 't' });
m.registry.setAuthenticator(() => ({ user: 'u' }), () => true);
m.hub.on('message', () => {});
const pending = m.hub.recv().then(() => 'resolved', (e) => e.code);
if (!/^127\\.0\\.0\\.1:\\d+$/.test(m.serverAddress)) throw new Error('no address');
m.close().then(async () => {
  console.log('pending recv: ' + (await pending));
  console.log('ok');
});
`;

test('a script exits on its own after manager.close() with the server on', { timeout: 30_000 }, async () => {
  const child = spawn(process.execPath, ['-e', CHILD], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code, signal] = await new Promise((resolve) => child.once('exit', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  assert.equal(signal, null, `killed (did not exit within 20 s); stdout: ${out} stderr: ${err}`);
  assert.equal(code, 0, `stderr: ${err}`);
  assert.match(out, /pending recv: SB_UNAVAILABLE/);
  assert.match(out, /^ok$/m);
});
