"""Sessions and stream offsets: ``manager.sessions``.

A session is a logical client connection to a data source's session key, reading
several streams, each from its own offset. Offsets follow Kafka: the *position* (next
offset to deliver) advances as the program delivers; ``commit`` records what is safe to
resume from and never goes backwards unless ``seek`` rewinds on purpose. Committed
offsets live in the manager's offset store: in memory, or durable on disk when the
manager has ``offsets_path`` set. Everything here translates; the behaviour is the core's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Iterable, List, Literal, Optional, Tuple, Union

from . import _native
from ._errors import InvalidArgument, NotFound, Unavailable

__all__ = ["Session", "SessionInfo", "Sessions", "StoreKind", "StreamInfo"]

#: The offset store's kind (``Sessions.store_kind``). A Union of one-word Literals
#: (rather than ``Literal["memory", "durable"]``) so that mypy.stubtest accepts it.
StoreKind = Union[Literal["memory"], Literal["durable"], Literal["redis"]]

_U64 = 1 << 64


def _id(id: object) -> int:
    """A session id for the native module: an int in 0..2**64 (others are no session)."""
    if isinstance(id, bool) or not isinstance(id, int):
        raise InvalidArgument(f"a session id is an int, got {type(id).__name__} {id!r}")
    if not 0 <= id < _U64:
        raise NotFound(f"no open session with id {id} (it was closed, or never opened)")
    return id


def _count(what: str, value: object) -> int:
    """A counter increment: an int in 0..2**64."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _U64:
        raise InvalidArgument(f"{what} must be a non-negative integer, got {value!r}")
    return value


def _names(what: str, names: Iterable[str]) -> list[str]:
    """A list of stream names (a single str is refused: it would be a list of letters)."""
    if isinstance(names, (str, bytes)):
        raise InvalidArgument(
            f"{what} must be a list of stream names, got the single "
            f"{type(names).__name__} {names!r}: write [{names!r}]"
        )
    out = list(names)
    for i, name in enumerate(out):
        if not isinstance(name, str):
            raise InvalidArgument(
                f"{what}[{i}] must be a stream name (str), got {type(name).__name__} {name!r}"
            )
    return out


def _offsets(offsets: Iterable[int]) -> list[int]:
    out = list(offsets)
    for i, o in enumerate(out):
        if isinstance(o, bool) or not isinstance(o, int):
            raise InvalidArgument(
                f"stream_offsets[{i}] must be an integer offset, got {type(o).__name__} {o!r}"
            )
    return out


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a session (``SessionInfo.streams``)."""

    #: The stream's name.
    name: str
    #: The next offset to deliver.
    position: int
    #: The committed offset (safe to resume from): the last one this session
    #: committed, else the store's when the stream was opened, else ``None``.
    committed: Optional[int]
    #: Data packets read from the source.
    data_packets_read: int = 0
    #: Bytes of those packets.
    data_bytes_read: int = 0
    #: Data packets delivered to the client.
    data_packets_delivered: int = 0
    #: Bytes of those packets.
    data_bytes_delivered: int = 0
    #: Essential packets read (a subset of the data packets the program marks).
    essential_packets_read: int = 0
    #: Essential packets delivered.
    essential_packets_delivered: int = 0


@dataclass(frozen=True)
class SessionInfo:
    """A session, from :meth:`Sessions.get` and :meth:`Sessions.list`."""

    #: Its id (unique within the process, never reused).
    id: int
    #: The data source.
    data_source: str
    #: The session key.
    session_key: str
    #: Whether the main stream is left out.
    exclude_main_stream: bool
    #: The streams, in the order they were opened or added.
    streams: tuple[StreamInfo, ...] = ()
    #: Router (control) messages received on this session.
    router_messages_received: int = 0
    #: Bytes of those messages.
    router_bytes_received: int = 0

    def stream(self, name: str) -> StreamInfo:
        """The stream called ``name``; raises :class:`NotFound` for another name."""
        for s in self.streams:
            if s.name == name:
                return s
        raise NotFound(f"session {self.id} has no stream named {name!r}")


def _info(raw: _native._SessionDict) -> SessionInfo:
    fields: dict[str, Any] = dict(raw)
    fields["streams"] = tuple(StreamInfo(**s) for s in raw["streams"])
    return SessionInfo(**fields)


class Sessions:
    """The sessions of a manager (``manager.sessions``) and their stream offsets.

    Register the data sources' session keys first (:meth:`register`), then open
    sessions on them (:meth:`open`, :meth:`resume`, or :meth:`open_session` as a context
    manager). Errors: bad details → :class:`InvalidArgument` naming the field; an
    unregistered key or a backwards commit → :class:`FailedPrecondition`; an unknown id or
    stream → :class:`NotFound`; ``sessions_max_total`` / ``sessions_max_per_key`` →
    :class:`ResourceExhausted`; after ``manager.close()`` → :class:`Unavailable`.
    Calls that may touch the store's file release the GIL; the counters do not need to.
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.Sessions) -> None:
        self._native = native

    # --- catalog ---------------------------------------------------------------------

    def register(self, data_source: str, session_key: str) -> bool:
        """Registers a session key of a data source; ``True`` if it was new."""
        return self._native.register(data_source, session_key)

    def unregister(self, data_source: str, session_key: str) -> bool:
        """Removes a session key; ``True`` if it was registered. Raises
        :class:`FailedPrecondition` while sessions are open on it."""
        return self._native.unregister(data_source, session_key)

    def is_registered(self, data_source: str, session_key: str) -> bool:
        """Whether the session key of the data source is registered."""
        return self._native.is_registered(data_source, session_key)

    def catalog(self) -> List[Tuple[str, str]]:
        """The registered ``(data_source, session_key)`` pairs, sorted."""
        return self._native.catalog()

    # --- sessions --------------------------------------------------------------------

    def open(
        self,
        data_source: str,
        session_key: str,
        streams: Iterable[str] = (),
        stream_offsets: Iterable[int] = (),
        exclude_main_stream: bool = False,
    ) -> int:
        """Opens a session on a registered key with ``streams`` (names, unique), each
        positioned at its ``stream_offsets`` entry (one per stream; empty: all at 0), and
        returns its id. Emits ``session_opened``."""
        return self._native.open(
            data_source,
            session_key,
            _names("streams", streams),
            _offsets(stream_offsets),
            bool(exclude_main_stream),
        )

    def resume(
        self,
        data_source: str,
        session_key: str,
        streams: Iterable[str] = (),
        exclude_main_stream: bool = False,
    ) -> int:
        """Opens a session whose streams start at their committed offsets (0 for a
        stream never committed), e.g. after a restart; returns its id."""
        return self._native.resume(
            data_source, session_key, _names("streams", streams), bool(exclude_main_stream)
        )

    def open_session(
        self,
        data_source: str,
        session_key: str,
        streams: Iterable[str] = (),
        stream_offsets: Iterable[int] = (),
        exclude_main_stream: bool = False,
        *,
        resume: bool = False,
    ) -> Session:
        """Like :meth:`open` (or :meth:`resume` with ``resume=True``, ignoring
        ``stream_offsets``), returning a :class:`Session` object, a context manager that
        closes the session at the end of its block."""
        if resume:
            id = self.resume(data_source, session_key, streams, exclude_main_stream)
        else:
            id = self.open(data_source, session_key, streams, stream_offsets, exclude_main_stream)
        return Session(self, id)

    def get(self, id: int) -> SessionInfo:
        """Session ``id`` with its streams' positions, committed offsets and counters."""
        return _info(self._native.get(_id(id)))

    def close(self, id: int) -> None:
        """Closes session ``id`` (commits nothing; committed offsets stay in the store).
        Raises :class:`NotFound` if it is not open. Emits ``session_closed``."""
        self._native.close(_id(id))

    def list(
        self, data_source: Optional[str] = None, session_key: Optional[str] = None
    ) -> List[SessionInfo]:
        """The open sessions, sorted by id, optionally of one data source and/or key."""
        return [_info(s) for s in self._native.list(data_source, session_key)]

    @property
    def open_count(self) -> int:
        """Sessions open now."""
        return self._native.open_count()

    def add_stream(self, id: int, stream: str, offset: int = 0) -> None:
        """Adds ``stream`` to live session ``id``, positioned at ``offset``. Emits
        ``stream_added``."""
        self._native.add_stream(_id(id), stream, offset)

    def remove_stream(self, id: int, stream: str) -> None:
        """Removes ``stream`` from live session ``id``. Emits ``stream_removed``."""
        self._native.remove_stream(_id(id), stream)

    # --- counters and offsets --------------------------------------------------------

    def record_read(
        self, id: int, stream: str, packets: int = 1, bytes: int = 0, essential: int = 0
    ) -> None:
        """Counts ``packets`` data packets (``bytes`` bytes, ``essential`` of them
        essential) read from the source for ``stream``."""
        self._native.record_read(
            _id(id), stream, _count("packets", packets), _count("bytes", bytes),
            _count("essential", essential),
        )

    def deliver(
        self, id: int, stream: str, packets: int = 1, bytes: int = 0, essential: int = 0
    ) -> int:
        """Counts ``packets`` packets delivered to the client and advances the stream's
        position by ``packets``; returns the new position."""
        return self._native.deliver(
            _id(id), stream, _count("packets", packets), _count("bytes", bytes),
            _count("essential", essential),
        )

    def record_router(self, id: int, messages: int = 1, bytes: int = 0) -> None:
        """Counts router (control) messages received on session ``id``."""
        self._native.record_router(_id(id), _count("messages", messages), _count("bytes", bytes))

    def position(self, id: int, stream: str) -> int:
        """The stream's position: the next offset to deliver."""
        return self._native.position(_id(id), stream)

    def commit(self, id: int, stream: str, offset: int) -> None:
        """Commits ``offset`` for ``stream``: the offset to resume from. Stored before it
        returns (durably with a durable store and ``offsets_sync="every_commit"``; the GIL
        is released meanwhile). Never backwards: an offset below the last commit (or
        where the stream started or was seeked to) raises :class:`FailedPrecondition`
        and emits ``commit_failed``."""
        self._native.commit(_id(id), stream, offset)

    def seek(self, id: int, stream: str, offset: int) -> None:
        """Moves the stream's position to ``offset`` and lets the next commit go down to
        it (the explicit rewind). Stores nothing."""
        self._native.seek(_id(id), stream, offset)

    def committed(self, data_source: str, session_key: str, stream: str) -> Optional[int]:
        """The offset committed in the store for the stream of that key, or ``None``;
        no session needs to be open."""
        return self._native.committed(data_source, session_key, stream)

    def flush(self) -> None:
        """Writes commits buffered by ``offsets_sync="interval"`` now."""
        self._native.flush()

    async def commit_async(self, id: int, stream: str, offset: int) -> None:
        """:meth:`commit` for asyncio: the store's write (and fsync) runs on a worker
        thread, so the event loop never waits for the disk."""
        await asyncio.get_running_loop().run_in_executor(None, self.commit, id, stream, offset)

    async def flush_async(self) -> None:
        """:meth:`flush` for asyncio (the write runs on a worker thread)."""
        await asyncio.get_running_loop().run_in_executor(None, self.flush)

    @property
    def store_kind(self) -> StoreKind:
        """``"memory"``, ``"durable"`` (``offsets_path`` set) or ``"redis"``
        (``offsets_store="redis"``)."""
        kind = self._native.store_kind()
        if kind == "durable":
            return "durable"
        if kind == "redis":
            return "redis"
        return "memory"

    @property
    def buffered_commits(self) -> int:
        """Commits accepted but not yet on disk (``offsets_sync="interval"``; else 0)."""
        return self._native.buffered_commits()

    def __repr__(self) -> str:
        try:
            return f"<switchboard.Sessions open={self.open_count} store={self.store_kind}>"
        except Exception:  # noqa: BLE001 - a repr never raises
            return "<switchboard.Sessions>"


class Session:
    """One open session, from :meth:`Sessions.open_session`: the session calls without
    the id. A context manager; :meth:`close` is safe twice."""

    __slots__ = ("_sessions", "_id", "_closed")

    def __init__(self, sessions: Sessions, id: int) -> None:
        self._sessions = sessions
        self._id = id
        self._closed = False

    @property
    def id(self) -> int:
        """The session's id."""
        return self._id

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def info(self) -> SessionInfo:
        """:meth:`Sessions.get` for this session."""
        return self._sessions.get(self._id)

    def add_stream(self, stream: str, offset: int = 0) -> None:
        """:meth:`Sessions.add_stream`."""
        self._sessions.add_stream(self._id, stream, offset)

    def remove_stream(self, stream: str) -> None:
        """:meth:`Sessions.remove_stream`."""
        self._sessions.remove_stream(self._id, stream)

    def record_read(self, stream: str, packets: int = 1, bytes: int = 0, essential: int = 0) -> None:
        """:meth:`Sessions.record_read`."""
        self._sessions.record_read(self._id, stream, packets, bytes, essential)

    def deliver(self, stream: str, packets: int = 1, bytes: int = 0, essential: int = 0) -> int:
        """:meth:`Sessions.deliver`; returns the new position."""
        return self._sessions.deliver(self._id, stream, packets, bytes, essential)

    def record_router(self, messages: int = 1, bytes: int = 0) -> None:
        """:meth:`Sessions.record_router`."""
        self._sessions.record_router(self._id, messages, bytes)

    def position(self, stream: str) -> int:
        """:meth:`Sessions.position`."""
        return self._sessions.position(self._id, stream)

    def commit(self, stream: str, offset: int) -> None:
        """:meth:`Sessions.commit`."""
        self._sessions.commit(self._id, stream, offset)

    async def commit_async(self, stream: str, offset: int) -> None:
        """:meth:`Sessions.commit_async`."""
        await self._sessions.commit_async(self._id, stream, offset)

    def seek(self, stream: str, offset: int) -> None:
        """:meth:`Sessions.seek`."""
        self._sessions.seek(self._id, stream, offset)

    def close(self) -> None:
        """Closes the session; safe twice (and after the manager closed)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._sessions.close(self._id)
        except (NotFound, Unavailable):  # closed already, or with its manager
            pass

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<switchboard.Session id={self._id} {state}>"

