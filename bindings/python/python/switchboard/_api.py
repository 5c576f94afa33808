"""The public Python API: Manager, Pool, PoolStats and the async acquire.

Everything here translates: Python values into the string settings of the core,
seconds into durations, and the native callback of an async acquire into an asyncio
future. Pools, leases and their behaviour are the core's.
"""

from __future__ import annotations

import asyncio
import atexit
import weakref
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, Generator, Mapping, Optional, Union

from . import _native
from ._errors import InternalError, InvalidArgument, SwitchboardError
from ._native import Lease

__all__ = ["ConfigValue", "Manager", "Pool", "PoolStats", "AcquireContext"]

#: A configuration value. Numbers given for durations are milliseconds (as in every
#: language); a ``timedelta`` is converted exactly; ``bool`` becomes ``"true"``/``"false"``.
ConfigValue = Union[str, int, float, bool, timedelta]

#: A timeout argument: seconds (``float``/``int``), a ``timedelta``, or ``None``.
Seconds = Union[float, timedelta, None]


def _config_value(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, timedelta):
        us = value // timedelta(microseconds=1)
        return f"{us // 1000}ms" if us % 1000 == 0 else f"{us}us"
    raise InvalidArgument(
        f"configuration key {key!r} must be a str, int, float, bool or "
        f"datetime.timedelta, got {type(value).__name__} {value!r}"
    )


def _config_pairs(
    config: Optional[Mapping[str, ConfigValue]], kwargs: Mapping[str, ConfigValue]
) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for source in (config or {}, kwargs):
        for key, value in source.items():
            if not isinstance(key, str):
                raise InvalidArgument(
                    f"configuration keys must be strings, got {type(key).__name__} {key!r}"
                )
            pairs.append((key, _config_value(key, value)))
    return pairs


def _seconds(what: str, value: Seconds) -> Optional[float]:
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


# Managers still open, closed at interpreter exit so that no runtime thread is left
# running (and reaching for the GIL) while the interpreter shuts down.
_live: weakref.WeakSet[Manager] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for manager in list(_live):
        try:
            manager.close(timeout=0)
        except SwitchboardError:
            pass


class Manager:
    """The root object: owns switchboard's runtime (its own threads) and the pools.

    ``config`` and keyword arguments are configuration keys in any natural spelling:
    ``Manager({"runtime.worker_threads": 2})``, ``Manager(worker_threads=2)``; keys
    without a section are in ``runtime``. ``pool.*`` and ``tcp.*`` keys given here are
    defaults for every pool (``Manager(pool_max_size=4)``). An unknown key or a bad
    value raises :class:`InvalidArgument` naming the key and the accepted form.

    Use it as a context manager, or call :meth:`close` (safe twice); a manager still
    open at interpreter exit is closed then.
    """

    def __init__(
        self, config: Optional[Mapping[str, ConfigValue]] = None, /, **kwargs: ConfigValue
    ) -> None:
        self._native = _native.Manager(_config_pairs(config, kwargs))
        _live.add(self)

    def pool(
        self,
        name: str,
        target: str,
        config: Optional[Mapping[str, ConfigValue]] = None,
        /,
        **kwargs: ConfigValue,
    ) -> Pool:
        """Creates a pool named ``name`` (unique in this manager) of connections to
        ``target`` (``"tcp://host:port"``, ``"unix:///path"`` or a comma-separated list).
        Keys without a section are in ``pool``: ``max_size=4``,
        ``acquire_timeout=timedelta(seconds=2)`` (or ``"2s"``, or ``2000`` ms),
        ``tcp_nodelay=True``."""
        return Pool(self._native.pool(name, target, _config_pairs(config, kwargs)), self)

    def close(self, timeout: Union[float, timedelta] = 5.0) -> None:
        """Closes every pool and stops the runtime: waiters fail with
        :class:`Unavailable`, then it waits up to ``timeout`` seconds for leases to come
        back before closing their connections. The GIL is released while it waits.
        Closing twice does nothing."""
        self._native.close(_seconds("timeout", timeout) or 0.0)
        _live.discard(self)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._native.closed

    def pool_names(self) -> list[str]:
        """The names of the open pools, sorted."""
        return self._native.pool_names()

    def __enter__(self) -> Manager:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "<switchboard.Manager closed>"
        return f"<switchboard.Manager open pools={self.pool_names()!r}>"


@dataclass(frozen=True)
class PoolStats:
    """A point-in-time snapshot of a pool, from :meth:`Pool.stats`."""

    name: str
    #: ``pool.max_size``.
    max_size: int
    #: Open connections plus connects in flight.
    size: int
    #: Idle connections.
    idle: int
    #: Connections handed out.
    leased: int
    #: Callers waiting for a connection.
    waiting: int
    #: Connects in flight.
    connecting: int
    #: Connections opened, ever.
    created_total: int
    #: Connections closed, ever.
    closed_total: int
    #: Successful acquires.
    acquired_total: int
    #: Acquires that timed out.
    timed_out_total: int
    #: Acquires rejected because too many callers were waiting.
    rejected_total: int
    #: Connect attempts that failed.
    connect_failed_total: int


class Pool:
    """A bounded pool of connections to one target; made by :meth:`Manager.pool`.

    ``with pool.acquire() as conn:`` (threads) and ``async with pool.acquire_async()
    as conn:`` (asyncio) check a connection out; leaving the block returns it.
    """

    def __init__(self, native: _native.Pool, manager: Manager) -> None:
        self._native = native
        self._manager = manager

    @property
    def name(self) -> str:
        """The pool's name."""
        return self._native.name

    @property
    def target(self) -> str:
        """The target it connects to."""
        return self._native.target

    @property
    def manager(self) -> Manager:
        """The manager it belongs to."""
        return self._manager

    @property
    def closed(self) -> bool:
        """Whether the pool (or its manager) is closed."""
        return self._native.closed

    def acquire(self, timeout: Seconds = None, priority: int = 0) -> Lease:
        """Checks a connection out, opening one if the pool has room, waiting up to
        ``timeout`` seconds (default: the pool's ``acquire_timeout``) otherwise; higher
        ``priority`` waiters are served first. Waits on the calling thread with the GIL
        released. Raises :class:`Timeout` (a ``TimeoutError``) when no connection came
        in time, :class:`Unavailable` (a ``ConnectionError``) when the target is down or
        the pool is closed."""
        seconds = None if timeout is None else _seconds("timeout", timeout)
        return self._native.acquire(seconds, priority)

    def try_acquire(self) -> Optional[Lease]:
        """An idle connection if one is ready now, else ``None``. Never waits."""
        return self._native.try_acquire()

    def acquire_async(self, timeout: Seconds = None, priority: int = 0) -> AcquireContext:
        """Like :meth:`acquire`, for asyncio: ``conn = await pool.acquire_async()`` or
        ``async with pool.acquire_async() as conn:``. Never blocks the event loop.
        Cancelling the awaiting task returns the connection to the pool."""
        return AcquireContext(self._native, _seconds("timeout", timeout), priority)

    def stats(self) -> PoolStats:
        """A snapshot of the pool's state and counters."""
        return PoolStats(**self._native.stats())

    def close(self) -> None:
        """Closes the pool: waiters fail with :class:`Unavailable`, idle connections
        close now and leased ones when they come back. Closing twice does nothing."""
        self._native.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return f"<switchboard.Pool {self.name!r} {self.target} closed>"
        s = self.stats()
        return (
            f"<switchboard.Pool {self.name!r} {self.target} size={s.size}/{s.max_size} "
            f"idle={s.idle} leased={s.leased} waiting={s.waiting}>"
        )


class AcquireContext:
    """What :meth:`Pool.acquire_async` returns: await it for a :class:`Lease`, or use
    it in ``async with``, which releases the lease at the end of the block (or discards
    it if the block raised)."""

    __slots__ = ("_native", "_timeout", "_priority", "_lease")

    def __init__(self, native: _native.Pool, timeout: Optional[float], priority: int) -> None:
        self._native = native
        self._timeout = timeout
        self._priority = priority
        self._lease: Optional[Lease] = None

    def __await__(self) -> Generator[Any, None, Lease]:
        return _acquire_async(self._native, self._timeout, self._priority).__await__()

    async def __aenter__(self) -> Lease:
        self._lease = await _acquire_async(self._native, self._timeout, self._priority)
        return self._lease

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.__exit__(exc_type, exc, tb)


def _settle(fut: asyncio.Future[Lease], lease: Optional[Lease], error: Optional[BaseException]) -> None:
    """Runs on the event loop: hands the result of a native acquire to its future, or
    returns the connection if nobody waits for it any more."""
    if fut.done():  # cancelled meanwhile
        if lease is not None:
            lease.release()
    elif error is not None:
        fut.set_exception(error)
    elif lease is None:
        fut.set_exception(InternalError("the native acquire reported neither a lease nor an error"))
    else:
        fut.set_result(lease)


async def _acquire_async(native: _native.Pool, timeout: Optional[float], priority: int) -> Lease:
    # An idle connection needs no waiting and no other thread.
    lease = native.try_acquire()
    if lease is not None:
        return lease
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Lease] = loop.create_future()

    def on_done(lease: Optional[Lease], error: Optional[BaseException]) -> None:
        # Called once, on a switchboard runtime thread, with the GIL held.
        try:
            loop.call_soon_threadsafe(_settle, fut, lease, error)
        except RuntimeError:  # the loop is closed: nobody will take the connection
            if lease is not None:
                lease.release()

    task = native.acquire_async(timeout, priority, on_done)
    try:
        return await fut
    except BaseException:
        # Cancelled (or interrupted): stop the native acquire; whatever it obtains from
        # now on is returned by _settle. A lease that arrived just before the
        # cancellation is returned here.
        task.cancel()
        if not fut.done():
            try:
                fut.cancel()
            except RuntimeError:  # its loop is closed already
                pass
        elif not fut.cancelled() and fut.exception() is None:
            fut.result().release()
        raise
