'use strict';
// switchboard for Node: connection pools on the library's own runtime.
//
// This file wraps the native addon (switchboard.node, built from src/ by napi-rs) in
// the public Manager and wires the other classes, each in its own module: pool.js
// (Pool, Lease), sessions.js, registry.js, resources.js, server.js, cluster.js; custom
// pools' objects are kept by custom.js ("custom connectors"), errors and argument
// shaping are errors.js and options.js. It only shapes arguments: every behaviour, and
// every error message, comes from the Rust core. Errors are `Error`s whose `code` is
// the `SB_*` name; calls that may wait return promises and never block the event loop.

const { EventEmitter } = require('node:events');

const native = require('./native');
const { ErrorCode, invalid, messageOf, isSwitchboardError } = require('./errors');
const { describe, configFrom, durationFrom, callTimeout, checkString } = require('./options');
// Custom connectors (custom.js): the program's own objects as a pool's connections.
const { makeDispatch, barrierReached, flushThrough, splitCallbacks } = require('./custom');
const { Pool, Lease, kFlush, kRelease } = require('./pool');
const { Sessions } = require('./sessions');
const { eventFrom } = require('./events');

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
