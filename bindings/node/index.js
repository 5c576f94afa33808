'use strict';
// switchboard for Node: connection pools on the library's own runtime.
//
// This file wraps the native addon (switchboard.node, built from src/ by napi-rs) in
// the public classes. It only shapes arguments: every behaviour, and every error
// message, comes from the Rust core. Errors are `Error`s whose `code` is the `SB_*`
// name; calls that may wait return promises and never block the event loop.

const path = require('node:path');

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
  return typeof value === 'string' ? JSON.stringify(value) : typeof value;
}

/** Options object → { key: string } for the core's Config, which validates keys and values. */
function configFrom(options, what) {
  if (options === undefined || options === null) return undefined;
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw invalid(`${what} must be an object of configuration keys, got ${describe(options)}`);
  }
  const out = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || value === null) continue;
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
      default:
        throw invalid(`${key} must be a number, a string or a boolean, got ${describe(value)}`);
    }
  }
  return out;
}

/** A duration (number of milliseconds or a string such as "250ms") as the core parses it. */
function durationFrom(value, what) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return value;
  throw invalid(`${what} must be a number of milliseconds or a string such as "250ms", got ${describe(value)}`);
}

function checkString(value, what) {
  if (typeof value !== 'string') throw invalid(`${what} must be a string, got ${describe(value)}`);
  return value;
}

/**
 * One checked-out connection. Return it with `release()` (or `discard()` after an
 * error on it); a lease that is garbage-collected unreleased returns its connection.
 */
class Lease {
  #native;
  #pool;

  /** @internal */
  constructor(nativeLease, pool) {
    this.#native = nativeLease;
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

  /** The raw file descriptor (blocking mode while leased); throws once released. */
  get fd() {
    return this.#native.fd;
  }

  /** The name of the pool it came from. */
  get poolName() {
    return this.#native.poolName;
  }

  /** Whether the lease was released or discarded. */
  get released() {
    return this.#native.released;
  }

  /** Writes all of `data` (Buffer, Uint8Array or string, as UTF-8). */
  async write(data) {
    let buf;
    if (Buffer.isBuffer(data)) buf = data;
    else if (typeof data === 'string') buf = Buffer.from(data, 'utf8');
    else if (data instanceof Uint8Array) buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    else throw invalid(`write() takes a Buffer, a Uint8Array or a string, got ${describe(data)}`);
    return this.#native.write(buf);
  }

  /**
   * Reads up to `size` bytes (default 65536) once at least one is available. An empty
   * Buffer means the peer closed the connection.
   */
  async read(size) {
    if (size !== undefined && !(Number.isInteger(size) && size >= 1 && size <= 0xffffffff)) {
      throw invalid(`read size must be a positive integer, got ${typeof size === 'number' ? size : describe(size)}`);
    }
    return this.#native.read(size);
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
    return `Lease(pool=${JSON.stringify(this.poolName)}, id=${this.id}${this.released ? ', released' : ''})`;
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

  /** @internal */
  constructor(nativePool, manager) {
    this.#native = nativePool;
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
    return new Lease(got instanceof native.NativeLease ? got : await got, this);
  }

  /** An idle connection if one is ready now, else `null`. Synchronous; never waits. */
  tryAcquire() {
    const got = this.#native.tryAcquire();
    return got === null || got === undefined ? null : new Lease(got, this);
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

  /** A snapshot of the pool's state and counters. */
  stats() {
    return this.#native.stats();
  }

  /**
   * Closes the pool: waiters fail with SB_UNAVAILABLE, idle connections close now and
   * leased ones when they come back. Safe to call twice.
   */
  close() {
    this.#native.close();
  }
}

/**
 * The root object: owns the library's runtime (its own threads) and the pools. Close it
 * with `await manager.close()`; afterwards nothing of it keeps the process alive.
 */
class Manager {
  #native;
  #closing = null;

  /**
   * @param options configuration keys in any natural spelling:
   *   `{ workerThreads: 2 }`, `{ 'runtime.worker_threads': 2 }`, `{ poolMaxSize: 4 }`.
   */
  constructor(options) {
    this.#native = new native.NativeManager(configFrom(options, 'Manager options'));
  }

  /**
   * Creates a pool named `name` (unique in this manager) to `target`
   * (`tcp://host:port`). `options` keys default to the `pool` section:
   * `{ maxSize: 4, acquireTimeout: 250 }`.
   */
  pool(name, target, options) {
    checkString(name, 'pool name');
    checkString(target, 'pool target');
    const cfg = configFrom(options, 'pool options');
    return new Pool(this.#native.pool(name, target, cfg), this);
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
      try {
        this.#closing = this.#native.close(durationFrom(timeout, 'close timeout'));
      } catch (err) {
        return Promise.reject(err);
      }
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
  ErrorCode,
  isSwitchboardError,
  version: native.version(),
};
