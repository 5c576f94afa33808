"""switchboard: pooled network connections from one Rust core, for threads and asyncio.

>>> import switchboard
>>> with switchboard.Manager() as manager:                      # doctest: +SKIP
...     pool = manager.pool("echo", "tcp://127.0.0.1:7000", max_size=4)
...     with pool.acquire(timeout=2.0) as conn:
...         conn.sendall(b"ping\\n")
...         print(conn.recv(64))

Pools hold built-in sockets or, with ``manager.pool(name, target, connect=...)``, the
program's own objects (``lease.obj``), checked and closed by its ``check`` and ``close``
callables. Blocking calls release the GIL; ``pool.acquire_async()`` never blocks the
event loop. Each endpoint has a circuit breaker, a reconnect backoff and a health record:
``pool.health()``, ``pool.breaker_state()``, ``pool.breaker_op("reset")``.
``manager.sessions`` holds streaming sessions with Kafka-style per-stream offsets,
committed in memory or durably on disk (``Manager(offsets_path=...)``).
``manager.registry`` is the live-connection registry of a server (WebSocket, broker):
users, metadata, topics, broadcast with exclusions, per-connection queues, heartbeats,
an auth hook, listing and disconnect; ``switchboard.envelope`` makes seed 004's JSON
message envelope.
``manager.resources`` holds named shared connections: one physical connection created
by id, reconnecting on its own, shared by many consumers (``resources.attach``), with
its status, events and metrics.
The embedded server (``Manager({"server.listen": "127.0.0.1:0", "server.token": ...})``) serves
the admin JSON API, ``/metrics``, the WebSocket hub on the registry and the gRPC sessions
service; ``manager.server_address`` names its port and ``manager.hub`` hands the program
what hub clients send (``hub.recv()``, ``await hub.next()``).
``manager.cluster`` (with ``cluster.redis_url``) joins instances through Redis: shared
breakers, registry broadcasts that reach every instance, membership and cluster-wide
list, disconnect, stats and resource status.
Errors are :class:`SwitchboardError` subclasses that also extend the matching built-in
(``switchboard.Timeout`` is a ``TimeoutError``, ``switchboard.Unavailable`` a
``ConnectionError``).
"""

from ._cluster import (
    Answered,
    Cluster,
    ClusterBroadcast,
    ClusterCount,
    ClusterList,
    ClusterResource,
    ClusterStats,
    Member,
)
from ._api import (
    AcquireContext,
    BreakerOp,
    BreakerState,
    ClosedBy,
    ConfigValue,
    ConnState,
    EndpointHealth,
    Event,
    HealthReport,
    LatencyStats,
    Manager,
    Pool,
    PoolStats,
)
from ._snapshots import WarmingState
from ._errors import (
    Cancelled,
    FailedPrecondition,
    InternalError,
    InvalidArgument,
    IoError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    SwitchboardError,
    Timeout,
    Unauthenticated,
    Unavailable,
)
from ._native import Lease, __version__
from ._envelope import envelope, parse_envelope
from ._registry import Registry
from ._registry_conn import Connection, Outbox
from ._registry_types import (
    PING,
    BroadcastReport,
    CleanupReport,
    ConnInfo,
    ConnInfoState,
    Item,
    ListPage,
    Ping,
    RegistryStats,
)
from ._resources import ResourceHandle, ResourceInfo, Resources, ResourceStatus
from ._server import Hub, HubMessage
from ._sessions import Session, SessionInfo, Sessions, StoreKind, StreamInfo

__all__ = [
    "__version__",
    "Manager",
    "Pool",
    "PoolStats",
    "ClosedBy",
    "LatencyStats",
    "Event",
    "HealthReport",
    "EndpointHealth",
    "BreakerState",
    "BreakerOp",
    "ConnState",
    "WarmingState",
    "Lease",
    "Sessions",
    "Session",
    "SessionInfo",
    "StreamInfo",
    "StoreKind",
    "Registry",
    "Connection",
    "Outbox",
    "PING",
    "Ping",
    "Item",
    "ConnInfo",
    "ConnInfoState",
    "ListPage",
    "BroadcastReport",
    "CleanupReport",
    "RegistryStats",
    "Resources",
    "ResourceHandle",
    "ResourceInfo",
    "ResourceStatus",
    "Hub",
    "HubMessage",
    "Cluster",
    "Member",
    "Answered",
    "ClusterBroadcast",
    "ClusterList",
    "ClusterCount",
    "ClusterStats",
    "ClusterResource",
    "envelope",
    "parse_envelope",
    "AcquireContext",
    "ConfigValue",
    "SwitchboardError",
    "InvalidArgument",
    "NotFound",
    "ResourceExhausted",
    "FailedPrecondition",
    "Unavailable",
    "Timeout",
    "Cancelled",
    "IoError",
    "InternalError",
    "Unauthenticated",
    "PermissionDenied",
]
