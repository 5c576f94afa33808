'use strict';
// switchboard for Node: connection pools on the library's own runtime.
//
// This file wraps the native addon (switchboard.node, built from src/ by napi-rs) in
// the public classes, and keeps custom pools' objects (see "custom connectors"). It only shapes arguments: every behaviour, and every error
// message, comes from the Rust core. Errors are `Error`s whose `code` is the `SB_*`
// name; calls that may wait return promises and never block the event loop.

const path = require('node:path');
const { EventEmitter } = require('node:events');

function loadNative() {
  const file = path.join(__dirname, 'switchboard.node');
  try {
    return require(file);
  } catch (cause) {
    const err = new Error(
      `switchboard: cannot load the native addon ${file} (build it with \`make build-node\`): ${cause.message}`,
      { cause },
    );
    err.code = cause.code || 'SB_INTERNAL';
    throw err;
  }
}

const native = loadNative();

/**
 * The error codes, by name: `ErrorCode.Timeout === 'SB_TIMEOUT'`. Every error thrown
 * or rejected by switchboard has one of these as its `code`.
 */
const ErrorCode = Object.freeze(Object.fromEntries(native.errorCodes()));
const KNOWN_CODES = new Set(Object.values(ErrorCode));

function sbError(code, message) {
  const err = new Error(message);
  err.code = code;
  return err;
}

function invalid(message) {
  return sbError(ErrorCode.InvalidArgument, message);
}

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (isPlainObject(value) && Object.keys(value).length === 0) return 'an empty object';
  return typeof value === 'string' ? JSON.stringify(value) : typeof value;
}

/**
 * Bytes as the core's text form with C escapes (`\r`, `\n`, `\t`, `\\`, `\xNN`), so that a
 * Buffer can be given for `probeSend` / `probeExpect`.
 */
function escapeBytes(bytes) {
  let out = '';
  for (const b of bytes) {
    if (b === 0x5c) out += '\\\\';
    else if (b === 0x0d) out += '\\r';
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x09) out += '\\t';
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** Options object → { key: string } for the core's Config, which validates keys and values. */
function configFrom(options, what) {
  if (options === undefined || options === null) return undefined;
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw invalid(`${what} must be an object of configuration keys, got ${describe(options)}`);
  }
  const out = {};
  addConfig(out, '', options);
  return out;
}

function isPlainObject(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Adds `options`' keys under `prefix` to `out`; a plain object value is a section:
 * `{ breaker: { failureThreshold: 1 } }` is `'breaker.failureThreshold': 1`.
 */
function addConfig(out, prefix, options) {
  for (const [name, value] of Object.entries(options)) {
    const key = prefix + name;
    if (value === undefined || value === null) continue;
    // A section of keys; an empty one is a mistake (a value given as {}), not a no-op.
    if (isPlainObject(value) && Object.keys(value).length > 0) {
      addConfig(out, `${key}.`, value);
      continue;
    }
    switch (typeof value) {
      case 'string':
        out[key] = value;
        break;
      case 'number':
      case 'bigint':
        out[key] = String(value);
        break;
      case 'boolean':
        out[key] = value ? 'true' : 'false';
        break;
      case 'object':
        if (value instanceof Uint8Array) {
          out[key] = escapeBytes(value);
          break;
        }
      // falls through
      default:
        throw invalid(`${key} must be a number, a string, a boolean, a Buffer or an object of keys, got ${describe(value)}`);
    }
  }
}

/** A duration (number of milliseconds or a string such as "250ms") as the core parses it. */
function durationFrom(value, what) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return value;
  throw invalid(`${what} must be a number of milliseconds or a string such as "250ms", got ${describe(value)}`);
}

/** The `timeout` of a read/write options object, as the core parses it. */
function callTimeout(options, what) {
  if (options === undefined || options === null) return undefined;
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw invalid(`${what}() options must be an object such as { timeout: 250 }, got ${describe(options)}`);
  }
  return durationFrom(options.timeout, `${what} timeout`);
}

/** A native endpoint health as the program sees it (times as Dates, absent values null). */
function endpointFrom(e) {
  return {
    endpoint: e.endpoint,
    state: e.state,
    breaker: e.breaker,
    quality: e.quality,
    latencyEwma: e.latencyEwma ?? null,
    successRate: e.successRate,
    calls: e.calls,
    failures: e.failures,
    reconnects: e.reconnects,
    checks: e.checks,
    checksFailed: e.checksFailed,
    breakerOpened: e.breakerOpened,
    breakerTransitions: e.breakerTransitions,
    breakerRejected: e.breakerRejected,
    openConnections: e.openConnections,
    inFlight: e.inFlight,
    lastSuccess: dateOrNull(e.lastSuccess),
    connectedSince: dateOrNull(e.connectedSince),
    lastError: e.lastError ?? null,
    backoffRemaining: e.backoffRemaining ?? null,
  };
}

function dateOrNull(ms) {
  return ms === undefined || ms === null ? null : new Date(ms);
}

function checkString(value, what) {
  if (typeof value !== 'string') throw invalid(`${what} must be a string, got ${describe(value)}`);
  return value;
}

// ---- custom connectors -------------------------------------------------------------
//
// A custom pool's connections are the program's own JS values. They stay on the JS
// thread in a Map keyed by a number; the native pool only holds the numbers. The
// native side calls `dispatch(kind, endpoint, id, token)` on the JS thread through a
// weak threadsafe function; connect and check answer with `native.settleCall(token, ...)`.

const CONNECT = 0;
const CHECK = 1;
const CLOSE = 2;
const BARRIER = 3;
const kFlush = Symbol('flush');
const kRelease = Symbol('release');
/** How long `manager.close()` waits for the last queued close callbacks. */
const FLUSH_LIMIT_MS = 5000;
const barriers = new Map();
let nextBarrier = 1;

function messageOf(err) {
  if (err instanceof Error) return err.message;
  try {
    return String(err);
  } catch {
    return 'a value that cannot be shown';
  }
}

function callbackError(pool, what, err) {
  const code = err && KNOWN_CODES.has(err.code) ? err.code : ErrorCode.Unavailable;
  return [code, `pool ${JSON.stringify(pool)}: the ${what} callback failed: ${messageOf(err)}`];
}

function warnCallback(pool, what, err) {
  process.emitWarning(`pool ${JSON.stringify(pool)}: the ${what} callback threw: ${messageOf(err)}`, {
    code: 'SWITCHBOARD_CALLBACK',
  });
}

/** Calls `fn(arg)` and returns a promise of its result, whether it returns or throws. */
function promiseOf(fn, arg) {
  try {
    return Promise.resolve(fn(arg));
  } catch (err) {
    return Promise.reject(err);
  }
}

function makeDispatch(name, { connect, check, close }, objects) {
  let nextId = 1;
  const closeObject = (id) => {
    if (!objects.has(id)) return;
    const obj = objects.get(id);
    objects.delete(id);
    if (close) promiseOf(close, obj).catch((err) => warnCallback(name, 'close', err));
  };
  const settle = (token, ok, id, err, what) => {
    if (ok) return native.settleCall(token, true, id, null, null);
    const [code, message] = callbackError(name, what, err);
    return native.settleCall(token, false, 0, code, message);
  };
  return function dispatch(kind, endpoint, id, token) {
    try {
      switch (kind) {
        case CONNECT:
          promiseOf(connect, endpoint).then(
            (obj) => {
              const newId = nextId++;
              objects.set(newId, obj);
              // Nobody waits any more (cancelled, timed out, closed): let it go.
              if (!settle(token, true, newId)) closeObject(newId);
            },
            (err) => settle(token, false, 0, err, 'connect'),
          ).catch((err) => warnCallback(name, 'connect', err));
          break;
        case CHECK:
          if (!objects.has(id)) {
            settle(token, false, 0, new Error(`object ${id} is unknown`), 'check');
            break;
          }
          promiseOf(check, objects.get(id)).then(
            (ok) => {
              if (ok === false) settle(token, false, 0, new Error('it returned false'), 'check');
              else settle(token, true, 0);
            },
            (err) => settle(token, false, 0, err, 'check'),
          ).catch((err) => warnCallback(name, 'check', err));
          break;
        case CLOSE:
          closeObject(id);
          break;
        case BARRIER:
          barrierReached(token);
          break;
        default:
          break;
      }
    } catch (err) {
      // Nothing may be thrown back into the native caller.
      warnCallback(name, 'dispatch', err);
    }
  };
}

/** A barrier queued by `flushThrough` reached the JS thread. */
function barrierReached(token) {
  const done = barriers.get(token);
  barriers.delete(token);
  if (done) done();
}

/**
 * Resolves once every callback queued so far through one custom bridge has run on the
 * JS thread: `queue(token)` queues a barrier (false if it could not).
 */
function flushThrough(queue) {
  return new Promise((resolve) => {
    const token = nextBarrier++;
    const timer = setTimeout(() => {
      barriers.delete(token);
      resolve();
    }, FLUSH_LIMIT_MS);
    // This timer (not unref'd) keeps Node alive until the barrier arrives through the
    // weak threadsafe function, which alone would not.
    barriers.set(token, () => {
      clearTimeout(timer);
      resolve();
    });
    if (!queue(token)) barriers.get(token)();
  });
}

/** Splits pool options into the program's callbacks and configuration keys. */
function splitCallbacks(options) {
  if (options === undefined || options === null || typeof options !== 'object' || Array.isArray(options)) {
    return [null, options];
  }
  const { connect, check, close, ...rest } = options;
  if (connect === undefined && check === undefined && close === undefined) return [null, options];
  if (typeof connect !== 'function') {
    throw invalid(`pool option connect must be a function (endpoint) => object, got ${describe(connect)}`);
  }
  for (const [what, fn] of [['check', check], ['close', close]]) {
    if (fn !== undefined && fn !== null && typeof fn !== 'function') {
      throw invalid(`pool option ${what} must be a function, got ${describe(fn)}`);
    }
  }
  return [{ connect, check: check ?? null, close: close ?? null }, rest];
}

/**
 * One checked-out connection. Return it with `release()` (or `discard()` after an
 * error on it); a lease that is garbage-collected unreleased returns its connection.
 */
class Lease {
  #native;
  #pool;
  #objects;

  /** @internal */
  constructor(nativeLease, pool, objects) {
    this.#native = nativeLease;
    // A custom pool's objects by id (null for built-in sockets).
    this.#objects = objects;
    // Keeps the pool, and through it the manager and its runtime, alive while the
    // lease is reachable.
    this.#pool = pool;
  }

  /** The pool it came from. */
  get pool() {
    return this.#pool;
  }

  /** The connection's id, unique within its pool and never reused. */
  get id() {
    return this.#native.id;
  }

  /**
   * The raw file descriptor (blocking mode while leased); throws once released, and
   * for a custom pool's lease.
   */
  get fd() {
    return this.#native.fd;
  }

  /**
   * A custom pool's object (what its `connect` made); throws SB_FAILED_PRECONDITION
   * once released, and for a built-in socket.
   */
  get obj() {
    const id = this.#native.customId;
    return this.#objects === null ? undefined : this.#objects.get(id);
  }

  /** Same as `obj`. */
  get value() {
    return this.obj;
  }

  /** The name of the pool it came from. */
  get poolName() {
    return this.#native.poolName;
  }

  /** Whether the lease was released or discarded. */
  get released() {
    return this.#native.released;
  }

  /** The endpoint it is connected to, as written in the pool's target. */
  get endpoint() {
    return this.#native.endpoint;
  }

  /**
   * Records the result of work done on this connection outside `read`/`write`
   * (`latencyMs` in milliseconds) for its endpoint's breaker, success rate and quality.
   * A report that opens the breaker closes this connection when it comes back.
   */
  report(success, latencyMs) {
    if (typeof success !== 'boolean') throw invalid(`report() success must be a boolean, got ${describe(success)}`);
    if (typeof latencyMs !== 'number' || !Number.isFinite(latencyMs) || latencyMs < 0) {
      throw invalid(`report() latency must be a number of milliseconds >= 0, got ${typeof latencyMs === 'number' ? latencyMs : describe(latencyMs)}`);
    }
    this.#native.report(success, latencyMs);
  }

  /**
   * Writes all of `data` (Buffer, Uint8Array or string, as UTF-8), within
   * `options.timeout` if given (else SB_TIMEOUT; part of the data may have gone, so
   * discard the lease then).
   */
  async write(data, options) {
    let buf;
    if (Buffer.isBuffer(data)) buf = data;
    else if (typeof data === 'string') buf = Buffer.from(data, 'utf8');
    else if (data instanceof Uint8Array) buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    else throw invalid(`write() takes a Buffer, a Uint8Array or a string, got ${describe(data)}`);
    return this.#native.write(buf, callTimeout(options, 'write'));
  }

  /**
   * Reads up to `size` bytes (default 65536) once at least one is available, within
   * `options.timeout` if given (else SB_TIMEOUT; nothing was consumed and the lease
   * stays usable). An empty Buffer means the peer closed the connection.
   */
  async read(size, options) {
    if (size !== undefined && size !== null && !(Number.isInteger(size) && size >= 1 && size <= 0xffffffff)) {
      throw invalid(`read size must be a positive integer, got ${typeof size === 'number' ? size : describe(size)}`);
    }
    return this.#native.read(size ?? undefined, callTimeout(options, 'read'));
  }

  /**
   * Returns the connection to the pool. Safe to call twice. A read or write still in
   * flight is cancelled (it rejects with SB_CANCELLED) and the connection is closed.
   */
  release() {
    this.#native.release();
  }

  /** Closes the connection instead of returning it. Safe to call twice. */
  discard() {
    this.#native.discard();
  }

  toString() {
    return `Lease(pool=${JSON.stringify(this.poolName)}, id=${this.id}, endpoint=${JSON.stringify(this.endpoint)}${this.released ? ', released' : ''})`;
  }
}

if (typeof Symbol.dispose === 'symbol') {
  Lease.prototype[Symbol.dispose] = function dispose() {
    this.release();
  };
}
if (typeof Symbol.asyncDispose === 'symbol') {
  Lease.prototype[Symbol.asyncDispose] = async function asyncDispose() {
    this.release();
  };
}

/** A pool of connections to one target, created by `manager.pool()`. */
class Pool {
  #native;
  #manager;
  #objects;

  /** @internal */
  constructor(nativePool, manager, objects) {
    this.#native = nativePool;
    this.#objects = objects;
    // Keeps the manager (and its runtime) alive as long as the pool is reachable.
    this.#manager = manager;
  }

  /** The pool's name. */
  get name() {
    return this.#native.name;
  }

  /** Whether the pool (or its manager) is closed. */
  get closed() {
    return this.#native.closed;
  }

  /** The manager that owns the pool. */
  get manager() {
    return this.#manager;
  }

  /**
   * Acquires a connection, waiting up to `timeout` (default `pool.acquire_timeout`) on
   * the library's runtime; higher `priority` waiters are served first.
   */
  async acquire(options) {
    let timeout;
    let priority;
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object') {
        throw invalid(`acquire() options must be an object, got ${describe(options)}`);
      }
      timeout = durationFrom(options.timeout, 'acquire timeout');
      if (options.priority !== undefined && options.priority !== null) {
        priority = options.priority;
        if (!Number.isInteger(priority) || priority < -0x80000000 || priority > 0x7fffffff) {
          throw invalid(`acquire priority must be a 32-bit integer, got ${String(priority)}`);
        }
      }
    }
    // An idle connection comes back at once as a native lease; otherwise a promise.
    const got = this.#native.acquire(timeout, priority);
    return new Lease(got instanceof native.NativeLease ? got : await got, this, this.#objects);
  }

  /** An idle connection if one is ready now, else `null`. Synchronous; never waits. */
  tryAcquire() {
    const got = this.#native.tryAcquire();
    return got === null || got === undefined ? null : new Lease(got, this, this.#objects);
  }

  /**
   * Acquires a connection, runs `fn(lease)` and releases the lease when it settles,
   * whatever happens. Resolves with what `fn` returns.
   */
  async withLease(fn, options) {
    if (typeof fn !== 'function') throw invalid(`withLease() takes a function, got ${describe(fn)}`);
    const lease = await this.acquire(options);
    try {
      return await fn(lease);
    } finally {
      lease.release();
    }
  }

  /**
   * A snapshot of the pool's state and counters (`closedBy` counts closes by reason;
   * `endpoints` is each endpoint's health, as in `health()`).
   */
  stats() {
    const s = this.#native.stats();
    s.endpoints = s.endpoints.map(endpointFrom);
    return s;
  }

  /**
   * The pool's health: totals over its endpoints (calls, failures, successRate,
   * reconnects, lastSuccess, connectedSince) and each endpoint's state, breaker,
   * quality, latency and counters, in target order.
   */
  health() {
    const h = this.#native.health();
    return {
      pool: h.pool,
      calls: h.calls,
      failures: h.failures,
      successRate: h.successRate,
      reconnects: h.reconnects,
      lastSuccess: dateOrNull(h.lastSuccess),
      connectedSince: dateOrNull(h.connectedSince),
      endpoints: h.endpoints.map(endpointFrom),
    };
  }

  /** The endpoints in good standing (breaker not refusing, not failed), best quality first. */
  healthyEndpoints() {
    return this.#native.healthyEndpoints().map(endpointFrom);
  }

  /**
   * Of `candidates` (endpoints as written in the target; none or empty: all), the one
   * the pool would pick now. Throws SB_UNAVAILABLE when none can take a connection,
   * SB_NOT_FOUND for an endpoint the pool does not have.
   */
  selectBest(candidates) {
    if (candidates === undefined || candidates === null) candidates = [];
    if (!Array.isArray(candidates) || !candidates.every((c) => typeof c === 'string')) {
      throw invalid(`selectBest() takes an array of endpoint strings, got ${describe(candidates)}`);
    }
    return this.#native.selectBest(candidates);
  }

  /**
   * The breaker state of `endpoint` (`closed`, `open`, `half_open`, `forced_open`,
   * `disabled`, `metrics_only`); without one, of the pool's only endpoint.
   */
  breakerState(endpoint) {
    if (endpoint !== undefined && endpoint !== null) checkString(endpoint, 'breakerState() endpoint');
    return this.#native.breakerState(endpoint ?? undefined);
  }

  /**
   * An operator's command to the breaker of `endpoint` (without one: every endpoint):
   * `'force_open'` (refuse every connect until reset), `'disable'` (allow everything,
   * record nothing), `'metrics_only'` (record, never block) or `'reset'` (closed,
   * with an empty window).
   */
  breakerOp(op, endpoint) {
    checkString(op, 'breakerOp() operation');
    if (endpoint !== undefined && endpoint !== null) checkString(endpoint, 'breakerOp() endpoint');
    this.#native.breaker(op, endpoint ?? undefined);
  }

  /** Forgets every endpoint's failed connects: the next connect may start at once. */
  resetBackoff() {
    this.#native.resetBackoff();
  }

  /**
   * Closes the connections of `endpoint` (idle ones now, leased ones when they come
   * back), e.g. before taking it out of service.
   */
  drain(endpoint) {
    checkString(endpoint, 'drain() endpoint');
    this.#native.drain(endpoint);
  }

  /**
   * Runs every endpoint's health check now (probe an idle connection, or reconnect an
   * endpoint that is down when its backoff and breaker allow), on the library's
   * runtime; resolves when they are done. They also run every `health.interval`.
   */
  async runHealthChecks() {
    return this.#native.runHealthChecks();
  }

  /**
   * Changes `maxSize` and `minIdle` on the live pool without dropping leases: growing
   * lets waiters in at once; shrinking closes surplus idle connections now and surplus
   * leased ones when they come back.
   */
  resize(maxSize, minIdle = 0) {
    for (const [what, v] of [['maxSize', maxSize], ['minIdle', minIdle]]) {
      if (!Number.isInteger(v) || v < 0) {
        throw invalid(`resize() ${what} must be a non-negative integer, got ${typeof v === 'number' ? v : describe(v)}`);
      }
    }
    this.#native.resize(maxSize, minIdle);
  }

  /** Closes every idle connection now and every leased one when it comes back. */
  evictAll() {
    this.#native.evictAll();
  }

  /** Opens connections until `minIdle` are idle (or `maxSize` is reached); resolves with how many it opened. */
  async warm() {
    return this.#native.warm();
  }

  /**
   * Runs one pass of the background upkeep now (idle timeout, lifetime, checks of idle
   * connections, refilling `minIdle`); the pool also runs it on its own.
   */
  async runUpkeep() {
    return this.#native.runUpkeep();
  }

  /**
   * Closes the pool: waiters fail with SB_UNAVAILABLE, idle connections close now and
   * leased ones when they come back. Safe to call twice.
   */
  close() {
    this.#native.close();
  }

  /** @internal Resolves once every callback queued so far has run on the JS thread. */
  [kFlush]() {
    return flushThrough((token) => this.#native.flush(token));
  }

  /** @internal No callback of this pool runs afterwards. */
  [kRelease]() {
    this.#native.releaseCallbacks();
  }
}

// ---- sessions ----------------------------------------------------------------------

function streamFrom(st) {
  return {
    name: st.name,
    position: st.position,
    committed: st.committed ?? null,
    dataPacketsRead: st.dataPacketsRead,
    dataBytesRead: st.dataBytesRead,
    dataPacketsDelivered: st.dataPacketsDelivered,
    dataBytesDelivered: st.dataBytesDelivered,
    essentialPacketsRead: st.essentialPacketsRead,
    essentialPacketsDelivered: st.essentialPacketsDelivered,
  };
}

function sessionFrom(s) {
  return {
    id: s.id,
    dataSource: s.dataSource,
    sessionKey: s.sessionKey,
    excludeMainStream: s.excludeMainStream,
    streams: s.streams.map(streamFrom),
    routerMessagesReceived: s.routerMessagesReceived,
    routerBytesReceived: s.routerBytesReceived,
  };
}

function checkNumber(value, what) {
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw invalid(`${what} must be a number, got ${describe(value)}`);
  }
  return value;
}

function checkStrings(value, what) {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw invalid(`${what} must be an array of strings, got ${describe(value)}`);
  }
  return value;
}

function checkBool(value, what) {
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw invalid(`${what} must be a boolean, got ${describe(value)}`);
  return value;
}

/**
 * The streaming sessions of a manager (`manager.sessions`): a catalog of data sources
 * and session keys, sessions with per-stream offsets (position = next to deliver,
 * committed = safe to resume from), their counters, and the offset store (in memory,
 * or durable with the manager option `offsetsPath`). Calls that may touch the store's
 * disk (`open`, `resume`, `addStream`, `commit`, `committed`, `flush`) return promises
 * and run off the event loop; the others are synchronous. Errors carry `SB_*` codes.
 */
class Sessions {
  #native;
  #manager;

  /** @internal */
  constructor(nativeManager, manager) {
    this.#native = nativeManager;
    this.#manager = manager;
  }

  /** The manager they belong to. */
  get manager() {
    return this.#manager;
  }

  /** Registers `sessionKey` of `dataSource`; true if it was new. */
  register(dataSource, sessionKey) {
    return this.#native.sessionRegister(checkString(dataSource, 'dataSource'), checkString(sessionKey, 'sessionKey'));
  }

  /** Unregisters it; true if it was there. SB_FAILED_PRECONDITION while sessions are open on it. */
  unregister(dataSource, sessionKey) {
    return this.#native.sessionUnregister(checkString(dataSource, 'dataSource'), checkString(sessionKey, 'sessionKey'));
  }

  /** Whether `sessionKey` of `dataSource` is registered. */
  isRegistered(dataSource, sessionKey) {
    return this.#native.sessionIsRegistered(checkString(dataSource, 'dataSource'), checkString(sessionKey, 'sessionKey'));
  }

  /** Every registered `[dataSource, sessionKey]`, sorted. */
  catalog() {
    return this.#native.sessionCatalog().map(([d, k]) => [d, k]);
  }

  /**
   * Opens a session on a registered key; resolves with its id (unique in the process).
   * `streamOffsets` has one offset per stream, or is empty to start every stream at 0.
   */
  async open(details) {
    if (details === null || typeof details !== 'object' || Array.isArray(details)) {
      throw invalid(`open() takes { dataSource, sessionKey, streams?, streamOffsets?, excludeMainStream? }, got ${describe(details)}`);
    }
    const { dataSource, sessionKey, streams, streamOffsets, excludeMainStream } = details;
    const offsets = streamOffsets === undefined || streamOffsets === null ? [] : streamOffsets;
    if (!Array.isArray(offsets) || !offsets.every((o) => typeof o === 'number')) {
      throw invalid(`streamOffsets must be an array of numbers, got ${describe(offsets)}`);
    }
    return this.#native.sessionOpen(
      checkString(dataSource, 'dataSource'),
      checkString(sessionKey, 'sessionKey'),
      checkStrings(streams, 'streams'),
      offsets,
      checkBool(excludeMainStream, 'excludeMainStream'),
    );
  }

  /** Opens a session whose streams start at their committed offsets (0 if none); resolves with its id. */
  async resume(dataSource, sessionKey, streams, excludeMainStream) {
    return this.#native.sessionResume(
      checkString(dataSource, 'dataSource'),
      checkString(sessionKey, 'sessionKey'),
      checkStrings(streams, 'streams'),
      checkBool(excludeMainStream, 'excludeMainStream'),
    );
  }

  /** The session's details, streams (position, committed, counters) and router counters. */
  get(id) {
    return sessionFrom(this.#native.sessionGet(checkNumber(id, 'session id')));
  }

  /** Closes the session (SB_NOT_FOUND if it is not open); its commits stay in the store. */
  close(id) {
    this.#native.sessionClose(checkNumber(id, 'session id'));
  }

  /** Open sessions sorted by id, optionally only those of `{ dataSource, sessionKey }`. */
  list(filter) {
    let dataSource;
    let sessionKey;
    if (filter !== undefined && filter !== null) {
      if (typeof filter !== 'object' || Array.isArray(filter)) {
        throw invalid(`list() takes { dataSource?, sessionKey? }, got ${describe(filter)}`);
      }
      if (filter.dataSource !== undefined && filter.dataSource !== null) dataSource = checkString(filter.dataSource, 'dataSource');
      if (filter.sessionKey !== undefined && filter.sessionKey !== null) sessionKey = checkString(filter.sessionKey, 'sessionKey');
    }
    return this.#native.sessionList(dataSource, sessionKey).map(sessionFrom);
  }

  /** Adds `stream` to a live session at `offset` (default 0). */
  async addStream(id, stream, offset = 0) {
    return this.#native.sessionAddStream(checkNumber(id, 'session id'), checkString(stream, 'stream'), checkNumber(offset, 'offset'));
  }

  /** Removes `stream` from a live session. */
  removeStream(id, stream) {
    this.#native.sessionRemoveStream(checkNumber(id, 'session id'), checkString(stream, 'stream'));
  }

  /** Counts `packets` data packets (`bytes` bytes, `essential` of them essential) read from the source for `stream`. */
  recordRead(id, stream, packets = 1, bytes = 0, essential = 0) {
    this.#native.sessionRecordRead(
      checkNumber(id, 'session id'),
      checkString(stream, 'stream'),
      checkNumber(packets, 'packets'),
      checkNumber(bytes, 'bytes'),
      checkNumber(essential, 'essential'),
    );
  }

  /** Counts packets delivered to the client on `stream` and advances its position by `packets`; returns the new position. */
  deliver(id, stream, packets = 1, bytes = 0, essential = 0) {
    return this.#native.sessionDeliver(
      checkNumber(id, 'session id'),
      checkString(stream, 'stream'),
      checkNumber(packets, 'packets'),
      checkNumber(bytes, 'bytes'),
      checkNumber(essential, 'essential'),
    );
  }

  /** Counts `messages` router (control) messages of `bytes` bytes received on the session. */
  recordRouter(id, messages = 1, bytes = 0) {
    this.#native.sessionRecordRouter(checkNumber(id, 'session id'), checkNumber(messages, 'messages'), checkNumber(bytes, 'bytes'));
  }

  /** The next offset to deliver on `stream`. */
  position(id, stream) {
    return this.#native.sessionPosition(checkNumber(id, 'session id'), checkString(stream, 'stream'));
  }

  /**
   * Commits `offset` of `stream` to the offset store (with a durable store and
   * `offsets.sync = every_commit`, on disk when it resolves). Never backwards:
   * SB_FAILED_PRECONDITION unless `seek()` rewound first.
   */
  async commit(id, stream, offset) {
    return this.#native.sessionCommit(checkNumber(id, 'session id'), checkString(stream, 'stream'), checkNumber(offset, 'offset'));
  }

  /** Sets `stream`'s position to `offset` and lets the next commit go down to it; stores nothing. */
  seek(id, stream, offset) {
    this.#native.sessionSeek(checkNumber(id, 'session id'), checkString(stream, 'stream'), checkNumber(offset, 'offset'));
  }

  /** The offset committed in the store for `stream` of `dataSource`/`sessionKey`, or `null`. */
  async committed(dataSource, sessionKey, stream) {
    const c = await this.#native.sessionCommitted(
      checkString(dataSource, 'dataSource'),
      checkString(sessionKey, 'sessionKey'),
      checkString(stream, 'stream'),
    );
    return c ?? null;
  }

  /** Writes commits buffered by `offsets.sync = interval` now. */
  async flush() {
    return this.#native.sessionFlush();
  }

  /** Sessions open now (0 after the manager closed). */
  get openCount() {
    return this.#native.sessionOpenCount();
  }

  /** The offset store: `'memory'` or `'durable'`. */
  get storeKind() {
    return this.#native.sessionStoreKind();
  }

  /** Commits accepted but not yet on disk (`offsets.sync = interval`; else 0). */
  get bufferedCommits() {
    return this.#native.sessionBufferedCommits();
  }
}

// ---- registry (registry.js) -----------------------------------------------------------

const registryModule = require('./registry')({ native, invalid, describe, checkString, messageOf, flushThrough, barrierReached });
const { Registry, Connection, Outbox, PING, envelope, parseEnvelope } = registryModule;

// ---- resources (resources.js) ---------------------------------------------------------

const resourcesModule = require('./resources')({
  native,
  invalid,
  describe,
  checkString,
  configFrom,
  durationFrom,
  callTimeout,
  makeDispatch,
  flushThrough,
});
const { Resources, ResourceHandle } = resourcesModule;

// ---- the embedded server's hub (server.js) --------------------------------------------

const serverModule = require('./server')({ invalid, describe, messageOf });
const { Hub, HubMessage } = serverModule;

// ---- the cluster (cluster.js) ---------------------------------------------------------

const { Cluster } = require('./cluster')({ checkString, ...registryModule.shapes });

const kHooks = Symbol('hooks');

/** A native event as the program sees it. */
function eventFrom(e) {
  return {
    kind: e.kind,
    pool: e.pool,
    endpoint: e.endpoint ?? null,
    connectionId: e.connectionId ?? null,
    sessionId: e.sessionId ?? null,
    stream: e.stream ?? null,
    oldState: e.oldState ?? null,
    newState: e.newState ?? null,
    ageMs: e.ageMs ?? null,
    topic: e.topic ?? null,
    user: e.user ?? null,
    reason: e.reason ?? null,
    resource: e.resource ?? null,
    message: e.message,
    time: new Date(e.time),
  };
}

/**
 * The root object: owns the library's runtime (its own threads) and the pools. Close it
 * with `await manager.close()`; afterwards nothing of it keeps the process alive.
 *
 * It is an EventEmitter: while `'event'` has a listener, events (see `pollEvent()`) are
 * emitted as `'event'` on the JS thread instead of queued. The library's threads pass
 * them through a weak threadsafe function, so listening never keeps Node alive.
 */
class Manager extends EventEmitter {
  #native;
  #sessions = null;
  #registry = null;
  #resources = null;
  #hub = null;
  #cluster = undefined;
  #closing = null;
  #customPools = [];
  #listening = false;

  /**
   * @param options configuration keys in any natural spelling:
   *   `{ workerThreads: 2 }`, `{ 'runtime.worker_threads': 2 }`, `{ poolMaxSize: 4 }`.
   */
  constructor(options) {
    super();
    this.#native = new native.NativeManager(configFrom(options, 'Manager options'));
    this[kHooks]();
  }

  /** @internal Starts and stops native delivery as `'event'` gains its first or loses its last listener. */
  [kHooks]() {
    this.on('newListener', (name) => {
      if (name === 'event' && !this.#listening && this.#closing === null) {
        this.#native.setEventListener((e) => this.#deliver(e));
        this.#listening = true;
      }
    });
    this.on('removeListener', (name) => {
      if (name === 'event' && this.#listening && this.listenerCount('event') === 0) this.#stopListening();
    });
  }

  #stopListening() {
    if (!this.#listening) return;
    this.#listening = false;
    try {
      this.#native.setEventListener(null);
    } catch {
      // Closed meanwhile: closing released it already.
    }
  }

  #deliver(e) {
    const event = eventFrom(e);
    try {
      this.emit('event', event);
    } catch (err) {
      process.emitWarning(`an 'event' listener threw: ${messageOf(err)}`, { code: 'SWITCHBOARD_CALLBACK' });
    }
  }

  /**
   * EventEmitter's, and afterwards `'event'` listeners still start delivery (the
   * internal hooks that do it are put back).
   */
  removeAllListeners(name) {
    super.removeAllListeners(...arguments);
    if (name === undefined) this[kHooks]();
    if (this.listenerCount('event') === 0) this.#stopListening();
    return this;
  }

  /**
   * Creates a pool named `name` (unique in this manager) to `target`
   * (`tcp://host:port`). `options` keys default to the `pool` section:
   * `{ maxSize: 4, acquireTimeout: 250 }`.
   *
   * With `connect` (and optionally `check`, `close`) among the options, the pool
   * manages the program's own objects instead of sockets, and `target` may be any
   * string (it is passed to `connect`):
   * - `connect(endpoint)` returns the object or a Promise of it; a throw or rejection
   *   fails the waiting acquire with its message.
   * - `check(obj)` accepts unless it returns/resolves `false`, throws or rejects; a
   *   rejected object is closed and replaced.
   * - `close(obj)` is called once for every object the pool lets go.
   * All three run on the JS thread: the library's threads queue them through a weak
   * threadsafe function, so `close` runs a moment after the call that let it go.
   */
  pool(name, target, options) {
    checkString(name, 'pool name');
    checkString(target, 'pool target');
    const [callbacks, rest] = splitCallbacks(options);
    const cfg = configFrom(rest, 'pool options');
    if (callbacks === null) return new Pool(this.#native.pool(name, target, cfg), this, null);
    const objects = new Map();
    const dispatch = makeDispatch(name, callbacks, objects);
    const pool = new Pool(this.#native.pool(name, target, cfg, dispatch, callbacks.check !== null), this, objects);
    this.#customPools.push(pool);
    return pool;
  }

  /** The streaming sessions, their catalog and the offset store. */
  get sessions() {
    this.#sessions ??= new Sessions(this.#native, this);
    return this.#sessions;
  }

  /**
   * The live-connection registry (see `Registry`), configured by the manager's
   * `registry.*` keys: `new Manager({ registry: { heartbeatInterval: '10s' } })`.
   */
  get registry() {
    this.#registry ??= new Registry(this.#native, this);
    return this.#registry;
  }

  /**
   * The named shared connections (see `Resources`): one physical connection per
   * resource id, shared by consumers, reconnecting on its own.
   */
  get resources() {
    this.#resources ??= new Resources(this.#native, this);
    return this.#resources;
  }

  /**
   * The manager's membership in its cluster (see `Cluster`), or `null` when
   * `cluster.redis_url` is not set: `new Manager({ cluster: { redisUrl, name } })`.
   */
  get cluster() {
    if (this.#cluster === undefined) {
      const c = this.#native.cluster();
      this.#cluster = c === null || c === undefined ? null : new Cluster(c, this);
    }
    return this.#cluster;
  }

  /** The embedded server's address (`'127.0.0.1:PORT'`), or null when `server.listen` is off. */
  get serverAddress() {
    return this.#native.serverAddress ?? null;
  }

  /** The gRPC sessions service's address (the server's unless `server.grpcListen`), or null. */
  get grpcAddress() {
    return this.#native.grpcAddress ?? null;
  }

  /** The server's WebSocket hub: what hub clients send to the program (see `Hub`). */
  get hub() {
    this.#hub ??= new Hub(this.#native, this);
    return this.#hub;
  }

  /**
   * Moves the manual clock forward by `by` (milliseconds or "10s"): breakers, backoff,
   * health and the registry's heartbeats and staleness see the time pass. Only for a
   * manager made with `{ runtime: { clock: 'manual' } }` (else SB_FAILED_PRECONDITION).
   */
  advanceClock(by) {
    const d = durationFrom(by, 'advanceClock');
    if (d === undefined) throw invalid('advanceClock() needs a duration: milliseconds or a string such as "10s"');
    this.#native.advanceClock(d);
  }

  /**
   * The metrics of every open pool and session as Prometheus/OpenMetrics text
   * (`switchboard_pool_*`, `switchboard_endpoint_*` and `stream_api_*` series, ending
   * with `# EOF`): serve it on your `/metrics` endpoint.
   */
  metricsText() {
    return this.#native.metricsText();
  }

  /**
   * The next queued event, or `null` when there is none. Synchronous and never waits.
   * Events (connection, endpoint and breaker state changes, health check results,
   * rejections, leases held past `leakDetectionThreshold`; see `kind`) queue up until polled; the queue holds 10,000 and drops
   * new ones beyond that (see `eventsDropped()`). While `'event'` has a listener,
   * events go to it instead and none is queued.
   */
  pollEvent() {
    const e = this.#native.pollEvent();
    return e === null || e === undefined ? null : eventFrom(e);
  }

  /** Events dropped because the queue was full and nobody polled. */
  eventsDropped() {
    return this.#native.eventsDropped();
  }

  /** Whether `close()` has been called. */
  get closed() {
    return this.#native.closed;
  }

  /**
   * Closes the manager: fails waiters, waits up to `timeout` (milliseconds or "5s";
   * default 5 s) for leases to come back, closes every connection and stops the runtime.
   * Runs off the event loop. Calling it again returns the same promise.
   */
  close(timeout) {
    if (this.#closing === null) {
      let closing;
      try {
        closing = this.#native.close(durationFrom(timeout, 'close timeout'));
      } catch (err) {
        return Promise.reject(err);
      }
      // The native close released the event listener.
      this.#listening = false;
      // Then let the close callbacks queued by the closing run, and release the
      // custom pools' threadsafe functions.
      const pools = this.#customPools;
      this.#customPools = [];
      const registry = this.#registry;
      const resources = this.#resources;
      const hub = this.#hub;
      const finish = async () => {
        await Promise.all([
          ...pools.map((p) => p[kFlush]()),
          registry === null ? null : registry[registryModule.kFlush](),
          resources === null ? null : resources[resourcesModule.kFlush](),
        ]);
        for (const p of pools) p[kRelease]();
        if (registry !== null) registry[registryModule.kRelease]();
        if (resources !== null) resources[resourcesModule.kRelease]();
        if (hub !== null) hub[serverModule.kRelease]();
      };
      this.#closing = closing.then(finish, async (err) => {
        await finish();
        throw err;
      });
    }
    return this.#closing;
  }
}

if (typeof Symbol.asyncDispose === 'symbol') {
  Manager.prototype[Symbol.asyncDispose] = function asyncDispose() {
    return this.close();
  };
}

/** Whether `err` is an error from switchboard (its `code` is one of `ErrorCode`). */
function isSwitchboardError(err) {
  return err instanceof Error && KNOWN_CODES.has(err.code);
}

module.exports = {
  Manager,
  Pool,
  Lease,
  Sessions,
  Registry,
  Connection,
  Outbox,
  Resources,
  ResourceHandle,
  Hub,
  HubMessage,
  Cluster,
  PING,
  envelope,
  parseEnvelope,
  ErrorCode,
  isSwitchboardError,
  version: native.version(),
};
