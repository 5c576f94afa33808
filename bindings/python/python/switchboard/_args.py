"""Argument helpers the package's modules share: Python values turned into what the
native module takes, refusing with :class:`InvalidArgument` what its conversion would
refuse with a bare ``TypeError`` or ``OverflowError``. The checks on the values
themselves are the core's."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable, Optional

from ._errors import InvalidArgument, Unavailable

if TYPE_CHECKING:  # typing.TypeGuard is 3.10+; annotations are not evaluated
    from typing_extensions import TypeGuard

#: Ids, counters and cursors cross to the native module as ``u64``.
U64 = 1 << 64


def is_u64(value: object) -> TypeGuard[int]:
    """Whether ``value`` is an int (not a bool) the native module takes as a ``u64``."""
    return not isinstance(value, bool) and isinstance(value, int) and 0 <= value < U64


def seconds(what: str, value: object) -> Optional[float]:
    """A timeout or duration in seconds (a number or a ``timedelta``), or ``None``."""
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


def opt_str(what: str, value: object) -> Optional[str]:
    """A ``str`` or ``None``."""
    if value is None or isinstance(value, str):
        return value
    raise InvalidArgument(f"{what} must be a str or None, got {type(value).__name__} {value!r}")


def running_loop() -> Optional[asyncio.AbstractEventLoop]:
    """The event loop running on this thread, if one is: the loop a call's async
    callbacks will run on."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# Tasks of async close callables scheduled on their loop (kept until done).
_scheduled: set[asyncio.Task[Any]] = set()


def sync_callable(
    what: str, func: Callable[..., Any], loop: Optional[asyncio.AbstractEventLoop]
) -> Callable[..., Any]:
    """``func`` as a synchronous callable for the native module. A coroutine function
    is run on ``loop`` (the event loop the pool was created in) from the runtime's
    blocking thread, which waits for it."""
    if not callable(func):
        raise InvalidArgument(f"{what}= must be callable, got {type(func).__name__} {func!r}")
    if not inspect.iscoroutinefunction(func):
        return func
    if loop is None:
        raise InvalidArgument(
            f"{what}= is a coroutine function, which needs an event loop to run on: create "
            "the pool inside a running event loop (e.g. in an async def), or pass a plain function"
        )
    bound_loop = loop

    def run_on_loop(*args: Any) -> Any:
        if bound_loop.is_closed():
            raise Unavailable(f"the event loop that runs the async {what} callable is closed")
        if running_loop() is bound_loop:
            # Called on the loop's own thread (only close can be: a lease released or
            # a pool closed from a coroutine). Waiting here would block the loop that
            # has to run it, so it is scheduled instead.
            task = bound_loop.create_task(func(*args))
            _scheduled.add(task)
            task.add_done_callback(_scheduled.discard)
            return None
        fut = asyncio.run_coroutine_threadsafe(func(*args), bound_loop)
        # Wait in slices, so that a loop that stops (and never runs the coroutine) is
        # noticed instead of blocking this thread forever.
        while True:
            done, _ = concurrent.futures.wait([fut], timeout=0.25)
            if done:
                return fut.result()
            if bound_loop.is_closed() or not bound_loop.is_running():
                fut.cancel()
                raise Unavailable(f"the event loop that runs the async {what} callable stopped")

    return run_on_loop
