'use strict';
// Pools and leases (`manager.pool()`, `pool.acquire()`), and the endpoint health they
// report.

const native = require('./native');
const { invalid } = require('./errors');
const { describe, durationFrom, callTimeout, checkString } = require('./options');
const { flushThrough } = require('./custom');

const kFlush = Symbol('flush');
const kRelease = Symbol('release');

/** A native endpoint health as the program sees it (times as Dates, absent values null). */
function endpointFrom(e) {
  return {
    endpoint: e.endpoint,
    state: e.state,
    warming: e.warming,
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

module.exports = { Pool, Lease, kFlush, kRelease };
