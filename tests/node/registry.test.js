'use strict';
// The live-connection registry through the Node package (issue 9): registration,
// broadcast to topics, users and all with exclusions (per connection), slow outboxes
// and their policies, failing send callbacks (throw and rejection), heartbeats and
// stale cleanup on the manual clock, every limit, the auth hooks and their codes,
// list with filters and a cursor, disconnect, events in order, metrics, outbox
// iteration, envelopes, and a script that exits on its own.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');

const { sb, ROOT, within, throwsWithCode } = require('./helpers');

const { Manager, ErrorCode, PING, Registry } = sb;
const T = { timeout: 60_000 };

/** Runs `fn(manager, registry)` with a manual-clock manager of its own, closed afterwards. */
async function withRegistry(registry, fn) {
  const options = { workerThreads: 2, runtime: { clock: 'manual' } };
  if (Object.keys(registry).length > 0) options.registry = registry;
  const m = new Manager(options);
  try {
    return await fn(m, m.registry);
  } finally {
    await within(15_000, m.close(2000), 'manager.close');
  }
}

/** Waits (bounded) until `pred()` holds. */
async function until(what, pred, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A recorder of callback deliveries, per connection id. */
function recorder() {
  const got = new Map();
  const closed = new Map();
  const pings = new Map();
  const add = (map, id, v) => {
    if (!map.has(id)) map.set(id, []);
    map.get(id).push(v);
  };
  return {
    got,
    closed,
    pings,
    total: () => [...got.values()].reduce((n, v) => n + v.length, 0),
    of: (c) => got.get(c.id) ?? [],
    callbacks: {
      send: (msg, c) => add(got, c.id, typeof msg === 'string' ? msg : `bin:${msg.toString('hex')}`),
      ping: (c) => add(pings, c.id, true),
      close: (reason, c) => add(closed, c.id, reason),
    },
  };
}

function throws(fn, code, text) {
  const err = throwsWithCode(fn, code);
  assert.ok(err.message.includes(text), `message ${JSON.stringify(err.message)} should contain ${JSON.stringify(text)}`);
  return err;
}

/** Every queued event, as the program sees them. */
function drainEvents(m) {
  const out = [];
  for (let e = m.pollEvent(); e !== null && out.length < 100_000; e = m.pollEvent()) out.push(e);
  return out;
}

test('register with user, metadata and topics; subscribe, unsubscribe, metadata; errors with their codes', T, async () => {
  await withRegistry({}, async (m, r) => {
    const rec = recorder();
    const a = r.register({ user: 'alice', metadata: { ip: '10.0.0.1', room: '7' }, topics: ['news', 'chat', 'news'], ...rec.callbacks });
    const info = a.info();
    assert.equal(info.id, a.id);
    assert.equal(info.user, 'alice');
    assert.deepEqual(info.metadata, { ip: '10.0.0.1', room: '7' });
    assert.deepEqual(info.topics, ['chat', 'news']);
    assert.equal(info.state, 'active');
    assert.equal(info.sink, 'callback');
    assert.equal(a.subscribe('sport'), true);
    assert.equal(a.subscribe('sport'), false);
    assert.equal(r.unsubscribe(a, 'chat'), true);
    assert.equal(a.unsubscribe('chat'), false);
    a.setMetadata('room', null);
    a.setMetadata('lang', 'fr');
    assert.deepEqual(r.get(a.id).metadata, { ip: '10.0.0.1', lang: 'fr' });
    assert.deepEqual(r.get(a).topics, ['news', 'sport']);
    const o = r.registerOutbox({ topics: ['news'] });
    assert.equal(o.info().sink, 'outbox');
    assert.equal(o.info().user, null);
    assert.equal(r.size, 2);
    assert.ok(o.id > a.id, 'ids grow');

    const IA = ErrorCode.InvalidArgument;
    throws(() => r.registerOutbox({ topics: [''] }), IA, 'topics[0] must be a non-empty string');
    throws(() => r.registerOutbox({ user: '' }), IA, 'user must be a non-empty string');
    throws(() => r.registerOutbox({ metadata: { '': 'x' } }), IA, 'a metadata key must be a non-empty string');
    throws(() => a.subscribe(''), IA, 'topic must be a non-empty string');
    throws(() => r.register({ topics: ['x'] }), IA, 'register() needs send');
    throws(() => r.register({ send: 'nope' }), IA, 'send must be a function');
    throws(() => r.registerOutbox({ topics: 'news' }), IA, 'topics must be an array of strings');
    throws(() => r.registerOutbox({ metadata: { n: 1 } }), IA, 'metadata.n must be a string');
    throws(() => r.get(999_999_999), ErrorCode.NotFound, 'no registered connection with id 999999999');
    throws(() => r.get(-1), IA, 'connection id must be a whole number >= 0');
    throws(() => r.broadcast('x', {}), IA, 'a broadcast target must name at least one topic, user or connection id, or all');
    throws(() => r.broadcast('x', { topik: 'news' }), IA, 'unknown key "topik"');
    throws(() => r.broadcast(42, { all: true }), IA, 'a message must be a string, a Buffer or a Uint8Array');
    throws(() => r.list({ state: 'sleepy' }), IA, 'state must be one of active | idle, got "sleepy"');
    throws(() => r.send(424_242_424, 'x'), ErrorCode.NotFound, 'no registered connection with id 424242424');

    a.unregister('bye');
    throws(() => a.unregister('bye'), ErrorCode.NotFound, 'no registered connection');
    await until('close callback', () => rec.closed.has(a.id));
    assert.deepEqual(rec.closed.get(a.id), ['bye']);
    assert.equal(a.closed, true);
    assert.equal(a.closedReason, 'bye');
    await m.close();
    throws(() => r.get(o.id), ErrorCode.Unavailable, 'the manager is closed; the registry is no longer available');
    throws(() => r.registerOutbox({}), ErrorCode.Unavailable, 'the registry is no longer available');
    assert.equal(await o.next(), null, 'the outbox ended');
    assert.equal(o.closedReason, 'manager_closed');
  });
});

test('broadcast to topic, user and all with exclusions reaches exactly the right sinks', T, async () => {
  await withRegistry({}, async (m, r) => {
    const rec = recorder();
    const reg = (user, topics) => r.register({ user, topics, ...rec.callbacks });
    const a = reg('alice', ['news']);
    const b = reg('bob', ['news', 'chat']);
    const c = reg('carol', ['chat']);
    const a2 = reg('alice', []);
    const outbox = r.registerOutbox({ user: 'dave', topics: ['chat'] });
    const rep = r.broadcast('n1', { topic: 'news' });
    assert.equal(rep.recipients, 2);
    assert.equal(rep.queued, 2);
    assert.equal(rep.dropped, 0);
    assert.equal(rep.disconnected, 0);
    assert.ok(rep.elapsedMs >= 0);
    assert.equal(r.broadcast('c1', { topic: 'chat', except: [b] }).recipients, 2);
    assert.equal(r.broadcast('u1', { user: 'alice' }).recipients, 2);
    assert.equal(r.broadcast('m1', { topics: ['news', 'chat'], user: 'alice' }).recipients, 5, 'each connection once');
    assert.equal(r.broadcast('all1', { all: true, except: [a, c.id, outbox] }).recipients, 2);
    assert.equal(r.broadcast(Buffer.from([1, 2]), { ids: [c, a2.id] }).recipients, 2);
    assert.equal(r.send(b.id, 'direct').recipients, 1);
    const want = new Map([
      [a.id, ['n1', 'u1', 'm1']],
      [b.id, ['n1', 'm1', 'all1', 'direct']],
      [c.id, ['c1', 'm1', 'bin:0102']],
      [a2.id, ['u1', 'm1', 'all1', 'bin:0102']],
    ]);
    const total = [...want.values()].reduce((n, v) => n + v.length, 0);
    await until('deliveries', () => rec.total() === total);
    for (const [id, msgs] of want) assert.deepEqual(rec.got.get(id), msgs, `connection ${id}`);
    const items = [];
    for (let it = outbox.tryNext(); it !== undefined && items.length < 10; it = outbox.tryNext()) items.push(it);
    assert.deepEqual(items, ['c1', 'm1'], 'the outbox got its share');
    // Nothing else arrives afterwards.
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(rec.total(), total);
    await until('sent counted', () => r.stats().messagesSent === total + 2);
    const s = r.stats();
    assert.equal(s.messagesQueued, total + 2);
    assert.equal(s.broadcasts, 7);
  });
});

test('async send callbacks: one connection in order, a rejection is a failed delivery', T, async () => {
  await withRegistry({ maxSendFailures: 100 }, async (m, r) => {
    const got = [];
    let delay = 20;
    const slow = r.register({
      topics: ['t'],
      send: async (msg) => {
        const d = (delay = Math.max(0, delay - 5));
        await new Promise((res) => setTimeout(res, d));
        if (msg === 'bad') throw new Error('no socket');
        got.push(msg);
      },
    });
    for (const msg of ['1', '2', 'bad', '3', '4']) r.broadcast(msg, { topic: 't' });
    await until('async deliveries', () => got.length === 4);
    assert.deepEqual(got, ['1', '2', '3', '4'], 'in queue order though later sends finish sooner');
    await until('failure counted', () => slow.info().failed === 1);
    const info = slow.info();
    assert.equal(info.sent, 4);
    assert.equal(r.stats().messagesFailed, 1);
  });
});

test('a slow outbox that never drains meets its policy while the others get every message', T, async () => {
  for (const policy of ['disconnect', 'drop_oldest', 'drop_new']) {
    await withRegistry({ queueMaxMessages: 4, queueFullPolicy: policy }, async (m, r) => {
      const slow = r.registerOutbox({ topics: ['t'] });
      const fast = r.registerOutbox({ topics: ['t'] });
      const rec = recorder();
      const cb = r.register({ topics: ['t'], ...rec.callbacks });
      const fastGot = [];
      const reports = [];
      for (let i = 0; i < 10; i++) {
        reports.push(r.broadcast(String(i), { topic: 't' }));
        for (let it = fast.tryNext(); it !== undefined && it !== null; it = fast.tryNext()) fastGot.push(it);
        // The callback connection keeps up too (its queue drains between broadcasts).
        await until('callback delivery', () => rec.of(cb).length === i + 1);
      }
      const all = Array.from({ length: 10 }, (_, i) => String(i));
      assert.deepEqual(fastGot, all, policy);
      assert.deepEqual(rec.of(cb), all, policy);
      const slowItems = [];
      for (let it = slow.tryNext(); it !== undefined && it !== null && slowItems.length < 20; it = slow.tryNext()) slowItems.push(it);
      const events = drainEvents(m).filter((e) => e.kind === 'slow_consumer');
      assert.equal(events.length, 1, `${policy}: one slow-consumer event`);
      assert.equal(events[0].connectionId, slow.id);
      assert.equal(events[0].reason, policy);
      if (policy === 'disconnect') {
        assert.deepEqual(slowItems, []);
        assert.equal(await slow.next(), null);
        assert.equal(slow.closedReason, 'slow_consumer');
        assert.equal(r.has(slow), false);
        assert.equal(reports[4].disconnected, 1);
        assert.equal(r.stats().disconnects.slow_consumer, 1);
      } else if (policy === 'drop_oldest') {
        assert.deepEqual(slowItems, ['6', '7', '8', '9']);
        assert.equal(reports[4].dropped, 1);
      } else {
        assert.deepEqual(slowItems, ['0', '1', '2', '3']);
        assert.equal(reports.reduce((n, x) => n + x.dropped, 0), 6);
      }
    });
  }
});

test('a failing send callback is removed after registry.maxSendFailures (throw and rejection)', T, async () => {
  for (const mode of ['throw', 'reject']) {
    await withRegistry({ maxSendFailures: 3 }, async (m, r) => {
      let calls = 0;
      const closed = [];
      const bad = r.register({
        topics: ['t'],
        send: mode === 'throw'
          ? () => { calls++; throw new Error('socket gone'); }
          : async () => { calls++; throw new Error('socket gone'); },
        close: (reason) => closed.push(reason),
      });
      const rec = recorder();
      const good = r.register({ topics: ['t'], ...rec.callbacks });
      for (let i = 0; i < 5; i++) {
        r.broadcast(String(i), { topic: 't' });
        await until('good delivery', () => rec.of(good).length === i + 1);
      }
      await until('removal', () => !r.has(bad));
      await until('close callback', () => closed.length === 1);
      assert.deepEqual(closed, ['send_failed'], mode);
      assert.equal(calls, 3, mode);
      assert.equal(bad.closedReason, 'send_failed');
      assert.equal(r.has(good), true);
      const s = r.stats();
      assert.equal(s.messagesFailed, 3);
      assert.equal(s.disconnects.send_failed, 1);
      const ev = drainEvents(m).find((e) => e.kind === 'unregistered' && e.connectionId === bad.id);
      assert.ok(ev, 'an unregistered event');
      assert.equal(ev.reason, 'send_failed');
      assert.ok(ev.message.includes('socket gone'), ev.message);
    });
  }
});

test('heartbeats and stale cleanup on the manual clock', T, async () => {
  await withRegistry({ heartbeatInterval: '10s', connectionTimeout: '30s', cleanupInterval: 0 }, async (m, r) => {
    const rec = recorder();
    const quiet = r.register({ ...rec.callbacks });
    const chatty = r.registerOutbox({});
    assert.equal(r.cleanup().pinged, 0);
    m.advanceClock('10s');
    assert.deepEqual(r.cleanup(), { removed: 0, pinged: 2 });
    assert.equal(chatty.tryNext(), PING);
    assert.equal(PING, Registry.PING);
    await until('ping callback', () => (rec.pings.get(quiet.id) ?? []).length === 1);
    assert.equal(r.get(quiet).state, 'idle');
    assert.equal(r.list({ state: 'idle' }).connections.length, 2);
    m.advanceClock(15_000);
    chatty.touch();
    assert.equal(chatty.info().state, 'active');
    m.advanceClock(15_000);
    const rep = r.cleanup();
    assert.equal(rep.removed, 1, 'the quiet one is stale at 30 s; the chatty one touched at 25 s');
    assert.equal(r.has(quiet), false);
    assert.equal(r.has(chatty), true);
    await until('close callback', () => rec.closed.has(quiet.id));
    assert.deepEqual(rec.closed.get(quiet.id), ['stale']);
    assert.equal(r.stats().cleanupRuns, 3);
    // A ping callback that throws is a failed delivery.
    const pingFails = r.register({ send() {}, ping() { throw new Error('cannot ping'); } });
    m.advanceClock('10s');
    r.cleanup();
    await until('ping failure counted', () => pingFails.info().failed === 1);
  });
  const sys = new Manager({ workerThreads: 1 });
  try {
    throws(() => sys.advanceClock(1000), ErrorCode.FailedPrecondition, 'advance_clock needs a manager created with runtime.clock = manual');
  } finally {
    await sys.close();
  }
});

test('every limit refuses with SB_RESOURCE_EXHAUSTED naming it, and changes nothing', T, async () => {
  await withRegistry({ maxTotalConnections: 3, maxConnectionsPerTopic: 2, maxConnectionsPerUser: 1, maxTopicsPerConnection: 2 }, async (m, r) => {
    const RE = ErrorCode.ResourceExhausted;
    r.registerOutbox({ user: 'u', topics: ['t'] });
    throws(() => r.registerOutbox({ user: 'u' }), RE, 'registry.max_connections_per_user (1) reached: user "u" already has 1 connections');
    const b = r.registerOutbox({ topics: ['t'] });
    throws(() => r.registerOutbox({ topics: ['t'] }), RE, 'registry.max_connections_per_topic (2) reached: topic "t" already has 2 subscribers');
    throws(() => r.register({ topics: ['x', 'y', 'z'], send() {} }), RE, 'registry.max_topics_per_connection (2) reached');
    const c = r.registerOutbox({});
    throws(() => r.registerOutbox({}), RE, 'registry.max_total_connections (3) reached: 3 connections are registered');
    throws(() => c.subscribe('t'), RE, 'registry.max_connections_per_topic (2)');
    b.subscribe('x');
    throws(() => b.subscribe('y'), RE, 'registry.max_topics_per_connection (2)');
    assert.equal(r.size, 3);
    assert.deepEqual(c.info().topics, []);
    const s = r.stats();
    assert.deepEqual(s.topicCounts, [['t', 2], ['x', 1]]);
    assert.equal(Object.values(s.rejections).reduce((a, n) => a + n, 0), 6);
    assert.equal(s.rejections['registry.max_total_connections'], 1);
    const rejected = drainEvents(m).filter((e) => e.kind === 'rejected');
    assert.equal(rejected.length, 6);
    assert.ok(rejected.every((e) => e.reason.startsWith('registry.max_')));
  });
});

test('the auth hooks: a grant, SB_UNAUTHENTICATED and SB_PERMISSION_DENIED; no hook is SB_FAILED_PRECONDITION', T, async () => {
  await withRegistry({}, async (m, r) => {
    throws(() => r.registerOutbox({ token: 'ok:x' }), ErrorCode.FailedPrecondition, 'no authenticate hook is set');
    const seen = [];
    r.setAuthenticator(
      (token) => {
        if (token === 'boom') throw new Error('the token service is down');
        if (!token.startsWith('ok:')) return null;
        return { user: token.slice(3), metadata: { auth: 'token' } };
      },
      (id, user, topic) => {
        seen.push([typeof id, user, topic]);
        if (topic === 'explode') throw new Error('policy error');
        return !topic.startsWith('admin.') || user === 'root';
      },
    );
    const a = r.register({ token: 'ok:alice', topics: ['news'], send() {} });
    assert.equal(a.info().user, 'alice');
    assert.deepEqual(a.info().metadata, { auth: 'token' });
    assert.deepEqual(seen, [['number', 'alice', 'news']]);
    throws(() => r.registerOutbox({ token: 'nope' }), ErrorCode.Unauthenticated, 'the authenticate hook refused the token: it returned null');
    throws(() => r.registerOutbox({ token: 'boom' }), ErrorCode.Unauthenticated, 'the authenticate hook refused the token: the token service is down');
    throws(() => a.subscribe('admin.logs'), ErrorCode.PermissionDenied, 'the authorize hook refused topic "admin.logs"');
    throws(() => a.subscribe('explode'), ErrorCode.PermissionDenied, 'policy error');
    throws(() => r.registerOutbox({ token: 'ok:bob', topics: ['admin.x'] }), ErrorCode.PermissionDenied, 'the authorize hook refused topic "admin.x"');
    const root = r.registerOutbox({ token: 'ok:root', topics: ['admin.x'] });
    assert.deepEqual(root.info().topics, ['admin.x']);
    assert.equal(r.size, 2, 'refused registrations changed nothing');
    assert.equal(a.subscribe('sport'), true);
    // Cleared: a token is again a precondition failure, topics are free.
    r.setAuthenticator(null);
    throws(() => r.registerOutbox({ token: 'ok:x' }), ErrorCode.FailedPrecondition, 'no authenticate hook is set');
    assert.equal(a.subscribe('admin.y'), true);
    throws(() => r.setAuthenticator(null, () => true), ErrorCode.InvalidArgument, 'needs authenticate');
  });
});

test('list with filters and a cursor', T, async () => {
  await withRegistry({ maxTotalConnections: 0, maxConnectionsPerTopic: 0 }, async (m, r) => {
    const ids = [];
    const keep = [];
    for (let i = 0; i < 250; i++) {
      const o = r.registerOutbox({ user: `u${i % 5}`, metadata: { parity: i % 2 === 0 ? 'even' : 'odd' }, topics: i % 3 === 0 ? ['three'] : [] });
      ids.push(o.id);
      keep.push(o);
    }
    const pages = (filter) => {
      const seen = [];
      let cursor = null;
      for (let n = 0; n < 1000; n++) {
        const page = r.list({ ...filter, cursor });
        seen.push(...page.connections.map((c) => c.id));
        if (page.nextCursor === null) return seen;
        cursor = page.nextCursor;
      }
      throw new Error('too many pages');
    };
    assert.deepEqual(pages({ limit: 50 }), ids);
    assert.deepEqual(pages({ topic: 'three', meta: ['parity', 'even'], limit: 7 }), ids.filter((_, i) => i % 6 === 0));
    const u1 = r.list({ user: 'u1', limit: 1000 });
    assert.equal(u1.connections.length, 50);
    assert.ok(u1.connections.every((c) => c.user === 'u1'));
    assert.equal(u1.nextCursor, null);
    assert.equal(r.list().connections.length, 100, 'the default page');
    m.advanceClock(60_000);
    keep[0].touch();
    assert.equal(r.list({ minIdleMs: 59_000, limit: 1000 }).connections.length, 249);
    assert.deepEqual(r.list({ state: 'active' }).connections.map((c) => c.id), [ids[0]]);
    // Out of range is the caller's error, not a panic turned into SB_INTERNAL.
    assert.throws(() => r.list({ minIdleMs: 1e300 }), { code: 'SB_INVALID_ARGUMENT' });
    assert.throws(() => r.list({ state: 'asleep' }), { code: 'SB_INVALID_ARGUMENT', message: /active \| idle/ });
    const rec = r.list({ limit: 1, cursor: ids[9] }).connections[0];
    assert.equal(rec.id, ids[10]);
    assert.ok(rec.ageMs >= 60_000 && rec.idleMs >= 60_000, JSON.stringify(rec));
  });
});

test('disconnect by user and topic with a reason; the rest by manager close', T, async () => {
  await withRegistry({}, async (m, r) => {
    const rec = recorder();
    const a = r.register({ user: 'alice', topics: ['x'], ...rec.callbacks });
    const a2 = r.register({ user: 'alice', ...rec.callbacks });
    const b = r.register({ user: 'bob', topics: ['x'], ...rec.callbacks });
    const c = r.register({ user: 'carol', topics: ['x'], ...rec.callbacks });
    assert.equal(r.disconnect({ user: 'alice' }, 'banned'), 2);
    assert.equal(r.disconnect({ topic: 'x', except: [c] }, 'maintenance'), 1);
    assert.equal(r.disconnect({ users: ['nobody'] }), 0);
    await until('close callbacks', () => rec.closed.size === 3);
    assert.deepEqual(rec.closed.get(a.id), ['banned']);
    assert.deepEqual(rec.closed.get(a2.id), ['banned']);
    assert.deepEqual(rec.closed.get(b.id), ['maintenance']);
    assert.equal(r.size, 1);
    assert.equal(r.stats().disconnects.banned, 2);
    throws(() => r.disconnect({}, 'x'), ErrorCode.InvalidArgument, 'a disconnect target must name at least one');
    await m.close();
    assert.deepEqual(rec.closed.get(c.id), ['manager_closed'], 'close callbacks have run when close() resolves');
  });
});

test('events come in order with topic, user and reason', T, async () => {
  await withRegistry({}, async (m, r) => {
    const a = r.registerOutbox({ user: 'alice', topics: ['a'] });
    a.subscribe('b');
    a.unsubscribe('a');
    a.unregister('done');
    const got = drainEvents(m).filter((e) => e.connectionId === a.id).map((e) => [e.kind, e.user, e.topic, e.reason]);
    assert.deepEqual(got, [
      ['registered', 'alice', null, null],
      ['subscribed', 'alice', 'a', null],
      ['subscribed', 'alice', 'b', null],
      ['unsubscribed', 'alice', 'a', null],
      ['unregistered', 'alice', null, 'done'],
    ]);
    // And through the 'event' listener.
    const seen = [];
    m.on('event', (e) => seen.push(e.kind));
    const b = r.registerOutbox({ topics: ['z'] });
    b.unregister();
    await until('listener events', () => seen.length >= 3);
    assert.deepEqual(seen, ['registered', 'subscribed', 'unregistered']);
  });
});

test('the switchboard_registry_* metrics lines', T, async () => {
  await withRegistry({ metricsTopTopics: 1 }, async (m, r) => {
    const a = r.registerOutbox({ user: 'u', topics: ['big', 'small'] });
    const b = r.registerOutbox({ topics: ['big'] });
    r.broadcast('x', { topic: 'big' });
    assert.equal(a.tryNext(), 'x');
    b.unregister('gone');
    const text = m.metricsText();
    for (const line of [
      'switchboard_registry_connections 1',
      'switchboard_registry_topic_connections{topic="big"} 1',
      'switchboard_registry_topic_connections{topic="_other"} 1',
      'switchboard_registry_messages_total{result="queued"} 2',
      'switchboard_registry_messages_total{result="sent"} 1',
      'switchboard_registry_messages_total{result="dropped"} 1',
      'switchboard_registry_disconnects_total{reason="gone"} 1',
      'switchboard_registry_registrations_total 2',
      'switchboard_registry_broadcasts_total 1',
    ]) {
      assert.ok(text.includes(line), `missing ${line} in\n${text}`);
    }
  });
});

test('an outbox: await next(), for await ... of, binary and text, the end and its reason', T, async () => {
  await withRegistry({}, async (m, r) => {
    const o = r.registerOutbox({ topics: ['t'] });
    const reader = (async () => {
      const got = [];
      for await (const item of o) got.push(Buffer.isBuffer(item) ? `bin:${item.toString('hex')}` : item);
      return got;
    })();
    r.broadcast('a', { topic: 't' });
    await new Promise((res) => setTimeout(res, 10));
    r.broadcast(new Uint8Array([0xff]), { topic: 't' });
    await new Promise((res) => setTimeout(res, 10));
    r.send(o, 'c');
    await new Promise((res) => setTimeout(res, 10));
    o.unregister('end');
    assert.deepEqual(await within(5000, reader, 'outbox iteration'), ['a', 'bin:ff', 'c']);
    assert.equal(o.closedReason, 'end');
    assert.equal(await o.next(), null);
    assert.equal(o.tryNext(), null);
    // A closed outbox counts failures, then leaves.
    const m2 = new Manager({ workerThreads: 1, registry: { maxSendFailures: 2 } });
    try {
      const c = m2.registry.registerOutbox({ topics: ['t'] });
      c.close();
      m2.registry.broadcast('1', { topic: 't' });
      assert.equal(m2.registry.has(c), true);
      m2.registry.broadcast('2', { topic: 't' });
      assert.equal(m2.registry.has(c), false);
      assert.equal(m2.registry.stats().disconnects.send_failed, 1);
    } finally {
      await m2.close();
    }
  });
});

test('the envelope helper: encode and parse, with core\'s errors', T, () => {
  const text = sb.envelope('notification', { topic: 'news', data: { id: 7, tags: ['a'] } });
  const e = sb.parseEnvelope(text);
  assert.equal(e.type, 'notification');
  assert.equal(e.topic, 'news');
  assert.deepEqual(e.data, { id: 7, tags: ['a'] });
  assert.match(e.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(e.error, null);
  const err = sb.parseEnvelope(sb.envelope('error', { error: 'bad' }));
  assert.deepEqual(err, { type: 'error', topic: null, data: null, timestamp: err.timestamp, error: 'bad' });
  assert.equal(typeof err.timestamp, 'string');
  throws(() => sb.envelope('', {}), ErrorCode.InvalidArgument, "an envelope's type must be a non-empty string");
  throws(() => sb.parseEnvelope('[1]'), ErrorCode.InvalidArgument, 'an envelope must be a JSON object');
  throws(() => sb.parseEnvelope('{"topic":"x"}'), ErrorCode.InvalidArgument, 'an envelope must have a string "type" field');
  throws(() => sb.parseEnvelope('nope'), ErrorCode.InvalidArgument, 'an envelope must be JSON text');
  throws(() => sb.envelope('x', { data: 1n }), ErrorCode.InvalidArgument, 'data must be JSON-serialisable');
  assert.equal(ErrorCode.Unauthenticated, 'SB_UNAUTHENTICATED');
  assert.equal(ErrorCode.PermissionDenied, 'SB_PERMISSION_DENIED');
});

test('a script with callback and outbox connections and no close() exits on its own', T, async () => {
  const script = `
    const sb = require(${JSON.stringify(path.join(ROOT, 'bindings', 'node'))});
    const m = new sb.Manager({ workerThreads: 1, registry: { heartbeatInterval: '50ms' } });
    const r = m.registry;
    let n = 0;
    r.register({ topics: ['t'], send: () => { n++; }, ping: () => {} });
    const o = r.registerOutbox({ topics: ['t'] });
    r.broadcast('x', { topic: 't' });
    setTimeout(() => { console.log('sent', n, o.tryNext()); }, 100);
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const code = await within(20_000, new Promise((res) => child.on('exit', res)), 'child exit');
  assert.equal(code, 0);
  assert.equal(out.trim(), 'sent 1 x');
});
