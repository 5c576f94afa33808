"""The cluster: ``manager.cluster``, the instances that share one Redis
(``cluster.redis_url``, docs/cluster.md).

What the cluster shares needs no call of its own: a pool's breaker that opens here
opens the same pool and endpoint on the other instances (``cluster.breakers =
shared``), and ``manager.registry.broadcast`` reaches the matching connections of every
instance (connection ids are unique across the cluster). :class:`Cluster` adds the
membership and the cluster-wide calls: :meth:`Cluster.broadcast` that waits for the
other instances' acknowledgements, and :meth:`Cluster.list`, :meth:`Cluster.disconnect`,
:meth:`Cluster.stats` and :meth:`Cluster.resource_status` over every live member. Each
waits at most ``cluster.request_timeout`` and never fails for a silent member: its
result names the members that answered and those that did not (:class:`Answered`).
Each has an ``*_async`` form for asyncio. Everything here translates; the behaviour is
the core's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Tuple, TypeVar

from . import _native
from ._errors import InternalError, InvalidArgument
from ._registry import _list_filter, _target
from ._registry_types import (
    BroadcastReport,
    ConnInfo,
    ConnInfoState,
    Message,
    RegistryStats,
    broadcast_report,
    conn_info,
    registry_stats,
)

__all__ = [
    "Cluster",
    "Member",
    "Answered",
    "ClusterBroadcast",
    "ClusterList",
    "ClusterCount",
    "ClusterStats",
    "ClusterResource",
]

T = TypeVar("T")


# --- the values ----------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One member of the cluster, from its last heartbeat (:meth:`Cluster.members`)."""

    #: Its ``cluster.node_id``.
    node_id: str
    #: Its number (the top bits of its connection ids).
    number: int
    #: Its embedded server's address (``""`` when it has none).
    address: str
    #: Its registered connections at its last heartbeat.
    connections: int
    #: Its open pools at its last heartbeat.
    pools: int
    #: Seconds since its last heartbeat (by Redis's clock).
    last_seen: float
    #: Whether it is this instance.
    local: bool


@dataclass(frozen=True)
class Answered:
    """Which live members answered a cluster-wide call."""

    #: The members that answered (this instance first).
    nodes: Tuple[str, ...]
    #: The live members that did not answer within ``cluster.request_timeout``: their
    #: part is missing from the result.
    missing: Tuple[str, ...]


@dataclass(frozen=True)
class ClusterBroadcast:
    """What an acknowledged :meth:`Cluster.broadcast` reached."""

    #: The fan-out on this instance.
    local: BroadcastReport
    #: Recipients on each other member that acknowledged it, by node id.
    remote: Dict[str, int]
    #: Copies published that no member acknowledged within ``cluster.request_timeout``
    #: (a member that left, or one too slow to answer).
    unacknowledged: int

    @property
    def recipients(self) -> int:
        """Recipients on every instance that acknowledged, this one included."""
        return self.local.recipients + sum(self.remote.values())


@dataclass(frozen=True)
class ClusterList:
    """One page of :meth:`Cluster.list`: pass ``next_cursor`` as ``cursor`` for the next
    one (``None``: this was the last)."""

    #: ``(node id, connection)`` pairs, in id order (ids are unique across the cluster).
    connections: Tuple[Tuple[str, ConnInfo], ...]
    #: The cursor of the next page, or ``None``.
    next_cursor: Optional[int]
    #: Who answered.
    answered: Answered


@dataclass(frozen=True)
class ClusterCount:
    """What :meth:`Cluster.disconnect` removed: the total and each member's part."""

    #: The sum over the members that answered.
    total: int
    #: Each answering member's count, by node id.
    by_node: Dict[str, int]
    #: Who answered.
    answered: Answered


@dataclass(frozen=True)
class ClusterStats:
    """The registry statistics of every member that answered, and their sum
    (:meth:`Cluster.stats`)."""

    #: The members' statistics added up (``users`` and ``topics`` count per member, so
    #: a user connected to two members counts twice; ``topic_counts`` sums by topic).
    total: RegistryStats
    #: Each answering member's statistics, by node id.
    by_node: Dict[str, RegistryStats]
    #: Who answered.
    answered: Answered


@dataclass(frozen=True)
class ClusterResource:
    """A named resource's status on each member (:meth:`Cluster.resource_status`)."""

    #: The resource's id.
    id: str
    #: Its status on each answering member, by node id: a :class:`ResourceStatus` name
    #: (``"connected"``, ``"connecting"``, ...) or ``"absent"`` where it is not created.
    by_node: Dict[str, str]
    #: Who answered.
    answered: Answered


def _answered(raw: Mapping[str, Any]) -> Answered:
    return Answered(tuple(raw["nodes"]), tuple(raw["missing"]))


def _broadcast(raw: Mapping[str, Any]) -> ClusterBroadcast:
    return ClusterBroadcast(
        broadcast_report(raw["local"]), dict(raw["remote"]), raw["unacknowledged"]
    )


def _list(raw: Mapping[str, Any]) -> ClusterList:
    conns = tuple((node, conn_info(c)) for node, c in raw["connections"])
    return ClusterList(conns, raw["next_cursor"], _answered(raw))


def _count(raw: Mapping[str, Any]) -> ClusterCount:
    return ClusterCount(raw["total"], dict(raw["by_node"]), _answered(raw))


def _stats(raw: Mapping[str, Any]) -> ClusterStats:
    by_node = {node: registry_stats(s) for node, s in raw["by_node"]}
    return ClusterStats(registry_stats(raw["total"]), by_node, _answered(raw))


def _resource(raw: Mapping[str, Any]) -> ClusterResource:
    return ClusterResource(raw["id"], dict(raw["by_node"]), _answered(raw))


async def _await_native(
    start: Callable[[Callable[[Any, Optional[BaseException]], None]], _native.AcquireTask],
    build: Callable[[Any], T],
) -> T:
    """Runs a native ``*_async`` call (``start(on_done)``) and awaits its result, built
    by ``build``; cancelling the awaiting task cancels the call."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def deliver(raw: Any, error: Optional[BaseException]) -> None:
        if fut.done():
            return
        if error is not None:
            fut.set_exception(error)
        elif raw is None:
            fut.set_exception(InternalError("a cluster call reported neither a result nor an error"))
        else:
            try:
                fut.set_result(build(raw))
            except Exception as e:  # noqa: BLE001 - handed to the awaiting task
                fut.set_exception(e)

    def on_done(raw: Any, error: Optional[BaseException]) -> None:
        # Called once, on a switchboard runtime thread, with the GIL held.
        try:
            loop.call_soon_threadsafe(deliver, raw, error)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    task = start(on_done)
    try:
        return await fut
    except BaseException:
        task.cancel()
        raise


def _reason(reason: object) -> str:
    if not isinstance(reason, str):
        raise InvalidArgument(f"reason must be a str, got {type(reason).__name__} {reason!r}")
    return reason


def _resource_id(id: object) -> str:
    if not isinstance(id, str):
        raise InvalidArgument(f"a resource id is a str, got {type(id).__name__} {id!r}")
    return id


# --- the cluster ---------------------------------------------------------------------


class Cluster:
    """The manager's membership in its cluster (``manager.cluster``; ``None`` without
    ``cluster.redis_url``).

    :attr:`joined` is ``False`` while Redis is unreachable: the instance then serves
    locally (breakers local, broadcasts reaching this instance only) and rejoins when
    Redis returns (events ``cluster_lost`` and ``cluster_joined``). The cluster-wide
    calls take the same targets and filters as the registry's and wait (GIL released)
    at most ``cluster.request_timeout``; their ``*_async`` forms never block the event
    loop. Errors: bad input → :class:`InvalidArgument`; a blocking call from one of
    switchboard's own threads (an event or send callback) → :class:`FailedPrecondition`
    (use the async form); after ``manager.close()`` → :class:`Unavailable`.
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.Cluster) -> None:
        self._native = native

    @property
    def name(self) -> str:
        """``cluster.name``."""
        return self._native.name

    @property
    def node_id(self) -> str:
        """This instance's ``cluster.node_id``."""
        return self._native.node_id

    @property
    def node_number(self) -> int:
        """This instance's number: the top bits of its connection ids."""
        return self._native.node_number

    @property
    def joined(self) -> bool:
        """Whether Redis is reachable and this instance takes part."""
        return self._native.joined

    def members(self) -> Tuple[Member, ...]:
        """The live members as of the last heartbeat, this instance included (when
        joined). Never waits."""
        return tuple(Member(**m) for m in self._native.members())

    # --- broadcast ------------------------------------------------------------------

    def broadcast(
        self,
        msg: Message,
        *,
        topic: Optional[str] = None,
        topics: Iterable[str] = (),
        user: Optional[str] = None,
        users: Iterable[str] = (),
        ids: Iterable[int] = (),
        all: bool = False,
        exclude: Iterable[int] = (),
    ) -> ClusterBroadcast:
        """:meth:`Registry.broadcast` on every instance, waiting for their
        acknowledgements (up to ``cluster.request_timeout``) to say what it reached. A
        plain ``manager.registry.broadcast`` reaches the cluster too, without waiting."""
        target = _target(all, topic, topics, user, users, ids, exclude)
        return _broadcast(self._native.broadcast(msg, *target))

    async def broadcast_async(
        self,
        msg: Message,
        *,
        topic: Optional[str] = None,
        topics: Iterable[str] = (),
        user: Optional[str] = None,
        users: Iterable[str] = (),
        ids: Iterable[int] = (),
        all: bool = False,
        exclude: Iterable[int] = (),
    ) -> ClusterBroadcast:
        """:meth:`broadcast` for asyncio."""
        target = _target(all, topic, topics, user, users, ids, exclude)
        return await _await_native(
            lambda done: self._native.broadcast_async(msg, *target, done), _broadcast
        )

    # --- list -----------------------------------------------------------------------

    def list(
        self,
        *,
        user: Optional[str] = None,
        topic: Optional[str] = None,
        meta: Optional[Tuple[str, str]] = None,
        state: Optional[ConnInfoState] = None,
        min_idle: Optional[float] = None,
        limit: int = 0,
        cursor: Optional[int] = None,
    ) -> ClusterList:
        """One page of the connections of every live member, in id order, with the
        filters of :meth:`Registry.list`; pass the page's ``next_cursor`` as
        ``cursor`` for the next."""
        filter = _list_filter(user, topic, meta, state, min_idle, limit, cursor)
        return _list(self._native.list(*filter))

    async def list_async(
        self,
        *,
        user: Optional[str] = None,
        topic: Optional[str] = None,
        meta: Optional[Tuple[str, str]] = None,
        state: Optional[ConnInfoState] = None,
        min_idle: Optional[float] = None,
        limit: int = 0,
        cursor: Optional[int] = None,
    ) -> ClusterList:
        """:meth:`list` for asyncio."""
        filter = _list_filter(user, topic, meta, state, min_idle, limit, cursor)
        return await _await_native(lambda done: self._native.list_async(*filter, done), _list)

    # --- disconnect -----------------------------------------------------------------

    def disconnect(
        self,
        *,
        ids: Iterable[int] = (),
        user: Optional[str] = None,
        users: Iterable[str] = (),
        topic: Optional[str] = None,
        topics: Iterable[str] = (),
        all: bool = False,
        exclude: Iterable[int] = (),
        reason: str = "",
    ) -> ClusterCount:
        """:meth:`Registry.disconnect` on every live member: removes what the target
        matches for ``reason`` (empty: ``"disconnected"``)."""
        target = _target(all, topic, topics, user, users, ids, exclude)
        return _count(self._native.disconnect(*target, _reason(reason)))

    async def disconnect_async(
        self,
        *,
        ids: Iterable[int] = (),
        user: Optional[str] = None,
        users: Iterable[str] = (),
        topic: Optional[str] = None,
        topics: Iterable[str] = (),
        all: bool = False,
        exclude: Iterable[int] = (),
        reason: str = "",
    ) -> ClusterCount:
        """:meth:`disconnect` for asyncio."""
        target = _target(all, topic, topics, user, users, ids, exclude)
        why = _reason(reason)
        return await _await_native(
            lambda done: self._native.disconnect_async(*target, why, done), _count
        )

    # --- stats and resources --------------------------------------------------------

    def stats(self) -> ClusterStats:
        """The registry statistics of every live member, and their sum."""
        return _stats(self._native.stats())

    async def stats_async(self) -> ClusterStats:
        """:meth:`stats` for asyncio."""
        return await _await_native(self._native.stats_async, _stats)

    def resource_status(self, id: str) -> ClusterResource:
        """Named resource ``id``'s status on every live member (``"absent"`` where it
        is not created)."""
        return _resource(self._native.resource_status(_resource_id(id)))

    async def resource_status_async(self, id: str) -> ClusterResource:
        """:meth:`resource_status` for asyncio."""
        rid = _resource_id(id)
        return await _await_native(
            lambda done: self._native.resource_status_async(rid, done), _resource
        )

    def __repr__(self) -> str:
        try:
            return (
                f"<switchboard.Cluster name={self.name!r} node_id={self.node_id!r} "
                f"number={self.node_number} joined={self.joined}>"
            )
        except Exception:  # noqa: BLE001 - a repr never raises
            return "<switchboard.Cluster>"
