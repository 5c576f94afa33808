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

/**
 * Configuration keys in any natural spelling: the full key (`'pool.max_size'`), the
 * short key in the default section (`maxSize`, `max_size`), or section and key joined
 * (`poolMaxSize`, `pool_max_size`). Durations are milliseconds or strings such as
 * `"250ms"`; booleans become `"true"`/`"false"`. Unknown keys and bad values throw
 * SB_INVALID_ARGUMENT naming the key. `undefined`/`null` values are skipped.
 */
export type ConfigOptions = Record<string, number | string | boolean | bigint | Uint8Array | null | undefined>;

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
}

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

/** Options of `manager.pool()`: keys default to the `pool` section. */
export interface PoolOptions extends PoolKeys, ConfigOptions {}

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

/** What an event is about. More kinds arrive with later features. */
export type EventKind = 'leak_suspected';

/** One event from `manager.pollEvent()`. */
export interface SwitchboardEvent {
  /** `'leak_suspected'`: a lease held longer than the pool's `leakDetectionThreshold`. */
  kind: EventKind;
  /** The pool it concerns. */
  pool: string;
  /** The connection (lease id) it concerns, or `null`. */
  connectionId: number | null;
  /** How long the lease had been held, in milliseconds, or `null`. */
  ageMs: number | null;
  /** A sentence for humans. */
  message: string;
  /** When it happened. */
  time: Date;
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
  /**
   * Writes all of `data` (strings as UTF-8). One read or write at a time per lease.
   * Built-in sockets only; rejects with SB_FAILED_PRECONDITION on a custom lease.
   */
  write(data: Buffer | Uint8Array | string): Promise<void>;
  /**
   * Reads up to `size` bytes (default 65536) once at least one is available. An empty
   * Buffer means the peer closed the connection.
   */
  read(size?: number): Promise<Buffer>;
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
  /**
   * Creates a custom pool: its connections are the objects `connect` makes for
   * `target` (any string, given to `connect`); see `ConnectorCallbacks`.
   */
  pool<T>(name: string, target: string, options: CustomPoolOptions<T>): Pool<T>;
  /**
   * The metrics of every open pool as Prometheus/OpenMetrics text
   * (`switchboard_pool_*` series, ending with `# EOF`).
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
