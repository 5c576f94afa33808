//! The table of every configuration key (librdkafka's property table): name, form,
//! default and why, in one place for every language.

use super::{KeySpec, Kind};

const DAY_MS: u64 = 86_400_000;

/// Every configuration key switchboard knows, in every language.
pub const KEYS: &[KeySpec] = &[
    KeySpec {
        key: "runtime.worker_threads",
        kind: Kind::Int { min: 1, max: 256 },
        default: "2",
        doc: "Worker threads of the manager's own tokio runtime. Background work only; blocking callers wait on their own thread, so 2 is enough for most programs.",
    },
    KeySpec {
        key: "runtime.clock",
        kind: Kind::Enum(&["system", "manual"]),
        default: "system",
        doc: "Where the manager's state machines read time: system (the monotonic clock) or manual (time moves only when the program calls advance_clock; for tests that move time instead of sleeping, in every language).",
    },
    KeySpec {
        key: "pool.max_size",
        kind: Kind::Int {
            min: 1,
            max: 65_535,
        },
        default: "10",
        doc: "Most connections the pool keeps open at once (HikariCP's maximumPoolSize default).",
    },
    KeySpec {
        key: "pool.acquire_timeout",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "30s",
        doc: "How long acquire() waits for a connection before failing with Timeout (HikariCP's connectionTimeout).",
    },
    KeySpec {
        key: "pool.connect_timeout",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "10s",
        doc: "Deadline for opening one connection; also bounded by acquire_timeout.",
    },
    KeySpec {
        key: "pool.max_waiters",
        kind: Kind::Int {
            min: 0,
            max: 10_000_000,
        },
        default: "65536",
        doc: "Most callers that may wait for a connection at once; beyond it acquire fails at once with ResourceExhausted (back pressure instead of unbounded memory).",
    },
    KeySpec {
        key: "pool.min_idle",
        kind: Kind::Int {
            min: 0,
            max: 65_535,
        },
        default: "0",
        doc: "Idle connections kept open (warm) by a background task, capped at max_size. 0 opens connections only on demand, like deadpool and bb8.",
    },
    KeySpec {
        key: "pool.max_overflow",
        kind: Kind::Int {
            min: 0,
            max: 65_535,
        },
        default: "0",
        doc: "Extra connections beyond max_size opened under load and closed on return (SQLAlchemy's QueuePool max_overflow). 0 makes max_size a hard cap.",
    },
    KeySpec {
        key: "pool.idle_timeout",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "10m",
        doc: "An idle connection beyond min_idle is closed after this long (HikariCP's idleTimeout). 0 keeps idle connections forever.",
    },
    KeySpec {
        key: "pool.max_lifetime",
        kind: Kind::Duration { max_ms: 7 * DAY_MS },
        default: "30m",
        doc: "A connection is retired after this long, shortened by up to 2.5% at random per connection so they don't all expire together (HikariCP's maxLifetime). 0 means no limit.",
    },
    KeySpec {
        key: "pool.validation_timeout",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "5s",
        doc: "Deadline of one probe (HikariCP's validationTimeout).",
    },
    KeySpec {
        key: "pool.validate_after",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "500ms",
        doc: "A connection idle longer than this is probed on checkout (when a probe is configured); fresher ones get only the cheap liveness check (HikariCP's 500 ms alive-bypass window).",
    },
    KeySpec {
        key: "pool.liveness_bypass",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "0",
        doc: "A connection returned less than this long ago is handed out without the FIN/RST check (one recv(MSG_PEEK) syscall, about 0.4 us), as HikariCP skips its alive check within aliveBypassWindowMs. 0 (the default) checks every checkout: a socket the server closed is never handed out. Set a few ms for hot pools whose servers do not close idle connections.",
    },
    KeySpec {
        key: "pool.scale_ahead",
        kind: Kind::Float { min: 0.0, max: 1.0 },
        default: "0",
        doc: "When leased / max_size reaches this fraction, the pool opens its next connection before a caller has to wait (seed 001's preemptive scaling), still at most max_connecting at a time. 0 (the default) opens connections only on demand.",
    },
    KeySpec {
        key: "pool.max_connecting",
        kind: Kind::Int { min: 1, max: 1024 },
        default: "2",
        doc: "Connects in flight at once per pool. Keeps a demand spike from opening a connection per caller: returned connections serve waiters while a few new ones open.",
    },
    KeySpec {
        key: "pool.queue_mode",
        kind: Kind::Enum(&["fifo", "lifo"]),
        default: "fifo",
        doc: "Which idle connection is handed out next: fifo (oldest first, spreads use; deadpool's, bb8's and SQLAlchemy's default) or lifo (most recent first: hot connections stay hot and the rest can reach idle_timeout). Both are lock-free.",
    },
    KeySpec {
        key: "pool.leak_detection_threshold",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "0",
        doc: "A lease held longer than this emits a leak_suspected event naming the pool and the lease's age (HikariCP's leakDetectionThreshold). 0 turns it off; on, each checkout also records the lease in a small per-pool table.",
    },
    KeySpec {
        key: "probe.send",
        kind: Kind::Text,
        default: "",
        doc: "Bytes a probe sends on a built-in socket, with C escapes (\\r, \\n, \\t, \\\\, \\xNN), e.g. \"PING\\r\\n\". Empty: no probe.",
    },
    KeySpec {
        key: "probe.expect",
        kind: Kind::Text,
        default: "",
        doc: "The prefix the probe's answer must start with, same escapes, e.g. \"+PONG\".",
    },
    KeySpec {
        key: "breaker.mode",
        kind: Kind::Enum(&["normal", "disabled", "metrics_only", "forced_open"]),
        default: "normal",
        doc: "How each endpoint's circuit breaker starts: normal (trips and recovers), disabled (never trips, records nothing), metrics_only (records and reports, never blocks), forced_open (blocks until reset). Operators change it live with the breaker operations.",
    },
    KeySpec {
        key: "breaker.failure_threshold",
        kind: Kind::Int {
            min: 0,
            max: 1_000_000,
        },
        default: "5",
        doc: "Consecutive failures (connects, probes, health checks, reported calls) that open the breaker; 0 turns this trigger off. Five in a row is a dead endpoint, not bad luck.",
    },
    KeySpec {
        key: "breaker.failure_rate_threshold",
        kind: Kind::Float {
            min: 0.0,
            max: 100.0,
        },
        default: "50",
        doc: "Failure rate in percent over the sliding window that opens the breaker (once breaker.minimum_calls were seen); 0 turns it off. resilience4j's default.",
    },
    KeySpec {
        key: "breaker.slow_call_rate_threshold",
        kind: Kind::Float {
            min: 0.0,
            max: 100.0,
        },
        default: "100",
        doc: "Percent of calls slower than breaker.slow_call_duration over the window that opens the breaker; 0 turns it off. 100 (resilience4j's default) trips only when every call is slow.",
    },
    KeySpec {
        key: "breaker.slow_call_duration",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "60s",
        doc: "A call (connect, probe, health check, reported call) at least this long counts as slow. resilience4j's default.",
    },
    KeySpec {
        key: "breaker.window_type",
        kind: Kind::Enum(&["count", "time"]),
        default: "count",
        doc: "Sliding window for the rates: the last breaker.window_size calls (count) or the calls of the last breaker.window_size seconds (time).",
    },
    KeySpec {
        key: "breaker.window_size",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
        },
        default: "100",
        doc: "Calls (count window) or seconds (time window) the rates are computed over. resilience4j's default.",
    },
    KeySpec {
        key: "breaker.minimum_calls",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
        },
        default: "10",
        doc: "Calls the window must hold before a rate can open the breaker, so two failures out of three don't. Lower than resilience4j's 100 because a pool sees few calls per endpoint (connects and checks).",
    },
    KeySpec {
        key: "breaker.open_wait",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "5s",
        doc: "How long the breaker stays open the first time before it lets probes through (HALF_OPEN). Each reopening without a close in between multiplies it by breaker.open_wait_multiplier, with 20% jitter, up to breaker.max_open_wait.",
    },
    KeySpec {
        key: "breaker.open_wait_multiplier",
        kind: Kind::Float {
            min: 1.0,
            max: 10.0,
        },
        default: "2",
        doc: "Growth of the open wait for each reopening in a row.",
    },
    KeySpec {
        key: "breaker.max_open_wait",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "60s",
        doc: "Cap of the open wait, so a recovered endpoint is noticed within a minute.",
    },
    KeySpec {
        key: "breaker.half_open_probes",
        kind: Kind::Int {
            min: 1,
            max: 10_000,
        },
        default: "3",
        doc: "Probe calls HALF_OPEN admits; all must succeed to close the breaker, one failure reopens it. Others are refused meanwhile.",
    },
    KeySpec {
        key: "breaker.probe_timeout",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "10s",
        doc: "A HALF_OPEN probe with no result within this counts as failed and reopens the breaker, so HALF_OPEN can never get stuck (resilience4j #903, Polly #2381).",
    },
    KeySpec {
        key: "backoff.strategy",
        kind: Kind::Enum(&["grpc", "full", "equal", "decorrelated"]),
        default: "grpc",
        doc: "Reconnect delay after a failed connect: grpc (exponential, +/- backoff.jitter), full (uniform in 0..delay), equal (delay/2 + uniform in 0..delay/2) or decorrelated (uniform in initial..3x the last delay), all capped at backoff.max.",
    },
    KeySpec {
        key: "backoff.initial",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "1s",
        doc: "Delay before the first reconnect to an endpoint that failed. gRPC's connection backoff.",
    },
    KeySpec {
        key: "backoff.multiplier",
        kind: Kind::Float {
            min: 1.0,
            max: 100.0,
        },
        default: "1.6",
        doc: "Growth of the delay per failed attempt. gRPC's connection backoff.",
    },
    KeySpec {
        key: "backoff.jitter",
        kind: Kind::Float { min: 0.0, max: 1.0 },
        default: "0.2",
        doc: "Randomisation of each grpc delay, +/- this fraction, so clients that failed together don't return together. gRPC's connection backoff.",
    },
    KeySpec {
        key: "backoff.max",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "120s",
        doc: "Longest delay between reconnect attempts. gRPC's connection backoff.",
    },
    KeySpec {
        key: "backoff.min_connect_timeout",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "20s",
        doc: "gRPC's floor for a reconnect attempt's deadline: an attempt gets max(this, the current delay), but never more than pool.connect_timeout, which stays the hard limit (raise it to let the floor apply).",
    },
    KeySpec {
        key: "backoff.max_concurrent_reconnects",
        kind: Kind::Int {
            min: 1,
            max: 65_535,
        },
        default: "32",
        doc: "Process-wide cap on reconnects (connects to endpoints that failed before) in flight at once, across all managers and pools, so an outage ending does not bring a stampede. The last manager created sets it.",
    },
    KeySpec {
        key: "retry.max_attempts",
        kind: Kind::Int {
            min: 1,
            max: 10_000,
        },
        default: "1",
        doc: "Tries an acquire makes when connecting fails or every endpoint is backing off or open: 1 fails fast with Unavailable (gRPC's default, not wait-for-ready); more waits out the backoff between tries, within pool.acquire_timeout.",
    },
    KeySpec {
        key: "retry.max_elapsed",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "0",
        doc: "Longest time an acquire spends retrying; 0: only pool.acquire_timeout bounds it.",
    },
    KeySpec {
        key: "health.interval",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "10s",
        doc: "How often each endpoint is checked (with 10% jitter): an idle connection is probed, or an endpoint that failed gets a reconnect attempt when its backoff and breaker allow (auto-recovery); 0 turns checks off.",
    },
    KeySpec {
        key: "health.timeout",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "5s",
        doc: "Deadline of one health check; past it the check counts as failed.",
    },
    KeySpec {
        key: "tcp.keepalive",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "60s",
        doc: "TCP keepalive idle time for built-in sockets; 0 turns keepalive off. Finds dead peers on idle pooled connections.",
    },
    KeySpec {
        key: "tcp.nodelay",
        kind: Kind::Bool,
        default: "true",
        doc: "Disable Nagle's algorithm on built-in TCP sockets (request/response traffic).",
    },
    KeySpec {
        key: "sessions.max_total",
        kind: Kind::Int {
            min: 0,
            max: 100_000_000,
        },
        default: "1000000",
        doc: "Most sessions open at once in the manager; beyond it open fails with ResourceExhausted. 0 means no limit. A session with a few streams takes well under 1 KiB, so the default bounds them to about 1 GiB.",
    },
    KeySpec {
        key: "sessions.max_per_key",
        kind: Kind::Int {
            min: 0,
            max: 100_000_000,
        },
        default: "0",
        doc: "Most sessions open at once on one (data source, session key); beyond it open fails with ResourceExhausted. 0 means no limit; 1 gives a session exclusive use of its key's committed offsets.",
    },
    KeySpec {
        key: "offsets.path",
        kind: Kind::Text,
        default: "",
        doc: "File of the durable offset store (an embedded crash-safe database, created if missing; one process at a time). Empty: committed offsets are kept in memory for the life of the process.",
    },
    KeySpec {
        key: "offsets.store",
        kind: Kind::Enum(&["auto", "memory", "durable", "redis"]),
        default: "auto",
        doc: "Where committed offsets live: memory (for the life of the process), durable (the embedded crash-safe store at offsets.path), redis (shared by every instance on offsets.redis_url, so a session resumes on another instance), or auto (durable when offsets.path is set, else memory).",
    },
    KeySpec {
        key: "offsets.redis_url",
        kind: Kind::Text,
        default: "",
        doc: "The Redis of offsets.store = redis, e.g. redis://127.0.0.1:6379/0 (redis://:password@host:port/db for auth).",
    },
    KeySpec {
        key: "offsets.prefix",
        kind: Kind::Text,
        default: "switchboard",
        doc: "Prefix of the Redis keys of offsets.store = redis (<prefix>:epoch, <prefix>:offsets): instances with the same Redis and prefix share offsets.",
    },
    KeySpec {
        key: "offsets.redis_timeout",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "5s",
        doc: "How long a commit or read waits for Redis before failing with Timeout (and the first connect before Manager::new fails with Unavailable).",
    },
    KeySpec {
        key: "offsets.sync",
        kind: Kind::Enum(&["every_commit", "interval"]),
        default: "every_commit",
        doc: "When the durable store writes commits: every_commit (each commit is on disk, fsynced, before it returns; loses nothing) or interval (commits are buffered and written every offsets.sync_interval and on close; a crash loses at most one interval).",
    },
    KeySpec {
        key: "offsets.sync_interval",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "1s",
        doc: "How often buffered commits are written when offsets.sync is interval (must be above 0 then).",
    },
    KeySpec {
        key: "resources.on_connect",
        kind: Kind::Text,
        default: "",
        doc: "Bytes a built-in resource sends on every new connection, before it counts as connected, with C escapes: the session state a server forgets when a connection is lost, e.g. \"HELLO 3\\r\\nSUBSCRIBE news\\r\\n\" for Redis. Empty: nothing.",
    },
    KeySpec {
        key: "resources.path",
        kind: Kind::Text,
        default: "",
        doc: "File of the named-resource store (an embedded crash-safe database, created if missing; one process at a time): each create, update and delete is on disk when it returns, and a manager opened on the file recreates them. Empty: named resources live as long as the manager.",
    },
    KeySpec {
        key: "registry.max_total_connections",
        kind: Kind::Int {
            min: 0,
            max: 100_000_000,
        },
        default: "10000",
        doc: "Most connections registered at once; beyond it register fails with ResourceExhausted. 0 means no limit. The default is the WebSocket pool's of seed 004.",
    },
    KeySpec {
        key: "registry.max_connections_per_topic",
        kind: Kind::Int {
            min: 0,
            max: 100_000_000,
        },
        default: "1000",
        doc: "Most connections subscribed to one topic; beyond it a register or subscribe naming the topic fails with ResourceExhausted. 0 means no limit. Seed 004's default.",
    },
    KeySpec {
        key: "registry.max_connections_per_user",
        kind: Kind::Int {
            min: 0,
            max: 100_000_000,
        },
        default: "0",
        doc: "Most connections registered at once for one user id (Centrifugo's client_user_connection_limit). 0 means no limit.",
    },
    KeySpec {
        key: "registry.max_topics_per_connection",
        kind: Kind::Int {
            min: 0,
            max: 1_000_000,
        },
        default: "128",
        doc: "Most topics one connection may be subscribed to (Centrifugo's client_channel_limit, 128). 0 means no limit.",
    },
    KeySpec {
        key: "registry.queue_max_messages",
        kind: Kind::Int {
            min: 1,
            max: 100_000_000,
        },
        default: "1024",
        doc: "Messages queued for one connection before its queue_full_policy applies. A slow client never blocks a broadcast or the other clients; its own queue fills instead.",
    },
    KeySpec {
        key: "registry.queue_max_bytes",
        kind: Kind::Int {
            min: 1,
            max: 1 << 40,
        },
        default: "1048576",
        doc: "Bytes queued for one connection before its queue_full_policy applies (Centrifugo's client_queue_max_size, 1 MiB). A single message larger than this is refused for that connection by the policy.",
    },
    KeySpec {
        key: "registry.queue_full_policy",
        kind: Kind::Enum(&["disconnect", "drop_oldest", "drop_new"]),
        default: "disconnect",
        doc: "What a full queue does with a new message: disconnect (remove the connection with reason slow_consumer; Centrifugo's behaviour, the client reconnects and catches up), drop_oldest (discard queued messages until it fits) or drop_new (discard the new message).",
    },
    KeySpec {
        key: "registry.max_send_failures",
        kind: Kind::Int {
            min: 1,
            max: 1_000_000,
        },
        default: "3",
        doc: "Failed deliveries in a row (the send callback raised or returned an error, or the outbox was closed) after which the connection is removed with reason send_failed (seed 004's failed message cleanup).",
    },
    KeySpec {
        key: "registry.send_timeout",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "30s",
        doc: "How long a send callback that finishes later (a JS Promise, a Python coroutine) may take: one still unsettled after this is counted as a failed delivery by the next cleanup pass, and the connection's next item (or its close) follows. 0 waits for ever.",
    },
    KeySpec {
        key: "registry.heartbeat_interval",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "30s",
        doc: "How often the registry asks the program to ping a connection it has not heard from (the ping callback, or a ping item in the outbox). 0 sends no pings. Seed 004's default.",
    },
    KeySpec {
        key: "registry.connection_timeout",
        kind: Kind::Duration { max_ms: 7 * DAY_MS },
        default: "5m",
        doc: "A connection not touched (no traffic, no pong) for this long is removed with reason stale by the next cleanup pass. 0 never removes silent connections. Seed 004's default (300 s).",
    },
    KeySpec {
        key: "registry.cleanup_interval",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "1m",
        doc: "How often the background pass removes stale connections, with up to 10% jitter; cleanup() runs it at once. 0 turns the background pass off (pings and cleanup then run only when the program calls cleanup()). Seed 004's default (60 s).",
    },
    KeySpec {
        key: "registry.metrics_top_topics",
        kind: Kind::Int {
            min: 0,
            max: 10_000,
        },
        default: "10",
        doc: "How many of the largest topics get their own switchboard_registry_topic_connections series; the rest are summed in one series with topic=\"_other\", so the metric's cardinality stays bounded.",
    },
    KeySpec {
        key: "server.listen",
        kind: Kind::Text,
        default: "",
        doc: "Address of the embedded server (admin JSON API, /metrics, the WebSocket hub at /ws and the gRPC sessions service), host:port; 127.0.0.1:0 picks a free port (read it back with server_address). Empty: no server. A bind that is not loopback needs server.token.",
    },
    KeySpec {
        key: "server.token",
        kind: Kind::Text,
        default: "",
        doc: "Bearer token of the embedded server. Set: every route needs Authorization: Bearer <token> (gRPC: the authorization metadata). Empty: read routes are open (loopback only) and mutating routes are refused with PermissionDenied.",
    },
    KeySpec {
        key: "server.tls_cert",
        kind: Kind::Text,
        default: "",
        doc: "PEM file of the server's certificate chain; with server.tls_key the listener speaks TLS (rustls; ALPN h2 and http/1.1). Empty: plain TCP.",
    },
    KeySpec {
        key: "server.tls_key",
        kind: Kind::Text,
        default: "",
        doc: "PEM file of the private key for server.tls_cert (PKCS#8, PKCS#1 or SEC1).",
    },
    KeySpec {
        key: "server.grpc_listen",
        kind: Kind::Text,
        default: "",
        doc: "A separate host:port for the gRPC sessions service. Empty: gRPC is served on server.listen (HTTP/2 beside HTTP/1.1).",
    },
    KeySpec {
        key: "server.hub_queue",
        kind: Kind::Int {
            min: 1,
            max: 10_000_000,
        },
        default: "10000",
        doc: "Messages from hub clients kept for the program to receive; when full the oldest is dropped and counted (switchboard_hub_messages_dropped_total).",
    },
    KeySpec {
        key: "cluster.redis_url",
        kind: Kind::Text,
        default: "",
        doc: "Joins the manager to a cluster of instances through this Redis (redis://host:port/db): breaker openings, registry broadcasts, membership and cluster-wide list, disconnect and stats are shared (docs/cluster.md). Empty: no cluster. A Redis that cannot be reached at start or later leaves the instance serving locally (event cluster_lost) until it rejoins (cluster_joined).",
    },
    KeySpec {
        key: "cluster.name",
        kind: Kind::Text,
        default: "switchboard",
        doc: "The cluster's name: the prefix of every Redis key and channel it uses, so several clusters can share one Redis.",
    },
    KeySpec {
        key: "cluster.node_id",
        kind: Kind::Text,
        default: "",
        doc: "This instance's name in the member list and in reports. Empty: <hostname>-<pid>-<4 hex digits>.",
    },
    KeySpec {
        key: "cluster.heartbeat_interval",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "2s",
        doc: "How often this instance publishes its heartbeat (node id, address, counts); a member silent for 3 intervals is dropped from the member list.",
    },
    KeySpec {
        key: "cluster.request_timeout",
        kind: Kind::Duration { max_ms: DAY_MS },
        default: "1s",
        doc: "How long a cluster-wide list, disconnect, stats or acknowledged broadcast waits for the live members; members that did not answer by then are named in the result instead of failing it.",
    },
    KeySpec {
        key: "cluster.breakers",
        kind: Kind::Enum(&["shared", "local"]),
        default: "shared",
        doc: "shared: a breaker opening on this instance is published (with its open wait as TTL) and the other instances fail fast on that endpoint until the opener's verdict; local: breakers are never shared.",
    },
];
