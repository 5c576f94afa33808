"""Named shared connections: ``manager.resources``.

One physical connection created by id (``resources.create("bus", "tcp",
endpoint=...)``), dialled at once and redialled with backoff on its own, shared by
many consumers (``resources.attach("bus", "feed")``), with its status in
:meth:`Resources.get`, in events and in metrics. Everything here translates: props
become the core's string settings (it resolves their spellings, validates them and
names a bad one), snapshots become :class:`ResourceInfo`, and the native callback of
:meth:`ResourceHandle.ready_async` an asyncio future. The behaviour is the core's
(``docs/resources.md``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, Callable, List, Literal, Mapping, Optional, Tuple, Union

from . import _native
from ._args import running_loop, seconds, sync_callable
from ._config import ConfigValue, config_pairs, config_value
from ._errors import InvalidArgument

__all__ = ["Resources", "ResourceHandle", "ResourceInfo", "ResourceStatus"]

#: Where a resource's connection is: ``"connecting"`` (the first dial, retried with
#: backoff), ``"connected"``, ``"recovering"`` (lost, being redialled) or
#: ``"disconnected"`` (stopped: a configuration error, a delete, or the manager closed).
ResourceStatus = Union[
    Literal["connecting"], Literal["connected"], Literal["recovering"], Literal["disconnected"]
]

#: A timeout: seconds or a ``timedelta``.
Timeout = Union[float, timedelta]


@dataclass(frozen=True)
class ResourceInfo:
    """A snapshot of one resource (:meth:`Resources.get`, :meth:`Resources.list`)."""

    #: Its id (an anonymous one's is ``"anonymous-<n>"``).
    id: str
    #: ``"tcp"``, ``"unix"`` or a type the program registered.
    type: str
    #: The endpoint it connects to, as written (``"tcp://127.0.0.1:6379"``).
    endpoint: str
    #: Whether :meth:`Resources.attach_anonymous` made it (closed with its last consumer).
    anonymous: bool
    #: Where its connection is.
    status: ResourceStatus
    #: The last connect or probe error, if any.
    last_error: Optional[str]
    #: Whether it stopped retrying (a configuration error; ``last_error`` says which).
    stopped: bool
    #: Its consumers' names, in attach order.
    consumers: Tuple[str, ...]
    #: Connections lost and redialled.
    reconnects: int
    #: Bytes read through its consumers' :meth:`ResourceHandle.recv`.
    bytes_in: int
    #: Bytes written through its consumers' :meth:`ResourceHandle.sendall`.
    bytes_out: int
    #: Seconds the current connection has been up (``None`` unless connected).
    connected_for: Optional[float]


def _info(raw: _native._ResourceInfoDict) -> ResourceInfo:
    fields: dict[str, Any] = dict(raw)
    fields["consumers"] = tuple(raw["consumers"])
    return ResourceInfo(**fields)


def _name(what: str, value: object) -> str:
    """A resource id, type or consumer name (what pyo3 would refuse with a bare
    ``TypeError``)."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a str, got {type(value).__name__} {value!r}")
    return value


def _timeout(value: object) -> float:
    secs = seconds("timeout", value)
    if secs is None:
        raise InvalidArgument("timeout must be a number of seconds or a datetime.timedelta, got None")
    return secs


def _props(
    endpoint: object, on_connect: Union[str, bytes, None], props: Mapping[str, Optional[ConfigValue]]
) -> list[tuple[str, str]]:
    """A resource's props as the core's ``(key, value)`` strings: ``endpoint``, then the
    keywords (``None`` leaves a key at its default; a mapping sets one section's keys)."""
    given = {k: v for k, v in props.items() if v is not None}
    pairs = [("endpoint", config_value("endpoint", endpoint))]
    pairs.extend(config_pairs(None, given))
    if on_connect is not None:
        # Core resolves the short name (resources.* after the pool keys).
        pairs.append(("on_connect", config_value("on_connect", on_connect)))
    return pairs


class ResourceHandle:
    """One consumer's share of a resource (:meth:`Resources.attach`). A context
    manager: ``with resources.attach("bus", "feed") as h:`` detaches at the end;
    :meth:`detach` (or :meth:`close`) is safe twice, and a handle garbage-collected
    detaches too.

    For the built-in types it is socket-like: :meth:`send`, :meth:`sendall` and
    :meth:`recv` use the resource's *current* socket (it changes across reconnects and
    updates, so do not keep :meth:`fileno`'s value) and are counted in its bytes; they
    release the GIL. The connection is shared, as a lease's: the program coordinates
    its consumers' writes (one writer at a time) and reads. For a registered type,
    :meth:`object` is the program's object. After :meth:`detach` every call raises
    :class:`FailedPrecondition`."""

    __slots__ = ("_native", "_detached")

    def __init__(self, native: _native.ResourceHandle) -> None:
        self._native = native
        self._detached = False

    @property
    def id(self) -> str:
        """The resource's id."""
        return self._native.id

    @property
    def consumer(self) -> str:
        """This consumer's name."""
        return self._native.consumer

    @property
    def status(self) -> ResourceStatus:
        """The resource's status now."""
        return self._native.status

    @property
    def detached(self) -> bool:
        """Whether :meth:`detach` was called."""
        return self._detached

    def fileno(self) -> int:
        """The current socket's file descriptor (owned by the resource); raises
        :class:`Unavailable` while connecting or recovering."""
        return self._native.fileno()

    def send(self, data: Union[bytes, bytearray, memoryview], /) -> int:
        """Sends all of ``data`` (a shared socket takes no partial writes); returns
        ``len(data)``."""
        return self._native.send(data)

    def sendall(self, data: Union[bytes, bytearray, memoryview], /) -> None:
        """Sends all of ``data`` on the current socket."""
        self._native.sendall(data)

    def recv(self, bufsize: int, /) -> bytes:
        """Receives up to ``bufsize`` bytes, waiting for at least one; ``b""`` means
        the peer closed the connection (call :meth:`report_failure`, then
        :meth:`wait_ready`)."""
        return self._native.recv(bufsize)

    def settimeout(self, timeout: Optional[Timeout], /) -> None:
        """This consumer's timeout of each send and recv in seconds (``None``: wait
        forever), as ``socket.settimeout``; a call that passes it raises
        :class:`Timeout`."""
        self._native.settimeout(seconds("timeout", timeout))

    def gettimeout(self) -> Optional[float]:
        """The timeout set by :meth:`settimeout`, or ``None``."""
        return self._native.gettimeout()

    def wait_ready(self, timeout: Timeout) -> None:
        """Waits (GIL released) until the resource is connected, across reconnects:
        :class:`Timeout` after ``timeout``, :class:`Unavailable` if it stopped."""
        self._native.wait_ready(_timeout(timeout))

    async def ready_async(self, timeout: Timeout) -> None:
        """:meth:`wait_ready` for asyncio: never blocks the event loop; cancelling the
        awaiting task stops the wait."""
        secs = _timeout(timeout)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def deliver(error: Optional[BaseException]) -> None:
            if fut.done():
                return
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(None)

        def on_done(error: Optional[BaseException]) -> None:
            # Called once, on a switchboard runtime thread, with the GIL held.
            try:
                loop.call_soon_threadsafe(deliver, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        task = self._native.ready_async(secs, on_done)
        try:
            await fut
        except BaseException:
            task.cancel()
            raise

    def report_failure(self) -> None:
        """Tells the resource this consumer saw an error: it checks (and probes) the
        connection now and redials if it is lost, instead of at the next health check."""
        self._native.report_failure()

    def object(self) -> Any:
        """The program's current object, for a resource of a registered type
        (:class:`FailedPrecondition` for a built-in one; :class:`Unavailable` while
        connecting or recovering). Take it again for each use: a reconnect replaces it."""
        return self._native.object()

    def detach(self) -> None:
        """Lets go of the resource (the last consumer of an anonymous one closes it).
        Safe to call twice."""
        self._detached = True
        self._native.detach()

    close = detach

    def __enter__(self) -> ResourceHandle:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.detach()

    def __repr__(self) -> str:
        if self._detached:
            return f"<switchboard.ResourceHandle {self.id!r} consumer={self.consumer!r} detached>"
        return f"<switchboard.ResourceHandle {self.id!r} consumer={self.consumer!r} {self.status}>"


class Resources:
    """The manager's named shared connections (``manager.resources``).

    Props are keywords in the natural spellings of the pool keys, passed to the core
    as text: ``connect_timeout="250ms"`` (or ``250``, milliseconds, or a ``timedelta``),
    ``health_interval="1s"``, ``probe_send=b"PING\\r\\n"``, ``backoff={"initial": 100}``,
    ``tcp_nodelay=True``, and ``on_connect=b"HELLO 3\\r\\n"`` (bytes sent on every new
    connection before it counts as connected). The core validates them: a bad one
    raises :class:`InvalidArgument` naming its key. Unknown ids raise
    :class:`NotFound`; after ``manager.close()`` every call raises
    :class:`Unavailable`."""

    __slots__ = ("_native",)

    def __init__(self, native: _native.Resources) -> None:
        self._native = native

    def create(
        self,
        id: str,
        type: str,
        *,
        endpoint: str,
        on_connect: Union[str, bytes, None] = None,
        **props: Optional[ConfigValue],
    ) -> None:
        """Creates resource ``id`` of ``type`` (``"tcp"``, ``"unix"`` or a registered
        type) and starts dialling it in the background (``"connecting"`` until it
        connects; a configuration error stops it as ``"disconnected"``). An id in use
        raises :class:`InvalidArgument`. With ``Manager(resources_path=...)`` it is on
        disk when this returns and recreated by a manager opened on the file."""
        self._native.create(
            _name("id", id), _name("type", type), _props(endpoint, on_connect, props)
        )

    def attach(self, id: str, consumer: str) -> ResourceHandle:
        """Attaches consumer ``consumer`` to resource ``id``: a handle sharing its one
        connection (it may still be connecting: :meth:`ResourceHandle.wait_ready`)."""
        return ResourceHandle(self._native.attach(_name("id", id), _name("consumer", consumer)))

    def attach_anonymous(
        self,
        type: str,
        consumer: str,
        *,
        endpoint: str,
        on_connect: Union[str, bytes, None] = None,
        **props: Optional[ConfigValue],
    ) -> ResourceHandle:
        """Attaches to an unnamed resource of ``type`` with these props: shared by every
        caller with equal props (the first one creates it), closed when its last
        consumer detaches."""
        return ResourceHandle(
            self._native.attach_anonymous(
                _name("type", type), _props(endpoint, on_connect, props), _name("consumer", consumer)
            )
        )

    def update(
        self,
        id: str,
        *,
        endpoint: str,
        on_connect: Union[str, bytes, None] = None,
        **props: Optional[ConfigValue],
    ) -> None:
        """Moves resource ``id`` to new props without dropping its consumers: the new
        connection is dialled first (the GIL is released while it waits, within the new
        ``connect_timeout``; a failure changes nothing), then swapped in for every
        consumer with a ``resource_rebound`` event; the old one closes when the last
        call still using it ends. :class:`FailedPrecondition` for an anonymous one."""
        self._native.update(_name("id", id), _props(endpoint, on_connect, props))

    def delete(self, id: str, *, force: bool = False) -> None:
        """Deletes resource ``id`` and closes its connection. While consumers are
        attached it raises :class:`FailedPrecondition` naming them, unless ``force``,
        which detaches them (a ``resource_detached`` event each)."""
        self._native.delete(_name("id", id), bool(force))

    def get(self, id: str) -> ResourceInfo:
        """A snapshot of resource ``id`` (named, or an anonymous one's ``anonymous-<n>``)."""
        return _info(self._native.get(_name("id", id)))

    def list(self) -> List[ResourceInfo]:
        """Every resource, named and anonymous, sorted by id."""
        return [_info(raw) for raw in self._native.list()]

    def wait_ready(self, id: str, timeout: Timeout) -> None:
        """Waits (GIL released) until resource ``id`` is connected: :class:`Timeout`
        after ``timeout``, :class:`Unavailable` if it stopped."""
        self._native.wait_ready(_name("id", id), _timeout(timeout))

    def report_failure(self, id: str) -> None:
        """A consumer of resource ``id`` saw an error: check (and probe) it now."""
        self._native.report_failure(_name("id", id))

    def register_type(
        self,
        name: str,
        connect: Callable[[str], Any],
        check: Optional[Callable[[Any], Optional[bool]]] = None,
        close: Optional[Callable[[Any], object]] = None,
    ) -> None:
        """Registers a resource type of the program's own objects (a bus client, an
        RPC stub), with the callables a custom pool takes: ``connect(endpoint) ->
        object``, ``check(obj)`` (optional: raising or returning ``False`` replaces the
        object; it runs on each health check) and ``close(obj)`` (optional: once per
        object, when its last holder lets go). They may be ``async def`` functions when
        this is called inside a running event loop. Stored resources of this type
        (``resources_path``) are recreated now. :class:`InvalidArgument` for ``"tcp"``,
        ``"unix"``, an empty name or one already registered."""
        loop = running_loop()
        self._native.register_type(
            _name("name", name),
            sync_callable("connect", connect, loop),
            None if check is None else sync_callable("check", check, loop),
            None if close is None else sync_callable("close", close, loop),
        )

    def __repr__(self) -> str:
        try:
            ids = [i.id for i in self.list()]
        except Exception:  # a closed manager: show that rather than fail
            return "<switchboard.Resources closed>"
        return f"<switchboard.Resources {ids!r}>"
