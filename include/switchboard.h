/*
 * switchboard.h -- the C API of switchboard, a connection manager: pools of
 * connections with bounded waits, on switchboard's own runtime threads.
 *
 * Conventions
 *   Every fallible function returns sb_status: SB_OK (0) on success, else an error
 *   code; sb_last_error() then copies a message saying what was wrong (kept per
 *   thread, like errno). Outputs go through out-pointers placed last, written only on
 *   SB_OK. Each buffer is followed by its size_t length. Strings in are NUL-terminated
 *   UTF-8. Durations are milliseconds.
 *
 * Handles
 *   sb_config, sb_manager, sb_pool, sb_lease and sb_resource are opaque. Their pointer values are
 *   generation-checked ids, not addresses: passing NULL, a freed or released handle,
 *   or a handle of the wrong type to any function returns SB_INVALID_HANDLE instead of
 *   undefined behaviour. Never dereference them.
 *
 * Ownership
 *   Each handle has exactly one function that ends it:
 *     sb_config_new  -> sb_config_free
 *     sb_manager_new -> sb_manager_free   (sb_manager_close may come first)
 *     sb_pool_new, sb_pool_new_custom -> sb_pool_free
 *     sb_pool_acquire, sb_pool_acquire_prio, sb_pool_try_acquire
 *                    -> sb_lease_release or sb_lease_discard
 *     sb_session_get -> sb_session_info_free   (a snapshot the library allocated)
 *     sb_session_catalog -> sb_catalog_free
 *     sb_registry_get -> sb_conn_info_free, sb_registry_list -> sb_conn_list_free,
 *     sb_registry_get_stats -> sb_registry_stats_free   (registry snapshots)
 *     sb_registry_register_outbox -> sb_registry_outbox_free (or sb_manager_free)
 *     sb_resource_attach, sb_resource_attach_anonymous -> sb_resource_detach
 *     sb_resource_get -> sb_resource_info_free, sb_resource_list ->
 *     sb_resource_info_list_free   (resource snapshots)
 *     sb_hub_recv -> sb_hub_message_free   (a hub message snapshot)
 *     sb_cluster_members -> sb_cluster_member_list_free,
 *     sb_cluster_broadcast -> sb_cluster_broadcast_report_free,
 *     sb_cluster_list -> sb_cluster_conn_list_free,
 *     sb_cluster_disconnect -> sb_cluster_count_free,
 *     sb_cluster_get_stats -> sb_cluster_stats_free,
 *     sb_cluster_resource_status -> sb_cluster_resource_free   (cluster snapshots)
 *   The _free and _release functions accept NULL (SB_OK); a second call on the same
 *   handle returns SB_INVALID_HANDLE. Configs are copied when passed to _new.
 *   Closing or freeing a manager closes its pools; their handles and leases then fail
 *   with SB_UNAVAILABLE (or keep working, for a lease's socket) but must still be freed
 *   or released. Strings returned by the library (sb_version, sb_status_str,
 *   sb_event_kind_str, sb_breaker_state_str, sb_conn_state_str) are static and never
 *   freed. sb_pool_stats, sb_pool_health, sb_endpoint_health and sb_event are filled
 *   by value (no pointers inside; their strings are copied into their arrays);
 *   sb_manager_metrics, sb_pool_select_best and sb_lease_endpoint copy into the
 *   caller's buffer.
 *   A custom pool's userdata belongs to the library from sb_pool_new_custom on, and
 *   its free_userdata is called exactly once (see sb_pool_new_custom); the objects
 *   its connect callback makes are closed by its close callback, once each.
 *
 * Thread safety
 *   - Every function may be called from any thread, and calls on different handles
 *     may run concurrently.
 *   - sb_pool_acquire and sb_pool_try_acquire may be called on the same pool from many
 *     threads at once; that is what a pool is for.
 *   - A lease is used by one thread at a time (it is one connection). A lease may be
 *     released on another thread than the one that acquired it.
 *   - sb_config_set on one config from several threads is safe (serialised).
 *   - Misuse across threads (say, releasing a lease while another thread is in
 *     sb_lease_recv on it) is memory-safe: exactly one of two racing releases or frees
 *     succeeds, the other returns SB_INVALID_HANDLE, and a released lease's connection
 *     goes back to the pool only when the last call using it returns.
 *   - Blocking calls (sb_pool_acquire, sb_lease_send/_send_all/_recv,
 *     sb_resource_wait_ready, sb_resource_update, sb_resource_send_all/_recv,
 *     sb_pool_warm, sb_pool_run_upkeep, sb_pool_run_health_checks, sb_manager_close,
 *     sb_manager_poll_event, sb_hub_recv, and the cluster-wide sb_cluster_broadcast,
 *     sb_cluster_list, sb_cluster_disconnect, sb_cluster_get_stats and
 *     sb_cluster_resource_status, up to cluster.request_timeout each) wait on the
 *     calling thread; no call is handed to another thread and back. The library
 *     starts its own threads (runtime.worker_threads, default 2) in sb_manager_new
 *     and joins them when the manager is closed or freed.
 *   - After fork(), the child must not use the parent's manager, pools or leases;
 *     it creates its own manager.
 *
 * Server
 *   With server.listen set, sb_manager_new starts the embedded server (docs/server.md):
 *   the admin JSON API, /metrics, the WebSocket hub at /ws and the gRPC sessions
 *   service. sb_manager_server_address and sb_manager_grpc_address give the bound
 *   addresses (SB_NOT_FOUND when off). What hub clients send comes from sb_hub_recv;
 *   answer a client with sb_registry_send to its connection_id, or broadcast.
 *   The registry's auth hooks then also run on switchboard's threads (see
 *   sb_authenticate_fn).
 *
 * Resilience
 *   Each endpoint of a pool has a circuit breaker (breaker.* keys), a backoff after
 *   failed connects (backoff.*, retry.*) and a health record (health.*). When no
 *   endpoint can take a needed connect, sb_pool_acquire fails fast with
 *   SB_UNAVAILABLE, its message naming each endpoint and why. See sb_pool_get_health,
 *   sb_pool_endpoint_health, sb_pool_healthy_endpoints, sb_pool_select_best,
 *   sb_pool_breaker_state, sb_pool_breaker_op, sb_pool_reset_backoff, sb_pool_drain,
 *   sb_pool_run_health_checks, sb_lease_endpoint and sb_lease_report.
 *
 * Sessions
 *   Streaming sessions (sb_session_*) live in a manager and are named by uint64_t ids,
 *   not handles: an unknown or closed id is SB_NOT_FOUND. Offsets are int64_t (a
 *   negative one is SB_INVALID_ARGUMENT, never converted). With offsets.path set,
 *   sb_session_commit blocks until the commit is on disk (offsets.sync =
 *   every_commit, the default); open, resume, committed and flush may read or write
 *   the disk too. Session calls never wait on the runtime, so they work inside
 *   callbacks too.
 *
 * Registry
 *   The live-connection registry (sb_registry_*) lives in a manager; connections are
 *   named by uint64_t ids (unique in the process, never reused): an unknown id is
 *   SB_NOT_FOUND. Register with a send callback (sb_registry_register: send, ping and
 *   closed run on the library's runtime threads, one at a time per connection, in
 *   queue order; the userdata's free_userdata runs once when the library lets the
 *   connection go) or as an outbox the program drains on its own thread
 *   (sb_registry_next). Broadcasts only queue (sb_registry_broadcast never blocks on a
 *   client). The authentication hook (sb_registry_set_authenticator) runs on the
 *   thread calling register or subscribe; its refusals are SB_UNAUTHENTICATED and
 *   SB_PERMISSION_DENIED. Input structs (sb_registration, sb_target, sb_list_filter)
 *   and sb_broadcast_report start with struct_size: set it to sizeof the struct.
 *   With runtime.clock = manual, sb_manager_advance_clock moves time for heartbeats
 *   and stale cleanup (sb_registry_cleanup runs the pass at once).
 *
 * Resources
 *   Named shared connections (sb_resource_*) live in a manager: sb_resource_create
 *   makes one by id (tcp, unix, or a type registered with sb_resource_register_type
 *   from an sb_connector, as a custom pool), dialled and redialled on the library's
 *   runtime threads; consumers attach by name and each holds an sb_resource handle
 *   sharing the one connection (sb_resource_detach ends it). The connection changes
 *   after a reconnect or sb_resource_update: take sb_resource_fd (or
 *   sb_resource_object) again for each use, never keep it; sb_resource_send_all and
 *   sb_resource_recv always use the current one. Single writer, as for a lease: the
 *   program makes sure one consumer writes (and one reads) at a time. Calls on a
 *   handle may run on any thread. sb_resource_wait_ready and sb_resource_update block
 *   the calling thread; the rest does not wait. State changes come as
 *   SB_EVENT_RESOURCE_STATE events (sb_event.resource names it).
 *
 * Cluster
 *   With cluster.redis_url set, the manager joins a cluster of instances through
 *   Redis (docs/cluster.md): breaker openings are shared, sb_registry_broadcast
 *   reaches every instance's connections, and connection ids are unique across the
 *   cluster (sb_cluster_node_number in bits 32 and up). Every sb_cluster_* call takes
 *   the manager and returns SB_NOT_FOUND when it is not in a cluster
 *   (cluster.redis_url empty, the default). The cluster-wide calls wait for the other
 *   members up to cluster.request_timeout (from a callback they fail with
 *   SB_FAILED_PRECONDITION); a member that did not answer in time is named in the
 *   result's answered.missing (an sb_cluster_answered) and its part is absent, yet
 *   the call returns SB_OK: check answered.missing_len. While Redis is unreachable
 *   the instance serves locally (SB_EVENT_CLUSTER_LOST, then SB_EVENT_CLUSTER_JOINED).
 *
 * Events
 *   Events (a lease held past pool.leak_detection_threshold, a connection, endpoint
 *   or breaker changing state, a health check, ...) are made on the
 *   library's runtime threads and queued in the manager; the program takes them on
 *   its own thread with sb_manager_poll_event, or they are passed to the callback set
 *   with sb_manager_set_event_callback, which runs on the runtime thread that found
 *   the event (or the thread calling sb_pool_run_upkeep), with no library lock held.
 *
 * Callbacks (custom connectors, see sb_connector)
 *   - connect and check run on switchboard's blocking-pool threads, close on the
 *     thread that lets the connection go (often the one calling sb_lease_release),
 *     free_userdata on the thread that drops the last reference. No library lock is
 *     held while they run.
 *   - Inside them, calls that would wait on switchboard's runtime (sb_pool_acquire
 *     when nothing is idle, sb_pool_warm, sb_pool_run_upkeep, sb_manager_close) fail
 *     with SB_FAILED_PRECONDITION; non-blocking calls work. Never call
 *     sb_manager_free from a callback.
 *   - The program's objects and userdata cross threads: the program promises they
 *     may be used from any thread (one lease or check at a time per object).
 *   - A callback must not unwind (C++ exception, longjmp) into the library.
 */

#ifndef SWITCHBOARD_H
#define SWITCHBOARD_H

/* Generated by cbindgen 0.29.2 from ffi/src and ffi/cbindgen.toml -- do not edit.
 * Regenerate with `make header`; a test fails when this copy is out of date. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * Major version of the switchboard headers (Cargo.toml's version, checked when the
 * crate is compiled).
 */
#define SB_VERSION_MAJOR 0

/**
 * Minor version of the switchboard headers.
 */
#define SB_VERSION_MINOR 1

/**
 * Patch version of the switchboard headers.
 */
#define SB_VERSION_PATCH 0

/**
 * Size of `sb_endpoint_health.endpoint` in bytes, NUL included. Longer names are
 * truncated (use `sb_pool_select_best` or `sb_lease_endpoint` for a whole name).
 */
#define SB_ENDPOINT_LEN 256

/**
 * Size of `sb_endpoint_health.last_error` in bytes, NUL included. Longer messages
 * are truncated.
 */
#define SB_ENDPOINT_ERROR_LEN 512

/**
 * Size of `sb_event.pool` in bytes, NUL included. Longer names are truncated.
 */
#define SB_EVENT_POOL_LEN 128

/**
 * Size of `sb_event.message` in bytes, NUL included. Longer messages are truncated.
 */
#define SB_EVENT_MESSAGE_LEN 512

/**
 * Size of `sb_event.endpoint` in bytes, NUL included. Longer names are truncated.
 */
#define SB_EVENT_ENDPOINT_LEN 256

/**
 * Size of `sb_event.old_state` and `sb_event.new_state` in bytes, NUL included
 * (every state name fits).
 */
#define SB_EVENT_STATE_LEN 32

/**
 * Size of `sb_event.stream` in bytes, NUL included. Longer names are truncated.
 */
#define SB_EVENT_STREAM_LEN 256

/**
 * Size of `sb_event.topic` in bytes, NUL included. Longer names are truncated.
 */
#define SB_EVENT_TOPIC_LEN 256

/**
 * Size of `sb_event.user` in bytes, NUL included. Longer names are truncated.
 */
#define SB_EVENT_USER_LEN 256

/**
 * Size of `sb_event.reason` in bytes, NUL included. Longer reasons are truncated.
 */
#define SB_EVENT_REASON_LEN 256

/**
 * Size of `sb_event.resource` in bytes, NUL included. Longer ids are truncated.
 */
#define SB_EVENT_RESOURCE_LEN 256

/**
 * Size of the `why` buffer the auth callbacks get, NUL included.
 */
#define SB_AUTH_WHY_LEN 256

/**
 * The result of every fallible switchboard call. `SB_OK` is success; every other
 * value is an error whose details `sb_last_error` returns. The numbers are stable and
 * never reused; new codes may be added.
 */
enum sb_status
#ifdef __cplusplus
  : int32_t
#endif // __cplusplus
 {
    /**
     * Success.
     */
    SB_OK = 0,
    /**
     * A bad configuration key or value, or a bad argument (NULL out-pointer,
     * string that is not UTF-8, ...).
     */
    SB_INVALID_ARGUMENT = 1,
    /**
     * An unknown id or name.
     */
    SB_NOT_FOUND = 2,
    /**
     * A limit was reached, e.g. the pool's wait queue is full.
     */
    SB_RESOURCE_EXHAUSTED = 3,
    /**
     * The object's state does not allow the call.
     */
    SB_FAILED_PRECONDITION = 4,
    /**
     * The endpoint is down or refused the connection, or the manager/pool is closed.
     */
    SB_UNAVAILABLE = 5,
    /**
     * A deadline passed.
     */
    SB_TIMEOUT = 6,
    /**
     * The call was cancelled.
     */
    SB_CANCELLED = 7,
    /**
     * A NULL, freed, released or wrong-type handle.
     */
    SB_INVALID_HANDLE = 8,
    /**
     * An operating-system error; the message has the errno text.
     */
    SB_IO = 9,
    /**
     * A bug in switchboard (for example a caught panic).
     */
    SB_INTERNAL = 10,
    /**
     * No or bad credentials: the registry's authenticate hook refused the token.
     */
    SB_UNAUTHENTICATED = 11,
    /**
     * Valid credentials, refused action: the authorize hook refused a subscribe.
     */
    SB_PERMISSION_DENIED = 12,
};
#ifndef __cplusplus
typedef int32_t sb_status;
#endif // __cplusplus

/**
 * The state of an endpoint (or a connection). The numbers are stable; the names
 * (`sb_conn_state_str`) are the same in every language.
 */
enum sb_conn_state
#ifdef __cplusplus
  : int32_t
#endif // __cplusplus
 {
    /**
     * Nothing open and nothing happening, e.g. before the first connect ("idle").
     */
    SB_CONN_IDLE = 0,
    /**
     * A first connect is in flight ("connecting").
     */
    SB_CONN_CONNECTING = 1,
    /**
     * Open and usable ("connected").
     */
    SB_CONN_CONNECTED = 2,
    /**
     * A connect failed; reconnects go on with backoff ("reconnecting").
     */
    SB_CONN_RECONNECTING = 3,
    /**
     * Being closed, e.g. drained ("disconnecting").
     */
    SB_CONN_DISCONNECTING = 4,
    /**
     * Closed on purpose ("disconnected").
     */
    SB_CONN_DISCONNECTED = 5,
    /**
     * Broken, or refused by an open breaker ("failed").
     */
    SB_CONN_FAILED = 6,
};
#ifndef __cplusplus
typedef int32_t sb_conn_state;
#endif // __cplusplus

/**
 * The state of an endpoint's circuit breaker. The numbers are stable; the names
 * (`sb_breaker_state_str`) are the same in every language.
 */
enum sb_breaker_state
#ifdef __cplusplus
  : int32_t
#endif // __cplusplus
 {
    /**
     * Calls pass; their results are recorded ("closed").
     */
    SB_BREAKER_CLOSED = 0,
    /**
     * Tripped: no connection is opened to the endpoint until the open wait has passed
     * ("open").
     */
    SB_BREAKER_OPEN = 1,
    /**
     * After the open wait: `breaker.half_open_probes` probe connects pass, their
     * results decide ("half_open").
     */
    SB_BREAKER_HALF_OPEN = 2,
    /**
     * Operator: refuses everything until reset ("forced_open").
     */
    SB_BREAKER_FORCED_OPEN = 3,
    /**
     * Operator: allows everything, records nothing ("disabled").
     */
    SB_BREAKER_DISABLED = 4,
    /**
     * Operator: allows everything, records and reports, never blocks
     * ("metrics_only").
     */
    SB_BREAKER_METRICS_ONLY = 5,
};
#ifndef __cplusplus
typedef int32_t sb_breaker_state;
#endif // __cplusplus

/**
 * How warm an endpoint is (`sb_endpoint_health.warming`): whether the next caller
 * finds a connection open to it or pays for a connect. The numbers are stable; the
 * names (`sb_warming_state_str`) are the same in every language.
 */
enum sb_warming_state
#ifdef __cplusplus
  : int32_t
#endif // __cplusplus
 {
    /**
     * No connection open to it and none being opened ("cold").
     */
    SB_WARMING_COLD = 0,
    /**
     * Connects to it are in flight, or fewer are open than its share of the pool's
     * `pool.min_idle` (`min_idle / endpoints`, rounded down) ("warming").
     */
    SB_WARMING_WARMING = 1,
    /**
     * Open, its share of `pool.min_idle` met, nothing being opened ("warm").
     */
    SB_WARMING_WARM = 2,
};
#ifndef __cplusplus
typedef int32_t sb_warming_state;
#endif // __cplusplus

/**
 * What kind of event an `sb_event` is. The numbers are stable and never reused; new
 * kinds may be added, so handle unknown values (`sb_event_kind_str` names them).
 */
enum sb_event_kind
#ifdef __cplusplus
  : int32_t
#endif // __cplusplus
 {
    /**
     * A lease has been held longer than `pool.leak_detection_threshold`
     * ("leak_suspected"). Reported once per lease, by the pool's upkeep.
     */
    SB_EVENT_LEAK_SUSPECTED = 1,
    /**
     * A connection changed state ("connection_state").
     */
    SB_EVENT_CONNECTION_STATE = 2,
    /**
     * An endpoint changed state ("endpoint_state").
     */
    SB_EVENT_ENDPOINT_STATE = 3,
    /**
     * An endpoint's circuit breaker changed state ("breaker_state").
     */
    SB_EVENT_BREAKER_STATE = 4,
    /**
     * A health check of an endpoint finished ("health_check").
     */
    SB_EVENT_HEALTH_CHECK = 5,
    /**
     * A caller was turned away ("rejected").
     */
    SB_EVENT_REJECTED = 6,
    /**
     * A session was opened ("session_opened").
     */
    SB_EVENT_SESSION_OPENED = 7,
    /**
     * A session was closed ("session_closed").
     */
    SB_EVENT_SESSION_CLOSED = 8,
    /**
     * A stream was added to a live session ("stream_added").
     */
    SB_EVENT_STREAM_ADDED = 9,
    /**
     * A stream was removed from a live session ("stream_removed").
     */
    SB_EVENT_STREAM_REMOVED = 10,
    /**
     * An offset commit could not be stored ("commit_failed").
     */
    SB_EVENT_COMMIT_FAILED = 11,
    /**
     * A connection joined the registry ("registered"; `connection_id`, `user`).
     */
    SB_EVENT_REGISTERED = 12,
    /**
     * A connection left the registry ("unregistered"; `reason`).
     */
    SB_EVENT_UNREGISTERED = 13,
    /**
     * A registered connection subscribed to `topic` ("subscribed").
     */
    SB_EVENT_SUBSCRIBED = 14,
    /**
     * A registered connection unsubscribed from `topic`, or left while subscribed
     * ("unsubscribed").
     */
    SB_EVENT_UNSUBSCRIBED = 15,
    /**
     * A registered connection's queue filled up ("slow_consumer"); `reason` is the
     * policy's outcome (`drop_oldest`, `drop_new` or `disconnect`).
     */
    SB_EVENT_SLOW_CONSUMER = 16,
    /**
     * A named resource changed state ("resource_state"; `resource`, `old_state`,
     * `new_state` among "connecting", "connected", "recovering", "disconnected",
     * and `reason` the error that caused it, if one).
     */
    SB_EVENT_RESOURCE_STATE = 17,
    /**
     * A consumer was detached from a resource deleted with force
     * ("resource_detached"; `resource`). Its `sb_resource` then fails.
     */
    SB_EVENT_RESOURCE_DETACHED = 18,
    /**
     * A resource was updated (`sb_resource_update`) and every consumer now uses the
     * new connection ("resource_rebound"; `resource`): take the fd again.
     */
    SB_EVENT_RESOURCE_REBOUND = 19,
    /**
     * This instance joined its cluster, or rejoined it after Redis came back
     * ("cluster_joined"; `reason` "joined" or "rejoined").
     */
    SB_EVENT_CLUSTER_JOINED = 20,
    /**
     * This instance lost its cluster's Redis and serves locally until it rejoins
     * ("cluster_lost"; `reason` "redis_unavailable").
     */
    SB_EVENT_CLUSTER_LOST = 21,
};
#ifndef __cplusplus
typedef int32_t sb_event_kind;
#endif // __cplusplus

/**
 * What an `sb_registry_next` item is.
 */
enum sb_item_kind
#ifdef __cplusplus
  : int32_t
#endif // __cplusplus
 {
    /**
     * A binary message, in `buf[0..*n]`.
     */
    SB_ITEM_BINARY = 1,
    /**
     * A text (UTF-8) message, in `buf[0..*n]` (no NUL is added).
     */
    SB_ITEM_TEXT = 2,
    /**
     * Ping the client now (`registry.heartbeat_interval`); `*n` is 0.
     */
    SB_ITEM_PING = 3,
    /**
     * The connection left; the reason (`stale`, `send_failed`, `slow_consumer`,
     * `manager_closed`, ...) is in `buf[0..*n]` (cut to fit). The last item: every
     * later call returns it again.
     */
    SB_ITEM_CLOSED = 4,
};
#ifndef __cplusplus
typedef int32_t sb_item_kind;
#endif // __cplusplus

/**
 * Where a resource's one connection is. The numbers are stable.
 */
enum sb_resource_state
#ifdef __cplusplus
  : int32_t
#endif // __cplusplus
 {
    /**
     * The first dial is in progress (retried with backoff while it fails).
     */
    SB_RESOURCE_CONNECTING = 1,
    /**
     * Connected: consumers can use it.
     */
    SB_RESOURCE_CONNECTED = 2,
    /**
     * The connection was lost and is being redialled.
     */
    SB_RESOURCE_RECOVERING = 3,
    /**
     * Stopped: a configuration error (no more retries), deleted, or the manager
     * closed.
     */
    SB_RESOURCE_DISCONNECTED = 4,
};
#ifndef __cplusplus
typedef int32_t sb_resource_state;
#endif // __cplusplus

/**
 * An operator's command to circuit breakers (`sb_pool_breaker_op`). The numbers are
 * stable.
 */
enum sb_breaker_op
#ifdef __cplusplus
  : int32_t
#endif // __cplusplus
 {
    /**
     * Refuse every connect until reset (state `SB_BREAKER_FORCED_OPEN`); the
     * endpoint's idle connections are closed, leased ones when released.
     */
    SB_BREAKER_OP_FORCE_OPEN = 1,
    /**
     * Allow every connect and record nothing (`SB_BREAKER_DISABLED`).
     */
    SB_BREAKER_OP_DISABLE = 2,
    /**
     * Allow every connect, record and report, never block
     * (`SB_BREAKER_METRICS_ONLY`).
     */
    SB_BREAKER_OP_METRICS_ONLY = 3,
    /**
     * Back to `SB_BREAKER_CLOSED` with an empty window and the first open wait.
     */
    SB_BREAKER_OP_RESET = 4,
};
#ifndef __cplusplus
typedef int32_t sb_breaker_op;
#endif // __cplusplus

/**
 * A set of configuration settings (`pool.max_size`, `pool.acquire_timeout`, ...).
 * Created by `sb_config_new`, freed by `sb_config_free`. Passing it to
 * `sb_manager_new` or `sb_pool_new` copies it: the config can be changed or freed
 * afterwards without affecting the manager or pool.
 */
typedef struct sb_config sb_config;

/**
 * What the authenticate hook grants a token, filled by the callback with
 * `sb_grant_set_user` and `sb_grant_add_meta`. Valid only during the callback.
 */
typedef struct sb_grant sb_grant;

/**
 * A connection checked out of a pool by `sb_pool_acquire`. Use it from one thread at
 * a time; give it back with `sb_lease_release` (or close it with
 * `sb_lease_discard`) exactly once.
 */
typedef struct sb_lease sb_lease;

/**
 * The root object: owns switchboard's runtime (its own threads) and the pools.
 * Create one per process with `sb_manager_new`; free it with `sb_manager_free`.
 */
typedef struct sb_manager sb_manager;

/**
 * A pool of connections to one target, created by `sb_pool_new` (sockets) or
 * `sb_pool_new_custom` (the program's own objects), freed by `sb_pool_free`. `sb_pool_acquire` may be called on the same pool from many threads
 * at once.
 */
typedef struct sb_pool sb_pool;

/**
 * One consumer's share of a named or anonymous resource (`sb_resource_attach`,
 * `sb_resource_attach_anonymous`), ended by `sb_resource_detach` exactly once.
 *
 * The connection is shared by every consumer of the resource: like a lease's, one
 * consumer writes at a time and one reads at a time (the program coordinates its
 * consumers' writes and reads). It also changes: after a reconnect or an
 * `sb_resource_update` the resource holds a new connection, so take its fd
 * (`sb_resource_fd`) or object (`sb_resource_object`) again for each use rather than
 * keeping it. The calls on a handle may run on any thread, concurrently.
 */
typedef struct sb_resource sb_resource;

/**
 * The connect callback of an `sb_connector`. Opens one connection to `endpoint` (one
 * entry of the pool's target, NUL-terminated) and stores the program's object for it
 * in `*out_conn` (not NULL). Returns `SB_OK`, or another `sb_status` value on
 * failure after writing a message (NUL-terminated, at most `errlen` bytes including
 * the NUL) into `errbuf`; that message is what the acquirer reads with
 * `sb_last_error`. The return type is `int32_t`, which is what `sb_status` is in C.
 */
typedef int32_t (*sb_connect_fn)(void *userdata,
                                 const char *endpoint,
                                 void **out_conn,
                                 char *errbuf,
                                 size_t errlen);

/**
 * The check callback of an `sb_connector`: `SB_OK` when `conn` is still usable,
 * anything else to have it closed and replaced.
 */
typedef int32_t (*sb_check_fn)(void *userdata,
                               void *conn);

/**
 * The close callback of an `sb_connector`: releases `conn`. Called exactly once for
 * every object `connect` made.
 */
typedef void (*sb_close_fn)(void *userdata,
                            void *conn);

/**
 * Frees the `userdata` of an `sb_connector`.
 */
typedef void (*sb_free_fn)(void *userdata);

/**
 * How a custom pool (`sb_pool_new_custom`) makes, checks and closes the program's
 * own connection objects (a database client, an RPC stub, ...). The pool manages them
 * exactly like sockets: sizes, waiting, lifetimes, `pool.validate_after`, eviction
 * and statistics all apply.
 *
 * Threads: `connect` and `check` run on one of switchboard's blocking-pool threads
 * (never on the thread that called `sb_pool_acquire`, never on a runtime worker), so
 * they may block for as long as `pool.connect_timeout` / `pool.validation_timeout`
 * allow. `close` runs on whichever thread lets the connection go: the thread calling
 * `sb_lease_release` / `sb_lease_discard` / `sb_pool_free` / `sb_pool_evict_all` /
 * `sb_pool_resize` / `sb_manager_close` / `sb_manager_free`, the thread calling
 * `sb_pool_acquire` (an object that failed its check on checkout), a runtime worker
 * (idle timeout, lifetime, a failed check in the background upkeep), or a
 * blocking-pool thread (a connect that finished after its acquirer gave up, a check
 * that finished after its deadline; the object is then closed as soon as that
 * callback returns, never while it still runs). `free_userdata` runs on whichever
 * thread lets go of the last reference.
 *
 * Calls allowed inside callbacks: any non-blocking switchboard call
 * (`sb_pool_get_stats`, `sb_pool_try_acquire`, `sb_lease_release`, `sb_last_error`, ...).
 * Calls that wait on switchboard's runtime (`sb_pool_acquire` when it has to wait,
 * `sb_pool_warm`, `sb_pool_run_upkeep`, `sb_manager_close`) fail at once with
 * `SB_FAILED_PRECONDITION` inside `connect` and `check` (their threads belong to the
 * runtime), and inside `close` when it runs on a runtime or blocking-pool thread.
 * `sb_manager_free` must not be called from a callback. A callback must not throw a
 * C++ exception or `longjmp` out.
 *
 * Objects cross threads: the program promises that every object (and `userdata`)
 * may be used and closed from threads other than the one that made it. Each object
 * is used by one lease (or one check) at a time.
 */
typedef struct {
    /**
     * Required: opens a connection (see `sb_connect_fn`).
     */
    sb_connect_fn connect;
    /**
     * Optional (NULL: none): checks an idle connection before it is handed out when
     * it was idle longer than `pool.validate_after` (default 500 ms), and in the
     * background upkeep. Bounded by `pool.validation_timeout`; a failed or late
     * check closes the connection.
     */
    sb_check_fn check;
    /**
     * Optional (NULL: none): closes a connection the pool lets go.
     */
    sb_close_fn close;
    /**
     * Passed as the first argument of every callback.
     */
    void *userdata;
    /**
     * Optional (NULL: none): called exactly once with `userdata` when the library no
     * longer needs it (see `sb_pool_new_custom`).
     */
    sb_free_fn free_userdata;
} sb_connector;

/**
 * A latency summary (part of `sb_pool_stats`): how many observations, their mean, the
 * largest (peak) and three quantiles, all in nanoseconds. The quantiles come from a
 * histogram with power-of-two buckets (1 us, 2 us, 4 us, ...): they are interpolated
 * within their bucket and never above `peak_ns`. All zero without observations.
 */
typedef struct {
    /**
     * Number of observations.
     */
    uint64_t count;
    /**
     * Mean, in nanoseconds.
     */
    uint64_t avg_ns;
    /**
     * The largest observation, in nanoseconds.
     */
    uint64_t peak_ns;
    /**
     * Median, in nanoseconds.
     */
    uint64_t p50_ns;
    /**
     * 90th percentile, in nanoseconds.
     */
    uint64_t p90_ns;
    /**
     * 99th percentile, in nanoseconds.
     */
    uint64_t p99_ns;
} sb_latency;

/**
 * A snapshot of a pool's sizes and counters, filled by value by `sb_pool_get_stats` (it
 * holds no pointers; nothing to free). Every field after `struct_size` is a
 * `uint64_t` (or an `sb_latency` of them); counters named `*_total` only grow.
 *
 * Versioning: set `struct_size = sizeof(sb_pool_stats)` before the call. The library
 * writes only the fields that fit in `struct_size` bytes and sets `struct_size` to
 * the number of bytes it filled, so a program built against an older or newer header
 * works with this library: fields are only ever added at the end, and a field lies
 * within the filled part if its end offset is at most the returned `struct_size`.
 */
typedef struct {
    /**
     * In: the size of the caller's struct (`sizeof(sb_pool_stats)`). Out: the number
     * of bytes filled.
     */
    size_t struct_size;
    /**
     * `pool.max_size` now (after any `sb_pool_resize`).
     */
    uint64_t max_size;
    /**
     * `pool.min_idle` now.
     */
    uint64_t min_idle;
    /**
     * `pool.max_overflow`.
     */
    uint64_t max_overflow;
    /**
     * Open connections plus connects in flight.
     */
    uint64_t size;
    /**
     * Idle connections.
     */
    uint64_t idle;
    /**
     * Connections leased out.
     */
    uint64_t leased;
    /**
     * Callers waiting for a connection.
     */
    uint64_t waiting;
    /**
     * Connects in flight.
     */
    uint64_t connecting;
    /**
     * Connections opened, ever.
     */
    uint64_t created_total;
    /**
     * Connections closed, ever (the sum of the `closed_*_total` fields).
     */
    uint64_t closed_total;
    /**
     * Closed because they failed the liveness check, the probe or the check callback.
     */
    uint64_t closed_broken_total;
    /**
     * Closed after `pool.idle_timeout` idle (beyond `min_idle`).
     */
    uint64_t closed_idle_total;
    /**
     * Closed at the end of their `pool.max_lifetime`.
     */
    uint64_t closed_lifetime_total;
    /**
     * Closed on release because the pool held more than `max_size` (overflow, or a
     * shrink).
     */
    uint64_t closed_overflow_total;
    /**
     * Closed by `sb_pool_evict_all`.
     */
    uint64_t closed_evicted_total;
    /**
     * Closed by `sb_lease_discard`.
     */
    uint64_t closed_discarded_total;
    /**
     * Closed because the pool or its manager closed.
     */
    uint64_t closed_closed_total;
    /**
     * Successful acquires (direct + waited).
     */
    uint64_t acquired_total;
    /**
     * Acquires served at once from an idle connection.
     */
    uint64_t acquired_direct_total;
    /**
     * Acquires that waited in line.
     */
    uint64_t acquired_waited_total;
    /**
     * Acquires that timed out.
     */
    uint64_t timed_out_total;
    /**
     * Acquires rejected because `pool.max_waiters` callers were already waiting.
     */
    uint64_t rejected_total;
    /**
     * Connect attempts that failed.
     */
    uint64_t connect_failed_total;
    /**
     * Probes (or check callbacks) that failed; their connections were closed.
     */
    uint64_t probe_failed_total;
    /**
     * How long acquires waited for a connection: one observation per successful
     * acquire (zero for one served at once). Appended after the counters: check `struct_size`.
     */
    sb_latency wait;
    /**
     * How long connections were held: one observation per lease ended (released or
     * discarded). Appended after the counters: check `struct_size`.
     */
    sb_latency lease;
    /**
     * How many endpoints the pool has; each one's health, breaker and counters come
     * from `sb_pool_endpoint_health(pool, index, ...)`. Appended later: check
     * `struct_size`.
     */
    uint64_t endpoint_count;
} sb_pool_stats;

/**
 * A pool's health totals, filled by value by `sb_pool_get_health`; the endpoints
 * themselves come from `sb_pool_endpoint_health`. Versioned like
 * `sb_endpoint_health` (set `struct_size` first).
 */
typedef struct {
    /**
     * In: the size of the caller's struct (`sizeof(sb_pool_health)`). Out: the
     * number of bytes filled.
     */
    size_t struct_size;
    /**
     * How many endpoints the pool has (the valid indexes of
     * `sb_pool_endpoint_health` are 0 to `endpoint_count - 1`, in target order).
     */
    uint64_t endpoint_count;
    /**
     * Calls recorded over all endpoints.
     */
    uint64_t calls;
    /**
     * Of them, failed.
     */
    uint64_t failures;
    /**
     * `1 - failures / calls` (1 with no calls).
     */
    double success_rate;
    /**
     * Reconnect attempts over all endpoints.
     */
    uint64_t reconnects;
    /**
     * The latest success of any endpoint (0: never).
     */
    uint64_t last_success_unix_ns;
    /**
     * The earliest `connected_since` of the connected endpoints (0: none connected).
     */
    uint64_t connected_since_unix_ns;
} sb_pool_health;

/**
 * One endpoint's health, filled by value by `sb_pool_endpoint_health` and
 * `sb_pool_healthy_endpoints` (no pointers inside; nothing to free). Strings are
 * copied into the fixed arrays, truncated at a UTF-8 character boundary, always
 * NUL-terminated. Times are wall-clock nanoseconds since the Unix epoch, 0 for
 * "never"; durations are nanoseconds.
 *
 * Versioning as for `sb_pool_stats`: set `struct_size = sizeof(sb_endpoint_health)`
 * before the call; the library fills only the fields that fit and sets `struct_size`
 * to the number of bytes it filled. Fields are only ever added at the end.
 */
typedef struct {
    /**
     * In: the size of the caller's struct (`sizeof(sb_endpoint_health)`). Out: the
     * number of bytes filled.
     */
    size_t struct_size;
    /**
     * The endpoint as written in the pool's target (`tcp://host:port`).
     */
    char endpoint[SB_ENDPOINT_LEN];
    /**
     * Its state (an `sb_conn_state`).
     */
    sb_conn_state state;
    /**
     * Its breaker's state (an `sb_breaker_state`).
     */
    sb_breaker_state breaker;
    /**
     * Quality score in [0, 1], higher is better: success rate and latency together.
     */
    double quality;
    /**
     * Success rate (moving average) in [0, 1].
     */
    double success_rate;
    /**
     * Moving average of the latency of successful calls, in nanoseconds; 0 before
     * the first.
     */
    uint64_t latency_ewma_ns;
    /**
     * Calls recorded (connects, probes, health checks, reported calls).
     */
    uint64_t calls;
    /**
     * Of them, failed.
     */
    uint64_t failures;
    /**
     * Reconnect attempts.
     */
    uint64_t reconnects;
    /**
     * Health checks run.
     */
    uint64_t checks;
    /**
     * Of them, failed.
     */
    uint64_t checks_failed;
    /**
     * Times the breaker opened.
     */
    uint64_t breaker_opened;
    /**
     * Breaker state changes.
     */
    uint64_t breaker_transitions;
    /**
     * Connects the breaker refused.
     */
    uint64_t breaker_rejected;
    /**
     * Connections open to the endpoint now.
     */
    uint64_t open_connections;
    /**
     * Of them, leased now.
     */
    uint64_t in_flight;
    /**
     * When the last call succeeded (0: never).
     */
    uint64_t last_success_unix_ns;
    /**
     * Connected without a failure since (0: not connected).
     */
    uint64_t connected_since_unix_ns;
    /**
     * How long until the next reconnect may start, when backing off (0: not backing
     * off).
     */
    uint64_t backoff_remaining_ns;
    /**
     * The last failure's message ("" when none).
     */
    char last_error[SB_ENDPOINT_ERROR_LEN];
    /**
     * How warm it is (an `sb_warming_state`). Appended after `last_error`: a caller
     * built against an older header has a smaller `struct_size` and does not get it.
     */
    sb_warming_state warming;
} sb_endpoint_health;

/**
 * One event, filled by value by `sb_manager_poll_event` (no pointers inside; nothing
 * to free). Strings are copied into the fixed arrays, truncated at a UTF-8 character
 * boundary when too long, and always NUL-terminated.
 *
 * Versioning as for `sb_pool_stats`: set `struct_size = sizeof(sb_event)` before the
 * call; the library fills only the fields that fit and sets `struct_size` to the
 * number of bytes it filled. Fields are only ever added at the end.
 */
typedef struct {
    /**
     * In: the size of the caller's struct (`sizeof(sb_event)`). Out: the number of
     * bytes filled.
     */
    size_t struct_size;
    /**
     * What happened.
     */
    sb_event_kind kind;
    /**
     * The connection it concerns (the pool's connection id, from 1), or 0 when none.
     */
    uint64_t connection_id;
    /**
     * For `SB_EVENT_LEAK_SUSPECTED`: how long the lease had been held; for
     * `SB_EVENT_HEALTH_CHECK`: how long the check took; in nanoseconds; 0 when the
     * kind has no age.
     */
    uint64_t age_ns;
    /**
     * When it happened: wall-clock time in nanoseconds since the Unix epoch (0 if the
     * clock is before 1970).
     */
    uint64_t time_unix_ns;
    /**
     * The name of the pool it concerns (NUL-terminated, possibly truncated).
     */
    char pool[SB_EVENT_POOL_LEN];
    /**
     * A sentence for humans, the reason (NUL-terminated, possibly truncated).
     */
    char message[SB_EVENT_MESSAGE_LEN];
    /**
     * The endpoint it concerns, as written in the pool's target
     * (`tcp://host:port`); "" when none. Appended later: check `struct_size`.
     */
    char endpoint[SB_EVENT_ENDPOINT_LEN];
    /**
     * For state changes (`SB_EVENT_CONNECTION_STATE`, `SB_EVENT_ENDPOINT_STATE`,
     * `SB_EVENT_BREAKER_STATE`): the state before, e.g. "closed" or "connecting"
     * (the names of `sb_breaker_state_str` and `sb_conn_state_str`); "" when none.
     */
    char old_state[SB_EVENT_STATE_LEN];
    /**
     * For state changes: the state after; for `SB_EVENT_HEALTH_CHECK`: "ok" or
     * "failed"; "" when none.
     */
    char new_state[SB_EVENT_STATE_LEN];
    /**
     * The session it concerns, or 0 when none.
     */
    uint64_t session_id;
    /**
     * The stream it concerns (NUL-terminated, possibly truncated); "" when none.
     */
    char stream[SB_EVENT_STREAM_LEN];
    /**
     * The registry topic it concerns (`SB_EVENT_SUBSCRIBED`, `SB_EVENT_UNSUBSCRIBED`);
     * "" when none. Appended later: check `struct_size`.
     */
    char topic[SB_EVENT_TOPIC_LEN];
    /**
     * The registry user it concerns; "" when none.
     */
    char user[SB_EVENT_USER_LEN];
    /**
     * Why: a disconnect reason (`SB_EVENT_UNREGISTERED`), a policy outcome
     * (`SB_EVENT_SLOW_CONSUMER`), or the limit's key for a registry refusal
     * (`SB_EVENT_REJECTED`), the error behind a resource's state change
     * (`SB_EVENT_RESOURCE_STATE`); "" when none.
     */
    char reason[SB_EVENT_REASON_LEN];
    /**
     * The named resource it concerns (`SB_EVENT_RESOURCE_*`; an anonymous one's
     * `anonymous-<n>`); "" when none. Appended later: check `struct_size`.
     */
    char resource[SB_EVENT_RESOURCE_LEN];
} sb_event;

/**
 * Receives one event (see `sb_manager_set_event_callback`). `event` is valid only
 * during the call: copy what you keep.
 */
typedef void (*sb_event_fn)(void *userdata,
                            const sb_event *event);

/**
 * One stream of an `sb_session_info` (see `sb_session_get`). Its strings belong to the
 * snapshot. This struct is never extended (new per-stream data would come as a new
 * array at the end of `sb_session_info`), so `streams[i]` indexing stays valid.
 */
typedef struct {
    /**
     * The stream's name (NUL-terminated).
     */
    const char *name;
    /**
     * The next offset to deliver.
     */
    int64_t position;
    /**
     * The committed offset (safe to resume from): the last one this session committed,
     * else the one in the store when the stream was opened; -1 when none.
     */
    int64_t committed;
    /**
     * Data packets read from the source.
     */
    uint64_t data_packets_read;
    /**
     * Bytes of those packets.
     */
    uint64_t data_bytes_read;
    /**
     * Data packets delivered to the client.
     */
    uint64_t data_packets_delivered;
    /**
     * Bytes of those packets.
     */
    uint64_t data_bytes_delivered;
    /**
     * Essential packets read.
     */
    uint64_t essential_packets_read;
    /**
     * Essential packets delivered.
     */
    uint64_t essential_packets_delivered;
} sb_stream_info;

/**
 * A snapshot of one session, made by `sb_session_get` and freed (once) by
 * `sb_session_info_free`; its strings and `streams` array live as long as it does.
 * Fields may be added at the end in later versions (the library allocates it, so a
 * program built against this header keeps working); `struct_size` says how large the
 * library's struct is.
 */
typedef struct {
    /**
     * The size of this struct as allocated by the library.
     */
    size_t struct_size;
    /**
     * The session's id.
     */
    uint64_t id;
    /**
     * The data source (NUL-terminated).
     */
    const char *data_source;
    /**
     * The session key (NUL-terminated).
     */
    const char *session_key;
    /**
     * Whether the main stream is left out.
     */
    bool exclude_main_stream;
    /**
     * Router (control) messages received on the session.
     */
    uint64_t router_messages_received;
    /**
     * Bytes of those messages.
     */
    uint64_t router_bytes_received;
    /**
     * How many streams `streams` holds.
     */
    size_t streams_len;
    /**
     * The streams, in the order they were opened or added (NULL when there are none).
     */
    const sb_stream_info *streams;
} sb_session_info;

/**
 * The session keys in the manager's catalog, made by `sb_session_catalog` and freed
 * (once) by `sb_catalog_free`. Sorted by data source, then key.
 */
typedef struct {
    /**
     * How many entries there are.
     */
    size_t len;
    /**
     * `len` data source names (NUL-terminated; NULL when `len` is 0).
     */
    const char *const *data_sources;
    /**
     * `len` session keys, `session_keys[i]` belonging to `data_sources[i]`.
     */
    const char *const *session_keys;
} sb_catalog;

/**
 * Checks `token` (valid only during the call). Return 0 to accept it, after
 * optionally setting the user and metadata on `grant`; non-zero to refuse it, with
 * the reason written NUL-terminated into `why` (`why_len` bytes, zeroed; may be left
 * empty). Runs on the thread calling `sb_registry_register*` with a token or, for
 * clients of the embedded server's hub (`GET /ws`), on one of switchboard's
 * blocking-pool threads, possibly several at once: it must be thread-safe and may
 * block briefly.
 */
typedef int (*sb_authenticate_fn)(void *userdata,
                                  const char *token,
                                  sb_grant *grant,
                                  char *why,
                                  size_t why_len);

/**
 * Whether connection `id` of `user` (NULL: none) may subscribe to `topic` (at
 * register and on every subscribe). Return 0 to allow; non-zero to refuse, with the
 * reason in `why` as above. Runs on the thread calling register or subscribe, or
 * (hub clients) on switchboard's blocking-pool threads, as the authenticate hook.
 */
typedef int (*sb_authorize_fn)(void *userdata,
                               uint64_t id,
                               const char *user,
                               const char *topic,
                               char *why,
                               size_t why_len);

/**
 * A connection to register (`sb_registry_register`, `sb_registry_register_outbox`).
 * Set `struct_size = sizeof(sb_registration)`; fields beyond a shorter struct_size
 * (an older header) count as NULL / 0. Every field may be NULL / 0.
 */
typedef struct {
    /**
     * `sizeof(sb_registration)`.
     */
    size_t struct_size;
    /**
     * The user this connection belongs to, or NULL.
     */
    const char *user;
    /**
     * `meta_len` metadata keys (a key given twice keeps the last value).
     */
    const char *const *meta_keys;
    /**
     * `meta_len` metadata values, `meta_values[i]` for `meta_keys[i]`.
     */
    const char *const *meta_values;
    /**
     * How many metadata entries.
     */
    size_t meta_len;
    /**
     * `topics_len` topics to subscribe at once.
     */
    const char *const *topics;
    /**
     * How many topics.
     */
    size_t topics_len;
    /**
     * A credential for the authenticate hook (`sb_registry_set_authenticator`), or
     * NULL. Its grant's user and metadata are merged over the fields above.
     */
    const char *token;
} sb_registration;

/**
 * Sends one message to the client: `len` bytes at `data` (valid only during the
 * call), `is_text` for a text message. Return 0 when it was handed to the
 * transport, non-zero when it failed (counted; after `registry.max_send_failures` in
 * a row the connection is removed with reason `send_failed`).
 */
typedef int (*sb_send_fn)(void *userdata,
                          uint64_t id,
                          const uint8_t *data,
                          size_t len,
                          bool is_text);

/**
 * Pings the client (heartbeat); returns 0, or non-zero for a failure (counted like a
 * failed send).
 */
typedef int (*sb_ping_fn)(void *userdata,
                          uint64_t id);

/**
 * The connection left the registry for `reason` (valid only during the call);
 * called once, after its last send. Close the client's transport here.
 */
typedef void (*sb_closed_fn)(void *userdata,
                             uint64_t id,
                             const char *reason);

/**
 * Who a broadcast or a disconnect is for: the union of `topics`, `users` and `ids`,
 * or everyone with `all`, minus `except`. A connection matched twice is served once.
 * Set `struct_size = sizeof(sb_target)`; fields beyond a shorter struct_size count as
 * NULL / 0 / false.
 */
typedef struct {
    /**
     * `sizeof(sb_target)`.
     */
    size_t struct_size;
    /**
     * Everyone registered (then topics, users and ids are ignored).
     */
    bool all;
    /**
     * `topics_len` topics: their subscribers.
     */
    const char *const *topics;
    /**
     * How many topics.
     */
    size_t topics_len;
    /**
     * `users_len` users: their connections.
     */
    const char *const *users;
    /**
     * How many users.
     */
    size_t users_len;
    /**
     * `ids_len` connection ids.
     */
    const uint64_t *ids;
    /**
     * How many ids.
     */
    size_t ids_len;
    /**
     * `except_len` connection ids never served.
     */
    const uint64_t *except;
    /**
     * How many except ids.
     */
    size_t except_len;
} sb_target;

/**
 * What one broadcast (or `sb_registry_send`) did, counted by the time it returned.
 * Filled by value: set `struct_size = sizeof(sb_broadcast_report)` first; the library
 * fills the fields that fit and sets `struct_size` to the bytes filled.
 */
typedef struct {
    /**
     * In: `sizeof(sb_broadcast_report)`. Out: the bytes filled.
     */
    size_t struct_size;
    /**
     * Connections the target matched (after the except set).
     */
    uint64_t recipients;
    /**
     * Messages queued for delivery.
     */
    uint64_t queued;
    /**
     * Messages dropped by full queues (`drop_new`, and those `drop_oldest` discarded).
     */
    uint64_t dropped;
    /**
     * Recipients removed as too slow (`disconnect` policy).
     */
    uint64_t disconnected;
    /**
     * How long the fan-out took, in nanoseconds.
     */
    uint64_t elapsed_ns;
} sb_broadcast_report;

/**
 * A snapshot of one connection (`sb_registry_get`, or an element of
 * `sb_conn_list.connections`). Its strings and arrays live as long as the snapshot.
 */
typedef struct {
    /**
     * The size of this struct as allocated by the library.
     */
    size_t struct_size;
    /**
     * Its id.
     */
    uint64_t id;
    /**
     * Its user, or NULL.
     */
    const char *user;
    /**
     * How many metadata entries.
     */
    size_t meta_len;
    /**
     * Metadata keys, sorted (NULL when none).
     */
    const char *const *meta_keys;
    /**
     * Metadata values, `meta_values[i]` for `meta_keys[i]`.
     */
    const char *const *meta_values;
    /**
     * How many topics.
     */
    size_t topics_len;
    /**
     * Its topics, sorted (NULL when none).
     */
    const char *const *topics;
    /**
     * `"active"` or `"idle"` (static).
     */
    const char *state;
    /**
     * `"callback"` or `"outbox"` (static).
     */
    const char *sink;
    /**
     * Time since it registered, in nanoseconds (by the manager's clock).
     */
    uint64_t age_ns;
    /**
     * Time since it was last touched, in nanoseconds.
     */
    uint64_t idle_ns;
    /**
     * Messages waiting in its queue.
     */
    uint64_t queued_messages;
    /**
     * Bytes waiting in its queue.
     */
    uint64_t queued_bytes;
    /**
     * Messages handed to its sink.
     */
    uint64_t sent;
    /**
     * Messages dropped for it.
     */
    uint64_t dropped;
    /**
     * Failed deliveries to it.
     */
    uint64_t failed;
} sb_conn_info;

/**
 * Which connections `sb_registry_list` returns; every set field must match. Set
 * `struct_size = sizeof(sb_list_filter)`; unset fields are NULL / 0.
 */
typedef struct {
    /**
     * `sizeof(sb_list_filter)`.
     */
    size_t struct_size;
    /**
     * Only this user's connections (NULL: any).
     */
    const char *user;
    /**
     * Only subscribers of this topic (NULL: any).
     */
    const char *topic;
    /**
     * Only connections whose metadata has this key (NULL: any) ...
     */
    const char *meta_key;
    /**
     * ... with this value (required with `meta_key`).
     */
    const char *meta_value;
    /**
     * Only connections in this state, `"active"` or `"idle"` (NULL: any).
     */
    const char *state;
    /**
     * Only connections silent for at least this many milliseconds (0: any).
     */
    uint64_t min_idle_ms;
    /**
     * Most records to return (0: the default, 100; more than 10,000 counts as 10,000).
     */
    size_t limit;
    /**
     * Only ids above this one: the previous page's `next_cursor` (0: from the start).
     */
    uint64_t cursor;
} sb_list_filter;

/**
 * One page of `sb_registry_list`, freed (once) by `sb_conn_list_free`.
 */
typedef struct {
    /**
     * How many records.
     */
    size_t len;
    /**
     * The records, in id order (NULL when none). Never extended per element.
     */
    const sb_conn_info *connections;
    /**
     * Whether there is a next page.
     */
    bool has_next;
    /**
     * Pass as `cursor` for the next page (0 when this was the last one).
     */
    uint64_t next_cursor;
} sb_conn_list;

/**
 * The registry's statistics (`sb_registry_get_stats`), freed (once) by
 * `sb_registry_stats_free`. Fields may be added at the end (`struct_size`).
 */
typedef struct {
    /**
     * The size of this struct as allocated by the library.
     */
    size_t struct_size;
    /**
     * Connections registered now.
     */
    uint64_t connections;
    /**
     * Of those, heard from within the heartbeat interval.
     */
    uint64_t active;
    /**
     * Topics with at least one subscriber.
     */
    uint64_t topics;
    /**
     * Distinct users with at least one connection.
     */
    uint64_t users;
    /**
     * Connections ever registered.
     */
    uint64_t registered_total;
    /**
     * Broadcasts (and direct sends) made.
     */
    uint64_t broadcasts;
    /**
     * Messages queued for delivery.
     */
    uint64_t messages_queued;
    /**
     * Messages handed to sinks.
     */
    uint64_t messages_sent;
    /**
     * Messages dropped by full queues, or discarded when their connection left.
     */
    uint64_t messages_dropped;
    /**
     * Failed deliveries.
     */
    uint64_t messages_failed;
    /**
     * Cleanup passes run.
     */
    uint64_t cleanup_runs;
    /**
     * How many topics `topic_names` / `topic_counts` hold (every topic).
     */
    size_t topic_counts_len;
    /**
     * Topic names, largest first.
     */
    const char *const *topic_names;
    /**
     * Subscribers of `topic_names[i]`.
     */
    const uint64_t *topic_counts;
    /**
     * How many disconnect reasons.
     */
    size_t disconnects_len;
    /**
     * Reasons connections were removed for (sorted).
     */
    const char *const *disconnect_reasons;
    /**
     * How many were removed for `disconnect_reasons[i]`.
     */
    const uint64_t *disconnect_counts;
    /**
     * How many limit keys refused calls.
     */
    size_t rejections_len;
    /**
     * The limit keys (sorted), e.g. `registry.max_total_connections`.
     */
    const char *const *rejection_keys;
    /**
     * Calls refused by `rejection_keys[i]`.
     */
    const uint64_t *rejection_counts;
} sb_registry_stats;

/**
 * A snapshot of one resource (`sb_resource_get`, or an element of
 * `sb_resource_info_list.resources`). Its strings and arrays live as long as the
 * snapshot.
 */
typedef struct {
    /**
     * The size of this struct as allocated by the library.
     */
    size_t struct_size;
    /**
     * Its id (`anonymous-<n>` for an anonymous one).
     */
    const char *id;
    /**
     * Its type: `tcp`, `unix` or a registered one.
     */
    const char *kind;
    /**
     * The endpoint it connects to, as written (`tcp://host:port`).
     */
    const char *endpoint;
    /**
     * Whether it was made by `sb_resource_attach_anonymous`.
     */
    bool anonymous;
    /**
     * Where its connection is.
     */
    sb_resource_state state;
    /**
     * The last connect or check error, or NULL.
     */
    const char *last_error;
    /**
     * Whether it stopped retrying (a configuration error).
     */
    bool stopped;
    /**
     * How many consumers are attached.
     */
    size_t consumers_len;
    /**
     * Their names, in attach order (NULL when none).
     */
    const char *const *consumers;
    /**
     * Connections lost and redialled.
     */
    uint64_t reconnects;
    /**
     * Bytes read through `sb_resource_recv` (not through the fd).
     */
    uint64_t bytes_in;
    /**
     * Bytes written through `sb_resource_send_all`.
     */
    uint64_t bytes_out;
    /**
     * How long the current connection has been up, in nanoseconds (0 unless
     * connected).
     */
    uint64_t connected_for_ns;
} sb_resource_info;

/**
 * Every resource of a manager (`sb_resource_list`), freed (once) by
 * `sb_resource_info_list_free`.
 */
typedef struct {
    /**
     * How many resources.
     */
    size_t len;
    /**
     * The resources, named and anonymous, sorted by id (NULL when none).
     */
    const sb_resource_info *resources;
} sb_resource_info_list;

/**
 * One message a hub client sent to the program (`sb_hub_recv`), freed (once) by
 * `sb_hub_message_free`. Its strings are NUL-terminated and live as long as the
 * snapshot. Fields may be added at the end (`struct_size`).
 */
typedef struct {
    /**
     * The size of this struct as allocated by the library.
     */
    size_t struct_size;
    /**
     * The registry id of the client that sent it: pass it to `sb_registry_send` to
     * answer that client alone, or to `sb_registry_get` for its user and topics.
     */
    uint64_t connection_id;
    /**
     * The client's user (from the registry's auth hook), or NULL when anonymous.
     */
    const char *user;
    /**
     * The envelope's `type` (`data`, `chat`, ...: never one the hub answers itself,
     * such as `subscribe` or `ping`).
     */
    const char *type;
    /**
     * The envelope's `topic`, or NULL when it has none.
     */
    const char *topic;
    /**
     * The whole JSON text as the client sent it (decode it with
     * `sb_envelope_decode`).
     */
    const char *text;
    /**
     * `strlen(text)`.
     */
    size_t text_len;
} sb_hub_message;

/**
 * One member of the cluster, from its last heartbeat (an element of
 * `sb_cluster_member_list.members`).
 */
typedef struct {
    /**
     * The size of this struct as allocated by the library.
     */
    size_t struct_size;
    /**
     * Its `cluster.node_id`.
     */
    const char *node_id;
    /**
     * Its node number (bits 32 and up of its connection ids).
     */
    uint64_t number;
    /**
     * Its embedded server's address, `host:port` ("" when it has none).
     */
    const char *address;
    /**
     * Its registered connections at its last heartbeat.
     */
    uint64_t connections;
    /**
     * Its open pools at its last heartbeat.
     */
    uint64_t pools;
    /**
     * Time since its last heartbeat, in nanoseconds (by Redis's clock).
     */
    uint64_t last_seen_ns;
    /**
     * Whether it is this instance.
     */
    bool local;
} sb_cluster_member;

/**
 * The live members (`sb_cluster_members`), freed (once) by
 * `sb_cluster_member_list_free`.
 */
typedef struct {
    /**
     * How many members.
     */
    size_t len;
    /**
     * The members, by node id (NULL when none). Never extended per element.
     */
    const sb_cluster_member *members;
} sb_cluster_member_list;

/**
 * What an acknowledged cluster broadcast reached (`sb_cluster_broadcast`), freed
 * (once) by `sb_cluster_broadcast_report_free`. Fields may be added at the end
 * (`struct_size`).
 */
typedef struct {
    /**
     * The size of this struct as allocated by the library.
     */
    size_t struct_size;
    /**
     * The fan-out on this instance, as `sb_registry_broadcast` reports it.
     */
    sb_broadcast_report local;
    /**
     * How many other members acknowledged it.
     */
    size_t remote_len;
    /**
     * Their node ids (NULL when none).
     */
    const char *const *remote_nodes;
    /**
     * The recipients on `remote_nodes[i]`.
     */
    const uint64_t *remote_recipients;
    /**
     * Copies published that no member acknowledged within `cluster.request_timeout`
     * (a member that left, or one too slow to answer).
     */
    uint64_t unacknowledged;
    /**
     * Recipients on every instance that acknowledged, this one included.
     */
    uint64_t recipients;
} sb_cluster_broadcast_report;

/**
 * Which live members answered a cluster-wide call, embedded in each of its results.
 * A member that did not answer within `cluster.request_timeout` is named in `missing`
 * and its part is absent: partial results never fail the call.
 */
typedef struct {
    /**
     * How many members answered.
     */
    size_t nodes_len;
    /**
     * Their node ids, this instance first (NULL when none).
     */
    const char *const *nodes;
    /**
     * How many live members did not answer.
     */
    size_t missing_len;
    /**
     * Their node ids (NULL when none).
     */
    const char *const *missing;
} sb_cluster_answered;

/**
 * One page of a cluster-wide list (`sb_cluster_list`), freed (once) by
 * `sb_cluster_conn_list_free`. Fields may be added at the end (`struct_size`).
 */
typedef struct {
    /**
     * The size of this struct as allocated by the library.
     */
    size_t struct_size;
    /**
     * How many records.
     */
    size_t len;
    /**
     * The records of every member that answered, in id order (ids are unique across
     * the cluster; NULL when none). Never extended per element.
     */
    const sb_conn_info *connections;
    /**
     * `nodes[i]`: the node id of the member `connections[i]` is registered on.
     */
    const char *const *nodes;
    /**
     * Whether there is a next page.
     */
    bool has_next;
    /**
     * Pass as `cursor` for the next page (0 when this was the last one).
     */
    uint64_t next_cursor;
    /**
     * Who answered.
     */
    sb_cluster_answered answered;
} sb_cluster_conn_list;

/**
 * A cluster-wide count (`sb_cluster_disconnect`), freed (once) by
 * `sb_cluster_count_free`. Fields may be added at the end (`struct_size`).
 */
typedef struct {
    /**
     * The size of this struct as allocated by the library.
     */
    size_t struct_size;
    /**
     * The sum over the members that answered.
     */
    uint64_t total;
    /**
     * How many members answered with a count.
     */
    size_t by_node_len;
    /**
     * Their node ids (NULL when none).
     */
    const char *const *nodes;
    /**
     * The count on `nodes[i]`.
     */
    const uint64_t *counts;
    /**
     * Who answered.
     */
    sb_cluster_answered answered;
} sb_cluster_count;

/**
 * Cluster-wide registry statistics (`sb_cluster_get_stats`), freed (once) by
 * `sb_cluster_stats_free`. Fields may be added at the end (`struct_size`).
 */
typedef struct {
    /**
     * The size of this struct as allocated by the library.
     */
    size_t struct_size;
    /**
     * The members' statistics added up (`users` and `topics` count per member, so a
     * user connected to two members counts twice; `topic_counts` is summed by topic).
     */
    sb_registry_stats total;
    /**
     * How many members answered.
     */
    size_t by_node_len;
    /**
     * Their node ids (NULL when none).
     */
    const char *const *nodes;
    /**
     * The statistics of `nodes[i]` (NULL when none). Never extended per element.
     */
    const sb_registry_stats *by_node;
    /**
     * Who answered.
     */
    sb_cluster_answered answered;
} sb_cluster_stats;

/**
 * A named resource's status on each member (`sb_cluster_resource_status`), freed
 * (once) by `sb_cluster_resource_free`. Fields may be added at the end
 * (`struct_size`).
 */
typedef struct {
    /**
     * The size of this struct as allocated by the library.
     */
    size_t struct_size;
    /**
     * The resource's id.
     */
    const char *id;
    /**
     * How many members answered.
     */
    size_t by_node_len;
    /**
     * Their node ids (NULL when none).
     */
    const char *const *nodes;
    /**
     * The status on `nodes[i]`: a state name as `sb_resource_state_str` gives
     * (`"connected"`, `"connecting"`, ...), or `"absent"` where it is not created.
     */
    const char *const *statuses;
    /**
     * Who answered.
     */
    sb_cluster_answered answered;
} sb_cluster_resource;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * A short static description of `status` ("timed out", "invalid handle", ...);
 * "unknown status" for a value that is not an `sb_status`. Never NULL; the string
 * must not be freed. The parameter is a plain integer so that any value is safe.
 */
const char *sb_status_str(int status);

/**
 * Copies the message of the calling thread's most recent failed switchboard call
 * into `buf` as a NUL-terminated string, truncated (at a UTF-8 character boundary)
 * to fit `len` bytes including the NUL. The message is empty when no call on this
 * thread has failed yet; successful calls do not clear it (like `errno`).
 *
 * `*written` (if `written` is not NULL) receives the number of bytes copied, not
 * counting the NUL. With `len == 0` nothing is copied.
 *
 * Returns `SB_OK`, or `SB_INVALID_ARGUMENT` when `buf` is NULL and `len > 0` (the
 * stored message is left unchanged).
 *
 * # Safety
 *
 * `buf` must point to `len` writable bytes (or `len` be 0); `written` must be NULL or
 * point to a writable `size_t`.
 */
sb_status sb_last_error(char *buf,
                        size_t len,
                        size_t *written);

/**
 * The version of the loaded library, e.g. "0.1.0" (compare with the
 * `SB_VERSION_*` macros of the header you compiled against). A static string:
 * never NULL, never freed.
 */
const char *sb_version(void);

/**
 * Creates an empty config (every key at its default) and stores its handle in
 * `*out`.
 *
 * # Safety
 *
 * `out` must be NULL (which fails with `SB_INVALID_ARGUMENT`) or point to a writable
 * `sb_config *`.
 */
sb_status sb_config_new(sb_config **out);

/**
 * Sets `key` to `value`, both NUL-terminated UTF-8 strings, e.g.
 * `sb_config_set(cfg, "pool.max_size", "4")` or
 * `sb_config_set(cfg, "pool.acquire_timeout", "250ms")`. Durations are `250ms`,
 * `1.5s`, `2m`, or a bare number of milliseconds.
 *
 * An unknown key or a bad value returns `SB_INVALID_ARGUMENT` and leaves the config
 * unchanged; `sb_last_error` then names the key and the accepted form.
 *
 * # Safety
 *
 * `key` and `value` must be NULL (rejected) or NUL-terminated strings.
 */
sb_status sb_config_set(sb_config *cfg,
                        const char *key,
                        const char *value);

/**
 * Frees a config. NULL is a no-op (`SB_OK`); a config that was already freed returns
 * `SB_INVALID_HANDLE`.
 */
sb_status sb_config_free(sb_config *cfg);

/**
 * Creates a manager with settings from `cfg` (NULL: all defaults) and stores its
 * handle in `*out`. Its `runtime.*` keys size the runtime; its `pool.*` and `tcp.*`
 * keys are the defaults of every pool it creates. Starts the runtime's threads
 * (`runtime.worker_threads`, default 2).
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to a writable `sb_manager *`.
 */
sb_status sb_manager_new(const sb_config *cfg,
                         sb_manager **out);

/**
 * Closes the manager: new calls on it and on its pools fail with `SB_UNAVAILABLE`,
 * callers waiting in `sb_pool_acquire` are woken with `SB_UNAVAILABLE`, leases still
 * out get up to `timeout_ms` milliseconds to be released, then every connection is
 * closed and the runtime's threads are stopped and joined. Blocks the calling thread
 * for at most about `timeout_ms`. Closing twice is a no-op (`SB_OK`). Once the
 * runtime is stopped, the event callback is let go (its `free_userdata` runs).
 * Returns `SB_FAILED_PRECONDITION` when called on one of the manager's own threads
 * (from a callback).
 *
 * The handle stays valid (calls on it fail with `SB_UNAVAILABLE`) until
 * `sb_manager_free`; pool and lease handles still need their own `_free` /
 * `_release`. A lease still out after the timeout keeps its socket until it is
 * released, which then closes it.
 */
sb_status sb_manager_close(sb_manager *manager,
                           uint64_t timeout_ms);

/**
 * Frees a manager, closing it first if `sb_manager_close` was not called (without
 * waiting for leases: like `sb_manager_close(manager, 0)`); closing releases the
 * event callback (its `free_userdata` runs). NULL is a no-op
 * (`SB_OK`); a manager already freed returns `SB_INVALID_HANDLE`.
 */
sb_status sb_manager_free(sb_manager *manager);

/**
 * Moves the manager's manual clock (`runtime.clock = manual`) forward by `ms`
 * milliseconds: breakers, backoff, health and the registry's heartbeats and
 * staleness see the time pass (then `sb_registry_cleanup` runs the pass at once).
 * Returns `SB_FAILED_PRECONDITION` for a manager on the system clock (the default).
 */
sb_status sb_manager_advance_clock(sb_manager *manager,
                                   uint64_t ms);

/**
 * Creates a pool named `name` (unique within the manager) of connections to
 * `target` (`tcp://host:port`, `unix:///path`, or several separated by commas), and
 * stores its handle in `*out`. `cfg` (NULL: none) overrides the manager's `pool.*`
 * and `tcp.*` keys for this pool. No connection is opened until the first acquire.
 *
 * Returns `SB_INVALID_ARGUMENT` for a malformed target or a name already in use,
 * `SB_UNAVAILABLE` once the manager is closed.
 *
 * # Safety
 *
 * `name` and `target` must be NULL (rejected) or NUL-terminated strings; `out` must
 * be NULL (rejected) or point to a writable `sb_pool *`.
 */
sb_status sb_pool_new(sb_manager *manager,
                      const char *name,
                      const char *target,
                      const sb_config *cfg,
                      sb_pool **out);

/**
 * Creates a pool named `name` of the program's own connection objects, made by the
 * callbacks in `*connector` (see `sb_connector`), and stores its handle in `*out`.
 * `target` is any non-empty string (or several separated by commas); each entry is
 * passed to `connect` as its `endpoint`. `cfg` (NULL: none) overrides the manager's
 * `pool.*` keys (`probe.*` and `tcp.*` do not apply: the `check` callback is the
 * probe). The struct is copied; it may be freed when this returns. Leases of the pool
 * give the objects through `sb_lease_conn`.
 *
 * Ownership of `connector->userdata` passes to the library with this call:
 * `free_userdata` (if not NULL) is called exactly once, after the last `close`. When
 * the call fails, before it returns. Otherwise once all three have let go of the
 * pool: its handle (`sb_pool_free`), its leases (the last release), and its manager
 * (which keeps a closed pool until it creates its next pool, is closed, or is
 * freed). In the usual order -- release leases, free the pool, free the manager --
 * that is during `sb_manager_free` at the latest; it runs on the thread making the
 * call that lets go last.
 *
 * Returns `SB_INVALID_ARGUMENT` for a NULL `connector` or `connector->connect`, an
 * empty target or a name already in use, `SB_UNAVAILABLE` once the manager is closed.
 *
 * # Safety
 *
 * `name` and `target` must be NULL (rejected) or NUL-terminated strings; `connector`
 * must be NULL (rejected) or point to a readable `sb_connector` whose callbacks
 * follow the contract in its documentation; `out` must be NULL (rejected) or point to
 * a writable `sb_pool *`.
 */
sb_status sb_pool_new_custom(sb_manager *manager,
                             const char *name,
                             const char *target,
                             const sb_config *cfg,
                             const sb_connector *connector,
                             sb_pool **out);

/**
 * Acquires a connection and stores its lease in `*out`: an idle connection at once if
 * there is one, else waits (on the calling thread) for one to be released or
 * opened, up to `timeout_ms` milliseconds (negative: the pool's
 * `pool.acquire_timeout`, default 30 s; 0: do not wait, though a connection may still
 * be opened in the background for a later call).
 *
 * Returns `SB_TIMEOUT` when the deadline passes (`sb_last_error` names the pool and
 * its counts), `SB_UNAVAILABLE` or `SB_IO` when the connection cannot be opened (the
 * message names the address; for a custom pool, the status and message of its
 * connect callback), `SB_RESOURCE_EXHAUSTED` when `pool.max_waiters`
 * callers already wait, `SB_UNAVAILABLE` once the pool or its manager is closed.
 * `*out` is written only on `SB_OK`; release the lease with `sb_lease_release` (or
 * `sb_lease_discard`).
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to a writable `sb_lease *`.
 */
sb_status sb_pool_acquire(sb_pool *pool,
                          int64_t timeout_ms,
                          sb_lease **out);

/**
 * `sb_pool_acquire` with a priority: when callers wait, higher priorities are served
 * first and equal priorities in arrival order (`sb_pool_acquire` is priority 0).
 * Negative priorities are allowed.
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to a writable `sb_lease *`.
 */
sb_status sb_pool_acquire_prio(sb_pool *pool,
                               int64_t timeout_ms,
                               int32_t priority,
                               sb_lease **out);

/**
 * Takes an idle connection if one is ready, without waiting and without opening one.
 * On `SB_OK`, `*out` is the lease, or NULL when no connection was idle (or other
 * callers are already waiting, who go first). `sb_lease_release(NULL)` is a no-op,
 * so the result may be released either way.
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to a writable `sb_lease *`.
 */
sb_status sb_pool_try_acquire(sb_pool *pool,
                              sb_lease **out);

/**
 * Closes and frees a pool: its idle connections close now; leases still out stay
 * valid and their connections close when they are released. Its name may then be
 * reused. NULL is a no-op (`SB_OK`); a pool already freed returns
 * `SB_INVALID_HANDLE`.
 */
sb_status sb_pool_free(sb_pool *pool);

/**
 * Changes the pool's `max_size` (1..=65535) and `min_idle` (0..=max_size) while it
 * is in use, without dropping leases: growing lets waiting callers in at once;
 * shrinking closes surplus idle connections now and surplus leased ones when they
 * are released. `min_idle` connections are then kept open in the background.
 *
 * Returns `SB_INVALID_ARGUMENT` for sizes out of range (nothing changes),
 * `SB_UNAVAILABLE` once the pool or its manager is closed.
 */
sb_status sb_pool_resize(sb_pool *pool,
                         uint32_t max_size,
                         uint32_t min_idle);

/**
 * Closes every idle connection now and every leased one when it is released (e.g.
 * after a failover); new connections are opened on demand and up to `min_idle`.
 * Does not wait.
 */
sb_status sb_pool_evict_all(sb_pool *pool);

/**
 * Opens connections until `pool.min_idle` are idle (or the pool is full), waiting on
 * the calling thread, and stores how many it opened in `*opened` (if `opened` is not
 * NULL). A failed connect stops it and is returned (its message names the address);
 * connections opened before it stay in the pool.
 *
 * Returns `SB_FAILED_PRECONDITION` when called from a connector callback (see
 * `sb_connector`), `SB_UNAVAILABLE` once the pool or its manager is closed.
 *
 * # Safety
 *
 * `opened` must be NULL or point to a writable `size_t`.
 */
sb_status sb_pool_warm(sb_pool *pool,
                       size_t *opened);

/**
 * Runs one pass of the pool's background upkeep now, on the calling thread: closes
 * idle connections past `pool.idle_timeout` (keeping `min_idle`) or past
 * `pool.max_lifetime`, checks idle ones past `pool.validate_after`, and starts
 * connects up to `min_idle`. The pool does this on its own every so often; call it
 * to see the effect at once (tests, or before a burst).
 *
 * Returns `SB_FAILED_PRECONDITION` when called from a connector callback,
 * `SB_UNAVAILABLE` once the manager is closed.
 */
sb_status sb_pool_run_upkeep(sb_pool *pool);

/**
 * Fills `*out` with a snapshot of the pool's sizes and counters (see the struct
 * `sb_pool_stats`; set `out->struct_size = sizeof *out` first). Does not wait; may be
 * called from any thread, including inside connector callbacks, and on a closed pool.
 *
 * Returns `SB_INVALID_ARGUMENT` when `out` is NULL or `out->struct_size` is smaller
 * than `sizeof(size_t)` (not set).
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to `out->struct_size` writable bytes.
 */
sb_status sb_pool_get_stats(const sb_pool *pool,
                            sb_pool_stats *out);

/**
 * Fills `*out` with the pool's health totals and its number of endpoints (set
 * `out->struct_size = sizeof *out` first). Does not wait; may be called from any
 * thread, including callbacks, and on a closed pool.
 *
 * Returns `SB_INVALID_ARGUMENT` when `out` is NULL or `out->struct_size` is not set.
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to `out->struct_size` writable bytes.
 */
sb_status sb_pool_get_health(const sb_pool *pool,
                             sb_pool_health *out);

/**
 * Fills `*out` with the health of the pool's endpoint number `index` (0-based, in
 * the order of the pool's target; `sb_pool_get_health` gives the count). Set
 * `out->struct_size = sizeof *out` first. Does not wait.
 *
 * Returns `SB_NOT_FOUND` when `index` is not below the number of endpoints,
 * `SB_INVALID_ARGUMENT` when `out` is NULL or `out->struct_size` is not set.
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to `out->struct_size` writable bytes.
 */
sb_status sb_pool_endpoint_health(const sb_pool *pool,
                                  size_t index,
                                  sb_endpoint_health *out);

/**
 * Fills `out[0..*count]` with the endpoints that can take connections now (breaker
 * not refusing, not failed), best quality first. `out` is an array of `cap`
 * structs; set `out[0].struct_size = sizeof out[0]` first: it is the size of each
 * element (the array's stride), and every filled element gets the filled size.
 *
 * `*count` always receives how many endpoints are healthy. When more than `cap`
 * are, returns `SB_RESOURCE_EXHAUSTED` and fills nothing: call again with a larger
 * array (`endpoint_count` of `sb_pool_get_health` is always enough). `out` may be NULL
 * when `cap` is 0, to ask for the count. Does not wait.
 *
 * Returns `SB_INVALID_ARGUMENT` for a NULL `count`, a NULL `out` with `cap > 0` or
 * an unset `out[0].struct_size`.
 *
 * # Safety
 *
 * `out` must be NULL with `cap` 0, or point to `cap` structs of
 * `out[0].struct_size` writable bytes each; `count` must be NULL (rejected) or point
 * to a writable `size_t`.
 */
sb_status sb_pool_healthy_endpoints(const sb_pool *pool,
                                    sb_endpoint_health *out,
                                    size_t cap,
                                    size_t *count);

/**
 * Copies into `buf` the name of the endpoint the pool would pick now for a new
 * connection among `candidates` (`n` endpoint names as written in the pool's target;
 * `n` 0: all its endpoints): power of two choices on in-flight load and quality,
 * skipping endpoints whose breaker refuses or that are backing off. Nothing is
 * connected or reserved.
 *
 * `*written` (if not NULL) always receives the size the name needs with its NUL;
 * when that exceeds `len`, returns `SB_RESOURCE_EXHAUSTED` and copies nothing.
 *
 * Returns `SB_NOT_FOUND` for a candidate that is not an endpoint of the pool,
 * `SB_UNAVAILABLE` when none of them can take a connection now (the message says
 * why for each), `SB_INVALID_ARGUMENT` for a NULL `candidates` with `n > 0` or a
 * NULL among them.
 *
 * # Safety
 *
 * `candidates` must be NULL with `n` 0, or point to `n` pointers that are NULL
 * (rejected) or NUL-terminated strings; `buf` must point to `len` writable bytes
 * (or `len` be 0); `written` must be NULL or point to a writable `size_t`.
 */
sb_status sb_pool_select_best(const sb_pool *pool,
                              const char *const *candidates,
                              size_t n,
                              char *buf,
                              size_t len,
                              size_t *written);

/**
 * Stores the breaker state of `endpoint` (a name as written in the pool's target;
 * NULL: the pool's only endpoint) in `*out`. Does not wait.
 *
 * Returns `SB_NOT_FOUND` for an endpoint that is not the pool's (the message lists
 * them), `SB_INVALID_ARGUMENT` for NULL when the pool has several endpoints, or a
 * NULL `out`.
 *
 * # Safety
 *
 * `endpoint` must be NULL or a NUL-terminated string; `out` must be NULL (rejected)
 * or point to a writable `sb_breaker_state`.
 */
sb_status sb_pool_breaker_state(const sb_pool *pool,
                                const char *endpoint,
                                sb_breaker_state *out);

/**
 * An operator's command `op` (an `sb_breaker_op`) to the breaker of `endpoint` (a
 * name as written in the pool's target; NULL: every endpoint of the pool): force it
 * open, disable it, set it to metrics only, or reset it to closed. Takes effect at
 * once; emits `breaker_state` events. Does not wait.
 *
 * Returns `SB_INVALID_ARGUMENT` for an `op` that is not an `sb_breaker_op` (the
 * parameter is a plain integer so that any value is safe), `SB_NOT_FOUND` for an
 * endpoint that is not the pool's.
 *
 * # Safety
 *
 * `endpoint` must be NULL or a NUL-terminated string.
 */
sb_status sb_pool_breaker_op(sb_pool *pool,
                             const char *endpoint,
                             int32_t op);

/**
 * Forgets every endpoint's connect failures: the next connect may start at once, and
 * later delays start from `backoff.initial` again (e.g. after the program learns
 * that a server is back). Breakers are not changed (`sb_pool_breaker_op` with
 * `SB_BREAKER_OP_RESET` does that). Does not wait.
 */
sb_status sb_pool_reset_backoff(sb_pool *pool);

/**
 * Closes the connections of one endpoint (a name as written in the pool's target):
 * idle ones now, leased ones when they are released, e.g. before taking it out of
 * service. New connections go wherever the pool chooses, which may be that endpoint
 * again. Does not wait.
 *
 * Returns `SB_NOT_FOUND` for an endpoint that is not the pool's,
 * `SB_INVALID_ARGUMENT` for NULL.
 *
 * # Safety
 *
 * `endpoint` must be NULL (rejected) or a NUL-terminated string.
 */
sb_status sb_pool_drain(sb_pool *pool,
                        const char *endpoint);

/**
 * Runs every endpoint's health check now, on the calling thread, and waits for them
 * (the pool runs them on its own every `health.interval`): probes an idle connection
 * of each endpoint (`probe.send`/`probe.expect`, the check callback of a custom
 * pool, or the liveness check of a socket), or reconnects an endpoint that is
 * reconnecting or failed when its backoff and breaker allow. Results go to the
 * endpoints' health records and breakers, and `health_check` events are emitted.
 * A failed check is not an error of this call.
 *
 * Returns `SB_FAILED_PRECONDITION` when called from a callback on switchboard's
 * threads, `SB_UNAVAILABLE` once the manager is closed.
 */
sb_status sb_pool_run_health_checks(sb_pool *pool);

/**
 * The stable name of a breaker state (`"closed"`, `"open"`, `"half_open"`,
 * `"forced_open"`, `"disabled"`, `"metrics_only"`; the same in every language, and
 * in `sb_event.old_state` / `new_state`), or `"unknown"`. Static: never free it.
 */
const char *sb_breaker_state_str(int32_t state);

/**
 * The stable name of an endpoint or connection state (`"idle"`, `"connecting"`,
 * `"connected"`, `"reconnecting"`, `"disconnecting"`, `"disconnected"`,
 * `"failed"`; the same in every language and in events), or `"unknown"`. Static:
 * never free it.
 */
const char *sb_conn_state_str(int32_t state);

/**
 * The stable name of a warming state (`"cold"`, `"warming"`, `"warm"`; the same in
 * every language), or `"unknown"`. Static: never free it.
 */
const char *sb_warming_state_str(int32_t state);

/**
 * Stores the connection's id in `*out`: unique within its pool (from 1), never
 * reused; the `connection_id` of events about it (`sb_event`).
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to a writable `uint64_t`.
 */
sb_status sb_lease_id(const sb_lease *lease,
                      uint64_t *out);

/**
 * Stores the connection's file descriptor in `*out`. The descriptor stays owned by
 * the lease: use it (blocking mode) while you hold the lease; do not close it, and do
 * not use it after `sb_lease_release`. A lease of a custom pool has no descriptor:
 * `SB_FAILED_PRECONDITION` (use `sb_lease_conn`); so do `sb_lease_send*` and
 * `sb_lease_recv` on it.
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to a writable `int`.
 */
sb_status sb_lease_fd(const sb_lease *lease,
                      int *out);

/**
 * Stores the program's object (made by the pool's `sb_connector` connect callback)
 * in `*out`. It stays owned by the pool: use it while you hold the lease, and do not
 * close it yourself (`sb_lease_discard` has the pool close it).
 *
 * Returns `SB_FAILED_PRECONDITION` for a lease of a socket pool (use `sb_lease_fd`).
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to a writable `void *`.
 */
sb_status sb_lease_conn(const sb_lease *lease,
                        void **out);

/**
 * Sends bytes from `buf`, blocking until at least one byte is sent, like `send(2)`;
 * `*sent` receives how many (between 1 and `len`; 0 only when `len` is 0). Use
 * `sb_lease_send_all` to send everything.
 *
 * # Safety
 *
 * `buf` must point to `len` readable bytes (it may be NULL when `len` is 0); `sent`
 * must be NULL (rejected) or point to a writable `size_t`.
 */
sb_status sb_lease_send(sb_lease *lease,
                        const uint8_t *buf,
                        size_t len,
                        size_t *sent);

/**
 * Sends all `len` bytes of `buf`, blocking until they are all sent. On an error some
 * bytes may have been sent; discard the lease then.
 *
 * # Safety
 *
 * `buf` must point to `len` readable bytes (it may be NULL when `len` is 0).
 */
sb_status sb_lease_send_all(sb_lease *lease,
                            const uint8_t *buf,
                            size_t len);

/**
 * Receives up to `len` bytes into `buf`, blocking until at least one byte arrives,
 * like `recv(2)`; `*received` receives how many. `*received == 0` means the peer
 * closed the connection (discard the lease then). `len` must be at least 1.
 *
 * # Safety
 *
 * `buf` must point to `len` writable bytes; `received` must be NULL (rejected) or
 * point to a writable `size_t`.
 */
sb_status sb_lease_recv(sb_lease *lease,
                        uint8_t *buf,
                        size_t len,
                        size_t *received);

/**
 * Sets the deadline of each blocking `sb_lease_send`, `sb_lease_send_all` and
 * `sb_lease_recv` on this lease to `timeout_ms` milliseconds (0: wait forever, the
 * default). A call that passes it returns `SB_TIMEOUT`; the connection is not marked
 * broken then (whether the exchange left it usable is the program's call:
 * `sb_lease_discard` it if not). The pool clears the timeout when the connection
 * comes back, so the next lease starts without one. Returns `SB_FAILED_PRECONDITION`
 * for a lease of a custom pool.
 */
sb_status sb_lease_set_timeout(sb_lease *lease,
                               uint64_t timeout_ms);

/**
 * Copies the endpoint the lease's connection goes to, as written in the pool's
 * target (`tcp://host:port`, or the custom pool's name for it), into `buf` with a
 * NUL. `*written` (if not NULL) always receives the size it needs with its NUL; when
 * that exceeds `len`, returns `SB_RESOURCE_EXHAUSTED` and copies nothing (`buf[0]`
 * is set to NUL when `len > 0`). `buf` may be NULL when `len` is 0, to ask for the
 * size.
 *
 * # Safety
 *
 * `buf` must point to `len` writable bytes (or `len` be 0); `written` must be NULL or
 * point to a writable `size_t`.
 */
sb_status sb_lease_endpoint(const sb_lease *lease,
                            char *buf,
                            size_t len,
                            size_t *written);

/**
 * Reports the result of work the program did on this connection outside
 * `sb_lease_send*`/`sb_lease_recv` (a request on a custom pool's object, a
 * request/response over the fd): `success` and how long it took, `latency_ns`
 * nanoseconds. It feeds the endpoint's circuit breaker (failures and calls slower
 * than `breaker.slow_call_duration` count toward tripping it), success rate and
 * latency average, hence its quality score. A report that opens the breaker closes
 * the endpoint's idle connections, and this one when it is released. Does not wait.
 */
sb_status sb_lease_report(sb_lease *lease,
                          bool success,
                          uint64_t latency_ns);

/**
 * Returns the connection to its pool; the handle is invalid afterwards (a second
 * release returns `SB_INVALID_HANDLE`). NULL is a no-op (`SB_OK`), so the result of
 * `sb_pool_try_acquire` may be released either way. If the pool or its manager was
 * closed meanwhile, the connection is closed instead.
 *
 * If another thread is still inside a call on this lease (a misuse), the connection
 * goes back when that call returns.
 */
sb_status sb_lease_release(sb_lease *lease);

/**
 * Closes the connection instead of returning it (after an error on it, or when its
 * state is unknown), freeing its place in the pool. The handle is invalid afterwards.
 * NULL is a no-op (`SB_OK`).
 */
sb_status sb_lease_discard(sb_lease *lease);

/**
 * Takes the next event of the manager's queue into `*out`, waiting on the calling
 * thread up to `timeout_ms` milliseconds for one (0: do not wait). Set
 * `out->struct_size = sizeof *out` first.
 *
 * Events are queued (up to 10000; newer ones are then dropped and counted, see
 * `sb_manager_events_dropped`) by the pools' upkeep, which runs on switchboard's
 * runtime threads; this call hands them to the program on its own thread, oldest
 * first. Several threads may poll the same manager: each event goes to one of them.
 *
 * Returns `SB_OK` with `*out` filled, `SB_TIMEOUT` when no event came within
 * `timeout_ms` (`*out` untouched), `SB_INVALID_ARGUMENT` when `out` is NULL or
 * `out->struct_size` is smaller than `sizeof(size_t)`. Events queued before the
 * manager was closed can still be polled until it is freed.
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to `out->struct_size` writable bytes.
 */
sb_status sb_manager_poll_event(sb_manager *manager,
                                uint64_t timeout_ms,
                                sb_event *out);

/**
 * Stores in `*out` how many events were dropped because the manager's queue was full
 * (nobody polled). Only grows.
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to a writable `uint64_t`.
 */
sb_status sb_manager_events_dropped(const sb_manager *manager,
                                    uint64_t *out);

/**
 * The stable name of an event kind (`"leak_suspected"`, the same in every language),
 * or `"unknown"` for a number this library does not know. The string is static:
 * never free it.
 */
const char *sb_event_kind_str(int32_t kind);

/**
 * Copies the manager's metrics -- every pool's `switchboard_pool_*` series in the
 * Prometheus / OpenMetrics text format (see the README, "Metrics") -- into `buf` as a
 * NUL-terminated string.
 *
 * `*written` (if `written` is not NULL) always receives the size of the whole text
 * including its NUL, whether or not it fit. When it does not fit in `len` bytes,
 * returns `SB_RESOURCE_EXHAUSTED` and copies nothing (`buf[0]` is set to NUL when
 * `len > 0`): call again with a buffer of at least `*written` bytes (a little more,
 * as the text may grow in between). `buf` may be NULL when `len` is 0, to ask for the
 * size. Does not wait; may be called from any thread.
 *
 * # Safety
 *
 * `buf` must point to `len` writable bytes (or `len` be 0); `written` must be NULL or
 * point to a writable `size_t`.
 */
sb_status sb_manager_metrics(const sb_manager *manager,
                             char *buf,
                             size_t len,
                             size_t *written);

/**
 * Sets the function that receives the manager's events instead of the queue of
 * `sb_manager_poll_event` (`cb` NULL: back to the queue). Replaces any previous
 * callback, whose `free_userdata` then runs (see below).
 *
 * `cb(userdata, event)` runs on the thread that found the event: one of switchboard's
 * runtime threads (the pools' background upkeep), or the thread calling
 * `sb_pool_run_upkeep`. No library lock is held, and calls of `cb` may run
 * concurrently on several threads. `event` (filled with `struct_size =
 * sizeof(sb_event)`) is valid only during the call. Inside `cb`: non-blocking calls
 * work (`sb_pool_get_stats`, `sb_lease_release`, `sb_manager_metrics`,
 * `sb_manager_set_event_callback`, ...); calls that would wait on the runtime
 * (`sb_pool_acquire` when nothing is idle, `sb_pool_warm`, `sb_pool_run_upkeep`)
 * fail with `SB_FAILED_PRECONDITION` on a runtime thread; never call
 * `sb_manager_close` or `sb_manager_free` from it. Keep it short: it delays the
 * upkeep.
 *
 * Ownership of `userdata` passes to the library with this call: `free_userdata` (if
 * not NULL) is called exactly once, after the last call of `cb`, when the callback is
 * replaced or cleared, or when the manager is closed (`sb_manager_close`, or
 * `sb_manager_free` without it); with `cb` NULL or on failure: before this returns.
 * It runs on the thread that lets go last: usually the one making that call, else the
 * thread finishing an in-flight `cb`. A callback set on a closed manager is never
 * called and is let go by `sb_manager_free`.
 *
 * Returns `SB_INVALID_HANDLE` for a bad manager.
 *
 * # Safety
 *
 * `cb` and `free_userdata` must be NULL or functions that may be called from any
 * thread with `userdata`, which must stay valid until `free_userdata` runs (or, without
 * one, until the callback is replaced or cleared and the manager freed).
 */
sb_status sb_manager_set_event_callback(sb_manager *manager,
                                        sb_event_fn cb,
                                        void *userdata,
                                        sb_free_fn free_userdata);

/**
 * Registers session key `session_key` of data source `data_source` in the manager's
 * catalog, so that sessions may be opened on it. `*added` (if not NULL) receives
 * true when it is new, false when it was there already.
 *
 * Returns `SB_INVALID_ARGUMENT` for an empty or NULL name, `SB_UNAVAILABLE` once the
 * manager is closed.
 *
 * # Safety
 *
 * `data_source` and `session_key` must be NULL (rejected) or NUL-terminated strings;
 * `added` must be NULL or point to a writable `bool`.
 */
sb_status sb_session_register(sb_manager *manager,
                              const char *data_source,
                              const char *session_key,
                              bool *added);

/**
 * Removes a session key from the catalog. `*removed` (if not NULL) receives true when
 * it was there. Committed offsets stay in the offset store.
 *
 * Returns `SB_FAILED_PRECONDITION` while sessions are open on it,
 * `SB_INVALID_ARGUMENT` for an empty or NULL name.
 *
 * # Safety
 *
 * As `sb_session_register`.
 */
sb_status sb_session_unregister(sb_manager *manager,
                                const char *data_source,
                                const char *session_key,
                                bool *removed);

/**
 * Stores in `*out` whether the session key is in the catalog.
 *
 * # Safety
 *
 * `data_source` and `session_key` must be NULL (rejected) or NUL-terminated strings;
 * `out` must be NULL (rejected) or point to a writable `bool`.
 */
sb_status sb_session_is_registered(const sb_manager *manager,
                                   const char *data_source,
                                   const char *session_key,
                                   bool *out);

/**
 * Opens a session on `data_source` / `session_key` (registered first with
 * `sb_session_register`) reading `streams_len` streams named in `streams`, each from
 * its offset in `offsets` (`offsets_len` must then equal `streams_len`; 0 and NULL:
 * every stream from 0), and stores its id (unique in the process, never reused) in
 * `*id_out`. `exclude_main_stream` is stored and reported. Emits `session_opened`.
 *
 * Returns `SB_INVALID_ARGUMENT` naming the field (empty data source or key, an empty
 * or repeated stream name, an offsets count that does not match, a negative offset),
 * `SB_FAILED_PRECONDITION` for a key that is not registered,
 * `SB_RESOURCE_EXHAUSTED` beyond `sessions.max_total` or `sessions.max_per_key`,
 * `SB_IO` when the durable store cannot be read, `SB_UNAVAILABLE` once the manager is
 * closed. May read the offset store (disk, with `offsets.path`; Redis, with
 * `offsets.store = redis`: then `SB_UNAVAILABLE` or `SB_TIMEOUT` while Redis is away
 * and `SB_FAILED_PRECONDITION` when Redis lost the offsets, its epoch changed).
 *
 * # Safety
 *
 * `data_source` and `session_key` must be NULL (rejected) or NUL-terminated strings;
 * `streams` must point to `streams_len` such strings (or be NULL with 0); `offsets`
 * must point to `offsets_len` readable `int64_t` (or be NULL with 0); `id_out` must
 * be NULL (rejected) or point to a writable `uint64_t`.
 */
sb_status sb_session_open(sb_manager *manager,
                          const char *data_source,
                          const char *session_key,
                          const char *const *streams,
                          size_t streams_len,
                          const int64_t *offsets,
                          size_t offsets_len,
                          bool exclude_main_stream,
                          uint64_t *id_out);

/**
 * Opens a session like `sb_session_open` with each stream at its committed offset in
 * the offset store (0 for a stream never committed), e.g. after a restart. Same
 * errors; emits `session_opened` (its message says "resumed").
 *
 * # Safety
 *
 * As `sb_session_open`.
 */
sb_status sb_session_resume(sb_manager *manager,
                            const char *data_source,
                            const char *session_key,
                            const char *const *streams,
                            size_t streams_len,
                            bool exclude_main_stream,
                            uint64_t *id_out);

/**
 * Closes session `id`; its committed offsets stay in the store. Emits
 * `session_closed`. Returns `SB_NOT_FOUND` for an id that is not open.
 */
sb_status sb_session_close(sb_manager *manager,
                           uint64_t id);

/**
 * Adds stream `stream` to live session `id`, starting at `offset`. Emits
 * `stream_added`. Returns `SB_INVALID_ARGUMENT` for an empty name, a negative offset
 * or a name already in the session, `SB_NOT_FOUND` for an unknown id.
 *
 * # Safety
 *
 * `stream` must be NULL (rejected) or a NUL-terminated string.
 */
sb_status sb_session_add_stream(sb_manager *manager,
                                uint64_t id,
                                const char *stream,
                                int64_t offset);

/**
 * Removes stream `stream` from session `id`. Emits `stream_removed`. Returns
 * `SB_NOT_FOUND` for an unknown id or stream.
 *
 * # Safety
 *
 * `stream` must be NULL (rejected) or a NUL-terminated string.
 */
sb_status sb_session_remove_stream(sb_manager *manager,
                                   uint64_t id,
                                   const char *stream);

/**
 * Counts `packets` data packets of `bytes` bytes read from the source for `stream`
 * of session `id`, `essential` of them essential. Does not move the position.
 * Returns `SB_NOT_FOUND` for an unknown id or stream.
 *
 * # Safety
 *
 * `stream` must be NULL (rejected) or a NUL-terminated string.
 */
sb_status sb_session_record_read(sb_manager *manager,
                                 uint64_t id,
                                 const char *stream,
                                 uint64_t packets,
                                 uint64_t bytes,
                                 uint64_t essential);

/**
 * Counts `packets` data packets of `bytes` bytes delivered to the client on `stream`
 * (`essential` of them essential) and advances the stream's position by `packets`;
 * `*position_out` (if not NULL) receives the new position. Returns `SB_NOT_FOUND` for
 * an unknown id or stream.
 *
 * # Safety
 *
 * `stream` must be NULL (rejected) or a NUL-terminated string; `position_out` must
 * be NULL or point to a writable `int64_t`.
 */
sb_status sb_session_deliver(sb_manager *manager,
                             uint64_t id,
                             const char *stream,
                             uint64_t packets,
                             uint64_t bytes,
                             uint64_t essential,
                             int64_t *position_out);

/**
 * Counts `messages` router (control) messages of `bytes` bytes received on session
 * `id`. Returns `SB_NOT_FOUND` for an unknown id.
 */
sb_status sb_session_record_router(sb_manager *manager,
                                   uint64_t id,
                                   uint64_t messages,
                                   uint64_t bytes);

/**
 * Stores the position (next offset to deliver) of `stream` of session `id` in
 * `*out`. Returns `SB_NOT_FOUND` for an unknown id or stream.
 *
 * # Safety
 *
 * `stream` must be NULL (rejected) or a NUL-terminated string; `out` must be NULL
 * (rejected) or point to a writable `int64_t`.
 */
sb_status sb_session_position(const sb_manager *manager,
                              uint64_t id,
                              const char *stream,
                              int64_t *out);

/**
 * Commits `offset` for `stream` of session `id`: the offset a resumed session starts
 * from, written to the offset store (keyed by data source, session key and stream).
 * With a durable store (`offsets.path`) and `offsets.sync = every_commit` (the
 * default) it is on disk when this returns `SB_OK`: it blocks on a write and fsync.
 *
 * Commits never go backwards: an offset below the stream's last commit in this
 * session (or, before the first, below where it started or was last
 * `sb_session_seek`ed to) returns `SB_FAILED_PRECONDITION` and emits
 * `commit_failed`. Returns `SB_INVALID_ARGUMENT` for a negative offset,
 * `SB_NOT_FOUND` for an unknown id or stream, `SB_IO` when the store fails (also a
 * `commit_failed` event); with `offsets.store = redis`, `SB_UNAVAILABLE` or
 * `SB_TIMEOUT` while Redis is away (nothing acknowledged) and `SB_FAILED_PRECONDITION`
 * when Redis lost the offsets (docs/cluster.md).
 *
 * # Safety
 *
 * `stream` must be NULL (rejected) or a NUL-terminated string.
 */
sb_status sb_session_commit(sb_manager *manager,
                            uint64_t id,
                            const char *stream,
                            int64_t offset);

/**
 * Moves the position of `stream` of session `id` to `offset` and lets the next
 * commit go down to it (rewinding on purpose). Stores nothing. Returns
 * `SB_INVALID_ARGUMENT` for a negative offset, `SB_NOT_FOUND` for an unknown id or
 * stream.
 *
 * # Safety
 *
 * `stream` must be NULL (rejected) or a NUL-terminated string.
 */
sb_status sb_session_seek(sb_manager *manager,
                          uint64_t id,
                          const char *stream,
                          int64_t offset);

/**
 * Stores in `*out` the offset committed in the store for `stream` of `data_source` /
 * `session_key`, whether or not a session is open on it; -1 when it was never
 * committed. May read the disk. Returns `SB_IO` when the store cannot be read.
 *
 * # Safety
 *
 * The strings must be NULL (rejected) or NUL-terminated; `out` must be NULL
 * (rejected) or point to a writable `int64_t`.
 */
sb_status sb_session_committed(const sb_manager *manager,
                               const char *data_source,
                               const char *session_key,
                               const char *stream,
                               int64_t *out);

/**
 * Writes commits buffered by `offsets.sync = interval` to disk now (a no-op
 * otherwise). Blocks on the write. Returns `SB_IO` when the store fails.
 */
sb_status sb_session_flush(sb_manager *manager);

/**
 * Stores how many sessions are open now in `*out` (0 after the manager closed).
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to a writable `size_t`.
 */
sb_status sb_session_open_count(const sb_manager *manager,
                                size_t *out);

/**
 * Stores how many commits were accepted but are not on disk yet (`offsets.sync =
 * interval`; else 0) in `*out`.
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to a writable `size_t`.
 */
sb_status sb_session_buffered_commits(const sb_manager *manager,
                                      size_t *out);

/**
 * Stores the kind of offset store in `*out`: the static string `"memory"`,
 * `"durable"` or `"redis"` (never free it).
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to a writable `const char *`.
 */
sb_status sb_session_store_kind(const sb_manager *manager,
                                const char **out);

/**
 * Stores in `ids[0..*count]` the ids of the open sessions, sorted, only those of
 * `data_source` and/or `session_key` when not NULL. `*count` always receives how
 * many there are; when more than `len`, returns `SB_RESOURCE_EXHAUSTED` and writes
 * no id (ask again with a larger array; `ids` may be NULL with `len` 0 to ask for
 * the count). Details of each come from `sb_session_get`.
 *
 * # Safety
 *
 * `data_source` and `session_key` must be NULL or NUL-terminated strings; `ids` must
 * point to `len` writable `uint64_t` (or be NULL with 0); `count` must be NULL
 * (rejected) or point to a writable `size_t`.
 */
sb_status sb_session_list(const sb_manager *manager,
                          const char *data_source,
                          const char *session_key,
                          uint64_t *ids,
                          size_t len,
                          size_t *count);

/**
 * Stores in `*out` a snapshot of session `id`: its data source, key, streams with
 * their positions, committed offsets and counters, and router counters. Free it with
 * `sb_session_info_free` (once). Returns `SB_NOT_FOUND` for an id that is not open.
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to a writable `sb_session_info *`.
 */
sb_status sb_session_get(const sb_manager *manager,
                         uint64_t id,
                         sb_session_info **out);

/**
 * Frees a snapshot made by `sb_session_get`. NULL is a no-op (`SB_OK`); a pointer
 * that is not a live snapshot (freed already, or never one) returns
 * `SB_INVALID_HANDLE` and frees nothing.
 */
sb_status sb_session_info_free(sb_session_info *info);

/**
 * Stores in `*out` the catalog's registered (data source, session key) pairs. Free it
 * with `sb_catalog_free` (once).
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to a writable `sb_catalog *`.
 */
sb_status sb_session_catalog(const sb_manager *manager,
                             sb_catalog **out);

/**
 * Frees a catalog made by `sb_session_catalog`. NULL is a no-op (`SB_OK`); a pointer
 * that is not a live catalog returns `SB_INVALID_HANDLE` and frees nothing.
 */
sb_status sb_catalog_free(sb_catalog *catalog);

/**
 * Sets the user of the grant being filled (inside an `sb_authenticate_fn`). Returns
 * `SB_INVALID_ARGUMENT` for a NULL grant or user, or a user that is not UTF-8 (the
 * refusal then names it).
 *
 * # Safety
 *
 * `grant` must be the pointer passed to the running authenticate callback; `user`
 * NULL (rejected) or a NUL-terminated string.
 */
sb_status sb_grant_set_user(sb_grant *grant,
                            const char *user);

/**
 * Adds one metadata entry to the grant being filled (inside an
 * `sb_authenticate_fn`); merged over the registration's. Errors as
 * `sb_grant_set_user`.
 *
 * # Safety
 *
 * As `sb_grant_set_user`; `key` and `value` NULL (rejected) or NUL-terminated.
 */
sb_status sb_grant_add_meta(sb_grant *grant,
                            const char *key,
                            const char *value);

/**
 * Installs the registry's authentication hook (both callbacks NULL: removes it).
 * `authenticate` checks the token of a registration (a registration with a token and
 * no hook, or no `authenticate`, fails); `authorize` (NULL: allow all) checks each
 * topic at register and every subscribe. A refused token fails the register with
 * `SB_UNAUTHENTICATED` ("the authenticate hook refused the token: <why>"); a refused
 * topic with `SB_PERMISSION_DENIED` ("the authorize hook refused topic "t": <why>").
 *
 * The callbacks run on the thread making the register or subscribe call, with no
 * registry lock held (they may call the registry, e.g. `sb_registry_get`); several
 * threads may run them at once. Ownership of `userdata` passes to the library:
 * `free_userdata` (if not NULL) runs once, when the hook is replaced or removed, or
 * when the manager is freed (with both callbacks NULL: before this returns, and on
 * failure too).
 *
 * # Safety
 *
 * The callbacks must be safe to call from any thread with `userdata`, which must stay
 * valid until `free_userdata` runs.
 */
sb_status sb_registry_set_authenticator(sb_manager *manager,
                                        sb_authenticate_fn authenticate,
                                        sb_authorize_fn authorize,
                                        void *userdata,
                                        sb_free_fn free_userdata);

/**
 * Registers a connection whose messages go to `send` (and heartbeats to `ping`, NULL:
 * none; its leaving to `closed`, NULL: none), with `reg` (NULL: anonymous, no
 * metadata, no topics), and stores its id in `*id_out`.
 *
 * The callbacks run on one of switchboard's runtime threads (a delivery task), never
 * two at once for one connection, in queue order, `closed` once and last; several
 * connections' callbacks may run at once on different threads. No registry lock is
 * held: they may call `sb_registry_*` (say, unregister), but must not block for long
 * (they hold up the other connections of that thread) nor call `sb_manager_close` /
 * `sb_manager_free`. Ownership of `userdata` passes to the library: `free_userdata`
 * (if not NULL) runs once, after `closed`, when the library lets the connection go
 * (on the thread that lets go, often a runtime thread); on failure before this
 * returns.
 *
 * Returns `SB_INVALID_ARGUMENT` (NULL `send`, an empty user, topic or metadata key),
 * `SB_UNAUTHENTICATED` (the hook refused the token), `SB_FAILED_PRECONDITION` (a
 * token but no hook), `SB_PERMISSION_DENIED` (the hook refused a topic),
 * `SB_RESOURCE_EXHAUSTED` (a `registry.max_*` limit, named with its value),
 * `SB_UNAVAILABLE` (the manager is closed).
 *
 * # Safety
 *
 * `reg` NULL or a valid `sb_registration`; the callbacks safe to call from any thread
 * with `userdata`, valid until `free_userdata` runs; `id_out` NULL (rejected) or a
 * writable `uint64_t`.
 */
sb_status sb_registry_register(sb_manager *manager,
                               const sb_registration *reg,
                               sb_send_fn send,
                               sb_ping_fn ping,
                               sb_closed_fn closed,
                               void *userdata,
                               sb_free_fn free_userdata,
                               uint64_t *id_out);

/**
 * Registers a connection whose messages the program pulls with `sb_registry_next`
 * (from its own writer thread), with `reg` as in `sb_registry_register`, and stores
 * its id in `*id_out`. Free it with `sb_registry_outbox_free` (after it closed, or to
 * stop taking messages); `sb_manager_free` frees the rest. Same errors as
 * `sb_registry_register`.
 *
 * # Safety
 *
 * `reg` NULL or a valid `sb_registration`; `id_out` NULL (rejected) or writable.
 */
sb_status sb_registry_register_outbox(sb_manager *manager,
                                      const sb_registration *reg,
                                      uint64_t *id_out);

/**
 * Takes the next item of outbox connection `conn`, waiting on the calling thread up
 * to `timeout_ms` milliseconds (0: do not wait). `*kind` says what it is (see
 * `sb_item_kind`); a message or close reason is copied into `buf` and its length
 * stored in `*n`. Returns `SB_TIMEOUT` when nothing came in time; `SB_INVALID_ARGUMENT`
 * when the next message is longer than `len` (it stays queued; the message names its
 * length: call again with a larger buffer); `SB_NOT_FOUND` for an id that is not an
 * outbox of this process (or was freed). Several threads may call it for one
 * connection; each item goes to one of them. Must not be called from a callback
 * (a runtime thread).
 *
 * # Safety
 *
 * `buf` must point to `len` writable bytes (or be NULL with 0); `n` and `kind` NULL
 * (rejected) or writable.
 */
sb_status sb_registry_next(uint64_t conn,
                           uint8_t *buf,
                           size_t len,
                           uint64_t timeout_ms,
                           size_t *n,
                           sb_item_kind *kind);

/**
 * Frees outbox connection `conn`: it stops taking messages (later deliveries fail,
 * and after `registry.max_send_failures` it is removed with `send_failed`; call
 * `sb_registry_unregister` first to leave at once). `SB_NOT_FOUND` when it is not a
 * live outbox. A thread waiting in `sb_registry_next` on it finishes its wait.
 */
sb_status sb_registry_outbox_free(uint64_t conn);

/**
 * Removes connection `id` for `reason` (NULL or "": `unregistered`): its queue is
 * discarded, its `closed` callback runs (an outbox yields `SB_ITEM_CLOSED`).
 * `SB_NOT_FOUND` when it is not registered.
 *
 * # Safety
 *
 * `reason` NULL or a NUL-terminated string.
 */
sb_status sb_registry_unregister(sb_manager *manager,
                                 uint64_t id,
                                 const char *reason);

/**
 * Records traffic from connection `id` now: call it on every message from the client
 * (a pong included); it is then `active` and not stale. `SB_NOT_FOUND` when gone.
 */
sb_status sb_registry_touch(sb_manager *manager,
                            uint64_t id);

/**
 * Stores in `*out` whether connection `id` is registered.
 *
 * # Safety
 *
 * `out` NULL (rejected) or a writable `bool`.
 */
sb_status sb_registry_contains(const sb_manager *manager,
                               uint64_t id,
                               bool *out);

/**
 * Stores in `*out` how many connections are registered.
 *
 * # Safety
 *
 * `out` NULL (rejected) or a writable `size_t`.
 */
sb_status sb_registry_len(const sb_manager *manager,
                          size_t *out);

/**
 * Subscribes `id` to `topic`; `*added` (if not NULL) is false when it already was.
 * `SB_RESOURCE_EXHAUSTED` for a limit, `SB_PERMISSION_DENIED` when the authorize hook
 * refuses, `SB_NOT_FOUND`, `SB_INVALID_ARGUMENT` for an empty topic.
 *
 * # Safety
 *
 * `topic` NULL (rejected) or NUL-terminated; `added` NULL or writable.
 */
sb_status sb_registry_subscribe(sb_manager *manager,
                                uint64_t id,
                                const char *topic,
                                bool *added);

/**
 * Unsubscribes `id` from `topic`; `*removed` (if not NULL) is false when it was not
 * subscribed.
 *
 * # Safety
 *
 * As `sb_registry_subscribe`.
 */
sb_status sb_registry_unsubscribe(sb_manager *manager,
                                  uint64_t id,
                                  const char *topic,
                                  bool *removed);

/**
 * Sets metadata `key` of connection `id` to `value` (NULL: removes the key).
 *
 * # Safety
 *
 * `key` NULL (rejected) or NUL-terminated; `value` NULL or NUL-terminated.
 */
sb_status sb_registry_set_metadata(sb_manager *manager,
                                   uint64_t id,
                                   const char *key,
                                   const char *value);

/**
 * Queues one message (`len` bytes at `data`, copied once and shared by every
 * recipient; text when `is_text`, which must then be UTF-8) for every connection
 * `target` matches, minus its except set, and fills `*report` (NULL: not wanted; set
 * its `struct_size`). Never blocks on a client: a full queue meets
 * `registry.queue_full_policy`. Send callbacks run after it returns, on the runtime.
 * `SB_INVALID_ARGUMENT` for a target that names nobody.
 *
 * # Safety
 *
 * `target` a valid `sb_target`; `data` `len` readable bytes (or NULL with 0);
 * `report` NULL or writable as documented.
 */
sb_status sb_registry_broadcast(sb_manager *manager,
                                const sb_target *target,
                                const uint8_t *data,
                                size_t len,
                                bool is_text,
                                sb_broadcast_report *report);

/**
 * Queues one message for connection `id` alone, as `sb_registry_broadcast` does.
 * `SB_NOT_FOUND` when it is not registered.
 *
 * # Safety
 *
 * As `sb_registry_broadcast`.
 */
sb_status sb_registry_send(sb_manager *manager,
                           uint64_t id,
                           const uint8_t *data,
                           size_t len,
                           bool is_text,
                           sb_broadcast_report *report);

/**
 * Removes every connection `target` matches (minus its except set) for `reason`
 * (NULL or "": `disconnected`); their `closed` callbacks get the reason. `*removed`
 * (if not NULL) receives how many.
 *
 * # Safety
 *
 * `target` a valid `sb_target`; `reason` NULL or NUL-terminated; `removed` NULL or
 * writable.
 */
sb_status sb_registry_disconnect(sb_manager *manager,
                                 const sb_target *target,
                                 const char *reason,
                                 uint64_t *removed);

/**
 * Runs the heartbeat and stale pass now (the background one runs every
 * `registry.cleanup_interval`): connections silent past `registry.connection_timeout`
 * are removed (`stale`), those silent past `registry.heartbeat_interval` are asked to
 * ping. `*removed` and `*pinged` (each if not NULL) receive the counts.
 *
 * # Safety
 *
 * `removed` and `pinged` NULL or writable.
 */
sb_status sb_registry_cleanup(sb_manager *manager,
                              uint64_t *removed,
                              uint64_t *pinged);

/**
 * Stores in `*out` a snapshot of connection `id`; free it with `sb_conn_info_free`
 * (once). `SB_NOT_FOUND` when it is not registered.
 *
 * # Safety
 *
 * `out` NULL (rejected) or a writable `sb_conn_info *`.
 */
sb_status sb_registry_get(const sb_manager *manager,
                          uint64_t id,
                          sb_conn_info **out);

/**
 * Frees a snapshot made by `sb_registry_get`. NULL is a no-op; a pointer that is not
 * one (freed already) returns `SB_INVALID_HANDLE` and frees nothing.
 */
sb_status sb_conn_info_free(sb_conn_info *info);

/**
 * Stores in `*out` one page of the connections `filter` matches (NULL: all), in id
 * order; free it with `sb_conn_list_free` (once). Pass `next_cursor` as the next
 * call's `filter->cursor` while `has_next`. `SB_INVALID_ARGUMENT` for an unknown
 * state or a `meta_key` without `meta_value`.
 *
 * # Safety
 *
 * `filter` NULL or a valid `sb_list_filter`; `out` NULL (rejected) or writable.
 */
sb_status sb_registry_list(const sb_manager *manager,
                           const sb_list_filter *filter,
                           sb_conn_list **out);

/**
 * Frees a page made by `sb_registry_list`. NULL is a no-op; a pointer that is not
 * one returns `SB_INVALID_HANDLE`.
 */
sb_status sb_conn_list_free(sb_conn_list *list);

/**
 * Stores in `*out` the registry's statistics; free them with
 * `sb_registry_stats_free` (once).
 *
 * # Safety
 *
 * `out` NULL (rejected) or a writable `sb_registry_stats *`.
 */
sb_status sb_registry_get_stats(const sb_manager *manager,
                                sb_registry_stats **out);

/**
 * Frees statistics made by `sb_registry_get_stats`. NULL is a no-op; a pointer that
 * is not one returns `SB_INVALID_HANDLE`.
 */
sb_status sb_registry_stats_free(sb_registry_stats *stats);

/**
 * Encodes seed 004's JSON message envelope, stamped now:
 * `{"type":..,"topic":..,"data":..,"timestamp":..,"error":..}` into `buf` as a
 * NUL-terminated string. `type` is required; `topic`, `data_json` (JSON text: an
 * object, array, string, number ...) and `error` may be NULL (left out). `*written`
 * (if not NULL) always receives the size the text needs with its NUL; when it does
 * not fit in `len`, returns `SB_RESOURCE_EXHAUSTED` (`buf` may be NULL with `len` 0
 * to ask). `SB_INVALID_ARGUMENT` for an empty type or `data_json` that is not JSON.
 *
 * # Safety
 *
 * Strings NULL or NUL-terminated (`type` NULL is rejected); `buf` `len` writable
 * bytes (or NULL with 0); `written` NULL or writable.
 */
sb_status sb_envelope_encode(const char *type,
                             const char *topic,
                             const char *data_json,
                             const char *error,
                             char *buf,
                             size_t len,
                             size_t *written);

/**
 * Decodes an envelope's fields into the caller's buffers: `type_buf` receives its
 * type, `topic_buf` its topic ("" when none), `data_buf` its data as JSON text (""
 * when none), each NUL-terminated (a buffer may be NULL with length 0 when not
 * wanted). `SB_INVALID_ARGUMENT` names what is wrong with `text`;
 * `SB_RESOURCE_EXHAUSTED` when a wanted field does not fit.
 *
 * # Safety
 *
 * `text` NULL (rejected) or NUL-terminated; each buffer its length in writable bytes
 * (or NULL with 0).
 */
sb_status sb_envelope_decode(const char *text,
                             char *type_buf,
                             size_t type_len,
                             char *topic_buf,
                             size_t topic_len,
                             char *data_buf,
                             size_t data_len);

/**
 * Creates resource `id` of type `kind` (`"tcp"`, `"unix"`, or a type registered with
 * `sb_resource_register_type`) with `n` props `keys[i] = values[i]`: `endpoint`
 * (`tcp://host:port` or `host:port`; `unix:///path` or `/path`; any non-empty string
 * for a registered type) and any pool keys, as for `sb_config_set`
 * (`connect_timeout`, `backoff.*`, `health.interval`, `probe.send`, `tcp.*`,
 * `resources.on_connect`, ...), over the manager's. Its one connection is dialled at
 * once in the background and redialled with backoff while it fails; a
 * configuration error (say, a unix path longer than the OS allows) stops it as
 * `SB_RESOURCE_DISCONNECTED` with the reason in `sb_resource_info.last_error`. Does
 * not wait: see `sb_resource_wait_ready`.
 *
 * `resources.on_connect` (C escapes, as `probe.send`) is sent on every new
 * connection before it counts as connected: the session state a server forgets on
 * a reconnect (`"HELLO 3\\r\\nSUBSCRIBE news\\r\\n"` for Redis).
 *
 * With the manager's `resources.path` set, the resource is stored on disk by the
 * time this returns, and a manager opened on the same file recreates it.
 *
 * Returns `SB_INVALID_ARGUMENT` for a bad prop (the message names its key), an
 * unknown type, an empty id or an id in use; `SB_UNAVAILABLE` once the manager is
 * closed.
 *
 * # Safety
 *
 * `id` and `kind` must be NUL-terminated strings; `keys` and `values` must each be
 * NULL with `n` 0, or point to `n` NUL-terminated strings.
 */
sb_status sb_resource_create(sb_manager *manager,
                             const char *id,
                             const char *kind,
                             const char *const *keys,
                             const char *const *values,
                             size_t n);

/**
 * Updates resource `id` to the `n` props given (all of them, as for
 * `sb_resource_create`; the type stays) without dropping its consumers: blocks the
 * calling thread while a connection with the new props is opened (within their
 * `connect_timeout`); if it cannot be, nothing changes and the error says so.
 * Then every consumer is moved to it (an `SB_EVENT_RESOURCE_REBOUND` event):
 * `sb_resource_fd` gives the new descriptor from now on, and the old connection
 * closes once nothing uses it.
 *
 * Returns `SB_NOT_FOUND` for an unknown id, `SB_FAILED_PRECONDITION` for an
 * anonymous resource (its props are its identity), `SB_INVALID_ARGUMENT` for a bad
 * prop, or the connect's error (`SB_UNAVAILABLE`, `SB_TIMEOUT`).
 *
 * # Safety
 *
 * As for `sb_resource_create`.
 */
sb_status sb_resource_update(sb_manager *manager,
                             const char *id,
                             const char *const *keys,
                             const char *const *values,
                             size_t n);

/**
 * Deletes resource `id` and closes its connection. While consumers are attached it
 * returns `SB_FAILED_PRECONDITION`, the message naming them, unless `force`: then
 * each consumer gets an `SB_EVENT_RESOURCE_DETACHED` event and its `sb_resource`
 * then fails (`SB_FAILED_PRECONDITION` / `SB_UNAVAILABLE`; it still needs its
 * `sb_resource_detach`). `SB_NOT_FOUND` for an unknown id.
 *
 * # Safety
 *
 * `id` must be a NUL-terminated string.
 */
sb_status sb_resource_delete(sb_manager *manager,
                             const char *id,
                             bool force);

/**
 * Registers a resource type `name` of the program's own objects (a bus client, an
 * RPC stub), made, checked and closed by `connector` exactly as a custom pool's
 * (`sb_pool_new_custom`, whose documentation of threads and calls allowed inside the
 * callbacks applies): `connect` receives the resource's endpoint prop; `check` is
 * the resource's health check, run every `health.interval` (a failure replaces the
 * object, keeping the id); `close` runs once per object, when the last holder lets
 * go of it (the resource after a reconnect, an update, a delete, or the last detach
 * of an anonymous one). Stored resources of this type (`resources.path`) are
 * recreated now.
 *
 * Ownership of `connector->userdata` passes to the library with this call, even on
 * failure: `free_userdata` runs exactly once, after the last callback, once the
 * manager is freed and every `sb_resource` of the type detached.
 *
 * Returns `SB_INVALID_ARGUMENT` for a NULL `connect`, an empty name, `tcp`, `unix`
 * or a name already registered.
 *
 * # Safety
 *
 * `name` must be a NUL-terminated string; `connector` NULL (rejected) or a valid
 * `sb_connector` (see `sb_pool_new_custom`).
 */
sb_status sb_resource_register_type(sb_manager *manager,
                                    const char *name,
                                    const sb_connector *connector);

/**
 * Attaches consumer `consumer` (a name, shown in `sb_resource_info.consumers` and in
 * the refusal of `sb_resource_delete`) to resource `id` and stores its handle in
 * `*out`: it shares the resource's one connection. Does not wait for it to be
 * connected (`sb_resource_wait_ready`). `SB_NOT_FOUND` for an unknown id.
 *
 * # Safety
 *
 * `id` and `consumer` must be NUL-terminated strings; `out` NULL (rejected) or a
 * writable `sb_resource *`.
 */
sb_status sb_resource_attach(sb_manager *manager,
                             const char *id,
                             const char *consumer,
                             sb_resource **out);

/**
 * Attaches consumer `consumer` to the unnamed resource of type `kind` with the `n`
 * props given (as for `sb_resource_create`) and stores its handle in `*out`: every
 * caller with equal props shares one resource (made by the first, with the id
 * `anonymous-<n>`, see `sb_resource_id`), closed when its last consumer detaches.
 *
 * # Safety
 *
 * `kind` and `consumer` must be NUL-terminated strings; `keys` and `values` each
 * NULL with `n` 0 or `n` NUL-terminated strings; `out` NULL (rejected) or writable.
 */
sb_status sb_resource_attach_anonymous(sb_manager *manager,
                                       const char *kind,
                                       const char *const *keys,
                                       const char *const *values,
                                       size_t n,
                                       const char *consumer,
                                       sb_resource **out);

/**
 * Detaches the consumer and ends its handle (the one free of an `sb_resource`; every
 * handle needs it, also after a forced delete or a closed manager). The last detach
 * of an anonymous resource closes its connection. NULL is a no-op (`SB_OK`); a
 * handle already detached returns `SB_INVALID_HANDLE`. A call still running on the
 * handle in another thread (say, `sb_resource_recv`) finishes first.
 */
sb_status sb_resource_detach(sb_resource *resource);

/**
 * Copies the resource's id (`"anonymous-<n>"` for an anonymous one) into `buf` as a
 * NUL-terminated string, as `sb_lease_endpoint` does: `*written` (if not NULL) gets
 * the size needed with its NUL; `SB_RESOURCE_EXHAUSTED` when `len` is too small.
 *
 * # Safety
 *
 * `buf` must point to `len` writable bytes (or `len` be 0); `written` NULL or a
 * writable `size_t`.
 */
sb_status sb_resource_id(const sb_resource *resource,
                         char *buf,
                         size_t len,
                         size_t *written);

/**
 * Stores the resource's state now in `*out`. Works after a forced delete and on a
 * closed manager (`SB_RESOURCE_DISCONNECTED`).
 *
 * # Safety
 *
 * `out` NULL (rejected) or a writable `sb_resource_state`.
 */
sb_status sb_resource_status(const sb_resource *resource,
                             sb_resource_state *out);

/**
 * Blocks the calling thread until the resource is connected, across reconnects,
 * for at most `timeout_ms` milliseconds: `SB_OK`, `SB_TIMEOUT`, or `SB_UNAVAILABLE`
 * if it stopped (a configuration error, deleted, the manager closed). Then take the
 * fd or object. Must not be called from a switchboard callback
 * (`SB_FAILED_PRECONDITION` on its threads).
 */
sb_status sb_resource_wait_ready(const sb_resource *resource,
                                 uint64_t timeout_ms);

/**
 * Tells the resource this consumer saw an error (a failed send, an unexpected EOF):
 * it checks the connection now (and probes it, when `probe.send` is set) and
 * redials if it is lost, instead of waiting for the next health check. Does not
 * wait.
 */
sb_status sb_resource_report_failure(const sb_resource *resource);

/**
 * Stores the file descriptor of the resource's current connection (`tcp` and
 * `unix` resources) in `*out`. It stays owned by the resource, in blocking mode:
 * do not close it. The descriptor CHANGES: after a reconnect (`SB_EVENT_RESOURCE_STATE`
 * to "connected") or an `sb_resource_update` (`SB_EVENT_RESOURCE_REBOUND`) the
 * resource holds a new connection, and the old descriptor is closed once nothing
 * uses it, after which its number may be reused by any open(). So take it again for
 * each use, and prefer `sb_resource_send_all` / `sb_resource_recv`, which always use
 * the current connection and count the bytes; the fd is for `poll()`.
 *
 * Returns `SB_UNAVAILABLE` while connecting or recovering (naming the last error),
 * `SB_FAILED_PRECONDITION` for a resource of a registered type (use
 * `sb_resource_object`) or a detached consumer (forced delete).
 *
 * # Safety
 *
 * `out` NULL (rejected) or a writable `int`.
 */
sb_status sb_resource_fd(const sb_resource *resource,
                         int *out);

/**
 * Stores the current object of a resource of a registered type (made by its
 * `sb_connector` connect callback) in `*out`. It stays owned by the resource, and it
 * changes like a fd: after a failed check, an update or a delete the resource lets
 * go of it and its close callback runs once nothing holds it, so take it again for
 * each use and keep the program's own reference (in the object) if a use may
 * outlast a reconnect.
 *
 * Returns `SB_UNAVAILABLE` while connecting or recovering, `SB_FAILED_PRECONDITION`
 * for a `tcp` / `unix` resource (use `sb_resource_fd`).
 *
 * # Safety
 *
 * `out` NULL (rejected) or a writable `void *`.
 */
sb_status sb_resource_object(const sb_resource *resource,
                             void **out);

/**
 * Writes all `len` bytes of `buf` to the resource's current connection, blocking
 * (counted in `switchboard_resource_bytes_total{direction="out"}`). Single writer:
 * the program makes sure one consumer writes at a time. On `SB_IO` call
 * `sb_resource_report_failure`, then `sb_resource_wait_ready`, and send again.
 *
 * # Safety
 *
 * `buf` must point to `len` readable bytes (or `len` be 0).
 */
sb_status sb_resource_send_all(const sb_resource *resource,
                               const uint8_t *buf,
                               size_t len);

/**
 * Reads up to `len` bytes from the resource's current connection into `buf`,
 * blocking until at least one arrives (`poll()` its fd first to bound the wait), and
 * stores the count in `*n` (0: the peer closed it; report the failure and wait for
 * it to be ready again). Counted in `switchboard_resource_bytes_total{direction="in"}`.
 * Single reader: one consumer reads at a time.
 *
 * # Safety
 *
 * `buf` must point to `len` writable bytes (or `len` be 0); `n` NULL (rejected) or a
 * writable `size_t`.
 */
sb_status sb_resource_recv(const sb_resource *resource,
                           uint8_t *buf,
                           size_t len,
                           size_t *n);

/**
 * The name of a resource state (`"connecting"`, `"connected"`, `"recovering"`,
 * `"disconnected"`: the `old_state` / `new_state` of `SB_EVENT_RESOURCE_STATE`), or
 * `"unknown"`. Static: never free it.
 */
const char *sb_resource_state_str(int32_t state);

/**
 * Stores in `*out` a snapshot of resource `id` (named, or an anonymous one's
 * `anonymous-<n>`); free it with `sb_resource_info_free` (once). `SB_NOT_FOUND`
 * for an unknown id, `SB_UNAVAILABLE` once the manager is closed.
 *
 * # Safety
 *
 * `id` must be a NUL-terminated string; `out` NULL (rejected) or a writable
 * `sb_resource_info *`.
 */
sb_status sb_resource_get(const sb_manager *manager,
                          const char *id,
                          sb_resource_info **out);

/**
 * Frees a snapshot made by `sb_resource_get`. NULL is a no-op; a pointer that is not
 * one (freed already) returns `SB_INVALID_HANDLE` and frees nothing.
 */
sb_status sb_resource_info_free(sb_resource_info *info);

/**
 * Stores in `*out` every resource of the manager, named and anonymous, sorted by
 * id; free it with `sb_resource_info_list_free` (once).
 *
 * # Safety
 *
 * `out` NULL (rejected) or a writable `sb_resource_info_list *`.
 */
sb_status sb_resource_list(const sb_manager *manager,
                           sb_resource_info_list **out);

/**
 * Frees a list made by `sb_resource_list`. NULL is a no-op; a pointer that is not
 * one returns `SB_INVALID_HANDLE`.
 */
sb_status sb_resource_info_list_free(sb_resource_info_list *list);

/**
 * Copies the address the manager's server is bound to, `host:port` (for
 * `server.listen = 127.0.0.1:0`, the port picked: `"127.0.0.1:41234"`; an IPv6 host
 * in brackets), into `buf` with a NUL. `SB_NOT_FOUND` when the server is off
 * (`server.listen` not set). `*written` (if not NULL) receives the size it needs with
 * its NUL; when that exceeds `len`, returns `SB_RESOURCE_EXHAUSTED` and copies nothing
 * (`buf[0]` is set to NUL when `len > 0`). `buf` may be NULL when `len` is 0, to ask
 * for the size; 64 bytes always suffice.
 *
 * # Safety
 *
 * `buf` must point to `len` writable bytes (or `len` be 0); `written` must be NULL or
 * point to a writable `size_t`.
 */
sb_status sb_manager_server_address(const sb_manager *manager,
                                    char *buf,
                                    size_t len,
                                    size_t *written);

/**
 * Copies the address of the gRPC sessions service, as `sb_manager_server_address`
 * does: `server.grpc_listen`'s bound address, or the server's own when gRPC shares
 * its port (`server.grpc_listen` not set). `SB_NOT_FOUND` when the server is off.
 *
 * # Safety
 *
 * As `sb_manager_server_address`.
 */
sb_status sb_manager_grpc_address(const sb_manager *manager,
                                  char *buf,
                                  size_t len,
                                  size_t *written);

/**
 * Takes the next message hub clients sent to the program, waiting on the calling
 * thread up to `timeout_ms` milliseconds for one (0: do not wait), and stores it in
 * `*out`: a snapshot to free with `sb_hub_message_free` (once).
 *
 * Messages are every envelope a client of `GET /ws` sends whose type the hub does not
 * answer itself (`data`, `chat`, ...; not `subscribe`, `unsubscribe`, `ping`, `pong`,
 * `heartbeat`), oldest first. They wait in a queue of `server.hub_queue` messages
 * (default 10000; beyond it the oldest is dropped, see `sb_hub_dropped`). Several
 * threads may call this on one manager: each message goes to one of them. With no
 * server (`server.listen` not set) nothing ever comes. Do not call it with a long
 * timeout from a callback (it would hold up one of switchboard's threads).
 *
 * Returns `SB_OK` with `*out` set, `SB_TIMEOUT` when nothing came within `timeout_ms`
 * (`*out` untouched), `SB_UNAVAILABLE` once the manager is closed (a wait in progress
 * ends with it), `SB_INVALID_ARGUMENT` when `out` is NULL.
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to a writable `sb_hub_message *`.
 */
sb_status sb_hub_recv(sb_manager *manager,
                      uint64_t timeout_ms,
                      sb_hub_message **out);

/**
 * Frees a message made by `sb_hub_recv`. NULL is a no-op; a pointer that is not one
 * (freed already) returns `SB_INVALID_HANDLE` and frees nothing. A message may be
 * freed after its manager (it holds nothing of the manager's).
 */
sb_status sb_hub_message_free(sb_hub_message *message);

/**
 * Stores in `*out` how many hub messages were dropped because the queue
 * (`server.hub_queue`) was full (nobody called `sb_hub_recv`). Only grows.
 *
 * # Safety
 *
 * `out` must be NULL (rejected) or point to a writable `uint64_t`.
 */
sb_status sb_hub_dropped(const sb_manager *manager,
                         uint64_t *out);

/**
 * Copies the cluster's name (`cluster.name`) into `buf` with a NUL. `*written` (if
 * not NULL) receives the size it needs with its NUL; when that exceeds `len`,
 * returns `SB_RESOURCE_EXHAUSTED` and copies nothing (`buf[0]` is set to NUL when
 * `len > 0`). `buf` may be NULL when `len` is 0, to ask for the size. `SB_NOT_FOUND`
 * when the manager is not in a cluster.
 *
 * # Safety
 *
 * `buf` `len` writable bytes (or `len` 0); `written` NULL or writable.
 */
sb_status sb_cluster_name(const sb_manager *manager,
                          char *buf,
                          size_t len,
                          size_t *written);

/**
 * Copies this instance's node id (`cluster.node_id`) into `buf`, as
 * `sb_cluster_name` does.
 *
 * # Safety
 *
 * As `sb_cluster_name`.
 */
sb_status sb_cluster_node_id(const sb_manager *manager,
                             char *buf,
                             size_t len,
                             size_t *written);

/**
 * Stores in `*out` this instance's node number, taken when it joined: bits 32 and up
 * of every connection id it registers (`id >> 32`), so ids are unique across the
 * cluster and stay below 2^53. `SB_NOT_FOUND` when the manager is not in a cluster.
 *
 * # Safety
 *
 * `out` NULL (rejected) or writable.
 */
sb_status sb_cluster_node_number(const sb_manager *manager,
                                 uint64_t *out);

/**
 * Stores in `*out` whether this instance takes part in its cluster now: false while
 * Redis cannot be reached (it then serves locally: breakers are local and broadcasts
 * reach this instance only; `SB_EVENT_CLUSTER_LOST`) until it rejoins
 * (`SB_EVENT_CLUSTER_JOINED`). `SB_NOT_FOUND` when the manager is not in a cluster.
 *
 * # Safety
 *
 * `out` NULL (rejected) or writable.
 */
sb_status sb_cluster_is_joined(const sb_manager *manager,
                               bool *out);

/**
 * Stores in `*out` the live members as of the last heartbeat (every
 * `cluster.heartbeat_interval`), this instance included when joined, by node id; a
 * member silent for three heartbeats is gone. Does not wait. Free it with
 * `sb_cluster_member_list_free` (once). `SB_NOT_FOUND` when the manager is not in a
 * cluster.
 *
 * # Safety
 *
 * `out` NULL (rejected) or a writable `sb_cluster_member_list *`.
 */
sb_status sb_cluster_members(const sb_manager *manager,
                             sb_cluster_member_list **out);

/**
 * Frees a member list made by `sb_cluster_members`. NULL is a no-op; a pointer that
 * is not one (freed already) returns `SB_INVALID_HANDLE` and frees nothing.
 */
sb_status sb_cluster_member_list_free(sb_cluster_member_list *list);

/**
 * Broadcasts one message (`len` bytes at `data`, text when `is_text`, which must
 * then be UTF-8) to what `target` matches on every member, this one included, and
 * waits for the other members' acknowledgements up to `cluster.request_timeout`;
 * `*out` says what each reached. Free it with `sb_cluster_broadcast_report_free`
 * (once). A plain `sb_registry_broadcast` reaches the other members too, without
 * waiting. Ids in `target->ids` and `target->except` may be any member's.
 * `SB_INVALID_ARGUMENT` for a target that names nobody; `SB_NOT_FOUND` when the
 * manager is not in a cluster.
 *
 * # Safety
 *
 * `target` a valid `sb_target`; `data` `len` readable bytes (or NULL with 0); `out`
 * NULL (rejected) or writable.
 */
sb_status sb_cluster_broadcast(sb_manager *manager,
                               const sb_target *target,
                               const uint8_t *data,
                               size_t len,
                               bool is_text,
                               sb_cluster_broadcast_report **out);

/**
 * Frees a report made by `sb_cluster_broadcast`. NULL is a no-op; a pointer that is
 * not one returns `SB_INVALID_HANDLE`.
 */
sb_status sb_cluster_broadcast_report_free(sb_cluster_broadcast_report *report);

/**
 * Stores in `*out` one page of the connections `filter` matches (NULL: all) on every
 * member that answered, in id order, as `sb_registry_list` does for this instance:
 * pass `next_cursor` as the next call's `filter->cursor` while `has_next`. Free it
 * with `sb_cluster_conn_list_free` (once). `SB_INVALID_ARGUMENT` as for
 * `sb_registry_list`; `SB_NOT_FOUND` when the manager is not in a cluster.
 *
 * # Safety
 *
 * `filter` NULL or a valid `sb_list_filter`; `out` NULL (rejected) or writable.
 */
sb_status sb_cluster_list(sb_manager *manager,
                          const sb_list_filter *filter,
                          sb_cluster_conn_list **out);

/**
 * Frees a page made by `sb_cluster_list`. NULL is a no-op; a pointer that is not one
 * returns `SB_INVALID_HANDLE`.
 */
sb_status sb_cluster_conn_list_free(sb_cluster_conn_list *list);

/**
 * Removes what `target` matches (minus its except set) on every member, for `reason`
 * (NULL or "": `disconnected`), as `sb_registry_disconnect` does on each, and stores
 * in `*out` how many per member. Free it with `sb_cluster_count_free` (once).
 * `SB_NOT_FOUND` when the manager is not in a cluster.
 *
 * # Safety
 *
 * `target` a valid `sb_target`; `reason` NULL or NUL-terminated; `out` NULL
 * (rejected) or writable.
 */
sb_status sb_cluster_disconnect(sb_manager *manager,
                                const sb_target *target,
                                const char *reason,
                                sb_cluster_count **out);

/**
 * Frees a count made by `sb_cluster_disconnect`. NULL is a no-op; a pointer that is
 * not one returns `SB_INVALID_HANDLE`.
 */
sb_status sb_cluster_count_free(sb_cluster_count *count);

/**
 * Stores in `*out` the registry statistics of every member that answered, and their
 * sum. Free them with `sb_cluster_stats_free` (once). `SB_NOT_FOUND` when the
 * manager is not in a cluster.
 *
 * # Safety
 *
 * `out` NULL (rejected) or a writable `sb_cluster_stats *`.
 */
sb_status sb_cluster_get_stats(sb_manager *manager,
                               sb_cluster_stats **out);

/**
 * Frees statistics made by `sb_cluster_get_stats`. NULL is a no-op; a pointer that
 * is not one returns `SB_INVALID_HANDLE`.
 */
sb_status sb_cluster_stats_free(sb_cluster_stats *stats);

/**
 * Stores in `*out` named resource `id`'s status on every member that answered
 * (`"absent"` where it is not created). Free it with `sb_cluster_resource_free`
 * (once). `SB_NOT_FOUND` when the manager is not in a cluster.
 *
 * # Safety
 *
 * `id` NUL-terminated; `out` NULL (rejected) or writable.
 */
sb_status sb_cluster_resource_status(sb_manager *manager,
                                     const char *id,
                                     sb_cluster_resource **out);

/**
 * Frees a status made by `sb_cluster_resource_status`. NULL is a no-op; a pointer
 * that is not one returns `SB_INVALID_HANDLE`.
 */
sb_status sb_cluster_resource_free(sb_cluster_resource *resource);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* SWITCHBOARD_H */
