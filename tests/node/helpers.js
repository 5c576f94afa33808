'use strict';
// Shared by the Node tests: the package under test, and the loopback echo server
// (tests/fixtures/echo_server.py) each test file starts on a free port.

const { spawn } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const sb = require(path.join(ROOT, 'bindings', 'node'));

/** Resolves or rejects `promise` within `ms`, else rejects naming `what`. */
function within(ms, promise, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Starts the echo server; resolves with { port, target, stop() }. */
async function startEchoServer() {
  const child = spawn('python3', [path.join(ROOT, 'tests', 'fixtures', 'echo_server.py')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const port = await within(
    10_000,
    new Promise((resolve, reject) => {
      let out = '';
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`echo server exited early with ${code}`)));
      child.stdout.on('data', (chunk) => {
        out += chunk;
        const m = /^PORT (\d+)\n/.exec(out);
        if (m) resolve(Number(m[1]));
      });
    }),
    'echo server start',
  );
  child.removeAllListeners('exit');
  return {
    port,
    target: `tcp://127.0.0.1:${port}`,
    stop() {
      // Closing its stdin stops it; the kill is for a server that does not listen.
      child.stdin.end();
      child.kill();
    },
  };
}

/** The number of connections the echo server accepted (not counting this one). */
function serverAccepted(port) {
  return within(
    5_000,
    new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1', () => sock.write('STATS\n'));
      let out = '';
      sock.on('data', (d) => {
        out += d;
      });
      sock.on('error', reject);
      sock.on('close', () => {
        const m = /accepted=(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
        else reject(new Error(`unexpected STATS answer ${JSON.stringify(out)}`));
      });
    }),
    'STATS',
  );
}

/** A loopback port that nothing listens on (bound, then closed). */
function deadPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Reads from `lease` until `n` bytes arrived (bounded in count). */
async function readExactly(lease, n) {
  const parts = [];
  let got = 0;
  for (let i = 0; i < 1000 && got < n; i++) {
    const buf = await lease.read(n - got);
    if (buf.length === 0) throw new Error(`peer closed after ${got} of ${n} bytes`);
    parts.push(buf);
    got += buf.length;
  }
  return Buffer.concat(parts);
}

/** Asserts that `promise` rejects with an Error whose code is one of `codes`. */
async function rejectsWithCode(promise, codes) {
  const want = Array.isArray(codes) ? codes : [codes];
  try {
    await promise;
  } catch (err) {
    if (!(err instanceof Error)) throw new Error(`rejected with a non-Error: ${String(err)}`);
    if (!want.includes(err.code)) {
      throw new Error(`expected code ${want.join(' or ')}, got ${err.code}: ${err.message}`);
    }
    return err;
  }
  throw new Error(`expected a rejection with ${want.join(' or ')}, but it resolved`);
}

/** Asserts that `fn()` throws an Error whose code is `code`; returns the error. */
function throwsWithCode(fn, code) {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof Error) || err.code !== code) {
      throw new Error(`expected code ${code}, got ${err && err.code}: ${err && err.message}`);
    }
    return err;
  }
  throw new Error(`expected a throw with ${code}`);
}

module.exports = {
  ROOT,
  sb,
  within,
  startEchoServer,
  serverAccepted,
  deadPort,
  readExactly,
  rejectsWithCode,
  throwsWithCode,
};
