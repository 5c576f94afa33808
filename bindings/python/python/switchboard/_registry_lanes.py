"""The event-loop lanes of async send callbacks.

A send callback (or ``on_ping`` / ``on_close``) that returns an awaitable hands it to
its connection's :class:`Lane`, which runs the connection's awaitables in order on the
event loop that was running when it registered and reports each send's result to core
(``report_send``). A delivery round's awaitables for one loop reach it through that
loop's :class:`_Inbox` in one ``call_soon_threadsafe``."""

from __future__ import annotations

import asyncio
import collections
import weakref
from typing import Any, Awaitable, Deque, Optional, Tuple

from . import _native
from ._errors import NotFound, Unavailable

__all__ = ["Lane"]

# What the native sink asks a lane to report (its REPORT_* in src/registry/sink.rs):
# every result (a send), only a failure (a ping), or nothing (a close).
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
        self._items: Deque[Tuple[Lane, int, Awaitable[Any], int]] = collections.deque()
        self._pending = False

    def put(self, lane: Lane, id: int, awaitable: Awaitable[Any], report: int) -> None:
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


class Lane:
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
