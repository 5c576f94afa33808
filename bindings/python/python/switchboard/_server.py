"""The embedded server's hub, from Python: what the server's WebSocket clients send to
the program (``manager.hub``), pulled with :meth:`Hub.recv` or ``await``
:meth:`Hub.next`.

The server is core's: it starts from the manager's ``server.*`` keys
(``Manager({"server.listen": "127.0.0.1:0", "server.token": "..."})``) and stops with its close;
``manager.server_address`` names the port it bound. Answers go through the registry
(``manager.registry.send(message.connection_id, ...)``, ``registry.broadcast``), as for
any registered connection. This module only turns the native tuples into
:class:`HubMessage` and the native callback of a wait into an asyncio future.
"""

from __future__ import annotations

import asyncio
import collections
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Deque, Optional, Tuple, Union

from . import _native
from ._args import seconds as _seconds
from ._errors import InternalError, Unavailable

__all__ = ["Hub", "HubMessage"]

_MessageTuple = Tuple[int, Optional[str], str, Optional[str], str]


@dataclass(frozen=True)
class HubMessage:
    """A message a hub client sent to the program: any envelope type other than the
    hub's own (``subscribe``, ``unsubscribe``, ``ping``, ``pong``, ``heartbeat``)."""

    #: The registry id of the client that sent it (``registry.send(connection_id, ...)``
    #: answers it).
    connection_id: int
    #: The client's user, as the registry's auth hook named it (``None``: anonymous).
    user: Optional[str]
    #: The envelope's ``type`` (``"data"``, ``"chat"``, ...).
    type: str
    #: The envelope's ``topic``, if it had one.
    topic: Optional[str]
    #: The whole JSON text as the client sent it.
    text: str

    def json(self) -> Any:
        """The message decoded (``json.loads(text)``): the envelope as a dict, with
        ``type`` and, when the client sent them, ``topic``, ``data``, ``timestamp``."""
        return json.loads(self.text)


def _message(t: _MessageTuple) -> HubMessage:
    return HubMessage(*t)


class Hub:
    """The hub's inbound side (``manager.hub``): present on every manager; with no
    server (``server.listen`` unset) nothing ever arrives. Messages wait in a bounded
    queue (``server.hub_queue``, oldest dropped first, counted in :attr:`dropped`)
    until the program takes them, from one thread or task or many (each message goes
    to one taker)."""

    __slots__ = ("_native", "_kept")

    def __init__(self, native: _native.Hub) -> None:
        self._native = native
        # Messages that reached an awaiting next() after it was cancelled: handed to
        # the next taker before the queue, so a cancellation loses no message.
        self._kept: Deque[HubMessage] = collections.deque()

    def recv(self, timeout: Union[float, timedelta, None] = None) -> Optional[HubMessage]:
        """The next message, waiting up to ``timeout`` seconds (``None``, the default:
        until one comes; 0: don't wait) with the GIL released; ``None`` if none came in
        time. Ctrl-C interrupts the wait (``KeyboardInterrupt``). Raises
        :class:`Unavailable` once the manager is closed."""
        if self._kept:
            return self._kept.popleft()
        got = self._native.recv(_seconds("timeout", timeout))
        return None if got is None else _message(got)

    async def next(self) -> HubMessage:
        """The next message, for asyncio: waits on switchboard's runtime, never blocking
        the event loop. Cancelling the awaiting task loses no message. Raises
        :class:`Unavailable` once the manager is closed."""
        if self._kept:
            return self._kept.popleft()
        got = self._native.recv(0)
        if got is not None:
            return _message(got)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[HubMessage] = loop.create_future()
        kept = self._kept

        def settle(got: Optional[_MessageTuple], error: Optional[BaseException]) -> None:
            # On the event loop.
            if fut.done():  # cancelled meanwhile: keep the message for the next taker
                if got is not None:
                    kept.append(_message(got))
            elif error is not None:
                fut.set_exception(error)
            elif got is None:
                fut.set_exception(InternalError("hub.next reported neither a message nor an error"))
            else:
                fut.set_result(_message(got))

        def on_done(got: Optional[_MessageTuple], error: Optional[BaseException]) -> None:
            # Called once, on a switchboard runtime thread, with the GIL held.
            try:
                loop.call_soon_threadsafe(settle, got, error)
            except RuntimeError:  # the loop is closed: nobody awaits; keep the message
                if got is not None:
                    kept.append(_message(got))

        task = self._native.next_async(on_done)
        try:
            return await fut
        except BaseException:
            task.cancel()
            if not fut.done():
                fut.cancel()
            elif not fut.cancelled() and fut.exception() is None:
                # Cancelled just after the message arrived: keep it.
                kept.appendleft(fut.result())
            raise

    def __aiter__(self) -> Hub:
        return self

    async def __anext__(self) -> HubMessage:
        """``async for message in manager.hub:`` takes messages until the manager
        closes (which ends the loop instead of raising)."""
        try:
            return await self.next()
        except Unavailable:
            raise StopAsyncIteration from None

    @property
    def dropped(self) -> int:
        """Messages dropped because the queue (``server.hub_queue``) was full."""
        return self._native.dropped

    @property
    def queued(self) -> int:
        """Messages waiting to be taken."""
        return self._native.queued + len(self._kept)

    def __repr__(self) -> str:
        try:
            return f"<switchboard.Hub queued={self.queued} dropped={self.dropped}>"
        except Exception:  # noqa: BLE001 - a repr never raises
            return "<switchboard.Hub>"
