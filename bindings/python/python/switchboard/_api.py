"""The public Python API: Manager, Pool, custom connectors and the async acquire.
The snapshots they hand out (PoolStats, HealthReport, Event, ...) are in ``_snapshots``.

Everything here translates: Python values into the string settings of the core,
seconds into durations, and the native callback of an async acquire into an asyncio
future. Pools, leases and their behaviour are the core's.
"""

from __future__ import annotations

import asyncio
import atexit
import weakref
from datetime import timedelta
from types import TracebackType
from typing import Any, Callable, Generator, Iterable, Mapping, Optional, Union

from . import _native
from ._config import ConfigValue, Count, Duration, Seconds
from ._config import config_pairs as _config_pairs
from ._config import config_value as _config_value
from ._config import escape_bytes as _escape_bytes  # noqa: F401 (tests import it from here)
from ._args import running_loop as _running_loop
from ._args import sync_callable as _sync_callable
from ._args import seconds as _seconds
from ._cluster import Cluster
from ._errors import InternalError, InvalidArgument, SwitchboardError, Unavailable
from ._native import Lease
from ._registry import Registry
from ._resources import Resources
from ._server import Hub
from ._sessions import Sessions
from ._snapshots import (
    BreakerOp,
    BreakerState,
    ClosedBy,
    ConnState,
    EndpointHealth,
    Event,
    HealthReport,
    LatencyStats,
    PoolStats,
)

__all__ = [
    "BreakerOp",
    "BreakerState",
    "ClosedBy",
    "ConfigValue",
    "ConnState",
    "EndpointHealth",
    "Event",
    "HealthReport",
    "LatencyStats",
    "Manager",
    "Pool",
    "PoolStats",
    "AcquireContext",
]

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
        self._sessions: Optional[Sessions] = None
        self._registry: Optional[Registry] = None
        self._resources: Optional[Resources] = None
        self._hub: Optional[Hub] = None
        self._cluster: Optional[Cluster] = None
        _live.add(self)

    @property
    def sessions(self) -> Sessions:
        """The manager's sessions and stream offsets (see :class:`Sessions`). The
        ``sessions.*`` and ``offsets.*`` keys of the manager configure them:
        ``Manager(offsets_path="/var/lib/app/offsets.redb", sessions_max_per_key=1)``."""
        if self._sessions is None:
            self._sessions = Sessions(self._native.sessions())
        return self._sessions

    @property
    def registry(self) -> Registry:
        """The manager's live-connection registry (see :class:`Registry`). The
        ``registry.*`` keys of the manager configure it:
        ``Manager(registry_queue_max_messages=256, registry_heartbeat_interval="30s")``."""
        if self._registry is None:
            self._registry = Registry(self._native.registry())
        return self._registry

    @property
    def cluster(self) -> Optional[Cluster]:
        """The manager's membership in its cluster (see :class:`Cluster`), or ``None``
        when ``cluster.redis_url`` is not set:
        ``Manager({"cluster.redis_url": "redis://10.0.0.5:6379/0", "cluster.name": "chat"})``."""
        if self._cluster is None:
            native = self._native.cluster()
            if native is None:
                return None
            self._cluster = Cluster(native)
        return self._cluster

    @property
    def resources(self) -> Resources:
        """The manager's named shared connections (see :class:`Resources`): one
        physical connection created by id, reconnecting on its own, shared by many
        consumers. ``Manager(resources_path="/var/lib/app/resources.redb")`` keeps the
        named ones across restarts."""
        if self._resources is None:
            self._resources = Resources(self._native.resources())
        return self._resources

    @property
    def server_address(self) -> Optional[str]:
        """The embedded server's address as ``"host:port"`` (the port it picked for
        ``"server.listen": "127.0.0.1:0"``); ``None`` when ``server.listen`` is unset (the
        default: no server). See docs/server.md."""
        return self._native.server_address

    @property
    def grpc_address(self) -> Optional[str]:
        """The gRPC sessions service's address (``server.grpc_listen``'s, or the
        server's own when gRPC shares its port); ``None`` with no server."""
        return self._native.grpc_address

    @property
    def hub(self) -> Hub:
        """What the server's WebSocket clients send to the program (see :class:`Hub`):
        ``manager.hub.recv(timeout)`` or ``await manager.hub.next()``; answer with
        ``manager.registry.send(message.connection_id, ...)``."""
        if self._hub is None:
            self._hub = Hub(self._native.hub())
        return self._hub

    def advance_clock(self, seconds: Union[float, timedelta]) -> None:
        """Moves the manager's manual clock (``Manager(runtime_clock="manual")``) forward
        by ``seconds``: breakers, backoff, health and the registry's heartbeats and
        staleness see the time pass (then run ``registry.cleanup()``).
        :class:`FailedPrecondition` on the system clock, the default."""
        self._native.advance_clock(_seconds("seconds", seconds) or 0.0)

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
        liveness_bypass: Optional[Duration] = None,
        scale_ahead: Optional[float] = None,
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
        :class:`Event`; 0, the default, is off), ``liveness_bypass`` (a connection
        returned less than this long ago skips the FIN/RST check; 0, the default,
        always checks), ``scale_ahead`` (a fraction 0..1 of ``max_size`` leased at
        which the next connection opens before anyone waits; 0, the default, is off),
        ``probe_send="PING\\r\\n"`` (or ``b"PING\\r\\n"``), ``probe_expect="+PONG"``,
        ``tcp_nodelay=True``. ``None`` leaves a key at its default.

        Resilience keys (per endpoint) go by their section, as keywords or as one mapping
        per section: ``breaker_failure_threshold=5`` or ``breaker={"failure_threshold": 5,
        "open_wait": "2s"}``, ``backoff={"initial": 100, "multiplier": 1.6}``,
        ``retry={"max_attempts": 3}``, ``health={"interval": "5s"}``. Percentages and
        factors are plain numbers (``breaker_slow_call_rate_threshold=50``)."""
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
            "liveness_bypass": liveness_bypass,
            "scale_ahead": scale_ahead,
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
        ``switchboard_pool_*`` and per-endpoint ``switchboard_endpoint_*`` series, ending
        in ``# EOF``): serve it on a ``/metrics`` endpoint."""
        return self._native.metrics_text()

    def poll_event(self, timeout: Union[float, timedelta] = 0.0) -> Optional[Event]:
        """The next event (a suspected leak, a state change, a health check...), waiting up to ``timeout`` seconds
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
        fields["endpoints"] = tuple(EndpointHealth(**e) for e in raw["endpoints"])
        return PoolStats(**fields)

    def health(self) -> HealthReport:
        """The pool's health: totals (calls, failures, success rate, reconnects, last
        success, connected since) and an :class:`EndpointHealth` per endpoint (state,
        breaker, quality, latency EWMA, counters, last error, backoff)."""
        raw = self._native.health()
        fields: dict[str, Any] = dict(raw)
        fields["endpoints"] = tuple(EndpointHealth(**e) for e in raw["endpoints"])
        return HealthReport(**fields)

    def healthy_endpoints(self) -> list[EndpointHealth]:
        """The endpoints that can take connections now (breaker not refusing, not
        failed), best quality first."""
        return [EndpointHealth(**e) for e in self._native.healthy_endpoints()]

    def select_best(self, candidates: Iterable[str] = ()) -> str:
        """Of ``candidates`` (endpoint names as written in the target; empty: all of
        them), the one the pool would pick now: power of two choices on in-flight load
        and quality, skipping endpoints whose breaker refuses or that are backing off.
        Raises :class:`Unavailable` when none can take a connection, :class:`NotFound`
        for a name that is not an endpoint of this pool."""
        if isinstance(candidates, (str, bytes)):
            raise InvalidArgument(
                f"select_best takes a list of endpoint names, got the single "
                f"{type(candidates).__name__} {candidates!r}: write select_best([{candidates!r}])"
            )
        names = list(candidates)
        for name in names:
            if not isinstance(name, str):
                raise InvalidArgument(
                    f"select_best: endpoint names must be str, got {type(name).__name__} {name!r}"
                )
        return self._native.select_best(names)

    def breaker_state(self, endpoint: Optional[str] = None) -> BreakerState:
        """The breaker state of ``endpoint`` (``None``: the pool's only endpoint;
        :class:`InvalidArgument` if it has several): ``"closed"``, ``"open"``,
        ``"half_open"``, ``"forced_open"``, ``"disabled"`` or ``"metrics_only"``."""
        return self._native.breaker_state(endpoint)

    def breaker_op(self, op: BreakerOp, endpoint: Optional[str] = None) -> None:
        """An operator's command to the breaker of ``endpoint`` (``None``: every
        endpoint): ``"force_open"`` (refuse every connect until reset; idle
        connections are closed), ``"disable"`` (allow everything, record nothing),
        ``"metrics_only"`` (record and report, never block) or ``"reset"`` (closed,
        with an empty window). Another word raises :class:`InvalidArgument`."""
        self._native.breaker_op(op, endpoint)

    def reset_backoff(self) -> None:
        """Forgets every endpoint's failed connects: the next connect may start at once
        and later delays start from ``backoff.initial`` again (e.g. after an operator
        brought the server back)."""
        self._native.reset_backoff()

    def drain(self, endpoint: str) -> None:
        """Closes the connections of one endpoint: idle ones now, leased ones when they
        come back (e.g. before taking it out of service). New connections go wherever
        the pool chooses. Raises :class:`NotFound` for an unknown endpoint."""
        self._native.drain(endpoint)

    def run_health_checks(self) -> None:
        """Runs every endpoint's health check now, due or not, and waits for them (the
        GIL is released): probes an idle connection per endpoint, or reconnects an
        endpoint that is reconnecting when its backoff and breaker allow."""
        self._native.run_health_checks()

    async def run_health_checks_async(self) -> None:
        """:meth:`run_health_checks` for asyncio: never blocks the event loop."""
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

        self._native.run_health_checks_async(on_done)
        await fut

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
