"""A registered connection's handle: :class:`Connection` (a send-callback sink, from
:meth:`Registry.register`) and :class:`Outbox` (a pull sink the program drains, from
:meth:`Registry.register_outbox`, for threads and asyncio)."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, AsyncIterator, Iterator, Optional

from . import _native
from ._args import seconds
from ._errors import NotFound, SwitchboardError, Unavailable
from ._registry_types import BroadcastReport, ConnInfo, Item, Message

if TYPE_CHECKING:
    from ._registry import Registry

__all__ = ["Connection", "Outbox"]


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
        return self._outbox.next(seconds("timeout", timeout))

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
        try:
            self.unregister()
        finally:
            # Closed even when the unregister is interrupted (Ctrl-C) or fails.
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
