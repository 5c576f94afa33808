"""The public Python API: Manager, Pool, PoolStats, custom connectors and the async
acquire.

Everything here translates: Python values into the string settings of the core,
seconds into durations, and the native callback of an async acquire into an asyncio
future. Pools, leases and their behaviour are the core's.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import inspect
import weakref
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, Callable, Generator, Mapping, Optional, Union

from . import _native
from ._errors import InternalError, InvalidArgument, SwitchboardError, Unavailable
from ._native import Lease

__all__ = [
    "ClosedBy",
    "ConfigValue",
    "Event",
    "LatencyStats",
    "Manager",
    "Pool",
    "PoolStats",
    "AcquireContext",
]

#: A configuration value. Numbers given for durations are milliseconds (as in every
#: language); a ``timedelta`` is converted exactly; ``bool`` becomes ``"true"``/``"false"``;
#: ``bytes`` (for ``probe_send``/``probe_expect``) becomes text with C escapes.
ConfigValue = Union[str, int, float, bool, timedelta, bytes]

#: A count setting: an ``int`` (or its text).
Count = Union[int, str]

#: A duration setting: milliseconds as a number, text such as ``"250ms"``, or a ``timedelta``.
Duration = Union[int, float, str, timedelta]

_SIMPLE_ESCAPES = {0x5C: "\\\\", 0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t", 0x00: "\\0"}


def _escape_bytes(data: bytes) -> str:
    """Bytes as the core's text form with C escapes (``b"PING\\r\\n"`` -> ``"PING\\\\r\\\\n"``)."""
    out = []
    for b in data:
        if b in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[b])
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)

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
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _escape_bytes(bytes(value))
    raise InvalidArgument(
        f"configuration key {key!r} must be a str, int, float, bool, bytes or "
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


# Tasks of async close callables scheduled on their loop (kept until done).
_scheduled: set[asyncio.Task[Any]] = set()


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _sync_callable(
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
        if _running_loop() is bound_loop:
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
        *,
        connect: Optional[Callable[[str], Any]] = None,
        check: Optional[Callable[[Any], Optional[bool]]] = None,
        close: Optional[Callable[[Any], object]] = None,
        max_size: Optional[Count] = None,
        min_idle: Optional[Count] = None,
        max_overflow: Optional[Count] = None,
        acquire_timeout: Optional[Duration] = None,
        connect_timeout: Optional[Duration] = None,
        idle_timeout: Optional[Duration] = None,
        max_lifetime: Optional[Duration] = None,
        validate_after: Optional[Duration] = None,
        validation_timeout: Optional[Duration] = None,
        max_connecting: Optional[Count] = None,
        max_waiters: Optional[Count] = None,
        leak_detection_threshold: Optional[Duration] = None,
        probe_send: Union[str, bytes, None] = None,
        probe_expect: Union[str, bytes, None] = None,
        **kwargs: ConfigValue,
    ) -> Pool:
        """Creates a pool named ``name`` (unique in this manager).

        Built-in sockets: ``target`` is ``"tcp://host:port"``, ``"unix:///path"`` or a
        comma-separated list. Custom objects: pass ``connect=``, a callable
        ``connect(endpoint: str) -> object`` that returns the program's object (a database
        client, an RPC stub); ``target`` is then any name (or list of names) handed to it.
        ``check(obj)`` (optional) rejects an object by raising or returning ``False``; it
        runs when an object idle longer than ``validate_after`` is checked out and in the
        background upkeep. ``close(obj)`` (optional) is called exactly once for every
        object the pool lets go. The callables may be ``async def`` functions when the
        pool is created inside a running event loop: they then run on that loop.

        Keys without a section are in ``pool`` (``probe_*`` in ``probe``): ``max_size=4``,
        ``min_idle=1``, ``max_overflow=2``, ``acquire_timeout=timedelta(seconds=2)`` (or
        ``"2s"``, or ``2000`` ms), ``idle_timeout``, ``max_lifetime``, ``validate_after``,
        ``validation_timeout``, ``max_connecting``, ``max_waiters``,
        ``leak_detection_threshold`` (a lease held longer is reported once as an
        :class:`Event`; 0, the default, is off),
        ``probe_send="PING\\r\\n"`` (or ``b"PING\\r\\n"``), ``probe_expect="+PONG"``,
        ``tcp_nodelay=True``. ``None`` leaves a key at its default."""
        named: dict[str, object] = {
            "max_size": max_size,
            "min_idle": min_idle,
            "max_overflow": max_overflow,
            "acquire_timeout": acquire_timeout,
            "connect_timeout": connect_timeout,
            "idle_timeout": idle_timeout,
            "max_lifetime": max_lifetime,
            "validate_after": validate_after,
            "validation_timeout": validation_timeout,
            "max_connecting": max_connecting,
            "max_waiters": max_waiters,
            "leak_detection_threshold": leak_detection_threshold,
            "probe.send": probe_send,
            "probe.expect": probe_expect,
        }
        pairs = _config_pairs(config, kwargs)
        pairs.extend((k, _config_value(k, v)) for k, v in named.items() if v is not None)
        if connect is None:
            if check is not None or close is not None:
                raise InvalidArgument(
                    "check= and close= need connect=: they apply to the objects a "
                    "connect callable makes"
                )
            native = self._native.pool(name, target, pairs)
        else:
            loop = _running_loop()
            native = self._native.pool(
                name,
                target,
                pairs,
                _sync_callable("connect", connect, loop),
                None if check is None else _sync_callable("check", check, loop),
                None if close is None else _sync_callable("close", close, loop),
            )
        return Pool(native, self)

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

    def metrics_text(self) -> str:
        """The metrics of every open pool as Prometheus/OpenMetrics text (the
        ``switchboard_pool_*`` series, ending in ``# EOF``): serve it on a ``/metrics``
        endpoint."""
        return self._native.metrics_text()

    def poll_event(self, timeout: Union[float, timedelta] = 0.0) -> Optional[Event]:
        """The next event (e.g. a suspected leak), waiting up to ``timeout`` seconds
        with the GIL released (``0``: don't wait); ``None`` if none came. Events are
        queued (up to 10,000; more are dropped and counted in :meth:`events_dropped`)
        while no callback is set with :meth:`on_event`."""
        raw = self._native.poll_event(_seconds("timeout", timeout) or 0.0)
        return None if raw is None else Event(**raw)

    def events_dropped(self) -> int:
        """Events dropped because the queue was full and nobody polled."""
        return self._native.events_dropped()

    def on_event(self, callback: Optional[Callable[[Event], object]]) -> None:
        """Sets (or with ``None`` clears) a callback that receives every event instead
        of the queue. It runs on one of switchboard's runtime threads (or on the thread
        running an upkeep pass) with the GIL held, so it must be quick and must not
        block: hand the event to your own queue or loop (``loop.call_soon_threadsafe``).
        It must not close the manager. What it raises is reported through
        ``sys.unraisablehook``. :meth:`close` clears it."""
        if callback is None:
            self._native.set_event_callback(None)
            return
        if not callable(callback):
            raise InvalidArgument(f"on_event needs a callable or None, got {callback!r}")
        user = callback

        def deliver(raw: _native._EventDict) -> None:
            user(Event(**raw))

        self._native.set_event_callback(deliver)

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
class ClosedBy:
    """Connections closed, by reason (``PoolStats.closed_by``)."""

    #: Failed the liveness check, the probe or the check callable.
    broken: int = 0
    #: Idle longer than ``idle_timeout`` (beyond ``min_idle``).
    idle: int = 0
    #: Older than their ``max_lifetime``.
    lifetime: int = 0
    #: Returned while the pool held more than ``max_size`` (overflow, or after a resize).
    overflow: int = 0
    #: Closed by :meth:`Pool.evict_all`.
    evicted: int = 0
    #: Closed by ``Lease.discard()`` (or a ``with`` block that raised).
    discarded: int = 0
    #: The pool or its manager closed.
    closed: int = 0

    @property
    def total(self) -> int:
        """The sum over all reasons."""
        return (
            self.broken
            + self.idle
            + self.lifetime
            + self.overflow
            + self.evicted
            + self.discarded
            + self.closed
        )


@dataclass(frozen=True)
class LatencyStats:
    """A latency summary in seconds (``PoolStats.wait``, ``PoolStats.lease``), from a
    histogram: percentiles are interpolated within its buckets and never above ``peak``."""

    #: Observations.
    count: int = 0
    #: Mean (0 without observations).
    avg: float = 0.0
    #: The largest observation.
    peak: float = 0.0
    #: Median.
    p50: float = 0.0
    #: 90th percentile.
    p90: float = 0.0
    #: 99th percentile.
    p99: float = 0.0


@dataclass(frozen=True)
class Event:
    """Something that happened in a pool, from :meth:`Manager.poll_event` or the
    :meth:`Manager.on_event` callback."""

    #: What happened: ``"leak_suspected"`` (a lease held longer than
    #: ``pool.leak_detection_threshold``); more kinds may come.
    kind: str
    #: The pool it concerns.
    pool: str
    #: The connection (``Lease.id``) it concerns, if one.
    connection_id: Optional[int]
    #: How long the lease had been held, in seconds (for ``leak_suspected``).
    age: Optional[float]
    #: A sentence for humans.
    message: str
    #: When it happened, in seconds since the Unix epoch (``time.time()`` style).
    time: float


@dataclass(frozen=True)
class PoolStats:
    """A point-in-time snapshot of a pool, from :meth:`Pool.stats`."""

    name: str
    #: ``pool.max_size`` now.
    max_size: int
    #: ``pool.min_idle`` now.
    min_idle: int
    #: ``pool.max_overflow``.
    max_overflow: int
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
    #: Connections closed, ever (``closed_by.total``).
    closed_total: int
    #: Connections closed, by reason.
    closed_by: ClosedBy
    #: Successful acquires (``acquired_direct_total + acquired_waited_total``).
    acquired_total: int
    #: Acquires served at once from an idle connection.
    acquired_direct_total: int
    #: Acquires that waited in line.
    acquired_waited_total: int
    #: Acquires that timed out.
    timed_out_total: int
    #: Acquires rejected because too many callers were waiting.
    rejected_total: int
    #: Connect attempts that failed.
    connect_failed_total: int
    #: Probes or checks that failed (the connection was closed as broken).
    probe_failed_total: int
    #: Time acquires waited (zero for those served at once), one per successful acquire.
    wait: LatencyStats = LatencyStats()
    #: Time connections were held by leases, one per lease given back.
    lease: LatencyStats = LatencyStats()


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

    @property
    def custom(self) -> bool:
        """Whether it holds the program's objects (made by a ``connect`` callable)."""
        return self._native.custom

    def stats(self) -> PoolStats:
        """A snapshot of the pool's state and counters."""
        raw = self._native.stats()
        fields: dict[str, Any] = dict(raw)
        fields["closed_by"] = ClosedBy(**raw["closed_by"])
        fields["wait"] = LatencyStats(**raw["wait"])
        fields["lease"] = LatencyStats(**raw["lease"])
        return PoolStats(**fields)

    def resize(self, max_size: int, min_idle: int = 0) -> None:
        """Changes ``max_size`` and ``min_idle`` on the live pool without dropping
        leases: growing lets waiters in at once; shrinking closes surplus idle
        connections now and surplus leased ones when they come back."""
        self._native.resize(max_size, min_idle)

    def evict_all(self) -> None:
        """Closes every idle connection now and every leased one when it comes back
        (e.g. after a failover); new ones are opened on demand and up to ``min_idle``."""
        self._native.evict_all()

    def warm(self) -> int:
        """Opens connections until ``min_idle`` are idle (within ``max_size``) and
        returns how many it opened; the first failed connect is raised. Waits on the
        calling thread with the GIL released."""
        return self._native.warm()

    async def warm_async(self) -> int:
        """:meth:`warm` for asyncio: never blocks the event loop."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()

        def deliver(opened: Optional[int], error: Optional[BaseException]) -> None:
            if fut.done():
                return
            if error is not None:
                fut.set_exception(error)
            elif opened is None:
                fut.set_exception(InternalError("warm reported neither a count nor an error"))
            else:
                fut.set_result(opened)

        def on_done(opened: Optional[int], error: Optional[BaseException]) -> None:
            # Called once, on a switchboard runtime thread, with the GIL held.
            try:
                loop.call_soon_threadsafe(deliver, opened, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        self._native.warm_async(on_done)
        return await fut

    def _run_upkeep(self) -> None:
        """Runs one pass of the background upkeep now (for tests): closes idle
        connections past ``idle_timeout``/``max_lifetime``, checks idle ones past
        ``validate_after`` and opens connections up to ``min_idle``."""
        self._native._run_upkeep()

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
