'use strict';
// Streaming sessions through the Node package (issue 5): catalog, validation errors with
// their codes, offsets (position vs committed, never backwards unless seek), limits,
// events, the stream_api_* metrics, and a durable store that keeps every acknowledged
// commit of a child process killed with SIGKILL.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const { sb, within, rejectsWithCode, throwsWithCode } = require('./helpers');

const { Manager, ErrorCode } = sb;
const T = { timeout: 60_000 };

/** Runs `fn(manager, sessions)` with a manager of its own, closed afterwards. */
async function withSessions(options, fn) {
  const m = new Manager({ workerThreads: 1, ...options });
  try {
    return await fn(m, m.sessions);
  } finally {
    await within(15_000, m.close(2000), 'manager.close');
  }
}

/** Every queued event of a session kind, as [kind, sessionId, stream]. */
function sessionEvents(m) {
  const out = [];
  for (let e = m.pollEvent(); e !== null && out.length < 10_000; e = m.pollEvent()) {
    if (e.kind.startsWith('session_') || e.kind.startsWith('stream_') || e.kind === 'commit_failed') {
      out.push([e.kind, e.sessionId, e.stream]);
    }
  }
  return out;
}

/** Asserts that `promise` rejects with `code` and a message containing `text`. */
async function rejects(promise, code, text) {
  const err = await rejectsWithCode(promise, code);
  assert.ok(err.message.includes(text), `message ${JSON.stringify(err.message)} should contain ${JSON.stringify(text)}`);
  return err;
}

function throws(fn, code, text) {
  const err = throwsWithCode(fn, code);
  assert.ok(err.message.includes(text), `message ${JSON.stringify(err.message)} should contain ${JSON.stringify(text)}`);
  return err;
}

function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sb-node-sessions-'));
}

test('validation errors name the field (SB_INVALID_ARGUMENT); an unregistered key is SB_FAILED_PRECONDITION; an unknown id SB_NOT_FOUND', T, async () => {
  await withSessions({}, async (m, s) => {
    assert.equal(s.register('ds', 'k'), true);
    assert.equal(s.register('ds', 'k'), false, 'already there');
    const IA = ErrorCode.InvalidArgument;
    await rejects(s.open({ dataSource: '', sessionKey: 'k' }), IA, 'data_source must be a non-empty string');
    await rejects(s.open({ dataSource: 'ds', sessionKey: '' }), IA, 'session_key must be a non-empty string');
    await rejects(s.open({ dataSource: 'ds', sessionKey: 'k', streams: ['a', 'b', 'a'] }), IA, 'streams[2] "a" repeats streams[0]');
    await rejects(s.open({ dataSource: 'ds', sessionKey: 'k', streams: ['a', ''] }), IA, 'streams[1] must be a non-empty');
    await rejects(
      s.open({ dataSource: 'ds', sessionKey: 'k', streams: ['a', 'b'], streamOffsets: [1] }),
      IA,
      'stream_offsets has 1 entries but streams has 2',
    );
    await rejects(
      s.open({ dataSource: 'ds', sessionKey: 'k', streams: ['a', 'b'], streamOffsets: [0, -4] }),
      IA,
      'stream_offsets[1] must be a non-negative offset',
    );
    // JS-side shapes the core never sees.
    await rejects(s.open({ dataSource: 'ds', sessionKey: 'k', streams: 'a' }), IA, 'streams must be an array of strings');
    await rejects(s.open({ dataSource: 'ds', sessionKey: 'k', streams: ['a'], streamOffsets: [1.5] }), IA, 'streamOffsets[0] must be a whole number');
    await rejects(s.open('ds'), IA, 'open() takes');
    await rejects(s.open({ dataSource: 'ds', sessionKey: 'nope' }), ErrorCode.FailedPrecondition, 'data source "ds" has no registered session key "nope"; register it first');
    throws(() => s.get(12345678), ErrorCode.NotFound, 'no open session with id 12345678');
    throws(() => s.close(12345678), ErrorCode.NotFound, 'no open session with id 12345678');
    throws(() => s.get(-1), IA, 'session id must be a whole number');
    const id = await s.open({ dataSource: 'ds', sessionKey: 'k', streams: ['a'] });
    throws(() => s.position(id, 'zz'), ErrorCode.NotFound, `session ${id} has no stream named "zz"`);
    await rejects(s.addStream(id, 'a', 0), IA, `stream "a" is already in session ${id}`);
    await rejects(s.addStream(id, 'b', -1), IA, 'offset must be a non-negative offset');
    await rejects(s.commit(id, 'a', -1), IA, 'offset must be a non-negative offset');
    throws(() => s.seek(id, 'a', -1), IA, 'offset must be a non-negative offset');
    throws(() => s.unregister('ds', 'k'), ErrorCode.FailedPrecondition, 'has 1 open session(s); close them before unregistering it');
    s.close(id);
    assert.equal(s.unregister('ds', 'k'), true);
    assert.equal(s.unregister('ds', 'k'), false);
    assert.equal(s.isRegistered('ds', 'k'), false);
  });
});

test('open with offsets: get() and list() show them; close; the catalog decides what may be opened', T, async () => {
  await withSessions({}, async (m, s) => {
    s.register('quotes', 'eu');
    s.register('quotes', 'us');
    s.register('trades', 'eu');
    assert.deepEqual(s.catalog(), [['quotes', 'eu'], ['quotes', 'us'], ['trades', 'eu']]);
    assert.equal(s.isRegistered('quotes', 'eu'), true);
    const a = await s.open({ dataSource: 'quotes', sessionKey: 'eu', streams: ['x', 'y'], streamOffsets: [5, 9], excludeMainStream: true });
    const b = await s.open({ dataSource: 'quotes', sessionKey: 'us' });
    const c = await s.open({ dataSource: 'trades', sessionKey: 'eu', streams: ['z'] });
    assert.ok(a < b && b < c, 'ids grow');
    const info = s.get(a);
    assert.equal(info.id, a);
    assert.equal(info.dataSource, 'quotes');
    assert.equal(info.sessionKey, 'eu');
    assert.equal(info.excludeMainStream, true);
    assert.deepEqual(info.streams.map((x) => [x.name, x.position, x.committed]), [['x', 5, null], ['y', 9, null]]);
    assert.deepEqual(s.get(b).streams, []);
    assert.equal(s.get(c).streams[0].position, 0, 'no offsets: from 0');
    assert.equal(s.openCount, 3);
    assert.deepEqual(s.list().map((x) => x.id), [a, b, c]);
    assert.deepEqual(s.list({ dataSource: 'quotes' }).map((x) => x.id), [a, b]);
    assert.deepEqual(s.list({ sessionKey: 'eu' }).map((x) => x.id), [a, c]);
    assert.deepEqual(s.list({ dataSource: 'quotes', sessionKey: 'us' }).map((x) => x.id), [b]);
    s.close(b);
    throws(() => s.close(b), ErrorCode.NotFound, `no open session with id ${b}`);
    assert.equal(s.openCount, 2);
    assert.equal(s.storeKind, 'memory');
    assert.equal(s.bufferedCommits, 0);
  });
});

test('deliver and commit, close, resume: the streams start at the committed offsets', T, async () => {
  await withSessions({}, async (m, s) => {
    s.register('feed', 'k1');
    const id = await s.open({ dataSource: 'feed', sessionKey: 'k1', streams: ['a', 'b'], streamOffsets: [10, 0] });
    assert.equal(s.deliver(id, 'a', 5, 500), 15);
    assert.equal(s.deliver(id, 'b', 3, 30, 1), 3);
    assert.equal(s.position(id, 'a'), 15);
    assert.equal(await s.commit(id, 'a', 14), undefined);
    await s.commit(id, 'b', 3);
    assert.deepEqual(s.get(id).streams.map((x) => [x.name, x.position, x.committed]), [['a', 15, 14], ['b', 3, 3]]);
    assert.equal(await s.committed('feed', 'k1', 'a'), 14);
    assert.equal(await s.committed('feed', 'k1', 'never'), null);
    s.close(id);
    assert.equal(await s.committed('feed', 'k1', 'a'), 14, 'closing commits nothing and keeps the commits');
    const again = await s.resume('feed', 'k1', ['a', 'b', 'c']);
    assert.notEqual(again, id, 'a new id');
    assert.deepEqual(s.get(again).streams.map((x) => [x.name, x.position, x.committed]), [['a', 14, 14], ['b', 3, 3], ['c', 0, null]]);
    // Streams come and go on the live session.
    await s.addStream(again, 'd', 7);
    assert.equal(s.position(again, 'd'), 7);
    s.removeStream(again, 'c');
    assert.deepEqual(s.get(again).streams.map((x) => x.name), ['a', 'b', 'd']);
    throws(() => s.removeStream(again, 'c'), ErrorCode.NotFound, 'has no stream named "c"');
  });
});

test('commits never go backwards (SB_FAILED_PRECONDITION) unless seek() rewinds on purpose', T, async () => {
  await withSessions({}, async (m, s) => {
    s.register('feed', 'k1');
    const id = await s.open({ dataSource: 'feed', sessionKey: 'k1', streams: ['a'], streamOffsets: [10] });
    await rejects(s.commit(id, 'a', 9), ErrorCode.FailedPrecondition, 'would go backwards');
    await s.commit(id, 'a', 20);
    await s.commit(id, 'a', 20); // the same again is fine
    const err = await rejects(s.commit(id, 'a', 15), ErrorCode.FailedPrecondition, 'would go backwards');
    assert.match(err.message, /call seek\("a", 15\) first/);
    assert.equal(await s.committed('feed', 'k1', 'a'), 20, 'the refused commit stored nothing');
    s.seek(id, 'a', 15);
    assert.equal(s.position(id, 'a'), 15);
    assert.equal(await s.committed('feed', 'k1', 'a'), 20, 'seek stores nothing');
    await s.commit(id, 'a', 15);
    assert.equal(await s.committed('feed', 'k1', 'a'), 15);
    const failed = sessionEvents(m).filter(([k]) => k === 'commit_failed');
    assert.deepEqual(failed, [['commit_failed', id, 'a'], ['commit_failed', id, 'a']]);
  });
});

test('limits: sessions.max_per_key and sessions.max_total are SB_RESOURCE_EXHAUSTED', T, async () => {
  await withSessions({ sessionsMaxTotal: 3, 'sessions.max_per_key': 2 }, async (m, s) => {
    s.register('ds', 'a');
    s.register('ds', 'b');
    await s.open({ dataSource: 'ds', sessionKey: 'a' });
    const second = await s.open({ dataSource: 'ds', sessionKey: 'a' });
    await rejects(s.open({ dataSource: 'ds', sessionKey: 'a' }), ErrorCode.ResourceExhausted, 'already has 2 open sessions, the most sessions.max_per_key allows');
    await s.open({ dataSource: 'ds', sessionKey: 'b' });
    await rejects(s.open({ dataSource: 'ds', sessionKey: 'b' }), ErrorCode.ResourceExhausted, '3 sessions are open, the most sessions.max_total allows');
    s.close(second);
    await s.open({ dataSource: 'ds', sessionKey: 'b' });
  });
  throwsWithCode(() => new Manager({ sessionsMaxTotal: -1 }), ErrorCode.InvalidArgument);
  throwsWithCode(() => new Manager({ offsetsSync: 'sometimes' }), ErrorCode.InvalidArgument);
});

test("events: opened, stream added and removed, commit failed and closed arrive in order, on pollEvent() and on 'event'", T, async () => {
  await withSessions({}, async (m, s) => {
    s.register('ds', 'k');
    const id = await s.open({ dataSource: 'ds', sessionKey: 'k', streams: ['a'] });
    await s.addStream(id, 'b', 4);
    s.removeStream(id, 'a');
    await rejectsWithCode(s.commit(id, 'b', 1), ErrorCode.FailedPrecondition);
    s.close(id);
    assert.deepEqual(sessionEvents(m), [
      ['session_opened', id, null],
      ['stream_added', id, 'b'],
      ['stream_removed', id, 'a'],
      ['commit_failed', id, 'b'],
      ['session_closed', id, null],
    ]);
    // The same through the EventEmitter face, with the full event object.
    const heard = [];
    m.on('event', (e) => heard.push(e));
    const other = await s.resume('ds', 'k', ['b']);
    s.close(other);
    for (let i = 0; i < 200 && heard.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(heard.map((e) => [e.kind, e.sessionId, e.pool, e.endpoint]), [
      ['session_opened', other, '', null],
      ['session_closed', other, '', null],
    ]);
    assert.match(heard[0].message, /resumed/);
    assert.ok(heard[0].time instanceof Date);
  });
});

test('metrics text: the stream_api_* series with their values after a scripted run', T, async () => {
  await withSessions({}, async (m, s) => {
    s.register('feed', 'k1');
    const id = await s.open({ dataSource: 'feed', sessionKey: 'k1', streams: ['x', 'y'] });
    s.recordRead(id, 'x', 11, 1100, 2);
    s.recordRead(id, 'y', 1, 10);
    s.deliver(id, 'x', 7, 700, 1);
    s.recordRouter(id, 3, 300);
    s.recordRouter(id);
    const lines = m.metricsText().split('\n');
    const c = `connection="${id}",data_source="feed",session_key="k1"`;
    for (const want of [
      'stream_api_connections_total{data_source="feed",session_key="k1"} 1',
      'stream_api_connections_open{data_source="feed",session_key="k1"} 1',
      `stream_api_data_packets_read_total{${c},stream="x"} 11`,
      `stream_api_data_bytes_read_total{${c},stream="x"} 1100`,
      `stream_api_data_packets_read_total{${c},stream="y"} 1`,
      `stream_api_data_packets_delivered_total{${c},stream="x"} 7`,
      `stream_api_data_bytes_delivered_total{${c},stream="x"} 700`,
      `stream_api_essential_packets_read_total{${c},stream="x"} 2`,
      `stream_api_essential_packets_delivered_total{${c},stream="x"} 1`,
      `stream_api_data_packets_delivered_total{${c},stream="y"} 0`,
      `stream_api_router_messages_received_total{${c}} 4`,
      `stream_api_router_messages_received_bytes_total{${c}} 300`,
    ]) {
      assert.ok(lines.includes(want), `metrics text has ${want}\n${lines.filter((l) => l.startsWith('stream_api')).join('\n')}`);
    }
    const info = s.get(id);
    assert.deepEqual(info.streams[0], {
      name: 'x', position: 7, committed: null,
      dataPacketsRead: 11, dataBytesRead: 1100, dataPacketsDelivered: 7, dataBytesDelivered: 700,
      essentialPacketsRead: 2, essentialPacketsDelivered: 1,
    });
    assert.deepEqual([info.routerMessagesReceived, info.routerBytesReceived], [4, 300]);
    throwsWithCode(() => s.recordRead(id, 'x', -1), ErrorCode.InvalidArgument);
    s.close(id);
    assert.ok(!m.metricsText().includes(`connection="${id}"`), "a closed session's series go away");
  });
});

test('a closed manager makes every session call SB_UNAVAILABLE', T, async () => {
  const m = new Manager({ workerThreads: 1 });
  const s = m.sessions;
  s.register('ds', 'k');
  const id = await s.open({ dataSource: 'ds', sessionKey: 'k', streams: ['a'] });
  await m.close();
  const U = ErrorCode.Unavailable;
  throws(() => s.register('ds', 'k2'), U, 'the manager is closed');
  throws(() => s.get(id), U, 'sessions are no longer available');
  throws(() => s.list(), U, 'the manager is closed');
  throws(() => s.deliver(id, 'a'), U, 'the manager is closed');
  throws(() => s.close(id), U, 'the manager is closed');
  await rejects(s.open({ dataSource: 'ds', sessionKey: 'k' }), U, 'the manager is closed');
  await rejects(s.commit(id, 'a', 1), U, 'the manager is closed');
  await rejects(s.committed('ds', 'k', 'a'), U, 'the manager is closed');
  await rejects(s.flush(), U, 'the manager is closed');
  assert.equal(s.openCount, 0);
});

test('durable store: with offsets.sync = interval commits are buffered, flush() writes them, and a new manager reads them', T, async () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, 'offsets.redb');
    await withSessions({ offsets: { path: file, sync: 'interval', syncInterval: '1h' } }, async (m, s) => {
      assert.equal(s.storeKind, 'durable');
      s.register('ds', 'k');
      const id = await s.open({ dataSource: 'ds', sessionKey: 'k', streams: ['a', 'b'] });
      await s.commit(id, 'a', 5);
      await s.commit(id, 'b', 6);
      assert.equal(s.bufferedCommits, 2);
      assert.equal(await s.committed('ds', 'k', 'a'), 5, 'buffered commits are visible');
      await s.flush();
      assert.equal(s.bufferedCommits, 0);
      await s.commit(id, 'a', 8); // written when the manager closes
      // Another manager cannot open the file while this one has it.
      throwsWithCode(() => new Manager({ offsetsPath: file }), ErrorCode.Io);
    });
    await withSessions({ offsetsPath: file }, async (m, s) => {
      assert.equal(await s.committed('ds', 'k', 'a'), 8, 'flushed on close');
      assert.equal(await s.committed('ds', 'k', 'b'), 6);
      s.register('ds', 'k');
      const id = await s.resume('ds', 'k', ['a', 'b']);
      assert.deepEqual(s.get(id).streams.map((x) => x.position), [8, 6]);
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('durable store: every commit a child process acknowledged survives its SIGKILL', T, async () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, 'offsets.redb');
    const child = spawn(process.execPath, [path.join(__dirname, 'sessions_child.js'), file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    let acked = 0;
    let ready = null;
    await within(30_000, new Promise((resolve, reject) => {
      readline.createInterface({ input: child.stdout }).on('line', (line) => {
        if (line.startsWith('READY ')) ready = line.slice(6);
        const m = /^ACK (\d+)$/.exec(line);
        if (m) {
          acked = Math.max(acked, Number(m[1]));
          // Kill it mid-stream, a while after the first acknowledgements.
          if (acked >= 25) {
            child.kill('SIGKILL');
            resolve();
          }
        }
      });
      exited.then(({ code, signal }) => {
        if (signal !== 'SIGKILL') reject(new Error(`child exited early (${code ?? signal}): ${stderr}`));
      });
    }), 'the child acknowledging commits');
    const { signal } = await within(10_000, exited, 'the killed child to exit');
    assert.equal(signal, 'SIGKILL');
    assert.equal(ready, 'durable');
    assert.ok(acked >= 25, `acked ${acked}`);
    await withSessions({ offsetsPath: file }, async (m, s) => {
      const committed = await s.committed('feed', 'k1', 's');
      assert.ok(committed !== null && committed >= acked, `committed ${committed} >= every acknowledged offset (${acked})`);
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
