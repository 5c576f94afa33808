"""The live-connection registry: ``manager.registry``.

The table of clients a server holds (WebSocket servers, brokers, game servers): ids,
users, metadata, topic subscriptions, broadcast with an except set, bounded
per-connection queues with a slow-consumer policy, heartbeats and stale cleanup,
limits, an authentication hook, listing, disconnect and statistics. The transport stays
the program's: the registry hands each connection's messages to its sink, a send
callback (:meth:`Registry.register`) or an outbox the program drains
(:meth:`Registry.register_outbox`). Everything here translates; the behaviour is the
core's (``docs/registry.md``).
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import json
import weakref
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Deque,
    Dict,
    Final,
    Iterable,
    Iterator,
    List,
    Literal,
    Mapping,
    Optional,
    Tuple,
    Union,
    final,
)

from . import _native
from ._errors import InvalidArgument, NotFound, SwitchboardError, Unavailable

__all__ = [
    "PING",
    "Ping",
    "Item",
    "Registry",
    "Connection",
    "Outbox",
    "ConnInfo",
    "ListPage",
    "BroadcastReport",
    "CleanupReport",
    "RegistryStats",
    "ConnInfoState",
    "envelope",
    "parse_envelope",
]

_U64 = 1 << 64

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


# --- argument helpers ----------------------------------------------------------------


def _id(id: object) -> int:
    """A connection id for the native module: an int in 0..2**64 (others are no
    connection)."""
    if isinstance(id, bool) or not isinstance(id, int):
        raise InvalidArgument(f"a connection id is an int, got {type(id).__name__} {id!r}")
    if not 0 <= id < _U64:
        raise NotFound(
            f"no registered connection with id {id} (it left, or was never registered)"
        )
    return id


def _ids(what: str, ids: Iterable[int]) -> list[int]:
    if isinstance(ids, int):
        raise InvalidArgument(f"{what} must be a list of connection ids, got the int {ids}: write [{ids}]")
    out: list[int] = []
    for i, v in enumerate(ids):
        if isinstance(v, bool) or not isinstance(v, int):
            raise InvalidArgument(
                f"{what}[{i}] must be a connection id (int), got {type(v).__name__} {v!r}"
            )
        if 0 <= v < _U64:
            out.append(v)
        # An id outside 0..2**64 names no connection: nothing to match or exclude.
    return out


def _names(what: str, one: Optional[str], many: Iterable[str]) -> list[str]:
    """`one` (if given) and `many` as one list of strings (a single str given for the
    list is refused: it would be a list of letters)."""
    if isinstance(many, (str, bytes)):
        raise InvalidArgument(
            f"{what} must be a list of names, got the single {type(many).__name__} "
            f"{many!r}: write [{many!r}]"
        )
    out = [] if one is None else [one]
    out.extend(many)
    for i, name in enumerate(out):
        if not isinstance(name, str):
            raise InvalidArgument(
                f"{what}[{i}] must be a str, got {type(name).__name__} {name!r}"
            )
    return out


def _opt_str(what: str, value: object) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    raise InvalidArgument(f"{what} must be a str or None, got {type(value).__name__} {value!r}")


def _metadata(metadata: Optional[Mapping[str, str]]) -> list[tuple[str, str]]:
    if metadata is None:
        return []
    if not isinstance(metadata, Mapping):
        raise InvalidArgument(
            f"metadata must be a mapping of str to str, got {type(metadata).__name__} {metadata!r}"
        )
    out: list[tuple[str, str]] = []
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InvalidArgument(
                f"metadata must map str to str, got {k!r}: {v!r} "
                f"({type(k).__name__}: {type(v).__name__})"
            )
        out.append((k, v))
    return out


def _seconds(what: str, value: object) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(
            f"{what} must be a number of seconds, a datetime.timedelta or None, "
            f"got {type(value).__name__} {value!r}"
        )
    return float(value)


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# --- values --------------------------------------------------------------------------


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


def _info(raw: Mapping[str, Any]) -> ConnInfo:
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


def _report(raw: Tuple[int, int, int, int, float]) -> BroadcastReport:
    return BroadcastReport(*raw)


# --- async sends ---------------------------------------------------------------------

_REPORT_ALL = 1
_REPORT_FAILURE = 2


class _Inbox:
    """The awaitables switchboard's delivery threads hand to one event loop: a delivery
    round's worth reaches the loop in one ``call_soon_threadsafe`` (one wake-up), not one
    per message. ``put`` runs on a delivery thread and ``_flush`` on the loop, both with
    the GIL held; ``_flush`` clears ``_pending`` before it drains, so an item put while it
    drains is either drained now or scheduled again."""

    __slots__ = ("_loop", "_items", "_pending", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: Deque[Tuple[_Lane, int, Awaitable[Any], int]] = collections.deque()
        self._pending = False

    def put(self, lane: _Lane, id: int, awaitable: Awaitable[Any], report: int) -> None:
        if self._loop.is_closed():
            _close(awaitable)
            raise Unavailable("the event loop that runs this connection's async callbacks is closed")
        self._items.append((lane, id, awaitable, report))
        if not self._pending:
            self._pending = True
            try:
                self._loop.call_soon_threadsafe(self._flush)
            except RuntimeError:  # closed meanwhile
                self._pending = False
                raise

    def _flush(self) -> None:
        self._pending = False
        items = self._items
        while items:
            lane, id, awaitable, report = items.popleft()
            lane._push(id, awaitable, report)


def _close(awaitable: Awaitable[Any]) -> None:
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()


_inboxes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Inbox]" = (
    weakref.WeakKeyDictionary()
)


def _inbox(loop: asyncio.AbstractEventLoop) -> _Inbox:
    box = _inboxes.get(loop)
    if box is None:
        box = _inboxes[loop] = _Inbox(loop)
    return box


class _Lane:
    """Runs the awaitables one connection's callbacks return, in order, on the event
    loop that was running when it registered, and reports each send's result to core."""

    __slots__ = ("_inbox", "_loop", "_native", "_queue", "_running")

    def __init__(self, loop: asyncio.AbstractEventLoop, native: _native.Registry) -> None:
        self._inbox = _inbox(loop)
        self._loop = loop
        self._native = native
        self._queue: Deque[Tuple[int, Awaitable[Any], int]] = collections.deque()
        self._running = False

    def schedule(self, id: int, awaitable: Awaitable[Any], report: int) -> None:
        """Called on a switchboard thread (with the GIL): hands it to the loop."""
        self._inbox.put(self, id, awaitable, report)

    def _push(self, id: int, awaitable: Awaitable[Any], report: int) -> None:
        self._queue.append((id, awaitable, report))
        if not self._running:
            self._running = True
            task = self._loop.create_task(self._drain())
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)

    async def _drain(self) -> None:
        try:
            while self._queue:
                id, awaitable, report = self._queue.popleft()
                error: Optional[str] = None
                try:
                    await awaitable
                except asyncio.CancelledError:
                    error = "the send was cancelled"
                except Exception as exc:  # noqa: BLE001 - any failure is a failed send
                    error = str(exc) or type(exc).__name__
                if report == _REPORT_ALL or (report == _REPORT_FAILURE and error is not None):
                    try:
                        self._native.report_send(id, error)
                    except (NotFound, Unavailable):  # it left meanwhile
                        pass
        finally:
            self._running = False


# Lane tasks in progress (kept until done, so they are not garbage-collected).
_tasks: set[asyncio.Task[Any]] = set()


# --- the registry --------------------------------------------------------------------


class Registry:
    """The live-connection registry of a manager (``manager.registry``).

    Register each client with a sink: :meth:`register` (a send callback, plain or
    ``async def``) or :meth:`register_outbox` (an outbox the program drains). Then
    :meth:`broadcast` to topics, users, ids or everyone minus an except set; the
    registry queues per connection (``registry.queue_max_messages`` /
    ``queue_max_bytes``, ``registry.queue_full_policy``) and never blocks on a client.
    Errors: bad input → :class:`InvalidArgument`; an unknown id → :class:`NotFound`; a
    limit → :class:`ResourceExhausted` naming its key; the auth hook's refusals →
    :class:`Unauthenticated` / :class:`PermissionDenied`; after ``manager.close()`` →
    :class:`Unavailable`. The ``registry.*`` keys of the manager configure it.
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.Registry) -> None:
        self._native = native

    # --- register -------------------------------------------------------------------

    def register(
        self,
        send: Callable[[Any], Any],
        *,
        user: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
        topics: Iterable[str] = (),
        token: Optional[str] = None,
        on_ping: Optional[Callable[[], Any]] = None,
        on_close: Optional[Callable[[str], Any]] = None,
    ) -> Connection:
        """Registers a connection whose messages go to ``send(msg)`` (``str`` for a text
        message, ``bytes`` for binary) and returns its :class:`Connection`.

        ``send`` runs on one of switchboard's threads, one call at a time per
        connection and in order; it must be quick (hand the message to the transport).
        It may be an ``async def`` (or return an awaitable): the awaitable then runs on
        the event loop that was running when ``register`` was called, after the
        connection's earlier ones, and its result is reported to the registry (an
        exception counts as a failed delivery; after ``registry.max_send_failures`` in a
        row the connection is removed with reason ``send_failed``). A plain ``send``
        fails by raising. ``on_ping()`` is called every ``registry.heartbeat_interval``
        (send your transport's ping); ``on_close(reason)`` once, last, when the
        connection leaves: close the transport there (both may be ``async def`` too).
        ``token`` goes to the :meth:`set_authenticator` hook, whose user and metadata
        are merged over ``user`` and ``metadata``."""
        for what, f in (("send", send), ("on_ping", on_ping), ("on_close", on_close)):
            if f is not None and not callable(f):
                raise InvalidArgument(f"{what} must be callable, got {type(f).__name__} {f!r}")
        loop = _running_loop()
        if loop is None and any(
            inspect.iscoroutinefunction(f) for f in (send, on_ping, on_close) if f is not None
        ):
            raise InvalidArgument(
                "send, on_ping or on_close is a coroutine function, which needs an event loop "
                "to run on: register inside a running event loop (in an async def), or pass "
                "plain functions"
            )
        lane = None if loop is None else _Lane(loop, self._native)
        id = self._native.register(
            send,
            _opt_str("user", user),
            _metadata(metadata),
            _names("topics", None, topics),
            _opt_str("token", token),
            on_ping,
            on_close,
            None if lane is None else lane.schedule,
        )
        return Connection(self, id)

    def register_outbox(
        self,
        *,
        user: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
        topics: Iterable[str] = (),
        token: Optional[str] = None,
    ) -> Outbox:
        """Registers a connection whose messages the program pulls from the returned
        :class:`Outbox` (``for item in outbox`` on a thread, ``async for item in outbox``
        in asyncio). Arguments as for :meth:`register`."""
        native = self._native.register_outbox(
            _opt_str("user", user),
            _metadata(metadata),
            _names("topics", None, topics),
            _opt_str("token", token),
        )
        return Outbox(self, native)

    def unregister(self, id: int, reason: str = "") -> None:
        """Removes connection ``id`` for ``reason`` (empty: ``"unregistered"``): its queue
        is discarded, its ``on_close`` runs (an outbox ends), and an ``unregistered``
        event names the reason. :class:`NotFound` if it is not registered."""
        self._native.unregister(_id(id), reason)

    # --- look up --------------------------------------------------------------------

    def get(self, id: int) -> ConnInfo:
        """A snapshot of connection ``id``; :class:`NotFound` if it is not registered."""
        return _info(self._native.get(_id(id)))

    def __contains__(self, id: object) -> bool:
        if isinstance(id, bool) or not isinstance(id, int) or not 0 <= id < _U64:
            return False
        return self._native.contains(id)

    def __len__(self) -> int:
        return self._native.len()

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
    ) -> ListPage:
        """One page of the connections every given filter matches, in id order:
        ``user``, ``topic``, ``meta=(key, value)``, ``state`` (``"active"`` /
        ``"idle"``), ``min_idle`` (seconds silent at least). ``limit`` 0 means 100 (at
        most 10,000); pass the page's ``next_cursor`` as ``cursor`` for the next."""
        if meta is not None:
            if (
                not isinstance(meta, tuple)
                or len(meta) != 2
                or not all(isinstance(x, str) for x in meta)
            ):
                raise InvalidArgument(f"meta must be a (key, value) tuple of str, got {meta!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidArgument(f"limit must be a non-negative int, got {limit!r}")
        if cursor is not None:
            if isinstance(cursor, bool) or not isinstance(cursor, int) or not 0 <= cursor < _U64:
                raise InvalidArgument(
                    f"cursor must be a page's next_cursor (an int) or None, got {cursor!r}"
                )
        raw, next_cursor = self._native.list(
            _opt_str("user", user),
            _opt_str("topic", topic),
            meta,
            _opt_str("state", state),
            _seconds("min_idle", min_idle),
            limit,
            cursor,
        )
        return ListPage(tuple(_info(c) for c in raw), next_cursor)

    def stats(self) -> RegistryStats:
        """The registry's statistics."""
        raw: Dict[str, Any] = dict(self._native.stats())
        raw["topic_counts"] = tuple((t, n) for t, n in raw["topic_counts"])
        return RegistryStats(**raw)

    # --- per connection -------------------------------------------------------------

    def touch(self, id: int) -> None:
        """Records traffic from connection ``id`` now: call it on every message from the
        client (a pong included), so it stays ``active`` and is never ``stale``."""
        self._native.touch(_id(id))

    def subscribe(self, id: int, topic: str) -> bool:
        """Subscribes ``id`` to ``topic``; ``False`` if it already was. Limits and the
        authorize hook apply (:class:`ResourceExhausted`, :class:`PermissionDenied`)."""
        return self._native.subscribe(_id(id), topic)

    def unsubscribe(self, id: int, topic: str) -> bool:
        """Unsubscribes ``id`` from ``topic``; ``False`` if it was not subscribed."""
        return self._native.unsubscribe(_id(id), topic)

    def set_metadata(self, id: int, key: str, value: Optional[str]) -> None:
        """Sets (or with ``None`` removes) one metadata entry of connection ``id``."""
        self._native.set_metadata(_id(id), key, _opt_str("value", value))

    # --- send -----------------------------------------------------------------------

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
    ) -> BroadcastReport:
        """Queues ``msg`` for every connection the target matches, each once: the
        subscribers of ``topic``/``topics``, the connections of ``user``/``users``, the
        ``ids``, or ``all``; minus ``exclude``. Returns at once (send callbacks run on
        switchboard's threads; outboxes are drained by the program); a full queue meets
        ``registry.queue_full_policy``. :class:`InvalidArgument` if the target names
        nobody."""
        return _report(
            self._native.broadcast(
                msg,
                bool(all),
                _names("topics", topic, topics),
                _names("users", user, users),
                _ids("ids", ids),
                _ids("exclude", exclude),
            )
        )

    def send(self, id: int, msg: Message) -> BroadcastReport:
        """Queues ``msg`` for connection ``id`` alone; :class:`NotFound` if it is not
        registered."""
        return _report(self._native.send(_id(id), msg))

    # --- admin ----------------------------------------------------------------------

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
    ) -> int:
        """Removes every connection the target matches (minus ``exclude``) for
        ``reason`` (empty: ``"disconnected"``); returns how many. Each gets its
        ``on_close(reason)`` (an outbox ends with ``closed_reason == reason``)."""
        if not isinstance(reason, str):
            raise InvalidArgument(f"reason must be a str, got {type(reason).__name__} {reason!r}")
        return self._native.disconnect(
            bool(all),
            _names("topics", topic, topics),
            _names("users", user, users),
            _ids("ids", ids),
            _ids("exclude", exclude),
            reason,
        )

    def cleanup(self) -> CleanupReport:
        """Runs the heartbeat and stale-cleanup pass now (the background pass runs it
        every ``registry.cleanup_interval`` / ``heartbeat_interval``): removes
        connections silent for ``registry.connection_timeout`` (reason ``stale``) and
        asks for a ping on each not pinged for ``registry.heartbeat_interval``."""
        removed, pinged = self._native.cleanup()
        return CleanupReport(removed, pinged)

    def set_authenticator(
        self,
        authenticate: Optional[Callable[[str], Optional[Tuple[Optional[str], Optional[Mapping[str, str]]]]]],
        authorize: Optional[Callable[[int, Optional[str], str], bool]] = None,
    ) -> None:
        """Sets (or with ``None`` clears) the authentication hook.

        ``authenticate(token)`` runs in ``register`` when a token is given and returns
        ``(user, metadata)`` (either may be ``None``) to accept it; returning ``None`` or
        raising refuses it: the register raises :class:`Unauthenticated` quoting the
        exception. ``authorize(conn_id, user, topic)`` runs for every subscription (the
        register's topics included) and returns ``True`` to allow it; ``False`` or
        raising refuses it with :class:`PermissionDenied`. Both run on the calling
        thread, synchronously."""
        if authenticate is None:
            if authorize is not None:
                raise InvalidArgument("authorize= needs authenticate=: set both, or neither")
            self._native.set_authenticator(None, None)
            return
        for what, f in (("authenticate", authenticate), ("authorize", authorize)):
            if f is not None and not callable(f):
                raise InvalidArgument(f"{what} must be callable, got {type(f).__name__} {f!r}")
        auth = authenticate

        def check_token(token: str) -> Tuple[Optional[str], List[Tuple[str, str]]]:
            got = auth(token)
            if got is None:
                raise _Refused("the hook returned None")
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Refused(
                    f"authenticate must return (user, metadata) or None, got {got!r}"
                )
            user, meta = got
            return _opt_str("the user authenticate returned", user), _metadata(meta)

        check_topic: Optional[Callable[[int, Optional[str], str], None]] = None
        if authorize is not None:
            allow = authorize

            def check_topic(id: int, user: Optional[str], topic: str) -> None:
                if not allow(id, user, topic):
                    raise _Refused("the hook returned False")

        self._native.set_authenticator(check_token, check_topic)

    def __repr__(self) -> str:
        try:
            return f"<switchboard.Registry connections={len(self)}>"
        except Exception:  # noqa: BLE001 - a repr never raises
            return "<switchboard.Registry>"


class _Refused(Exception):
    """A refusal by a hook that did not raise its own exception."""


# --- connections ---------------------------------------------------------------------


class Connection:
    """A registered connection (:meth:`Registry.register`): the registry's calls
    without the id. A context manager: the block's end unregisters it.
    :meth:`unregister` / :meth:`close` are safe twice (and after the manager closed)."""

    __slots__ = ("_registry", "_id")

    def __init__(self, registry: Registry, id: int) -> None:
        self._registry = registry
        self._id = id

    @property
    def id(self) -> int:
        """The connection's id (unique within the process, never reused)."""
        return self._id

    @property
    def registered(self) -> bool:
        """Whether it is still in the registry."""
        try:
            return self._id in self._registry
        except SwitchboardError:
            return False

    def touch(self) -> None:
        """:meth:`Registry.touch`: call it on every message from the client."""
        self._registry.touch(self._id)

    def subscribe(self, topic: str) -> bool:
        """:meth:`Registry.subscribe`."""
        return self._registry.subscribe(self._id, topic)

    def unsubscribe(self, topic: str) -> bool:
        """:meth:`Registry.unsubscribe`."""
        return self._registry.unsubscribe(self._id, topic)

    def set_metadata(self, key: str, value: Optional[str]) -> None:
        """:meth:`Registry.set_metadata`."""
        self._registry.set_metadata(self._id, key, value)

    def info(self) -> ConnInfo:
        """:meth:`Registry.get` for this connection."""
        return self._registry.get(self._id)

    def send(self, msg: Message) -> BroadcastReport:
        """:meth:`Registry.send` to this connection."""
        return self._registry.send(self._id, msg)

    def unregister(self, reason: str = "") -> None:
        """Removes it from the registry (:meth:`Registry.unregister`); does nothing if it
        already left."""
        try:
            self._registry.unregister(self._id, reason)
        except (NotFound, Unavailable):
            pass

    def close(self) -> None:
        """:meth:`unregister` with the default reason."""
        self.unregister()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "registered" if self.registered else "gone"
        return f"<switchboard.Connection id={self._id} {state}>"


class Outbox(Connection):
    """A connection whose messages the program pulls (:meth:`Registry.register_outbox`).

    Items are messages (``str`` for text, ``bytes`` for binary) and :data:`PING` (ping
    your client). ``for item in outbox`` waits on the calling thread with the GIL
    released; ``async for item in outbox`` and ``await outbox.next_async()`` wait without
    blocking the event loop. Both end when the connection leaves the registry;
    :attr:`closed_reason` then says why (``"stale"``, ``"slow_consumer"``,
    ``"send_failed"``, ``"manager_closed"``, the reason given to ``unregister`` or
    ``disconnect``, ...). :meth:`close` (and the end of a ``with`` block) unregisters
    the connection and closes the outbox."""

    __slots__ = ("_outbox", "_inflight")

    def __init__(self, registry: Registry, native: _native.Outbox) -> None:
        super().__init__(registry, native.id)
        self._outbox = native
        self._inflight: Optional[asyncio.Future[Optional[Item]]] = None

    @property
    def closed_reason(self) -> Optional[str]:
        """Why the connection left, once the outbox has yielded its end; else ``None``."""
        return self._outbox.closed_reason

    def touch(self) -> None:
        """Records traffic from the client now (it stays ``active``, never ``stale``)."""
        self._outbox.touch()

    def next(self, timeout: Optional[float] = None) -> Optional[Item]:
        """The next item, waiting up to ``timeout`` seconds (``None``: until one comes)
        with the GIL released. ``None`` when none came in time, or when the connection
        left (then :attr:`closed_reason` is set, and every later call returns ``None``
        at once)."""
        return self._outbox.next(_seconds("timeout", timeout))

    def try_next(self) -> Optional[Item]:
        """The next item if one is queued now, else ``None`` (never waits)."""
        return self._outbox.try_next()

    def __iter__(self) -> Iterator[Item]:
        return self

    def __next__(self) -> Item:
        item = self._outbox.next(None)
        if item is None:
            raise StopIteration
        return item

    async def next_async(self) -> Optional[Item]:
        """The next item, waiting without blocking the event loop; ``None`` once the
        connection left. Cancelling the wait loses no item: the next call gets it."""
        fut = self._inflight
        if fut is None:
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            self._inflight = fut

            def settle(item: Optional[Item], exc: Optional[BaseException]) -> None:
                # On a switchboard thread: hand the result to the loop.
                try:
                    loop.call_soon_threadsafe(_settle, fut, item, exc)
                except RuntimeError:  # the loop is closed
                    pass

            try:
                self._outbox.next_async(settle)
            except BaseException:
                self._inflight = None
                raise
        # shield: a cancelled caller leaves the wait (and its item) to the next call.
        item = await asyncio.shield(fut)
        if self._inflight is fut:
            self._inflight = None
        return item

    def __aiter__(self) -> AsyncIterator[Item]:
        return self

    async def __anext__(self) -> Item:
        item = await self.next_async()
        if item is None:
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        """Unregisters the connection (if it is still registered) and closes the outbox;
        safe twice."""
        self.unregister()
        self._outbox.close()

    def __enter__(self) -> Outbox:
        return self

    def __repr__(self) -> str:
        reason = self.closed_reason
        if reason is not None:
            return f"<switchboard.Outbox id={self._id} closed reason={reason!r}>"
        state = "registered" if self.registered else "gone"
        return f"<switchboard.Outbox id={self._id} {state}>"


def _settle(
    fut: asyncio.Future[Optional[Item]], item: Optional[Item], exc: Optional[BaseException]
) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(item)


# --- the envelope --------------------------------------------------------------------


def envelope(
    type: str,
    data: Any = None,
    topic: Optional[str] = None,
    error: Optional[str] = None,
) -> str:
    """Seed 004's JSON message envelope as text: ``{"type": ..., "topic": ...,
    "data": ..., "timestamp": "<RFC 3339, UTC>", "error": ...}`` (``None`` fields left
    out). ``data`` is any value ``json.dumps`` takes. Made by core, as in every
    language."""
    data_json = None if data is None else json.dumps(data)
    return _native.envelope_encode(type, _opt_str("topic", topic), data_json, _opt_str("error", error))


def parse_envelope(text: Union[str, bytes]) -> Dict[str, Any]:
    """Decodes an envelope into a dict with the keys ``type``, ``topic``, ``data``,
    ``timestamp`` and ``error`` (``None`` when absent). :class:`InvalidArgument` says
    what is wrong with text that is not one."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode()
        except UnicodeDecodeError as exc:
            raise InvalidArgument(f"an envelope must be UTF-8 JSON text: {exc}") from None
    if not isinstance(text, str):
        raise InvalidArgument(f"an envelope is JSON text (str), got {type(text).__name__}")
    kind, topic, data_json, timestamp, error = _native.envelope_decode(text)
    return {
        "type": kind,
        "topic": topic,
        "data": None if data_json is None else json.loads(data_json),
        "timestamp": timestamp,
        "error": error,
    }
