'use strict';
// The live-connection registry (`manager.registry`): core's registry, wrapped.
//
// Every check and message comes from the Rust core; this file shapes arguments, keeps
// the connections' JS callbacks (they cannot leave the JS thread) and the
// authenticate/authorize hooks, and turns native values into the program's.
//
// Deliveries: core's delivery tasks buffer each round's items and hand them to
// `dispatch(kinds, ids, args, messages, reasons)` here in one call of a weak
// threadsafe function (see bindings/node/src/registry/bridge.rs). `dispatch` calls each
// connection's `send` / `ping` / `close` and reports the results in one native call
// per batch. A `send` that returns a Promise holds that connection's later items until
// it settles, so one connection's messages always go out in order.

// dispatch kinds, mirrored in src/registry/bridge.rs.
const SEND = 0;
const PING_KIND = 1;
const CLOSE = 2;
const BARRIER = 3;

/** What an outbox yields for a heartbeat: ping the client (e.g. `ws.ping()`). */
const PING = Symbol('switchboard.PING');

const kFlush = Symbol('flush');
const kRelease = Symbol('release');

module.exports = function makeRegistry({ native, invalid, describe, checkString, messageOf, flushThrough, barrierReached }) {
  function isThenable(v) {
    return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function';
  }

  function warn(what, err) {
    process.emitWarning(`registry: the ${what} callback threw: ${messageOf(err)}`, { code: 'SWITCHBOARD_CALLBACK' });
  }

  function optionsObject(value, what) {
    if (value === undefined || value === null) return {};
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw invalid(`${what} must be an options object, got ${describe(value)}`);
    }
    return value;
  }

  function optString(value, what) {
    if (value === undefined || value === null) return null;
    return checkString(value, what);
  }

  function optFunction(value, what) {
    if (value === undefined || value === null) return null;
    if (typeof value !== 'function') throw invalid(`${what} must be a function, got ${describe(value)}`);
    return value;
  }

  function strings(value, what) {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) throw invalid(`${what} must be an array of strings, got ${describe(value)}`);
    value.forEach((v, i) => checkString(v, `${what}[${i}]`));
    return value;
  }

  /** `{ key: 'value' }` (or a Map) as [key, value] pairs. */
  function metadataPairs(value, what = 'metadata') {
    if (value === undefined || value === null) return [];
    const entries = value instanceof Map ? [...value.entries()] : typeof value === 'object' && !Array.isArray(value) ? Object.entries(value) : null;
    if (entries === null) throw invalid(`${what} must be an object of string values, got ${describe(value)}`);
    return entries.map(([k, v]) => {
      checkString(k, `${what} key`);
      return [k, checkString(v, `${what}.${k}`)];
    });
  }

  /** A connection id: a number, or a Connection / Outbox. */
  function idOf(value, what) {
    if (value instanceof Member) return value.id;
    if (typeof value !== 'number') throw invalid(`${what} must be a connection id (a number) or a Connection, got ${describe(value)}`);
    return value;
  }

  function idList(value, what) {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) return [idOf(value, what)];
    return value.map((v, i) => idOf(v, `${what}[${i}]`));
  }

  const TARGET_KEYS = new Set(['all', 'topic', 'topics', 'user', 'users', 'id', 'ids', 'except']);

  /**
   * `{ topic, topics, user, users, id, ids, all, except }` as the native target (`{ all,
   * topics, users, ids, except }`). The caller's arrays are copied, never changed.
   */
  function targetFrom(value, what) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw invalid(`${what} target must be an object such as { topic: 'news' }, { user: 'alice' } or { all: true }, got ${describe(value)}`);
    }
    for (const k of Object.keys(value)) {
      if (!TARGET_KEYS.has(k)) throw invalid(`${what} target has an unknown key ${JSON.stringify(k)}; use ${[...TARGET_KEYS].join(', ')}`);
    }
    const topics = [...strings(value.topics, 'topics')];
    if (value.topic !== undefined && value.topic !== null) topics.push(checkString(value.topic, 'topic'));
    const users = [...strings(value.users, 'users')];
    if (value.user !== undefined && value.user !== null) users.push(checkString(value.user, 'user'));
    const ids = idList(value.ids, 'ids');
    if (value.id !== undefined && value.id !== null) ids.push(idOf(value.id, 'id'));
    let all = false;
    if (value.all !== undefined && value.all !== null) {
      if (typeof value.all !== 'boolean') throw invalid(`all must be a boolean, got ${describe(value.all)}`);
      all = value.all;
    }
    return { all, topics, users, ids, except: idList(value.except, 'except') };
  }

  /**
   * A list filter (`{ user, topic, meta: [key, value], state, minIdleMs, limit, cursor }`)
   * as the native one (`{ user, topic, metaKey, metaValue, state, minIdleMs, limit,
   * cursor }`, absent fields null).
   */
  function listFilterFrom(filter) {
    const f = optionsObject(filter, 'list() filter');
    let metaKey = null;
    let metaValue = null;
    if (f.meta !== undefined && f.meta !== null) {
      if (!Array.isArray(f.meta) || f.meta.length !== 2) throw invalid(`meta must be a [key, value] pair, got ${describe(f.meta)}`);
      metaKey = checkString(f.meta[0], 'meta key');
      metaValue = checkString(f.meta[1], 'meta value');
    }
    const num = (v, what) => {
      if (v === undefined || v === null) return null;
      if (typeof v !== 'number') throw invalid(`${what} must be a number, got ${describe(v)}`);
      return v;
    };
    return {
      user: optString(f.user, 'user'),
      topic: optString(f.topic, 'topic'),
      metaKey,
      metaValue,
      state: optString(f.state, 'state'),
      minIdleMs: num(f.minIdleMs, 'minIdleMs'),
      limit: num(f.limit, 'limit'),
      cursor: f.cursor === undefined || f.cursor === null ? null : idOf(f.cursor, 'cursor'),
    };
  }

  /** A message as the native side takes it: a string (text) or a Buffer (binary). */
  function dataOf(msg) {
    if (typeof msg === 'string' || Buffer.isBuffer(msg)) return msg;
    if (msg instanceof Uint8Array) return Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
    if (msg instanceof ArrayBuffer) return Buffer.from(msg);
    throw invalid(`a message must be a string, a Buffer or a Uint8Array, got ${describe(msg)}`);
  }

  // Snapshots and reports come from the native side in their public shape (see
  // src/registry/convert.rs), but for maps keyed by the program's strings (metadata,
  // disconnect reasons): those come as pairs and become objects here, where
  // Object.fromEntries defines each key (a native property set would treat
  // `__proto__` as the prototype).

  /** A native connection snapshot, its metadata pairs made an object. */
  function infoFrom(c) {
    c.metadata = Object.fromEntries(c.metadata);
    return c;
  }

  /** Native registry statistics, their disconnect and rejection pairs made objects. */
  function statsFrom(s) {
    s.disconnects = Object.fromEntries(s.disconnects);
    s.rejections = Object.fromEntries(s.rejections);
    return s;
  }

  // What the cluster (cluster.js) takes and returns in the registry's shapes.
  const shapes = { optString, targetFrom, listFilterFrom, dataOf, infoFrom, statsFrom };

  // ---- delivery ---------------------------------------------------------------------

  /**
   * The JS half of one registry: the callback connections by id, and the native
   * registry (set once made). Deliberately not the Registry itself: the threadsafe
   * function holds `dispatch`, which must not keep the manager reachable.
   */
  function makeState() {
    return { conns: new Map(), native: null };
  }

  /** Runs one item for connection entry `e`; returns true when it went async. */
  function runItem(state, e, kind, value, ok) {
    if (kind === CLOSE) {
      state.conns.delete(e.conn.id);
      e.conn._closed(value);
      if (e.close !== null) {
        try {
          const r = e.close(value, e.conn);
          if (isThenable(r)) r.then(undefined, (err) => warn('close', err));
        } catch (err) {
          warn('close', err);
        }
      }
      return false;
    }
    const fn = kind === SEND ? e.send : e.ping;
    if (fn === null) return false;
    let r;
    try {
      r = kind === SEND ? fn(value, e.conn) : fn(e.conn);
    } catch (err) {
      state.native.reportFailed(e.conn.id, messageOf(err));
      return false;
    }
    if (isThenable(r)) {
      const id = e.conn.id;
      e.busy = true;
      r.then(
        () => {
          if (kind === SEND) state.native.reportSent([id]);
          drain(state, e);
        },
        (err) => {
          try {
            state.native.reportFailed(id, messageOf(err));
          } finally {
            drain(state, e);
          }
        },
      );
      return true;
    }
    if (kind === SEND) ok.push(e.conn.id);
    return false;
  }

  /** After an async item settled: runs the connection's held items in order. */
  function drain(state, e) {
    e.busy = false;
    const ok = [];
    try {
      while (e.backlog.length > 0 && !e.busy) {
        const [kind, value] = e.backlog.shift();
        runItem(state, e, kind, value, ok);
      }
    } finally {
      if (ok.length > 0) state.native.reportSent(ok);
    }
  }

  function makeDispatch(state) {
    return function dispatch(kinds, ids, args, messages, reasons) {
      const ok = [];
      try {
        for (let i = 0; i < kinds.length; i++) {
          const kind = kinds[i];
          if (kind === BARRIER) {
            barrierReached(ids[i]);
            continue;
          }
          const e = state.conns.get(ids[i]);
          if (e === undefined) continue;
          const value = kind === SEND ? messages[args[i]] : kind === CLOSE ? reasons[args[i]] : undefined;
          if (e.busy) {
            e.backlog.push([kind, value]);
            continue;
          }
          runItem(state, e, kind, value, ok);
        }
      } catch (err) {
        // Nothing may be thrown back into the native caller.
        warn('dispatch', err);
      } finally {
        if (ok.length > 0 && state.native !== null) state.native.reportSent(ok);
      }
    };
  }

  // ---- classes ----------------------------------------------------------------------

  /** What a Connection and an Outbox share: the registry's calls on one id. */
  class Member {
    #registry;
    #id;
    #closedReason = null;

    /** @internal */
    constructor(registry, id) {
      this.#registry = registry;
      this.#id = id;
    }

    /** The connection's id: unique in the process, never reused. */
    get id() {
      return this.#id;
    }

    /** The registry it belongs to. */
    get registry() {
      return this.#registry;
    }

    /** Whether it left the registry (its close callback ran, or its outbox ended). */
    get closed() {
      return this.#closedReason !== null;
    }

    /** Why it left (`stale`, `send_failed`, `slow_consumer`, `manager_closed`, ...), or null. */
    get closedReason() {
      return this.#closedReason;
    }

    /** @internal */
    _closed(reason) {
      if (this.#closedReason === null) this.#closedReason = reason;
    }

    /** Records traffic from the client now (call it on every message, a pong included). */
    touch() {
      this.#registry.touch(this.#id);
    }

    /** Subscribes to `topic`; false if it already was. */
    subscribe(topic) {
      return this.#registry.subscribe(this.#id, topic);
    }

    /** Unsubscribes from `topic`; false if it was not subscribed. */
    unsubscribe(topic) {
      return this.#registry.unsubscribe(this.#id, topic);
    }

    /** Sets one metadata entry, or removes it with `null`. */
    setMetadata(key, value) {
      this.#registry.setMetadata(this.#id, key, value);
    }

    /** A snapshot: user, metadata, topics, state, queue and counters. */
    info() {
      return this.#registry.get(this.#id);
    }

    /** Leaves the registry for `reason` (default `unregistered`). */
    unregister(reason) {
      this.#registry.unregister(this.#id, reason);
    }

    /** Queues `msg` for this connection alone. */
    send(msg) {
      return this.#registry.send(this.#id, msg);
    }
  }

  /** A connection registered with a send callback (`registry.register()`). */
  class Connection extends Member {
    toString() {
      return `Connection(id=${this.id}${this.closed ? `, closed: ${this.closedReason}` : ''})`;
    }
  }

  /**
   * A connection whose messages the program pulls (`registry.registerOutbox()`):
   * `await outbox.next()` or `for await (const item of outbox)`. Items are a string
   * (text message), a Buffer (binary message) or `PING`; at the end `next()` resolves
   * to `null`, iteration stops, and `closedReason` says why.
   */
  class Outbox extends Member {
    #native;

    /** @internal */
    constructor(registry, nativeOutbox) {
      super(registry, nativeOutbox.id);
      this.#native = nativeOutbox;
    }

    #item(it) {
      if (it.kind === 0) return it.data;
      if (it.kind === 1) return PING;
      this._closed(it.reason);
      return null;
    }

    /** The next item at once, or `undefined` when none is queued (`null` once closed). */
    tryNext() {
      if (this.closed) return null;
      const it = this.#native.tryNext();
      return it === null || it === undefined ? undefined : this.#item(it);
    }

    /** The next item (a string, a Buffer or `PING`), waiting off the event loop; `null` once closed. */
    async next() {
      if (this.closed) return null;
      let it = this.#native.tryNext();
      if (it === null || it === undefined) it = await this.#native.next();
      return this.#item(it);
    }

    /** Records traffic from the client now. */
    touch() {
      this.#native.touch();
    }

    /**
     * Closes the outbox: nothing more is queued for it and later deliveries count as
     * failed (after `registry.maxSendFailures` it is removed). To leave at once, use
     * `unregister(reason)`.
     */
    close() {
      this.#native.close();
    }

    async *[Symbol.asyncIterator]() {
      for (;;) {
        const item = await this.next();
        if (item === null) return;
        yield item;
      }
    }

    toString() {
      return `Outbox(id=${this.id}${this.closed ? `, closed: ${this.closedReason}` : ''})`;
    }
  }

  /**
   * The live-connection registry of a manager (`manager.registry`): connections with
   * a user, metadata and topics; broadcast with an except set; bounded queues with a
   * slow-consumer policy; heartbeats and stale cleanup; limits; an authentication
   * hook; listing, disconnect and statistics. Configured by the manager's
   * `registry.*` keys. Every call is synchronous and never waits (a broadcast only
   * queues); only `outbox.next()` returns a Promise.
   */
  class Registry {
    #native;
    #manager;
    #state;
    #authenticate = null;
    #authorize = null;

    /** @internal */
    constructor(nativeManager, manager) {
      this.#state = makeState();
      this.#native = nativeManager.registry(makeDispatch(this.#state));
      this.#state.native = this.#native;
      this.#manager = manager;
    }

    /** The manager it belongs to. */
    get manager() {
      return this.#manager;
    }

    /** Connections registered now. */
    get size() {
      return this.#native.len();
    }

    #registration(options, what) {
      const o = optionsObject(options, `${what}() options`);
      return [
        optString(o.user, 'user'),
        metadataPairs(o.metadata),
        strings(o.topics, 'topics'),
        optString(o.token, 'token'),
      ];
    }

    /**
     * Registers a connection whose messages go to `send(msg, connection)` (msg: a
     * string for text, else a Buffer), called on the JS thread; it may return a
     * Promise (a throw or a rejection is a failed delivery). `ping(connection)` is
     * called for heartbeats, `close(reason, connection)` once when it leaves.
     */
    register(options) {
      const o = optionsObject(options, 'register() options');
      const send = optFunction(o.send, 'send');
      if (send === null) throw invalid('register() needs send: a function (msg, connection) => void | Promise; for a pull outbox use registerOutbox()');
      const ping = optFunction(o.ping, 'ping');
      const close = optFunction(o.close, 'close');
      const reg = this.#registration(o, 'register');
      const id = this.#native.register(...reg, ping !== null, this.#authenticate, this.#authorize);
      const conn = new Connection(this, id);
      this.#state.conns.set(id, { conn, send, ping, close, busy: false, backlog: [] });
      return conn;
    }

    /** Registers a connection whose messages the program pulls from the returned Outbox. */
    registerOutbox(options) {
      const reg = this.#registration(options, 'registerOutbox');
      return new Outbox(this, this.#native.registerOutbox(...reg, this.#authenticate, this.#authorize));
    }

    /**
     * Sets the authentication hook (or clears it with `null`). `authenticate(token)`
     * runs on register with a token and returns `{ user, metadata }`; `null`, `false`
     * or a throw refuses (SB_UNAUTHENTICATED). `authorize(id, user, topic)` runs on
     * every subscribe (and the topics given to register); `false` or a throw refuses
     * (SB_PERMISSION_DENIED). Both run synchronously on the JS thread.
     *
     * The hooks are also installed in core for the server's hub (`server.listen`):
     * a WebSocket client's token and subscribes reach them from the library's
     * threads, which wait (at most 5 s, then refuse) for the JS thread to run them.
     */
    setAuthenticator(authenticate, authorize) {
      if (authenticate === null || authenticate === undefined) {
        if (authorize !== undefined && authorize !== null) throw invalid('setAuthenticator() needs authenticate when authorize is given');
        this.#native.setAuthenticator(null, null);
        this.#authenticate = null;
        this.#authorize = null;
        return;
      }
      const authn = optFunction(authenticate, 'authenticate');
      const authz = optFunction(authorize, 'authorize');
      this.#authenticate = (token) => {
        const refuse = (why) => ({ ok: false, metadata: [], why });
        let g;
        try {
          g = authn(token);
        } catch (err) {
          return refuse(messageOf(err));
        }
        if (g === null || g === undefined || g === false) return refuse(`it returned ${String(g)}`);
        if (isThenable(g)) return refuse('it returned a Promise; the authenticate hook must return at once');
        if (typeof g !== 'object') return refuse(`it returned ${describe(g)}; expected { user, metadata } or null`);
        try {
          return { ok: true, user: optString(g.user, 'the granted user') ?? undefined, metadata: metadataPairs(g.metadata, 'the granted metadata') };
        } catch (err) {
          return refuse(messageOf(err));
        }
      };
      this.#authorize = authz === null ? null : (id, user, topic) => {
        let r;
        try {
          r = authz(id, user ?? null, topic);
        } catch (err) {
          return messageOf(err);
        }
        if (r === false) return 'it returned false';
        if (isThenable(r)) return 'it returned a Promise; the authorize hook must return at once';
        return undefined;
      };
      this.#native.setAuthenticator(this.#authenticate, this.#authorize);
    }

    /** A snapshot of connection `id` (SB_NOT_FOUND if it is not registered). */
    get(id) {
      return infoFrom(this.#native.get(idOf(id, 'id')));
    }

    /** Whether connection `id` is registered. */
    has(id) {
      return this.#native.contains(idOf(id, 'id'));
    }

    /** Removes connection `id` for `reason` (default `unregistered`): its close callback runs. */
    unregister(id, reason) {
      this.#native.unregister(idOf(id, 'id'), optString(reason, 'reason'));
    }

    /** Records traffic from connection `id` now. */
    touch(id) {
      this.#native.touch(idOf(id, 'id'));
    }

    /** Subscribes connection `id` to `topic`; false if it already was. */
    subscribe(id, topic) {
      return this.#native.subscribe(idOf(id, 'id'), checkString(topic, 'topic'), this.#authorize);
    }

    /** Unsubscribes connection `id` from `topic`; false if it was not subscribed. */
    unsubscribe(id, topic) {
      return this.#native.unsubscribe(idOf(id, 'id'), checkString(topic, 'topic'));
    }

    /** Sets one metadata entry of connection `id`, or removes it with `null`. */
    setMetadata(id, key, value) {
      this.#native.setMetadata(idOf(id, 'id'), checkString(key, 'metadata key'), optString(value, 'metadata value'));
    }

    /**
     * Queues `msg` (a string is a text message; a Buffer/Uint8Array binary) for every
     * connection `target` matches: `{ topic, topics, user, users, ids, all, except }`.
     * Returns `{ recipients, queued, dropped, disconnected, elapsedMs }` at once; the
     * send callbacks run afterwards.
     */
    broadcast(msg, target) {
      const data = dataOf(msg);
      return this.#native.broadcast(data, targetFrom(target, 'broadcast()'));
    }

    /** Queues `msg` for connection `id` alone (SB_NOT_FOUND if it is not registered). */
    send(id, msg) {
      return this.#native.send(idOf(id, 'id'), dataOf(msg));
    }

    /**
     * One page of connections in id order: `{ user, topic, meta: [key, value], state:
     * 'active' | 'idle', minIdleMs, limit (default 100), cursor }` ->
     * `{ connections, nextCursor }` (pass `nextCursor` as `cursor` for the next page).
     */
    list(filter) {
      const page = this.#native.list(listFilterFrom(filter));
      page.connections.forEach(infoFrom);
      return page;
    }

    /**
     * Removes every connection `target` matches (`{ ids, user, users, topic, topics,
     * all, except }`) for `reason` (default `disconnected`); returns how many. Each
     * close callback gets the reason.
     */
    disconnect(target, reason) {
      return this.#native.disconnect(targetFrom(target, 'disconnect()'), optString(reason, 'reason'));
    }

    /** The registry's statistics. */
    stats() {
      return statsFrom(this.#native.stats());
    }

    /** Runs the heartbeat and stale-cleanup pass now: `{ removed, pinged }`. */
    cleanup() {
      return this.#native.cleanup();
    }

    /** @internal Resolves once every delivery queued so far has run on the JS thread. */
    [kFlush]() {
      return flushThrough((token) => this.#native.barrier(token));
    }

    /** @internal No callback of this registry runs afterwards. */
    [kRelease]() {
      this.#native.release();
    }
  }

  Registry.PING = PING;

  /**
   * Encodes seed 004's JSON envelope, stamped now: `envelope('notification', { topic,
   * data, error })` -> `'{"type":"notification","topic":...,"timestamp":"...Z"}'`.
   * `data` is any JSON-serialisable value.
   */
  function envelope(type, fields) {
    const f = optionsObject(fields, 'envelope() fields');
    let dataJson = null;
    if (f.data !== undefined) {
      try {
        dataJson = JSON.stringify(f.data);
      } catch (err) {
        throw invalid(`envelope() data must be JSON-serialisable: ${messageOf(err)}`);
      }
      if (dataJson === undefined) throw invalid(`envelope() data must be JSON-serialisable, got ${describe(f.data)}`);
    }
    return native.envelopeEncode(checkString(type, 'envelope type'), optString(f.topic, 'topic'), dataJson, optString(f.error, 'error'));
  }

  /** Decodes an envelope: `{ type, topic, data, timestamp, error }` (absent fields null). */
  function parseEnvelope(text) {
    const e = native.envelopeDecode(checkString(text, 'envelope text'));
    return {
      type: e.kind,
      topic: e.topic ?? null,
      data: e.dataJson === undefined || e.dataJson === null ? null : JSON.parse(e.dataJson),
      timestamp: e.timestamp ?? null,
      error: e.error ?? null,
    };
  }

  return { Registry, Connection, Outbox, PING, envelope, parseEnvelope, kFlush, kRelease, shapes };
};
