// Types of the `switchboard` package. Kept in sync with index.js by hand; the test
// tests/node/types.test.js fails when an exported name or a method is not declared here.

/// <reference types="node" />

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
export type ConfigOptions = Record<string, number | string | boolean | bigint | null | undefined>;

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

/** Options of `manager.pool()`: keys default to the `pool` section. */
export interface PoolOptions extends ConfigOptions {
  /** `pool.max_size`: most connections open at once (default 10). */
  maxSize?: number;
  /** `pool.acquire_timeout`: how long `acquire()` waits (default 30 s). */
  acquireTimeout?: Duration;
  /** `pool.connect_timeout`: deadline to open one connection (default 10 s). */
  connectTimeout?: Duration;
  /** `pool.max_waiters`: most callers waiting at once; beyond it SB_RESOURCE_EXHAUSTED. */
  maxWaiters?: number;
  /** `tcp.keepalive` (0 turns keepalive off). */
  tcpKeepalive?: Duration;
  /** `tcp.nodelay`. */
  tcpNodelay?: boolean;
}

/** Options of one `acquire()`. */
export interface AcquireOptions {
  /** Overrides `pool.acquire_timeout` for this call. */
  timeout?: Duration;
  /** Higher is served first; equal priorities in arrival order. A 32-bit integer. */
  priority?: number;
}

/** A snapshot of a pool's state and counters. */
export interface PoolStats {
  name: string;
  /** `pool.max_size`. */
  maxSize: number;
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
  /** Connections closed, ever. */
  closedTotal: number;
  /** Successful acquires. */
  acquiredTotal: number;
  /** Acquires that timed out. */
  timedOutTotal: number;
  /** Acquires rejected because the wait queue was full. */
  rejectedTotal: number;
  /** Connect attempts that failed. */
  connectFailedTotal: number;
}

/**
 * One checked-out connection. Return it with `release()` (or `discard()` after an error
 * on it). A lease that is garbage-collected unreleased returns its connection. After
 * release, `fd`, `read()` and `write()` fail with SB_FAILED_PRECONDITION.
 */
export declare class Lease {
  private constructor();
  /** The connection's id, unique within its pool and never reused. */
  readonly id: number;
  /** The raw file descriptor (blocking mode while leased). Throws once released. */
  readonly fd: number;
  /** The name of the pool it came from. */
  readonly poolName: string;
  /** The pool it came from. */
  readonly pool: Pool;
  /** Whether the lease was released or discarded. */
  readonly released: boolean;
  /** Writes all of `data` (strings as UTF-8). One read or write at a time per lease. */
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
export declare class Pool {
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
  acquire(options?: AcquireOptions): Promise<Lease>;
  /** An idle connection if one is ready now, else `null`. Synchronous; never waits. */
  tryAcquire(): Lease | null;
  /** Acquires, runs `fn(lease)`, and releases the lease when `fn` settles. */
  withLease<T>(fn: (lease: Lease) => T | Promise<T>, options?: AcquireOptions): Promise<T>;
  /** A snapshot of the pool's state and counters. */
  stats(): PoolStats;
  /** Closes the pool; waiters fail with SB_UNAVAILABLE. Safe to call twice. */
  close(): void;
}

/**
 * The root object: owns the library's runtime (its own threads) and the pools. After
 * `await manager.close()` nothing of it keeps the process alive.
 */
export declare class Manager {
  constructor(options?: ManagerOptions);
  /** Creates a pool named `name` (unique in this manager) to `target` (`tcp://host:port`). */
  pool(name: string, target: string, options?: PoolOptions): Pool;
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
