"""The live-connection registry: ``manager.registry``.

The table of clients a server holds (WebSocket servers, brokers, game servers): ids,
users, metadata, topic subscriptions, broadcast with an except set, bounded
per-connection queues with a slow-consumer policy, heartbeats and stale cleanup,
limits, an authentication hook, listing, disconnect and statistics. The transport stays
the program's: the registry hands each connection's messages to its sink, a send
callback (:meth:`Registry.register`) or an outbox the program drains
(:meth:`Registry.register_outbox`). Everything here translates; the behaviour is the
core's (``docs/registry.md``).

The pieces, one module each: the value types (``_registry_types``), the connection
handles (``_registry_conn``), the event-loop lanes of async callbacks
(``_registry_lanes``) and the JSON envelope (``_envelope``).
"""

from __future__ import annotations

import inspect
from typing import (
    Any,
    Callable,
    Iterable,
    List,
    Mapping,
    Optional,
    Tuple,
)

from . import _native
from ._args import is_u64, opt_str, running_loop, seconds
from ._errors import InvalidArgument, NotFound
from ._registry_conn import Connection, Outbox
from ._registry_lanes import Lane
from ._registry_types import (
    BroadcastReport,
    CleanupReport,
    ConnInfo,
    ConnInfoState,
    ListPage,
    Message,
    RegistryStats,
    broadcast_report,
    conn_info,
    registry_stats,
)

__all__ = ["Registry"]

# --- argument helpers ----------------------------------------------------------------
#
# Each turns a Python argument into what the native module takes, refusing with
# InvalidArgument what pyo3's conversion would refuse with a bare TypeError or
# OverflowError (or, for a str given as a list, would take as a list of letters).


def _id(id: object) -> int:
    """A connection id for the native module: an int in 0..2**64 (others are no
    connection)."""
    if isinstance(id, bool) or not isinstance(id, int):
        raise InvalidArgument(f"a connection id is an int, got {type(id).__name__} {id!r}")
    if not is_u64(id):
        # Core never sees it (it is no u64): its NotFound, said here.
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
        if is_u64(v):
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


def _callables(**hooks: Optional[Callable[..., Any]]) -> None:
    """Refuses a hook that is given (not ``None``) but cannot be called."""
    for what, f in hooks.items():
        if f is not None and not callable(f):
            raise InvalidArgument(f"{what} must be callable, got {type(f).__name__} {f!r}")


#: What the native register calls take after the sink: user, metadata, topics, token.
_Registration = Tuple[Optional[str], List[Tuple[str, str]], List[str], Optional[str]]


def _registration(
    user: object, metadata: Optional[Mapping[str, str]], topics: Iterable[str], token: object
) -> _Registration:
    """The arguments ``register`` and ``register_outbox`` share, converted."""
    return (
        opt_str("user", user),
        _metadata(metadata),
        _names("topics", None, topics),
        opt_str("token", token),
    )


#: What the native broadcast and disconnect take for their target: all, topics, users,
#: ids and the except set.
_Target = Tuple[bool, List[str], List[str], List[int], List[int]]


def _target(
    all: bool,
    topic: Optional[str],
    topics: Iterable[str],
    user: Optional[str],
    users: Iterable[str],
    ids: Iterable[int],
    exclude: Iterable[int],
) -> _Target:
    """The target ``broadcast`` and ``disconnect`` share, converted."""
    return (
        bool(all),
        _names("topics", topic, topics),
        _names("users", user, users),
        _ids("ids", ids),
        _ids("exclude", exclude),
    )


#: What the native list calls take: user, topic, meta, state, min_idle, limit, cursor.
_ListFilter = Tuple[
    Optional[str],
    Optional[str],
    Optional[Tuple[str, str]],
    Optional[str],
    Optional[float],
    int,
    Optional[int],
]


def _list_filter(
    user: Optional[str],
    topic: Optional[str],
    meta: Optional[Tuple[str, str]],
    state: Optional[str],
    min_idle: Optional[float],
    limit: int,
    cursor: Optional[int],
) -> _ListFilter:
    """The filter ``list`` takes (the registry's and the cluster's), converted."""
    if meta is not None:
        if (
            not isinstance(meta, tuple)
            or len(meta) != 2
            or not all(isinstance(x, str) for x in meta)
        ):
            raise InvalidArgument(f"meta must be a (key, value) tuple of str, got {meta!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidArgument(f"limit must be a non-negative int, got {limit!r}")
    if cursor is not None and not is_u64(cursor):
        raise InvalidArgument(
            f"cursor must be a page's next_cursor (an int) or None, got {cursor!r}"
        )
    return (
        opt_str("user", user),
        opt_str("topic", topic),
        meta,
        opt_str("state", state),
        seconds("min_idle", min_idle),
        limit,
        cursor,
    )


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
        _callables(send=send, on_ping=on_ping, on_close=on_close)
        loop = running_loop()
        if loop is None and any(
            inspect.iscoroutinefunction(f) for f in (send, on_ping, on_close) if f is not None
        ):
            raise InvalidArgument(
                "send, on_ping or on_close is a coroutine function, which needs an event loop "
                "to run on: register inside a running event loop (in an async def), or pass "
                "plain functions"
            )
        lane = None if loop is None else Lane(loop, self._native)
        id = self._native.register(
            send,
            *_registration(user, metadata, topics, token),
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
        native = self._native.register_outbox(*_registration(user, metadata, topics, token))
        return Outbox(self, native)

    def unregister(self, id: int, reason: str = "") -> None:
        """Removes connection ``id`` for ``reason`` (empty: ``"unregistered"``): its queue
        is discarded, its ``on_close`` runs (an outbox ends), and an ``unregistered``
        event names the reason. :class:`NotFound` if it is not registered."""
        self._native.unregister(_id(id), reason)

    # --- look up --------------------------------------------------------------------

    def get(self, id: int) -> ConnInfo:
        """A snapshot of connection ``id``; :class:`NotFound` if it is not registered."""
        return conn_info(self._native.get(_id(id)))

    def __contains__(self, id: object) -> bool:
        return is_u64(id) and self._native.contains(id)

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
        filter = _list_filter(user, topic, meta, state, min_idle, limit, cursor)
        raw, next_cursor = self._native.list(*filter)
        return ListPage(tuple(conn_info(c) for c in raw), next_cursor)

    def stats(self) -> RegistryStats:
        """The registry's statistics."""
        return registry_stats(self._native.stats())

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
        self._native.set_metadata(_id(id), key, opt_str("value", value))

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
        target = _target(all, topic, topics, user, users, ids, exclude)
        return broadcast_report(self._native.broadcast(msg, *target))

    def send(self, id: int, msg: Message) -> BroadcastReport:
        """Queues ``msg`` for connection ``id`` alone; :class:`NotFound` if it is not
        registered."""
        return broadcast_report(self._native.send(_id(id), msg))

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
        target = _target(all, topic, topics, user, users, ids, exclude)
        return self._native.disconnect(*target, reason)

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
        _callables(authenticate=authenticate, authorize=authorize)
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
            return opt_str("the user authenticate returned", user), _metadata(meta)

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


