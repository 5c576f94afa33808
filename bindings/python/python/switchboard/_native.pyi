# Stubs for the private native module switchboard._native (bindings/python/src).
# Checked against the built module by mypy.stubtest in tests/python/test_example_and_stubs.py.

import builtins
from typing import Any, Callable, Literal, Optional, TypedDict, final, type_check_only

from typing_extensions import Buffer, Self, TypeAlias

from switchboard._registry_types import Ping

__all__ = [
    "__version__",
    "Manager",
    "Pool",
    "AcquireTask",
    "Lease",
    "Sessions",
    "Registry",
    "Outbox",
    "Resources",
    "ResourceHandle",
    "Hub",
    "Cluster",
    "envelope_encode",
    "envelope_decode",
]

__version__: str

@type_check_only
class _ClosedByDict(TypedDict):
    broken: int
    idle: int
    lifetime: int
    overflow: int
    evicted: int
    discarded: int
    closed: int

@type_check_only
class _LatencyDict(TypedDict):
    count: int
    avg: float
    peak: float
    p50: float
    p90: float
    p99: float

_BreakerStateName: TypeAlias = Literal[
    "closed", "open", "half_open", "forced_open", "disabled", "metrics_only"
]
_ConnStateName: TypeAlias = Literal[
    "idle", "connecting", "connected", "reconnecting", "disconnecting", "disconnected", "failed"
]
_WarmingStateName: TypeAlias = Literal["cold", "warming", "warm"]

@type_check_only
class _EventDict(TypedDict):
    kind: str
    pool: str
    endpoint: Optional[str]
    connection_id: Optional[int]
    session_id: Optional[int]
    stream: Optional[str]
    old_state: Optional[str]
    new_state: Optional[str]
    age: Optional[float]
    topic: Optional[str]
    user: Optional[str]
    reason: Optional[str]
    resource: Optional[str]
    message: str
    time: float

@type_check_only
class _EndpointHealthDict(TypedDict):
    endpoint: str
    state: _ConnStateName
    warming: _WarmingStateName
    breaker: _BreakerStateName
    quality: float
    latency_ewma: Optional[float]
    success_rate: float
    calls: int
    failures: int
    reconnects: int
    checks: int
    checks_failed: int
    breaker_opened: int
    breaker_transitions: int
    breaker_rejected: int
    open_connections: int
    in_flight: int
    last_success: Optional[float]
    connected_since: Optional[float]
    last_error: Optional[str]
    backoff_remaining: Optional[float]

@type_check_only
class _StreamDict(TypedDict):
    name: str
    position: int
    committed: Optional[int]
    data_packets_read: int
    data_bytes_read: int
    data_packets_delivered: int
    data_bytes_delivered: int
    essential_packets_read: int
    essential_packets_delivered: int

@type_check_only
class _SessionDict(TypedDict):
    id: int
    data_source: str
    session_key: str
    exclude_main_stream: bool
    streams: list[_StreamDict]
    router_messages_received: int
    router_bytes_received: int

@type_check_only
class _HealthReportDict(TypedDict):
    pool: str
    calls: int
    failures: int
    success_rate: float
    reconnects: int
    last_success: Optional[float]
    connected_since: Optional[float]
    endpoints: list[_EndpointHealthDict]

@type_check_only
class _PoolStatsDict(TypedDict):
    name: str
    max_size: int
    min_idle: int
    max_overflow: int
    size: int
    idle: int
    leased: int
    waiting: int
    connecting: int
    created_total: int
    closed_total: int
    closed_by: _ClosedByDict
    acquired_total: int
    acquired_direct_total: int
    acquired_waited_total: int
    timed_out_total: int
    rejected_total: int
    connect_failed_total: int
    probe_failed_total: int
    wait: _LatencyDict
    lease: _LatencyDict
    endpoints: list[_EndpointHealthDict]

@final
class Manager:
    def __new__(cls, config: list[tuple[str, str]]) -> Self: ...
    def pool(
        self,
        name: str,
        target: str,
        config: list[tuple[str, str]],
        connect: Optional[Callable[[str], Any]] = None,
        check: Optional[Callable[[Any], object]] = None,
        close: Optional[Callable[[Any], object]] = None,
    ) -> Pool: ...
    def close(self, timeout: float) -> None: ...
    @property
    def closed(self) -> bool: ...
    def pool_names(self) -> list[str]: ...
    def config(self) -> list[tuple[str, str]]: ...
    def metrics_text(self) -> str: ...
    def sessions(self) -> Sessions: ...
    def registry(self) -> Registry: ...
    def resources(self) -> Resources: ...
    def cluster(self) -> Optional[Cluster]: ...
    def advance_clock(self, seconds: float) -> None: ...
    @property
    def server_address(self) -> Optional[str]: ...
    @property
    def grpc_address(self) -> Optional[str]: ...
    def hub(self) -> Hub: ...
    def poll_event(self, timeout: float) -> Optional[_EventDict]: ...
    def events_dropped(self) -> int: ...
    def set_event_callback(
        self, callback: Optional[Callable[[_EventDict], object]]
    ) -> None: ...

@final
class Pool:
    @property
    def name(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def acquire(self, timeout: Optional[float] = None, priority: int = 0) -> Lease: ...
    def try_acquire(self) -> Optional[Lease]: ...
    def acquire_async(
        self,
        timeout: Optional[float],
        priority: int,
        callback: Callable[[Optional[Lease], Optional[BaseException]], object],
    ) -> AcquireTask: ...
    def stats(self) -> _PoolStatsDict: ...
    def resize(self, max_size: int, min_idle: int = 0) -> None: ...
    def evict_all(self) -> None: ...
    def warm(self) -> int: ...
    def warm_async(
        self, callback: Callable[[Optional[int], Optional[BaseException]], object]
    ) -> None: ...
    def health(self) -> _HealthReportDict: ...
    def healthy_endpoints(self) -> list[_EndpointHealthDict]: ...
    def select_best(self, candidates: list[str]) -> str: ...
    def breaker_state(self, endpoint: Optional[str] = None) -> _BreakerStateName: ...
    def breaker_op(self, op: str, endpoint: Optional[str] = None) -> None: ...
    def reset_backoff(self) -> None: ...
    def drain(self, endpoint: str) -> None: ...
    def run_health_checks(self) -> None: ...
    def run_health_checks_async(
        self, callback: Callable[[Optional[BaseException]], object]
    ) -> None: ...
    def _run_upkeep(self) -> None: ...
    @property
    def custom(self) -> bool: ...
    def close(self) -> None: ...

@final
class AcquireTask:
    def cancel(self) -> None: ...
    def done(self) -> bool: ...

@final
class Lease:
    """A checked-out connection. ``with`` releases it at the end of the block (or
    discards it if the block raised)."""

    @property
    def id(self) -> int: ...
    @property
    def pool_name(self) -> str: ...
    @property
    def released(self) -> bool: ...
    @property
    def endpoint(self) -> str:
        """The endpoint it is connected to, as written in the pool's target."""
    def report(self, success: bool, latency: float) -> None:
        """Reports the result of work done on this connection (``latency`` in
        seconds) for its endpoint's breaker, success rate and quality score."""
    def fileno(self) -> int: ...
    @property
    def obj(self) -> Any: ...
    def send(self, data: Buffer, /) -> int: ...
    def sendall(self, data: Buffer, /) -> None: ...
    def recv(self, bufsize: int, /) -> bytes: ...
    def settimeout(self, timeout: Optional[float], /) -> None: ...
    def gettimeout(self) -> Optional[float]: ...
    def release(self) -> None: ...
    def discard(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        _exc_value: Optional[BaseException],
        _traceback: Optional[object],
    ) -> bool: ...

@final
class Sessions:
    def register(self, data_source: str, session_key: str) -> bool: ...
    def unregister(self, data_source: str, session_key: str) -> bool: ...
    def is_registered(self, data_source: str, session_key: str) -> bool: ...
    def catalog(self) -> list[tuple[str, str]]: ...
    def open(
        self,
        data_source: str,
        session_key: str,
        streams: list[str],
        stream_offsets: list[int],
        exclude_main_stream: bool,
    ) -> int: ...
    def resume(
        self, data_source: str, session_key: str, streams: list[str], exclude_main_stream: bool
    ) -> int: ...
    def get(self, id: int) -> _SessionDict: ...
    def close(self, id: int) -> None: ...
    def list(
        self, data_source: Optional[str] = None, session_key: Optional[str] = None
    ) -> builtins.list[_SessionDict]: ...
    def open_count(self) -> int: ...
    def add_stream(self, id: int, stream: str, offset: int) -> None: ...
    def remove_stream(self, id: int, stream: str) -> None: ...
    def record_read(
        self, id: int, stream: str, packets: int, bytes: int, essential: int
    ) -> None: ...
    def deliver(self, id: int, stream: str, packets: int, bytes: int, essential: int) -> int: ...
    def record_router(self, id: int, messages: int, bytes: int) -> None: ...
    def position(self, id: int, stream: str) -> int: ...
    def commit(self, id: int, stream: str, offset: int) -> None: ...
    def seek(self, id: int, stream: str, offset: int) -> None: ...
    def committed(self, data_source: str, session_key: str, stream: str) -> Optional[int]: ...
    def flush(self) -> None: ...
    def store_kind(self) -> str: ...
    def buffered_commits(self) -> int: ...

@type_check_only
class _ConnInfoDict(TypedDict):
    id: int
    user: Optional[str]
    metadata: dict[str, str]
    topics: list[str]
    state: str
    sink: str
    age: float
    idle: float
    queued_messages: int
    queued_bytes: int
    sent: int
    dropped: int
    failed: int

@type_check_only
class _RegistryStatsDict(TypedDict):
    connections: int
    active: int
    topics: int
    users: int
    topic_counts: list[tuple[str, int]]
    registered_total: int
    broadcasts: int
    messages_queued: int
    messages_sent: int
    messages_dropped: int
    messages_failed: int
    disconnects: dict[str, int]
    rejections: dict[str, int]
    cleanup_runs: int

_Item: TypeAlias = bytes | str | Ping
_Report: TypeAlias = tuple[int, int, int, int, float]

@final
class Registry:
    def register(
        self,
        send: Callable[[Any], Any],
        user: Optional[str],
        metadata: builtins.list[tuple[str, str]],
        topics: builtins.list[str],
        token: Optional[str],
        on_ping: Optional[Callable[[], Any]],
        on_close: Optional[Callable[[str], Any]],
        schedule: Optional[Callable[[int, Any, int], object]],
    ) -> int: ...
    def register_outbox(
        self,
        user: Optional[str],
        metadata: builtins.list[tuple[str, str]],
        topics: builtins.list[str],
        token: Optional[str],
    ) -> Outbox: ...
    def unregister(self, id: int, reason: str) -> None: ...
    def get(self, id: int) -> _ConnInfoDict: ...
    def contains(self, id: int) -> bool: ...
    def len(self) -> int: ...
    def touch(self, id: int) -> None: ...
    def subscribe(self, id: int, topic: str) -> bool: ...
    def unsubscribe(self, id: int, topic: str) -> bool: ...
    def set_metadata(self, id: int, key: str, value: Optional[str]) -> None: ...
    def broadcast(
        self,
        msg: object,
        all: bool,
        topics: builtins.list[str],
        users: builtins.list[str],
        ids: builtins.list[int],
        exclude: builtins.list[int],
    ) -> _Report: ...
    def send(self, id: int, msg: object) -> _Report: ...
    def list(
        self,
        user: Optional[str],
        topic: Optional[str],
        meta: Optional[tuple[str, str]],
        state: Optional[str],
        min_idle: Optional[float],
        limit: int,
        cursor: Optional[int],
    ) -> tuple[builtins.list[_ConnInfoDict], Optional[int]]: ...
    def disconnect(
        self,
        all: bool,
        topics: builtins.list[str],
        users: builtins.list[str],
        ids: builtins.list[int],
        exclude: builtins.list[int],
        reason: str,
    ) -> int: ...
    def stats(self) -> _RegistryStatsDict: ...
    def cleanup(self) -> tuple[int, int]: ...
    def set_authenticator(
        self,
        authenticate: Optional[Callable[[str], tuple[Optional[str], builtins.list[tuple[str, str]]]]],
        authorize: Optional[Callable[[int, Optional[str], str], None]],
    ) -> None: ...
    def report_send(self, id: int, error: Optional[str]) -> None: ...

@final
class Outbox:
    @property
    def id(self) -> int: ...
    @property
    def closed_reason(self) -> Optional[str]: ...
    def next(self, timeout: Optional[float]) -> Optional[_Item]: ...
    def try_next(self) -> Optional[_Item]: ...
    def next_async(
        self, callback: Callable[[Optional[_Item], Optional[BaseException]], object]
    ) -> None: ...
    def touch(self) -> None: ...
    def close(self) -> None: ...

_ResourceStatusName: TypeAlias = Literal["connecting", "connected", "recovering", "disconnected"]

@type_check_only
class _ResourceInfoDict(TypedDict):
    id: str
    type: str
    endpoint: str
    anonymous: bool
    status: _ResourceStatusName
    last_error: Optional[str]
    stopped: bool
    consumers: list[str]
    reconnects: int
    bytes_in: int
    bytes_out: int
    connected_for: Optional[float]

@final
class Resources:
    def create(self, id: str, kind: str, props: builtins.list[tuple[str, str]]) -> None: ...
    def attach(self, id: str, consumer: str) -> ResourceHandle: ...
    def attach_anonymous(
        self, kind: str, props: builtins.list[tuple[str, str]], consumer: str
    ) -> ResourceHandle: ...
    def update(self, id: str, props: builtins.list[tuple[str, str]]) -> None: ...
    def delete(self, id: str, force: bool) -> None: ...
    def get(self, id: str) -> _ResourceInfoDict: ...
    def list(self) -> builtins.list[_ResourceInfoDict]: ...
    def wait_ready(self, id: str, timeout: float) -> None: ...
    def report_failure(self, id: str) -> None: ...
    def register_type(
        self,
        name: str,
        connect: Callable[[str], Any],
        check: Optional[Callable[[Any], object]] = None,
        close: Optional[Callable[[Any], object]] = None,
    ) -> None: ...

@final
class ResourceHandle:
    @property
    def id(self) -> str: ...
    @property
    def consumer(self) -> str: ...
    @property
    def status(self) -> _ResourceStatusName: ...
    def fileno(self) -> int: ...
    def send(self, data: Buffer, /) -> int: ...
    def sendall(self, data: Buffer, /) -> None: ...
    def recv(self, bufsize: int, /) -> bytes: ...
    def settimeout(self, timeout: Optional[float], /) -> None: ...
    def gettimeout(self) -> Optional[float]: ...
    def wait_ready(self, timeout: float) -> None: ...
    def ready_async(
        self, timeout: float, callback: Callable[[Optional[BaseException]], object]
    ) -> AcquireTask: ...
    def report_failure(self) -> None: ...
    def object(self) -> Any: ...
    def detach(self) -> None: ...

@type_check_only
class _MemberDict(TypedDict):
    node_id: str
    number: int
    address: str
    connections: int
    pools: int
    last_seen: float
    local: bool

@type_check_only
class _ClusterBroadcastDict(TypedDict):
    local: _Report
    remote: builtins.list[tuple[str, int]]
    unacknowledged: int

@type_check_only
class _ClusterListDict(TypedDict):
    connections: builtins.list[tuple[str, _ConnInfoDict]]
    next_cursor: Optional[int]
    nodes: builtins.list[str]
    missing: builtins.list[str]

@type_check_only
class _ClusterCountDict(TypedDict):
    total: int
    by_node: builtins.list[tuple[str, int]]
    nodes: builtins.list[str]
    missing: builtins.list[str]

@type_check_only
class _ClusterStatsDict(TypedDict):
    total: _RegistryStatsDict
    by_node: builtins.list[tuple[str, _RegistryStatsDict]]
    nodes: builtins.list[str]
    missing: builtins.list[str]

@type_check_only
class _ClusterResourceDict(TypedDict):
    id: str
    by_node: builtins.list[tuple[str, str]]
    nodes: builtins.list[str]
    missing: builtins.list[str]

_Done: TypeAlias = Callable[[Any, Optional[BaseException]], object]

@final
class Cluster:
    @property
    def name(self) -> str: ...
    @property
    def node_id(self) -> str: ...
    @property
    def node_number(self) -> int: ...
    @property
    def joined(self) -> bool: ...
    def members(self) -> builtins.list[_MemberDict]: ...
    def broadcast(
        self,
        msg: object,
        all: bool,
        topics: builtins.list[str],
        users: builtins.list[str],
        ids: builtins.list[int],
        exclude: builtins.list[int],
    ) -> _ClusterBroadcastDict: ...
    def broadcast_async(
        self,
        msg: object,
        all: bool,
        topics: builtins.list[str],
        users: builtins.list[str],
        ids: builtins.list[int],
        exclude: builtins.list[int],
        callback: _Done,
    ) -> AcquireTask: ...
    def list(
        self,
        user: Optional[str],
        topic: Optional[str],
        meta: Optional[tuple[str, str]],
        state: Optional[str],
        min_idle: Optional[float],
        limit: int,
        cursor: Optional[int],
    ) -> _ClusterListDict: ...
    def list_async(
        self,
        user: Optional[str],
        topic: Optional[str],
        meta: Optional[tuple[str, str]],
        state: Optional[str],
        min_idle: Optional[float],
        limit: int,
        cursor: Optional[int],
        callback: _Done,
    ) -> AcquireTask: ...
    def disconnect(
        self,
        all: bool,
        topics: builtins.list[str],
        users: builtins.list[str],
        ids: builtins.list[int],
        exclude: builtins.list[int],
        reason: str,
    ) -> _ClusterCountDict: ...
    def disconnect_async(
        self,
        all: bool,
        topics: builtins.list[str],
        users: builtins.list[str],
        ids: builtins.list[int],
        exclude: builtins.list[int],
        reason: str,
        callback: _Done,
    ) -> AcquireTask: ...
    def stats(self) -> _ClusterStatsDict: ...
    def stats_async(self, callback: _Done) -> AcquireTask: ...
    def resource_status(self, id: str) -> _ClusterResourceDict: ...
    def resource_status_async(self, id: str, callback: _Done) -> AcquireTask: ...

def envelope_encode(
    kind: str, topic: Optional[str], data_json: Optional[str], error: Optional[str]
) -> str: ...
def envelope_decode(
    text: str,
) -> tuple[str, Optional[str], Optional[str], Optional[str], Optional[str]]: ...

# (connection_id, user, type, topic, text)
_HubMessageTuple: TypeAlias = tuple[int, Optional[str], str, Optional[str], str]

@final
class Hub:
    def recv(self, timeout: Optional[float] = None) -> Optional[_HubMessageTuple]: ...
    def next_async(
        self,
        callback: Callable[[Optional[_HubMessageTuple], Optional[BaseException]], object],
    ) -> AcquireTask: ...
    @property
    def dropped(self) -> int: ...
    @property
    def queued(self) -> int: ...
