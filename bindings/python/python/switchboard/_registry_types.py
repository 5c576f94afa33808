"""The registry's values: :data:`PING` and its type, the item and message types, and
the frozen snapshots its calls return (:class:`BroadcastReport`, :class:`ConnInfo`,
:class:`ListPage`, :class:`CleanupReport`, :class:`RegistryStats`), each built from
what the native module returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Final, Literal, Mapping, Optional, Tuple, Union, final

__all__ = [
    "PING",
    "Ping",
    "Item",
    "Message",
    "ConnInfoState",
    "BroadcastReport",
    "ConnInfo",
    "ListPage",
    "CleanupReport",
    "RegistryStats",
]

#: A connection's liveness (:attr:`ConnInfo.state`, ``Registry.list(state=...)``).
ConnInfoState = Union[Literal["active"], Literal["idle"]]


@final
class Ping:
    """The type of :data:`PING`, the item an outbox yields when the registry asks the
    program to ping its client (``registry.heartbeat_interval``). There is one."""

    __slots__ = ()
    _instance: Optional[Ping] = None

    def __new__(cls) -> Ping:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "switchboard.PING"

    def __reduce__(self) -> str:
        return "PING"


#: The outbox item that asks the program to ping its client: ``item is switchboard.PING``.
PING: Final[Ping] = Ping()

#: What an outbox yields: a message (``str`` for text, ``bytes`` for binary) or :data:`PING`.
Item = Union[bytes, str, Ping]

#: A message to send: ``str`` is a text message (a WebSocket text frame), ``bytes`` (or
#: any bytes-like object) a binary one.
Message = Union[str, bytes, bytearray, memoryview]


@dataclass(frozen=True)
class BroadcastReport:
    """What one :meth:`Registry.broadcast` (or :meth:`Registry.send`) did, counted by
    the time it returned. Send callbacks run after it, on switchboard's threads."""

    #: Connections the target matched (after ``exclude``).
    recipients: int
    #: Messages queued for delivery (one per recipient that took it).
    queued: int
    #: Messages dropped because a queue was full (``drop_new``, and what ``drop_oldest``
    #: discarded).
    dropped: int
    #: Recipients removed as too slow (policy ``disconnect``).
    disconnected: int
    #: How long the fan-out took, in seconds.
    elapsed: float


@dataclass(frozen=True)
class ConnInfo:
    """A snapshot of one registered connection (:meth:`Registry.get`,
    :meth:`Registry.list`). Durations are seconds by the manager's clock."""

    #: Its id (unique within the process, never reused).
    id: int
    #: Its user, if it has one.
    user: Optional[str]
    #: Its metadata.
    metadata: Dict[str, str]
    #: Its topics, sorted.
    topics: Tuple[str, ...]
    #: ``"active"`` (heard from within ``registry.heartbeat_interval``) or ``"idle"``.
    state: ConnInfoState
    #: ``"callback"`` or ``"outbox"``.
    sink: str
    #: Seconds since it registered.
    age: float
    #: Seconds since it was last touched.
    idle: float
    #: Messages waiting in its queue.
    queued_messages: int
    #: Bytes waiting in its queue.
    queued_bytes: int
    #: Messages handed to its sink.
    sent: int
    #: Messages dropped for it (full queue).
    dropped: int
    #: Failed deliveries to it.
    failed: int


def conn_info(raw: Mapping[str, Any]) -> ConnInfo:
    """A :class:`ConnInfo` from the native module's dict."""
    fields = dict(raw)
    fields["topics"] = tuple(raw["topics"])
    return ConnInfo(**fields)


@dataclass(frozen=True)
class ListPage:
    """One page of :meth:`Registry.list`: pass ``next_cursor`` as ``cursor`` for the
    next one (``None``: this was the last)."""

    #: The records, in id order.
    connections: Tuple[ConnInfo, ...]
    #: The cursor of the next page, or ``None``.
    next_cursor: Optional[int]


@dataclass(frozen=True)
class CleanupReport:
    """What one :meth:`Registry.cleanup` pass did."""

    #: Connections removed with reason ``stale``.
    removed: int
    #: Connections asked to ping their client.
    pinged: int


@dataclass(frozen=True)
class RegistryStats:
    """The registry's statistics (:meth:`Registry.stats`)."""

    #: Connections registered now.
    connections: int
    #: Of those, heard from within the heartbeat interval.
    active: int
    #: Topics with at least one subscriber.
    topics: int
    #: Distinct users with at least one connection.
    users: int
    #: ``(topic, subscribers)``, largest first (every topic).
    topic_counts: Tuple[Tuple[str, int], ...]
    #: Connections ever registered.
    registered_total: int
    #: Broadcasts (and direct sends) made.
    broadcasts: int
    #: Messages queued for delivery.
    messages_queued: int
    #: Messages handed to sinks.
    messages_sent: int
    #: Messages dropped by full queues, or discarded when their connection left.
    messages_dropped: int
    #: Failed deliveries.
    messages_failed: int
    #: Connections removed, by reason (``stale``, ``send_failed``, ``slow_consumer``,
    #: ``unregistered``, ``disconnected``, ``manager_closed`` or the program's own).
    disconnects: Dict[str, int]
    #: Register and subscribe calls refused by a limit, by the limit's key.
    rejections: Dict[str, int]
    #: Cleanup passes run.
    cleanup_runs: int


def broadcast_report(raw: Tuple[int, int, int, int, float]) -> BroadcastReport:
    """A :class:`BroadcastReport` from the native module's tuple."""
    return BroadcastReport(*raw)


def registry_stats(raw: Mapping[str, Any]) -> RegistryStats:
    """A :class:`RegistryStats` from the native module's dict."""
    fields = dict(raw)
    fields["topic_counts"] = tuple((t, n) for t, n in raw["topic_counts"])
    return RegistryStats(**fields)
