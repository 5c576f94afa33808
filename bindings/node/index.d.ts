// Types of the `switchboard` package. Kept in sync with index.js by hand; the test
// tests/node/types.test.js fails when an exported name or a method is not declared here.

/// <reference types="node" />

import { EventEmitter } from 'node:events';

/** Every error code, by name. `ErrorCode.Timeout === 'SB_TIMEOUT'`. */
export declare const ErrorCode: Readonly<{
  InvalidArgument: 'SB_INVALID_ARGUMENT';
  NotFound: 'SB_NOT_FOUND';
  ResourceExhausted: 'SB_RESOURCE_EXHAUSTED';
  FailedPrecondition: 'SB_FAILED_PRECONDITION';
  Unavailable: 'SB_UNAVAILABLE';
  Timeout: 'SB_TIMEOUT';
  Cancelled: 'SB_CANCELLED';
  InvalidHandle: 'SB_INVALID_HANDLE';
  Io: 'SB_IO';
  Internal: 'SB_INTERNAL';
  Unauthenticated: 'SB_UNAUTHENTICATED';
  PermissionDenied: 'SB_PERMISSION_DENIED';
}>;

/** One of the `SB_*` error codes. */
export type ErrorCodeName = (typeof ErrorCode)[keyof typeof ErrorCode];

/** What every switchboard error looks like: an `Error` with `code` set to the `SB_*` name. */
export interface SwitchboardError extends Error {
  code: ErrorCodeName;
}

/** Whether `err` is an error from switchboard (its `code` is one of `ErrorCode`). */
export declare function isSwitchboardError(err: unknown): err is SwitchboardError;

/** The library version. */
export declare const version: string;

/**
 * A duration: a number of milliseconds, or a string such as `"250ms"`, `"1.5s"`, `"2m"`.
 */
export type Duration = number | string;

/** One configuration value. */
export type ConfigValue = number | string | boolean | bigint | Uint8Array | null | undefined;

/**
 * Configuration keys in any natural spelling: the full key (`'pool.max_size'`), the
 * short key in the default section (`maxSize`, `max_size`), section and key joined
 * (`poolMaxSize`, `pool_max_size`), or a section object
 * (`{ breaker: { failureThreshold: 1 } }`). Durations are milliseconds or strings such
 * as `"250ms"`; fractional numbers are fine where the key takes one (`1.6`); booleans
 * become `"true"`/`"false"`. Unknown keys and bad values throw SB_INVALID_ARGUMENT
 * naming the key. `undefined`/`null` values are skipped.
 */
export type ConfigOptions = { [key: string]: ConfigValue | ConfigOptions };

/** Options of `new Manager()`: keys default to the `runtime` section. */
export interface ManagerOptions extends ConfigOptions {
  /** `runtime.worker_threads`: threads of the library's own runtime (default 2). */
  workerThreads?: number;
  /** `pool.max_size` default for every pool of this manager. */
  poolMaxSize?: number;
  /** `pool.acquire_timeout` default for every pool of this manager. */
  poolAcquireTimeout?: Duration;
  /** `pool.connect_timeout` default for every pool of this manager. */
  poolConnectTimeout?: Duration;
  /** `pool.max_waiters` default for every pool of this manager. */
  poolMaxWaiters?: number;
  /** `tcp.keepalive` default (0 turns keepalive off). */
  tcpKeepalive?: Duration;
  /** `tcp.nodelay` default. */
  tcpNodelay?: boolean;
  /** `sessions.max_total`: most open sessions; 0 = no limit (default 1,000,000). */
  sessionsMaxTotal?: number;
  /** `sessions.max_per_key`: most open sessions per data source and key; 0 = no limit (default). */
  sessionsMaxPerKey?: number;
  /** `offsets.path`: the durable offset store's file; empty (default): in memory. */
  offsetsPath?: string;
  /** `offsets.sync`: `'every_commit'` (default: on disk when `commit()` resolves) or `'interval'`. */
  offsetsSync?: 'every_commit' | 'interval';
  /** `offsets.sync_interval`: how often `'interval'` mode writes (default 1 s). */
  offsetsSyncInterval?: Duration;
  /** The embedded server's `server.*` keys (off unless `listen` is set): `{ server: { listen: '127.0.0.1:0' } }`. */
  server?: ServerOptions;
  /** The `cluster.*` keys (off unless `redisUrl` is set): `{ cluster: { redisUrl: 'redis://127.0.0.1:6379/0' } }`. */
  cluster?: ClusterOptions;
}

/** The `server.*` keys: the embedded server (admin API, `/metrics`, the WebSocket hub, gRPC). */
export type ServerOptions = {
  /** `server.listen`: `host:port` to serve on (`'127.0.0.1:0'` picks a free port); empty (default): off. */
  listen?: string;
  /** `server.token`: the bearer token every route then needs; required for a non-loopback `listen`. */
  token?: string;
  /** `server.tls_cert`: a PEM certificate path (with `tlsKey`: the listener speaks TLS). */
  tlsCert?: string;
  /** `server.tls_key`: the PEM key path. */
  tlsKey?: string;
  /** `server.grpc_listen`: a separate address for gRPC; empty (default): gRPC on `listen`. */
  grpcListen?: string;
  /** `server.hub_queue`: hub messages kept for the program (default 10,000); beyond it the oldest is dropped. */
  hubQueue?: number;
};

/** The documented keys of `manager.pool()` options (`pool` section by default). */
export interface PoolKeys {
  /** `pool.max_size`: most connections open at once (default 10). */
  maxSize?: number;
  /** `pool.acquire_timeout`: how long `acquire()` waits (default 30 s). */
  acquireTimeout?: Duration;
  /** `pool.connect_timeout`: deadline to open one connection (default 10 s). */
  connectTimeout?: Duration;
  /** `pool.max_waiters`: most callers waiting at once; beyond it SB_RESOURCE_EXHAUSTED. */
  maxWaiters?: number;
  /** `pool.min_idle`: idle connections kept open by the background upkeep (default 0). */
  minIdle?: number;
  /** `pool.max_overflow`: extra connections beyond `maxSize`, closed on return (default 0). */
  maxOverflow?: number;
  /** `pool.idle_timeout`: close connections idle this long, keeping `minIdle`. */
  idleTimeout?: Duration;
  /** `pool.max_lifetime`: close connections this old (less a small random amount). */
  maxLifetime?: Duration;
  /** `pool.validate_after`: check a connection idle this long before handing it out (default 500 ms). */
  validateAfter?: Duration;
  /** `pool.validation_timeout`: deadline of one check or probe. */
  validationTimeout?: Duration;
  /**
   * `pool.liveness_bypass`: a connection returned less than this long ago is handed out
   * without the FIN/RST check (default 0: always checked).
   */
  livenessBypass?: Duration;
  /**
   * `pool.scale_ahead`: when leased / maxSize reaches this fraction (0..1), the next
   * connection opens before a caller has to wait (default 0: on demand only).
   */
  scaleAhead?: number;
  /** `pool.max_connecting`: most connects in flight at once. */
  maxConnecting?: number;
  /**
   * `pool.leak_detection_threshold`: a lease held longer is reported once as a
   * `leak_suspected` event (`manager.pollEvent()`); 0 (default) turns it off.
   */
  leakDetectionThreshold?: Duration;
  /**
   * `probe.send`: bytes a probe sends on a built-in socket: text with C escapes
   * (`"PING\r\n"`) or a Buffer (converted to that text). Empty: no probe.
   */
  probeSend?: string | Uint8Array;
  /** `probe.expect`: the prefix the probe's answer must start with (text or Buffer). */
  probeExpect?: string | Uint8Array;
  /** `tcp.keepalive` (0 turns keepalive off). */
  tcpKeepalive?: Duration;
  /** `tcp.nodelay`. */
  tcpNodelay?: boolean;
}

/** The `breaker.*` keys (`{ breaker: { ... } }`, or flat: `breakerFailureThreshold`). */
export type BreakerKeys = {
  /** `breaker.mode`: how each endpoint's breaker starts (default `'normal'`). */
  mode?: 'normal' | 'disabled' | 'metrics_only' | 'forced_open';
  /** `breaker.failure_threshold`: consecutive failures that open it; 0 off (default 5). */
  failureThreshold?: number;
  /** `breaker.failure_rate_threshold`: failure percent over the window that opens it (default 50). */
  failureRateThreshold?: number;
  /** `breaker.slow_call_rate_threshold`: slow-call percent over the window that opens it (default 100). */
  slowCallRateThreshold?: number;
  /** `breaker.slow_call_duration`: a call at least this long is slow (default 60 s). */
  slowCallDuration?: Duration;
  /** `breaker.window_type`: `'count'` (default) or `'time'`. */
  windowType?: 'count' | 'time';
  /** `breaker.window_size`: calls (count) or seconds (time) of the window (default 100). */
  windowSize?: number;
  /** `breaker.minimum_calls`: calls the window needs before a rate can open it (default 10). */
  minimumCalls?: number;
  /** `breaker.open_wait`: first open wait before HALF_OPEN (default 5 s). */
  openWait?: Duration;
  /** `breaker.open_wait_multiplier`: growth per reopening in a row (default 2). */
  openWaitMultiplier?: number;
  /** `breaker.max_open_wait`: cap of the open wait (default 60 s). */
  maxOpenWait?: Duration;
  /** `breaker.half_open_probes`: probes HALF_OPEN admits (default 3). */
  halfOpenProbes?: number;
  /** `breaker.probe_timeout`: a probe without a result this long failed (default 10 s). */
  probeTimeout?: Duration;
};

/** The `backoff.*` keys (`{ backoff: { ... } }`, or flat: `backoffInitial`). */
export type BackoffKeys = {
  /** `backoff.strategy`: `'grpc'` (default), `'full'`, `'equal'` or `'decorrelated'`. */
  strategy?: 'grpc' | 'full' | 'equal' | 'decorrelated';
  /** `backoff.initial`: delay before the first reconnect (default 1 s). */
  initial?: Duration;
  /** `backoff.multiplier`: growth per failed attempt (default 1.6). */
  multiplier?: number;
  /** `backoff.jitter`: +/- fraction of each grpc delay, 0..1 (default 0.2). */
  jitter?: number;
  /** `backoff.max`: longest delay (default 120 s). */
  max?: Duration;
  /** `backoff.min_connect_timeout`: floor of a reconnect's deadline (default 20 s). */
  minConnectTimeout?: Duration;
  /** `backoff.max_concurrent_reconnects`: process-wide cap on reconnects in flight (default 32). */
  maxConcurrentReconnects?: number;
};

/** The `retry.*` keys (`{ retry: { ... } }`, or flat: `retryMaxAttempts`). */
export type RetryKeys = {
  /** `retry.max_attempts`: 1 (default) fails fast with SB_UNAVAILABLE; more waits out the backoff. */
  maxAttempts?: number;
  /** `retry.max_elapsed`: longest time an acquire retries; 0 (default): the acquire timeout. */
  maxElapsed?: Duration;
};

/** The `health.*` keys (`{ health: { ... } }`, or flat: `healthInterval`). */
export type HealthKeys = {
  /** `health.interval`: how often each endpoint is checked; 0 off (default 10 s). */
  interval?: Duration;
  /** `health.timeout`: deadline of one check (default 5 s). */
  timeout?: Duration;
};

/** The resilience sections of `manager.pool()` options. */
export interface ResilienceSections {
  breaker?: BreakerKeys;
  backoff?: BackoffKeys;
  retry?: RetryKeys;
  health?: HealthKeys;
}

/** Options of `manager.pool()`: keys default to the `pool` section. */
export interface PoolOptions extends PoolKeys, ResilienceSections {
  [key: string]: ConfigValue | ConfigOptions;
}

/**
 * The program's callbacks for a custom pool (`manager.pool(name, target, { connect, ... })`).
 * Each runs on the JS thread: the library's runtime calls it through a threadsafe
 * function that never keeps Node alive.
 */
export interface ConnectorCallbacks<T> {
  /**
   * Makes one connection for `endpoint` (the pool's target, or one entry of a
   * comma-separated list). Returns the object, or a Promise of it. A throw or
   * rejection fails the acquire that waited for it, with its message.
   */
  connect: (endpoint: string) => T | Promise<T>;
  /**
   * Checks an idle connection before it is handed out (when idle longer than
   * `validateAfter`) and in the background upkeep. Returning (or resolving) anything
   * but `false` accepts it; `false`, a throw or a rejection closes and replaces it.
   */
  check?: (obj: T) => unknown;
  /**
   * Called once for every object the pool lets go. Queued, so it runs later on the JS
   * thread, not inside the call that let the connection go.
   */
  close?: (obj: T) => unknown;
}

/** Options of a custom pool: the callbacks plus configuration keys. */
export type CustomPoolOptions<T> = PoolKeys &
  ResilienceSections &
  ConnectorCallbacks<T> & {
    [key: string]: ConfigOptions[string] | ((arg: never) => unknown);
  };

/** Options of one `acquire()`. */
export interface AcquireOptions {
  /** Overrides `pool.acquire_timeout` for this call. */
  timeout?: Duration;
  /** Higher is served first; equal priorities in arrival order. A 32-bit integer. */
  priority?: number;
}

/** Connections closed, by reason. */
export interface ClosedBy {
  /** Found dead on checkout, or failed a check or probe. */
  broken: number;
  /** Idle past `idleTimeout`. */
  idle: number;
  /** Past `maxLifetime`. */
  lifetime: number;
  /** Beyond `maxSize` on return (`maxOverflow`, or after a shrinking `resize`). */
  overflow: number;
  /** By `evictAll()`. */
  evicted: number;
  /** By `lease.discard()`. */
  discarded: number;
  /** By closing the pool or its manager. */
  closed: number;
}

/**
 * A latency summary, in milliseconds (fractional). Quantiles come from a histogram:
 * interpolated within their bucket and never above `peak`. All zero without observations.
 */
export interface LatencySummary {
  /** Observations. */
  count: number;
  /** Mean. */
  avg: number;
  /** The largest observation. */
  peak: number;
  /** Median. */
  p50: number;
  /** 90th percentile. */
  p90: number;
  /** 99th percentile. */
  p99: number;
}

/**
 * What an event is about. More kinds may be added: ignore kinds you don't know.
 * - `leak_suspected`: a lease held longer than the pool's `leakDetectionThreshold`
 * - `connection_state` / `endpoint_state`: a connection or an endpoint changed state
 *   (`oldState` -> `newState`: `idle`, `connecting`, `connected`, `reconnecting`,
 *   `disconnecting`, `disconnected`, `failed`)
 * - `breaker_state`: an endpoint's breaker changed state (`closed`, `open`,
 *   `half_open`, `forced_open`, `disabled`, `metrics_only`)
 * - `health_check`: a health check finished (`newState` `ok` or `failed`, `ageMs` its duration)
 * - `rejected`: a caller was turned away (breaker open, backing off, too many waiters)
 * - `session_opened`, `session_closed`, `stream_added`, `stream_removed`, `commit_failed`: sessions
 * - `resource_state`: a resource's status changed (`oldState` -> `newState`, `reason` the
 *   error), `resource_detached`: a consumer was detached by a forced delete,
 *   `resource_rebound`: an update swapped the connection in (all with `resource`)
 * - `cluster_joined`: this instance joined its cluster (`reason` `joined`, or `rejoined`
 *   after Redis came back), `cluster_lost`: it lost Redis and serves locally (`reason`
 *   `redis_unavailable`)
 */
export type EventKind =
  | 'leak_suspected'
  | 'connection_state'
  | 'endpoint_state'
  | 'breaker_state'
  | 'health_check'
  | 'rejected'
  | 'session_opened'
  | 'session_closed'
  | 'stream_added'
  | 'stream_removed'
  | 'commit_failed'
  | 'registered'
  | 'unregistered'
  | 'subscribed'
  | 'unsubscribed'
  | 'slow_consumer'
  | 'resource_state'
  | 'resource_detached'
  | 'resource_rebound'
  | 'cluster_joined'
  | 'cluster_lost';

/** One event from `manager.pollEvent()` or the `'event'` listener. */
export interface SwitchboardEvent {
  /** What happened. */
  kind: EventKind;
  /** The pool it concerns (`''` when none). */
  pool: string;
  /** The endpoint it concerns, as written in the pool's target, or `null`. */
  endpoint: string | null;
  /** The connection (lease id) it concerns, or `null`. */
  connectionId: number | null;
  /** The session it concerns, or `null`. */
  sessionId: number | null;
  /** The stream it concerns, or `null`. */
  stream: string | null;
  /** For state changes: the state before, else `null`. */
  oldState: string | null;
  /** For state changes: the state after; for health checks `'ok'` or `'failed'`; else `null`. */
  newState: string | null;
  /** How long the lease had been held (leaks) or the check took (health checks), in milliseconds, or `null`. */
  ageMs: number | null;
  /** The registry topic it concerns, or `null`. */
  topic: string | null;
  /** The user of the registry connection it concerns, or `null`. */
  user: string | null;
  /**
   * A short machine-readable reason, or `null`: why a registry connection left
   * (`stale`, `send_failed`, `slow_consumer`, `manager_closed`, the program's own),
   * which policy a slow consumer met, or which limit refused a call.
   */
  reason: string | null;
  /** The resource it concerns (`resource_*` events), or `null`. */
  resource: string | null;
  /** A sentence for humans (the reason). */
  message: string;
  /** When it happened. */
  time: Date;
}

/** A connection's or an endpoint's state. */
export type ConnState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'disconnecting' | 'disconnected' | 'failed';

/**
 * How warm an endpoint is: `cold` (no connection open and none being opened), `warming`
 * (connects in flight, or fewer open than its share of the pool's `minIdle`, i.e.
 * `minIdle / endpoints` rounded down) or `warm` (open, that share met, nothing being
 * opened).
 */
export type WarmingState = 'cold' | 'warming' | 'warm';

/** A circuit breaker's state. */
export type BreakerState = 'closed' | 'open' | 'half_open' | 'forced_open' | 'disabled' | 'metrics_only';

/** An operator's command to a breaker (`pool.breakerOp(op, endpoint?)`). */
export type BreakerOp = 'force_open' | 'disable' | 'metrics_only' | 'reset';

/** One endpoint's health. Durations in milliseconds. */
export interface EndpointHealth {
  /** The endpoint, as written in the pool's target. */
  endpoint: string;
  /** Its state. */
  state: ConnState;
  /** How warm it is: whether the next caller finds a connection open to it. */
  warming: WarmingState;
  /** Its breaker's state. */
  breaker: BreakerState;
  /** Quality score in [0, 1], higher is better (success rate and latency). */
  quality: number;
  /** Latency EWMA of successful calls (milliseconds), or `null` before the first. */
  latencyEwma: number | null;
  /** Success rate (EWMA) in [0, 1]. */
  successRate: number;
  /** Calls recorded (connects, probes, health checks, reported calls, socket errors). */
  calls: number;
  /** Of them, failed. */
  failures: number;
  /** Reconnect attempts. */
  reconnects: number;
  /** Health checks run. */
  checks: number;
  /** Health checks failed. */
  checksFailed: number;
  /** Times the breaker opened. */
  breakerOpened: number;
  /** Breaker state changes. */
  breakerTransitions: number;
  /** Connects the breaker refused. */
  breakerRejected: number;
  /** Connections open to it now. */
  openConnections: number;
  /** Of them, leased now. */
  inFlight: number;
  /** Last successful call, or `null`. */
  lastSuccess: Date | null;
  /** Connected without a failure since, or `null`. */
  connectedSince: Date | null;
  /** The last failure's message, or `null`. */
  lastError: string | null;
  /** Milliseconds until the next reconnect may start, if backing off, else `null`. */
  backoffRemaining: number | null;
}

/** A pool's health: totals over its endpoints and each endpoint. */
export interface HealthReport {
  /** The pool's name. */
  pool: string;
  /** Calls over all endpoints. */
  calls: number;
  /** Failures over all endpoints. */
  failures: number;
  /** `1 - failures / calls` (1 with no calls). */
  successRate: number;
  /** Reconnect attempts over all endpoints. */
  reconnects: number;
  /** The latest success of any endpoint, or `null`. */
  lastSuccess: Date | null;
  /** The earliest `connectedSince` of the connected endpoints, or `null`. */
  connectedSince: Date | null;
  /** Each endpoint, in target order. */
  endpoints: EndpointHealth[];
}

/** Options of one `lease.read()` / `lease.write()`. */
export interface CallOptions {
  /** Fail with SB_TIMEOUT past this. */
  timeout?: Duration;
}

/** A snapshot of a pool's state and counters. */
export interface PoolStats {
  name: string;
  /** `pool.max_size` now. */
  maxSize: number;
  /** `pool.min_idle` now. */
  minIdle: number;
  /** `pool.max_overflow`. */
  maxOverflow: number;
  /** Open connections plus connects in flight. */
  size: number;
  /** Idle connections. */
  idle: number;
  /** Connections handed out. */
  leased: number;
  /** Callers waiting for a connection. */
  waiting: number;
  /** Connects in flight. */
  connecting: number;
  /** Connections opened, ever. */
  createdTotal: number;
  /** Connections closed, ever (the sum of `closedBy`). */
  closedTotal: number;
  /** Connections closed, by reason. */
  closedBy: ClosedBy;
  /** Successful acquires (`acquiredDirectTotal + acquiredWaitedTotal`). */
  acquiredTotal: number;
  /** Acquires served at once from an idle connection. */
  acquiredDirectTotal: number;
  /** Acquires that waited in line. */
  acquiredWaitedTotal: number;
  /** Acquires that timed out. */
  timedOutTotal: number;
  /** Acquires rejected because the wait queue was full. */
  rejectedTotal: number;
  /** Connect attempts that failed. */
  connectFailedTotal: number;
  /** Checks or probes that failed (the connection was closed as broken). */
  probeFailedTotal: number;
  /** How long successful acquires waited (milliseconds). */
  wait: LatencySummary;
  /** How long leases were held, counted when they come back (milliseconds). */
  lease: LatencySummary;
  /** Each endpoint's health, in target order (as in `pool.health()`). */
  endpoints: EndpointHealth[];
}

/** What a built-in socket pool's leases hold (`Lease<Socket>` has no `obj`). */
export type Socket = { readonly __switchboardSocket: unique symbol };

/**
 * One checked-out connection. Return it with `release()` (or `discard()` after an error
 * on it). A lease that is garbage-collected unreleased returns its connection. After
 * release, `fd`, `obj`, `read()` and `write()` fail with SB_FAILED_PRECONDITION.
 * `T` is the object type of a custom pool, `Socket` for built-in sockets.
 */
export declare class Lease<T = Socket> {
  private constructor();
  /** The connection's id, unique within its pool and never reused. */
  readonly id: number;
  /**
   * The raw file descriptor (blocking mode while leased). Throws once released, and
   * (SB_FAILED_PRECONDITION) for a custom pool's lease.
   */
  readonly fd: number;
  /**
   * A custom pool's object, made by its `connect`. Throws once released, and
   * (SB_FAILED_PRECONDITION) for a built-in socket.
   */
  readonly obj: T;
  /** Same as `obj`. */
  readonly value: T;
  /** The name of the pool it came from. */
  readonly poolName: string;
  /** The pool it came from. */
  readonly pool: Pool<T>;
  /** Whether the lease was released or discarded. */
  readonly released: boolean;
  /** The endpoint it is connected to, as written in the pool's target. */
  readonly endpoint: string;
  /**
   * Records the result of work done on this connection (`latencyMs` in milliseconds)
   * for its endpoint's breaker, success rate and quality. A report that opens the
   * breaker closes this connection when it comes back. Throws SB_FAILED_PRECONDITION
   * once released or while a read or write is in flight.
   */
  report(success: boolean, latencyMs: number): void;
  /**
   * Writes all of `data` (strings as UTF-8). One read or write at a time per lease.
   * Past `options.timeout` it rejects with SB_TIMEOUT (part of the data may have gone:
   * discard the lease then). A failed write (reset, broken pipe) makes the connection
   * close when the lease ends. Built-in sockets only; rejects with
   * SB_FAILED_PRECONDITION on a custom lease.
   */
  write(data: Buffer | Uint8Array | string, options?: CallOptions): Promise<void>;
  /**
   * Reads up to `size` bytes (default 65536) once at least one is available. An empty
   * Buffer means the peer closed the connection. Past `options.timeout` it rejects
   * with SB_TIMEOUT (nothing consumed; the lease stays usable).
   */
  read(size?: number | null, options?: CallOptions): Promise<Buffer>;
  /**
   * Returns the connection to the pool. Safe to call twice. A read or write in flight
   * is cancelled (it rejects with SB_CANCELLED) and the connection closed instead.
   */
  release(): void;
  /** Closes the connection instead of returning it. Safe to call twice. */
  discard(): void;
  toString(): string;
  /** Releases the lease (`using lease = ...`). */
  [Symbol.dispose](): void;
  /** Releases the lease (`await using lease = ...`). */
  [Symbol.asyncDispose](): Promise<void>;
}

/** A pool of connections to one target, created by `manager.pool()`. */
export declare class Pool<T = Socket> {
  private constructor();
  /** The pool's name. */
  readonly name: string;
  /** Whether the pool (or its manager) is closed. */
  readonly closed: boolean;
  /** The manager that owns the pool. */
  readonly manager: Manager;
  /**
   * Acquires a connection, waiting on the library's runtime (never on the event loop)
   * up to `timeout`. Rejects with SB_TIMEOUT, SB_UNAVAILABLE (endpoint down, closed),
   * SB_IO or SB_RESOURCE_EXHAUSTED.
   */
  acquire(options?: AcquireOptions): Promise<Lease<T>>;
  /**
   * An idle connection if one is ready now, else `null`. Synchronous; never waits and
   * never checks (one idle past `validateAfter` is left for `acquire()`).
   */
  tryAcquire(): Lease<T> | null;
  /** Acquires, runs `fn(lease)`, and releases the lease when `fn` settles. */
  withLease<R>(fn: (lease: Lease<T>) => R | Promise<R>, options?: AcquireOptions): Promise<R>;
  /** A snapshot of the pool's state and counters. */
  stats(): PoolStats;
  /** The pool's health: totals and each endpoint's state, breaker, quality and counters. */
  health(): HealthReport;
  /** The endpoints in good standing (breaker not refusing, not failed), best quality first. */
  healthyEndpoints(): EndpointHealth[];
  /**
   * Of `candidates` (endpoints as written in the target; none or empty: all), the one
   * the pool would pick now. Throws SB_UNAVAILABLE when none can take a connection,
   * SB_NOT_FOUND for an endpoint the pool does not have.
   */
  selectBest(candidates?: string[]): string;
  /**
   * The breaker state of `endpoint`; without one, of the pool's only endpoint
   * (SB_INVALID_ARGUMENT when it has several).
   */
  breakerState(endpoint?: string): BreakerState;
  /** An operator's command to the breaker of `endpoint` (without one: every endpoint). */
  breakerOp(op: BreakerOp, endpoint?: string): void;
  /** Forgets every endpoint's failed connects: the next connect may start at once. */
  resetBackoff(): void;
  /** Closes `endpoint`'s connections: idle ones now, leased ones when they come back. */
  drain(endpoint: string): void;
  /** Runs every endpoint's health check now on the library's runtime; resolves when done. */
  runHealthChecks(): Promise<void>;
  /**
   * Changes `maxSize` and `minIdle` (default 0) on the live pool without dropping
   * leases. Throws SB_INVALID_ARGUMENT for sizes the pool does not accept.
   */
  resize(maxSize: number, minIdle?: number): void;
  /** Closes every idle connection now and every leased one when it comes back. */
  evictAll(): void;
  /** Opens connections until `minIdle` are idle (or `maxSize` is reached); resolves with how many it opened. */
  warm(): Promise<number>;
  /** Runs one pass of the background upkeep now (the pool also runs it on its own). */
  runUpkeep(): Promise<void>;
  /** Closes the pool; waiters fail with SB_UNAVAILABLE. Safe to call twice. */
  close(): void;
}

/** What `sessions.open()` takes. */
export interface SessionDetails {
  /** A registered data source (non-empty). */
  dataSource: string;
  /** A registered session key of it (non-empty). */
  sessionKey: string;
  /** Stream names, unique within the session (default none). */
  streams?: string[];
  /** One start offset (>= 0) per stream, or none to start every stream at 0. */
  streamOffsets?: number[];
  /** Stored and reported only (default false). */
  excludeMainStream?: boolean;
}

/** One stream of a session. Offsets and counters are numbers (exact up to 2^53). */
export interface StreamInfo {
  /** The stream's name. */
  name: string;
  /** The next offset to deliver. */
  position: number;
  /**
   * Safe to resume from: the last offset this session committed, else what the store
   * held when the stream was opened, else `null`.
   */
  committed: number | null;
  /** Data packets read from the source. */
  dataPacketsRead: number;
  /** Bytes of those packets. */
  dataBytesRead: number;
  /** Data packets delivered to the client. */
  dataPacketsDelivered: number;
  /** Bytes of those packets. */
  dataBytesDelivered: number;
  /** Essential packets read. */
  essentialPacketsRead: number;
  /** Essential packets delivered. */
  essentialPacketsDelivered: number;
}

/** A session, from `sessions.get()` or `sessions.list()`. */
export interface SessionInfo {
  /** Unique in the process, never reused. */
  id: number;
  dataSource: string;
  sessionKey: string;
  excludeMainStream: boolean;
  /** In the order opened or added. */
  streams: StreamInfo[];
  /** Router (control) messages received. */
  routerMessagesReceived: number;
  /** Bytes of those messages. */
  routerBytesReceived: number;
}

/**
 * The streaming sessions of a manager (`manager.sessions`). Calls that may touch the
 * offset store's disk return promises and run off the event loop; the others are
 * synchronous. Errors: SB_INVALID_ARGUMENT (bad details, naming the field),
 * SB_FAILED_PRECONDITION (key not registered, a commit going backwards),
 * SB_RESOURCE_EXHAUSTED (`sessions.max_total` / `max_per_key`), SB_NOT_FOUND (no such
 * session or stream), SB_UNAVAILABLE (manager closed), SB_IO (store failure).
 */
export declare class Sessions {
  private constructor();
  /** The manager they belong to. */
  readonly manager: Manager;
  /** Registers `sessionKey` of `dataSource`; true if it was new. */
  register(dataSource: string, sessionKey: string): boolean;
  /** Unregisters it; true if it was there. SB_FAILED_PRECONDITION while sessions are open on it. */
  unregister(dataSource: string, sessionKey: string): boolean;
  /** Whether it is registered. */
  isRegistered(dataSource: string, sessionKey: string): boolean;
  /** Every registered `[dataSource, sessionKey]`, sorted. */
  catalog(): [string, string][];
  /** Opens a session; resolves with its id. */
  open(details: SessionDetails): Promise<number>;
  /** Opens a session whose streams start at their committed offsets (0 if none). */
  resume(dataSource: string, sessionKey: string, streams?: string[], excludeMainStream?: boolean): Promise<number>;
  /** The session's details, streams and counters. */
  get(id: number): SessionInfo;
  /** Closes the session; its commits stay in the store. */
  close(id: number): void;
  /** Open sessions sorted by id, optionally filtered. */
  list(filter?: { dataSource?: string; sessionKey?: string }): SessionInfo[];
  /** Adds a stream to a live session at `offset` (default 0). */
  addStream(id: number, stream: string, offset?: number): Promise<void>;
  /** Removes a stream from a live session. */
  removeStream(id: number, stream: string): void;
  /** Counts packets read from the source (default 1 packet, 0 bytes, 0 essential). */
  recordRead(id: number, stream: string, packets?: number, bytes?: number, essential?: number): void;
  /** Counts packets delivered and advances the position by `packets`; returns the new position. */
  deliver(id: number, stream: string, packets?: number, bytes?: number, essential?: number): number;
  /** Counts router (control) messages received (default 1 message, 0 bytes). */
  recordRouter(id: number, messages?: number, bytes?: number): void;
  /** The next offset to deliver on `stream`. */
  position(id: number, stream: string): number;
  /** Commits `offset` (never backwards unless `seek()` rewound); durable once it resolves with `offsets.sync = every_commit`. */
  commit(id: number, stream: string, offset: number): Promise<void>;
  /** Sets the position and lets the next commit go down to `offset`; stores nothing. */
  seek(id: number, stream: string, offset: number): void;
  /** The offset committed in the store for this stream of this key, or `null`. */
  committed(dataSource: string, sessionKey: string, stream: string): Promise<number | null>;
  /** Writes commits buffered by `offsets.sync = interval` now. */
  flush(): Promise<void>;
  /** Sessions open now. */
  readonly openCount: number;
  /** `'memory'` or `'durable'`. */
  readonly storeKind: 'memory' | 'durable' | 'redis';
  /** Commits accepted but not yet on disk (interval mode; else 0). */
  readonly bufferedCommits: number;
}

/**
 * The root object: owns the library's runtime (its own threads) and the pools. After
 * `await manager.close()` nothing of it keeps the process alive.
 *
 * An EventEmitter: while `'event'` has a listener, events are emitted as `'event'` on
 * the JS thread instead of queued for `pollEvent()`; listening never keeps Node alive,
 * and nothing is emitted after `close()`. A listener that throws becomes a process
 * warning (code `SWITCHBOARD_CALLBACK`).
 */
export declare class Manager extends EventEmitter {
  constructor(options?: ManagerOptions);
  /** Creates a pool named `name` (unique in this manager) to `target` (`tcp://host:port`). */
  pool(name: string, target: string, options?: PoolOptions): Pool<Socket>;
  /** The streaming sessions, their catalog and the offset store. */
  readonly sessions: Sessions;
  /** The live-connection registry, configured by the manager's `registry.*` keys. */
  readonly registry: Registry;
  /** The named shared connections (`resources.path` in the options keeps them on disk). */
  readonly resources: Resources;
  /** The embedded server's bound address (`'127.0.0.1:PORT'`), or `null` when `server.listen` is off. */
  readonly serverAddress: string | null;
  /** The gRPC sessions service's address (the server's unless `server.grpcListen`), or `null`. */
  readonly grpcAddress: string | null;
  /** The server's WebSocket hub: what hub clients send to the program. */
  readonly hub: Hub;
  /** The manager's membership in its cluster, or `null` when `cluster.redis_url` is not set. */
  readonly cluster: Cluster | null;
  /**
   * Moves the manual clock (`{ runtime: { clock: 'manual' } }`) forward by `by`;
   * SB_FAILED_PRECONDITION on a system clock.
   */
  advanceClock(by: Duration): void;
  /**
   * Creates a custom pool: its connections are the objects `connect` makes for
   * `target` (any string, given to `connect`); see `ConnectorCallbacks`.
   */
  pool<T>(name: string, target: string, options: CustomPoolOptions<T>): Pool<T>;
  /**
   * The metrics of every open pool and session as Prometheus/OpenMetrics text
   * (`switchboard_pool_*`, `switchboard_endpoint_*` and `stream_api_*` series, ending
   * with `# EOF`).
   */
  metricsText(): string;
  /** The next queued event, or `null`. Synchronous; never waits. */
  pollEvent(): SwitchboardEvent | null;
  /** Events dropped because the queue (10,000) was full and nobody polled. */
  eventsDropped(): number;
  /** Listens for events (a leak suspected, ...) on the JS thread. */
  on(eventName: 'event', listener: (event: SwitchboardEvent) => void): this;
  on(eventName: string | symbol, listener: (...args: any[]) => void): this;
  /** Listens for the next event only. */
  once(eventName: 'event', listener: (event: SwitchboardEvent) => void): this;
  once(eventName: string | symbol, listener: (...args: any[]) => void): this;
  /** EventEmitter's; `'event'` listeners added afterwards still start delivery. */
  removeAllListeners(eventName?: string | symbol): this;
  /** Whether `close()` has been called. */
  readonly closed: boolean;
  /**
   * Closes the manager off the event loop: fails waiters, waits up to `timeout`
   * (default 5 s) for leases to come back, closes every connection and stops the
   * runtime. Calling it again returns the same promise.
   */
  close(timeout?: Duration): Promise<void>;
  /** Closes the manager (`await using manager = ...`). */
  [Symbol.asyncDispose](): Promise<void>;
}

// ---- the embedded server's hub ---------------------------------------------------------

/**
 * One message a hub client sent (any envelope type but the hub's own `subscribe`,
 * `unsubscribe`, `ping`, `pong` and `heartbeat`). Answer it with
 * `manager.registry.send(msg.connectionId, text)`.
 */
export declare class HubMessage {
  private constructor();
  /** The registry id of the client that sent it. */
  readonly connectionId: number;
  /** The client's user (from the registry's auth hook), or `null`. */
  readonly user: string | null;
  /** The envelope's `type` (`data`, `chat`, ...). */
  readonly type: string;
  /** The envelope's `topic`, or `null`. */
  readonly topic: string | null;
  /** The whole JSON text as the client sent it. */
  readonly text: string;
  /** The envelope parsed (`JSON.parse(text)`). */
  json(): { type: string; topic?: string; data?: unknown; timestamp?: string; [key: string]: unknown };
}

/**
 * The server's WebSocket hub (`manager.hub`): pull with `await hub.recv(timeoutMs)`, or
 * listen: while `'message'` has a listener, every message is emitted on the JS thread
 * instead of queued (listening never keeps Node alive). Without a server nothing arrives.
 */
export declare class Hub extends EventEmitter {
  private constructor();
  /** The manager it belongs to. */
  readonly manager: Manager;
  /**
   * The next message, or `null` when none came within `timeoutMs` (omitted: wait for
   * one). Waits off the event loop; rejects with SB_UNAVAILABLE once the manager is closed.
   */
  recv(timeoutMs?: number | null): Promise<HubMessage | null>;
  /** Messages dropped because the queue (`server.hubQueue`) was full. */
  readonly dropped: number;
  /** Messages waiting to be read. */
  readonly queued: number;
  /** Listens for hub messages on the JS thread (core's handler mode). */
  on(eventName: 'message', listener: (msg: HubMessage) => void): this;
  on(eventName: string | symbol, listener: (...args: any[]) => void): this;
  once(eventName: 'message', listener: (msg: HubMessage) => void): this;
  once(eventName: string | symbol, listener: (...args: any[]) => void): this;
  off(eventName: 'message', listener: (msg: HubMessage) => void): this;
  off(eventName: string | symbol, listener: (...args: any[]) => void): this;
  /** EventEmitter's; `'message'` listeners added afterwards still start delivery. */
  removeAllListeners(eventName?: string | symbol): this;
}

// ---- registry ------------------------------------------------------------------------

/** What an outbox yields for a heartbeat: ping the client (e.g. `ws.ping()`). */
export declare const PING: unique symbol;

/** A message from the registry: a string (text) or a Buffer (binary). */
export type RegistryMessage = string | Buffer;

/** What an outbox yields: a message, or `PING`. */
export type OutboxItem = RegistryMessage | typeof PING;

/** A message to broadcast: a string is a text message; bytes are binary. */
export type MessageInput = string | Buffer | Uint8Array | ArrayBuffer;

/** A connection id, or the Connection / Outbox itself. */
export type ConnectionRef = number | Connection | Outbox;

/** Who a connection is: its user, metadata, initial topics and a token for the authenticate hook. */
export interface RegistrationOptions {
  user?: string | null;
  metadata?: Record<string, string> | Map<string, string> | null;
  topics?: string[] | null;
  token?: string | null;
}

/** `register()` options: the registration and the connection's callbacks (run on the JS thread). */
export interface RegisterOptions extends RegistrationOptions {
  /** Hands `msg` to the client; a throw or a rejected Promise is a failed delivery. One connection's sends run in order. */
  send: (msg: RegistryMessage, connection: Connection) => void | Promise<unknown>;
  /** Pings the client (heartbeats). */
  ping?: ((connection: Connection) => void | Promise<unknown>) | null;
  /** The connection left for `reason`: close the client's transport. Called once, last. */
  close?: ((reason: string, connection: Connection) => void | Promise<unknown>) | null;
}

/** Who a broadcast or a disconnect is for: the union of topics, users and ids, or all, minus `except`. */
export interface Target {
  all?: boolean;
  topic?: string;
  topics?: string[];
  user?: string;
  users?: string[];
  id?: ConnectionRef;
  ids?: ConnectionRef[];
  except?: ConnectionRef | ConnectionRef[];
}

/** What one broadcast (or send) did by the time it returned. */
export interface BroadcastReport {
  recipients: number;
  queued: number;
  dropped: number;
  disconnected: number;
  elapsedMs: number;
}

/** A registry connection's liveness. */
export type ConnectionState = 'active' | 'idle';

/** A snapshot of one registered connection. */
export interface ConnectionInfo {
  id: number;
  user: string | null;
  metadata: Record<string, string>;
  topics: string[];
  state: ConnectionState;
  sink: 'callback' | 'outbox';
  ageMs: number;
  idleMs: number;
  queuedMessages: number;
  queuedBytes: number;
  sent: number;
  dropped: number;
  failed: number;
}

/** Which connections `list()` returns (every set field must match). */
export interface ListFilter {
  user?: string | null;
  topic?: string | null;
  meta?: [string, string] | null;
  state?: ConnectionState | null;
  minIdleMs?: number | null;
  /** Most records (default 100, at most 10,000). */
  limit?: number | null;
  /** The previous page's `nextCursor`. */
  cursor?: number | null;
}

/** One page of `list()`. */
export interface ListPage {
  connections: ConnectionInfo[];
  nextCursor: number | null;
}

/** The registry's statistics. */
export interface RegistryStats {
  connections: number;
  active: number;
  topics: number;
  users: number;
  /** `[topic, subscribers]`, largest first. */
  topicCounts: [string, number][];
  registeredTotal: number;
  broadcasts: number;
  messagesQueued: number;
  messagesSent: number;
  messagesDropped: number;
  messagesFailed: number;
  /** Connections removed, by reason. */
  disconnects: Record<string, number>;
  /** Calls refused by a limit, by the limit's key. */
  rejections: Record<string, number>;
  cleanupRuns: number;
}

/** What one cleanup pass did. */
export interface CleanupReport {
  removed: number;
  pinged: number;
}

/** What the authenticate hook grants a token. */
export interface AuthGrant {
  user?: string | null;
  metadata?: Record<string, string> | Map<string, string> | null;
}

/** `authenticate(token)`: a grant, or `null`/`false`/a throw to refuse (SB_UNAUTHENTICATED). Synchronous. */
export type Authenticate = (token: string) => AuthGrant | null | false;
/** `authorize(id, user, topic)`: `false` or a throw refuses (SB_PERMISSION_DENIED). Synchronous. */
export type Authorize = (id: number, user: string | null, topic: string) => boolean | void;

/** What a Connection and an Outbox share: the registry's calls on their id. */
declare abstract class RegistryMember {
  /** The connection's id: unique in the process, never reused. */
  readonly id: number;
  readonly registry: Registry;
  /** Whether it left (its close callback ran, or its outbox yielded the end). */
  readonly closed: boolean;
  /** Why it left, or `null`. */
  readonly closedReason: string | null;
  /** Records traffic from the client now (every message, a pong included). */
  touch(): void;
  subscribe(topic: string): boolean;
  unsubscribe(topic: string): boolean;
  setMetadata(key: string, value: string | null): void;
  info(): ConnectionInfo;
  unregister(reason?: string): void;
  send(msg: MessageInput): BroadcastReport;
}

/** A connection registered with a send callback. */
export declare class Connection extends RegistryMember {
  private constructor();
}

/** A connection whose messages the program pulls; `for await (const item of outbox)` ends when it leaves. */
export declare class Outbox extends RegistryMember implements AsyncIterable<OutboxItem> {
  private constructor();
  /** The next item at once, `undefined` when none is queued, `null` once closed. */
  tryNext(): OutboxItem | null | undefined;
  /** The next item, waiting off the event loop; `null` once closed (then see `closedReason`). */
  next(): Promise<OutboxItem | null>;
  /** Closes the outbox: later deliveries count as failed. */
  close(): void;
  [Symbol.asyncIterator](): AsyncIterator<OutboxItem>;
}

/** The live-connection registry of a manager (`manager.registry`). */
export declare class Registry {
  private constructor();
  /** The same value as the exported `PING`. */
  static readonly PING: typeof PING;
  readonly manager: Manager;
  /** Connections registered now. */
  readonly size: number;
  register(options: RegisterOptions): Connection;
  registerOutbox(options?: RegistrationOptions): Outbox;
  /**
   * Sets (or clears) the hooks. They run on the JS thread for this registry's calls,
   * and are installed in core for the server's hub, whose threads wait (at most 5 s,
   * then refuse) for the JS thread to run them.
   */
  setAuthenticator(authenticate: Authenticate | null, authorize?: Authorize | null): void;
  get(id: ConnectionRef): ConnectionInfo;
  has(id: ConnectionRef): boolean;
  unregister(id: ConnectionRef, reason?: string | null): void;
  touch(id: ConnectionRef): void;
  subscribe(id: ConnectionRef, topic: string): boolean;
  unsubscribe(id: ConnectionRef, topic: string): boolean;
  setMetadata(id: ConnectionRef, key: string, value: string | null): void;
  broadcast(msg: MessageInput, target: Target): BroadcastReport;
  send(id: ConnectionRef, msg: MessageInput): BroadcastReport;
  list(filter?: ListFilter): ListPage;
  disconnect(target: Target, reason?: string | null): number;
  stats(): RegistryStats;
  cleanup(): CleanupReport;
}

/** A decoded envelope. */
export interface Envelope {
  type: string;
  topic: string | null;
  data: unknown;
  timestamp: string | null;
  error: string | null;
}

/** Encodes seed 004's JSON envelope (`type`, `topic`, `data`, `timestamp`, `error`), stamped now. */
export declare function envelope(type: string, fields?: { topic?: string | null; data?: unknown; error?: string | null }): string;
/** Decodes an envelope; SB_INVALID_ARGUMENT says what is wrong. */
export declare function parseEnvelope(text: string): Envelope;

// ---- resources ----------------------------------------------------------------------

/** Where a resource's one connection is. */
export type ResourceStatus = 'connecting' | 'connected' | 'recovering' | 'disconnected';

/**
 * A resource's props: `endpoint` (`tcp://host:port`, `unix:///path`, or any string for
 * a registered type) and pool keys in any natural spelling (`connectTimeout`,
 * `'health.interval'`, `{ backoff: { initial: 20 } }`, `probeSend`, `tcp: { nodelay }`).
 * Core validates them and names a bad one (SB_INVALID_ARGUMENT).
 */
export interface ResourceProps extends ResilienceSections {
  endpoint?: string;
  connectTimeout?: Duration;
  healthInterval?: Duration;
  /** `resources.on_connect`: bytes sent on every new connection before it counts as connected. */
  onConnect?: string | Uint8Array;
  [key: string]: ConfigValue | ConfigOptions;
}

/** A snapshot of one resource (`resources.get()` / `list()`). */
export interface ResourceInfo {
  /** Its id (`anonymous-<n>` for an anonymous one). */
  id: string;
  /** `'tcp'`, `'unix'` or a registered type. */
  type: string;
  endpoint: string;
  anonymous: boolean;
  status: ResourceStatus;
  /** The last connect or probe error, or `null`. */
  lastError: string | null;
  /** Whether it stopped retrying (a configuration error). */
  stopped: boolean;
  /** Its consumers' names, in attach order. */
  consumers: string[];
  /** Connections lost and redialled. */
  reconnects: number;
  /** Bytes read and written through its handles. */
  bytesIn: number;
  bytesOut: number;
  /** How long the current connection has been up, in milliseconds; `null` unless connected. */
  connectedForMs: number | null;
}

/** Options of `resourceHandle.read()`. */
export interface ResourceReadOptions {
  /** Give up (SB_TIMEOUT, nothing consumed) after this long. */
  timeout?: Duration;
}

/**
 * One consumer's share of a resource. `read`/`write` use the resource's current
 * connection and count its bytes; the connection is shared, so one consumer writes at a
 * time and one reads at a time (the program coordinates them, as with a lease's socket).
 * `T` is the object type of a registered type (`object()`).
 */
export declare class ResourceHandle<T = unknown> {
  private constructor();
  readonly id: string;
  readonly consumer: string;
  readonly status: ResourceStatus;
  readonly detached: boolean;
  /** Writes all of `data`; SB_UNAVAILABLE while connecting or recovering. */
  write(data: Buffer | Uint8Array | string): Promise<void>;
  /** Reads up to `max` bytes (default 64 KiB); an empty Buffer when the peer closed. */
  read(max?: number, options?: ResourceReadOptions): Promise<Buffer>;
  /** Resolves when connected, across reconnects; SB_TIMEOUT after `timeout`. */
  waitReady(timeout: Duration): Promise<void>;
  /** This consumer saw an error: check (and probe) the connection now. */
  reportFailure(): void;
  /** The program's object (registered types); SB_FAILED_PRECONDITION for tcp/unix. */
  object(): T;
  /** Lets go; a read or wait in flight rejects with SB_CANCELLED. Safe twice. */
  detach(): void;
  [Symbol.dispose](): void;
}

/** The callbacks of a registered resource type: those a custom pool takes. */
export type ResourceTypeCallbacks<T> = ConnectorCallbacks<T>;

/** The manager's named shared connections (`manager.resources`). */
export declare class Resources {
  private constructor();
  readonly manager: Manager;
  /** Creates resource `id` of `type` (`'tcp'`, `'unix'` or a registered type), dialled at once. */
  create(id: string, type: string, props: ResourceProps): void;
  /** Attaches consumer `consumer` to resource `id` (SB_NOT_FOUND if unknown). */
  attach<T = unknown>(id: string, consumer: string): ResourceHandle<T>;
  /** Attaches to the unnamed resource of `type` with `props`, shared by equal props. */
  attachAnonymous<T = unknown>(type: string, consumer: string, props: ResourceProps): ResourceHandle<T>;
  /** Opens a connection with `props`, then swaps it in for every consumer. */
  update(id: string, props: ResourceProps): Promise<void>;
  /** SB_FAILED_PRECONDITION naming the consumers while attached, unless `force`. */
  delete(id: string, options?: { force?: boolean }): void;
  get(id: string): ResourceInfo;
  /** Every resource, named and anonymous, sorted by id. */
  list(): ResourceInfo[];
  /** Resolves when resource `id` is connected; SB_TIMEOUT after `timeout`. */
  waitReady(id: string, timeout: Duration): Promise<void>;
  reportFailure(id: string): void;
  /** Registers a connector type of the program's own objects (`handle.object()`). */
  registerType<T>(name: string, callbacks: ResourceTypeCallbacks<T>): void;
}

// ---- cluster -------------------------------------------------------------------------

/** The `cluster.*` keys: instances sharing breakers, registry broadcasts and membership through Redis. */
export type ClusterOptions = {
  /** `cluster.redis_url`: `redis://host:port/db`; empty (default): no cluster. */
  redisUrl?: string;
  /** `cluster.name`: the instances with the same name form one cluster (default `switchboard`). */
  name?: string;
  /** `cluster.node_id`: this instance's name in it (default `<host>-<pid>-<hex4>`). */
  nodeId?: string;
  /** `cluster.heartbeat_interval`: how often the membership is refreshed (default 2 s); silent for 3 intervals is gone. */
  heartbeatInterval?: Duration;
  /** `cluster.request_timeout`: how long a cluster-wide call waits for the other members (default 1 s). */
  requestTimeout?: Duration;
  /** `cluster.breakers`: `'shared'` (default: an opening reaches every instance) or `'local'`. */
  breakers?: 'shared' | 'local';
} & ConfigOptions;

/** One member of the cluster, from its last heartbeat. */
export interface ClusterMember {
  nodeId: string;
  /** Its number: the top bits (32..52) of its connection ids. */
  number: number;
  /** Its embedded server's address (`''` when it has none). */
  address: string;
  /** Its registered connections and open pools at its last heartbeat. */
  connections: number;
  pools: number;
  /** Time since its last heartbeat (by Redis's clock), in milliseconds. */
  lastSeenMs: number;
  /** Whether it is this instance. */
  local: boolean;
}

/** Which live members answered a cluster-wide call: the others' part is missing from the result. */
export interface ClusterAnswered {
  /** The members that answered, this instance first. */
  nodes: string[];
  /** The live members that did not answer within `cluster.request_timeout`. */
  missing: string[];
}

/** What an acknowledged cluster broadcast reached. */
export interface ClusterBroadcastReport {
  /** The fan-out on this instance. */
  local: BroadcastReport;
  /** Recipients on each other member that acknowledged, by node id. */
  remote: Record<string, number>;
  /** Copies no member acknowledged within `cluster.request_timeout`. */
  unacknowledged: number;
  /** Recipients on every instance that acknowledged, this one included. */
  recipients: number;
}

/** One connection of a cluster-wide list, and the member it is on. */
export interface ClusterConnectionInfo extends ConnectionInfo {
  node: string;
}

/** One page of `cluster.list()`, in id order across the members. */
export interface ClusterListPage {
  connections: ClusterConnectionInfo[];
  /** Pass as the filter's `cursor` for the next page; `null` after the last. */
  nextCursor: number | null;
  answered: ClusterAnswered;
}

/** A cluster-wide disconnect: the total and each member's part. */
export interface ClusterCount {
  total: number;
  byNode: Record<string, number>;
  answered: ClusterAnswered;
}

/** Cluster-wide registry statistics: their sum (users and topics count per member) and each member's. */
export interface ClusterStats {
  total: RegistryStats;
  byNode: Record<string, RegistryStats>;
  answered: ClusterAnswered;
}

/** A named resource's status on each member: `'absent'` where it is not created. */
export interface ClusterResourceStatus {
  id: string;
  byNode: Record<string, ResourceStatus | 'absent'>;
  answered: ClusterAnswered;
}

/**
 * The manager's membership in its cluster (`manager.cluster`). Breakers and
 * `registry.broadcast()` are shared without any call here. The cluster-wide calls wait
 * (up to `cluster.request_timeout`) off the event loop and resolve with what the
 * members that answered said, naming the others in `answered.missing`: a partial
 * answer never rejects. Targets and filters are the registry's.
 */
export declare class Cluster {
  private constructor();
  readonly manager: Manager;
  /** `cluster.name`. */
  readonly name: string;
  /** This instance's `cluster.node_id`. */
  readonly nodeId: string;
  /** This instance's number: the top bits of its connection ids. */
  readonly nodeNumber: number;
  /** Whether Redis is reachable and this instance takes part (events `cluster_joined` / `cluster_lost`). */
  readonly joined: boolean;
  /** The live members as of the last heartbeat, this instance included while joined. Never waits. */
  members(): ClusterMember[];
  /** Broadcasts on every instance and resolves once the members acknowledged. */
  broadcast(msg: MessageInput, target: Target): Promise<ClusterBroadcastReport>;
  /** One page of the connections of every live member, in id order. */
  list(filter?: ListFilter): Promise<ClusterListPage>;
  /** Disconnects what `target` matches on every live member for `reason` (default `disconnected`). */
  disconnect(target: Target, reason?: string | null): Promise<ClusterCount>;
  /** The registry statistics of every live member, and their sum. */
  stats(): Promise<ClusterStats>;
  /** Named resource `id`'s status on every live member. */
  resourceStatus(id: string): Promise<ClusterResourceStatus>;
}
