'use strict';
// The Redis offset store (`offsets.store = redis`, issue 12) through the Node package, as
// core/tests/offsets_redis.rs shows it in Rust: a real redis-server (Debian's) on a free
// loopback port with an append-only file fsynced on every write, and managers in separate
// processes (an instance is this file run again by `node` with SB_OFFSETS_CHILD naming its
// part; then it defines no tests):
//
// - a session committed and closed on instance A resumes on instance B at A's commits, and
//   this process sees B's;
// - a FLUSHALL between commit and resume fails the resume (and a commit) with
//   SB_FAILED_PRECONDITION naming the epoch ("now none"), instead of starting from zero;
// - redis-server killed with SIGKILL and restarted on the same port and dir: every commit
//   acknowledged before is there; a commit while it is down fails with SB_UNAVAILABLE or
//   SB_TIMEOUT; commits work again after it returns, with no reconnect code of our own;
// - `offsets.store = redis` without `offsets.redis_url` is SB_INVALID_ARGUMENT at creation.
//
// Needs redis-server on PATH (`make test-node` runs on a machine with Debian's).

const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const { sb, within, deadPort, rejectsWithCode, throwsWithCode } = require('./helpers');

const { Manager, ErrorCode } = sb;
const PREFIX = 'sbtest';
const STREAMS = ['engine', 'brakes'];
const LONG_MS = 20_000;

/** A manager on the Redis store at `url` with (telemetry, race-1) registered. */
function manager(url, extra = {}) {
  const m = new Manager({
    workerThreads: 1,
    'offsets.store': 'redis',
    'offsets.redis_url': url,
    'offsets.prefix': PREFIX,
    'offsets.redis_timeout': '2s',
    ...extra,
  });
  m.sessions.register('telemetry', 'race-1');
  return m;
}

// ---------------------------------------------------------------------------------------
// The child instance: `commit:<engine>:<brakes>` opens, commits and closes;
// `resume:<engine>:<brakes>` resumes, checks the positions, then commits +1 each.

async function child(role, url) {
  const m = manager(url);
  try {
    const s = m.sessions;
    if (s.storeKind !== 'redis') throw new Error(`storeKind is ${s.storeKind}, not redis`);
    const [part, e, b] = role.split(':');
    const engine = Number(e);
    const brakes = Number(b);
    if (part === 'commit') {
      const id = await s.open({ dataSource: 'telemetry', sessionKey: 'race-1', streams: STREAMS });
      await s.commit(id, 'engine', engine);
      await s.commit(id, 'brakes', brakes);
      s.close(id);
    } else if (part === 'resume') {
      const id = await s.resume('telemetry', 'race-1', STREAMS);
      const got = [s.position(id, 'engine'), s.position(id, 'brakes')];
      if (got[0] !== engine || got[1] !== brakes) {
        throw new Error(`resumed at ${got.join('/')}, expected ${engine}/${brakes}`);
      }
      await s.commit(id, 'engine', engine + 1);
      await s.commit(id, 'brakes', brakes + 1);
      s.close(id);
    } else {
      throw new Error(`unknown child role ${role}`);
    }
    process.stdout.write(`DONE ${role}\n`);
  } finally {
    await m.close(5000);
  }
}

if (process.env.SB_OFFSETS_CHILD) {
  child(process.env.SB_OFFSETS_CHILD, process.env.SB_OFFSETS_URL).catch((err) => {
    process.stderr.write(`offsets_redis child: ${err.code}: ${err.message}\n`);
    process.exitCode = 1;
  });
} else {
  defineTests();
}

// ---------------------------------------------------------------------------------------
// The test process.

/** Runs this file as instance `role` against `url`; rejects with its output unless it succeeded. */
function instance(role, url) {
  const env = { ...process.env, SB_OFFSETS_CHILD: role, SB_OFFSETS_URL: url };
  delete env.NODE_TEST_CONTEXT;
  const proc = spawn(process.execPath, [__filename], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (err += d));
  const done = new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code, signal) => {
      if (code === 0 && out.includes(`DONE ${role}`)) resolve();
      else reject(new Error(`instance ${role} failed (code ${code}, signal ${signal}):\n${out}\n${err}`));
    });
  });
  return within(30_000, done, `instance ${role}`).catch((e) => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    throw e;
  });
}

/** Sends one command as RESP on a fresh socket; resolves with the parsed reply. */
function redisCommand(port, args) {
  const done = new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    sock.on('connect', () => {
      let req = `*${args.length}\r\n`;
      for (const a of args) req += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
      sock.write(req);
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const reply = parseReply(buf);
      if (reply !== undefined) {
        sock.destroy();
        resolve(reply);
      }
    });
    sock.on('error', reject);
    sock.on('close', () => reject(new Error(`redis closed before a full reply to ${args[0]}`)));
  });
  return within(5000, done, `redis ${args[0]}`);
}

/**
 * The reply in `buf`, or undefined while incomplete: a simple string as `+OK`, an error as
 * an Error, an integer as a number, a bulk string as a string (null for a nil one).
 */
function parseReply(buf) {
  const eol = buf.indexOf('\r\n');
  if (eol < 0) return undefined;
  const head = buf.subarray(1, eol).toString();
  switch (String.fromCharCode(buf[0])) {
    case '+':
      return `+${head}`;
    case '-':
      return new Error(head);
    case ':':
      return Number(head);
    case '$': {
      const n = Number(head);
      if (n < 0) return null;
      if (buf.length < eol + 2 + n + 2) return undefined;
      return buf.subarray(eol + 2, eol + 2 + n).toString();
    }
    default:
      throw new Error(`unexpected redis reply ${JSON.stringify(buf.toString())}`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** redis-server fsyncing every write to an append-only file in `dir`; start() again reuses port and dir. */
class PersistentRedis {
  constructor(port, dir) {
    this.port = port;
    this.dir = dir;
    this.proc = null;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  async start() {
    const proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes',
        '--appendfsync', 'always', '--dir', this.dir],
      { stdio: 'ignore' },
    );
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', resolve));
    let spawnError = null;
    proc.once('error', (e) => (spawnError = e));
    const deadline = Date.now() + LONG_MS;
    for (let i = 0; i < 2000 && Date.now() < deadline; i++) {
      if (spawnError) throw new Error(`redis-server could not start (is it installed?): ${spawnError.message}`);
      if (proc.exitCode !== null) break;
      try {
        if ((await redisCommand(this.port, ['PING'])) === '+PONG') return;
      } catch {
        // Not listening yet.
      }
      await sleep(50);
    }
    await this.kill();
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  /** SIGKILL our own child, and wait until it is gone. */
  async kill() {
    const proc = this.proc;
    if (proc === null) return;
    this.proc = null;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await within(10_000, this.exited, 'redis-server exit');
  }

  command(...args) {
    return redisCommand(this.port, args);
  }
}

/** Runs `fn(redis)` with a fresh persistent redis-server, killed and its dir removed afterwards. */
async function withRedis(name, fn) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sb-node-offsets-redis-${name}-`));
  const redis = new PersistentRedis(await deadPort(), dir);
  try {
    await redis.start();
    return await fn(redis);
  } finally {
    await redis.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `fn(m, sessions)` with a manager on `url`, closed however `fn` ends. */
async function withManager(url, fn) {
  const m = manager(url);
  try {
    return await fn(m, m.sessions);
  } finally {
    await within(15_000, m.close(5000), 'manager.close');
  }
}

function defineTests() {
  const { test } = require('node:test');
  const T = { timeout: 120_000 };

  const which = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  assert.ok(!which.error, 'redis-server is not installed (Debian: apt-get install -y redis-server)');

  test('a session committed and closed on instance A resumes on instance B at its commits', T, async () => {
    await withRedis('resume', async (redis) => {
      await instance('commit:100:50', redis.url); // A
      await instance('resume:100:50', redis.url); // B starts at 100/50 and commits 101/51
      // C, this process, sees B's.
      await withManager(redis.url, async (m, s) => {
        assert.equal(s.storeKind, 'redis');
        const id = await s.resume('telemetry', 'race-1', STREAMS);
        assert.equal(s.position(id, 'engine'), 101);
        assert.equal(s.position(id, 'brakes'), 51);
        assert.equal(await s.committed('telemetry', 'race-1', 'engine'), 101);
        s.close(id);
      });
    });
  });

  test('a FLUSHALL between commit and resume fails the resume with SB_FAILED_PRECONDITION naming the epoch', T, async () => {
    await withRedis('flush', async (redis) => {
      // This instance exists before the flush (a manager created afterwards starts a new epoch).
      await withManager(redis.url, async (m, s) => {
        await instance('commit:100:50', redis.url); // A commits 100/50 in another process
        const live = await s.open({ dataSource: 'telemetry', sessionKey: 'race-1', streams: STREAMS });
        const epoch = await redis.command('GET', `${PREFIX}:epoch`);
        assert.ok(typeof epoch === 'string' && epoch.length > 0, `an epoch in ${PREFIX}:epoch: ${epoch}`);
        assert.equal(await redis.command('FLUSHALL'), '+OK');

        const err = await rejectsWithCode(s.resume('telemetry', 'race-1', STREAMS), ErrorCode.FailedPrecondition);
        assert.ok(err.message.includes(epoch), `the message names the epoch ${epoch}: ${err.message}`);
        assert.ok(err.message.includes('now none'), err.message);

        // A commit fails the same way: nothing is acknowledged into the new, empty Redis.
        const cerr = await rejectsWithCode(s.commit(live, 'engine', 101), ErrorCode.FailedPrecondition);
        assert.ok(cerr.message.includes(epoch), cerr.message);
        assert.equal(await redis.command('EXISTS', `${PREFIX}:offsets`), 0);
        s.close(live);
      });
    });
  });

  test('redis-server killed with SIGKILL and restarted: acknowledged commits survive; down: refused; back: commits work', T, async () => {
    await withRedis('restart', async (redis) => {
      await withManager(redis.url, async (m, s) => {
        const id = await s.open({ dataSource: 'telemetry', sessionKey: 'race-1', streams: STREAMS });
        for (let n = 1; n <= 50; n++) await s.commit(id, 'engine', n);

        await redis.kill();
        const err = await rejectsWithCode(
          within(15_000, s.commit(id, 'engine', 51), 'a commit with Redis down'),
          [ErrorCode.Unavailable, ErrorCode.Timeout],
        );
        assert.ok(err.message.length > 0);

        await redis.start(); // same port, same dir: the append-only file holds the acknowledged commits
        // The client reconnects by itself; poll until a commit goes through (bounded).
        const deadline = Date.now() + LONG_MS;
        let ok = false;
        let last = null;
        for (let i = 0; i < 200 && !ok && Date.now() < deadline; i++) {
          try {
            await within(10_000, s.commit(id, 'brakes', 9), 'a commit after the restart');
            ok = true;
          } catch (e) {
            last = e;
            await sleep(100);
          }
        }
        assert.ok(ok, `commits work again after Redis came back; last error: ${last && `${last.code}: ${last.message}`}`);
        s.close(id);
      });
      // Another process sees every acknowledged commit: 50 (not 51) and 9.
      await instance('resume:50:9', redis.url);
    });
  });

  test('offsets.store = redis without offsets.redis_url is SB_INVALID_ARGUMENT at manager creation', T, () => {
    const err = throwsWithCode(() => new Manager({ workerThreads: 1, 'offsets.store': 'redis' }), ErrorCode.InvalidArgument);
    assert.ok(err.message.includes('offsets.redis_url'), err.message);
  });
}
