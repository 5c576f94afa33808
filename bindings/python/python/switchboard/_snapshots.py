"""The snapshot and value types of the public API: what pools and managers report.

The breaker, connection and warming state names (``BreakerState``, ``BreakerOp``,
``ConnState``, ``WarmingState``),
the counters and summaries of :meth:`Pool.stats` (``PoolStats``, ``ClosedBy``,
``LatencyStats``), the health of :meth:`Pool.health` (``HealthReport``,
``EndpointHealth``) and the manager's ``Event``. All are plain frozen values, built from
what the core reports; the live objects that hand them out are in ``_api``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Union

from ._errors import NotFound

__all__ = [
    "BreakerOp",
    "BreakerState",
    "ClosedBy",
    "ConnState",
    "EndpointHealth",
    "Event",
    "HealthReport",
    "LatencyStats",
    "PoolStats",
    "WarmingState",
]

# The aliases below are Unions of one-word Literals rather than Literal["a", "b"]: the
# same type to a checker, but mypy.stubtest only accepts a Union at runtime for them.

#: A circuit breaker's state, as named in every language.
BreakerState = Union[
    Literal["closed"],
    Literal["open"],
    Literal["half_open"],
    Literal["forced_open"],
    Literal["disabled"],
    Literal["metrics_only"],
]

#: An operator's command to a breaker (:meth:`Pool.breaker_op`).
BreakerOp = Union[
    Literal["force_open"], Literal["disable"], Literal["metrics_only"], Literal["reset"]
]

#: The state of an endpoint or a connection, as named in every language.
ConnState = Union[
    Literal["idle"],
    Literal["connecting"],
    Literal["connected"],
    Literal["reconnecting"],
    Literal["disconnecting"],
    Literal["disconnected"],
    Literal["failed"],
]

#: How warm an endpoint is (``EndpointHealth.warming``): ``"cold"`` (nothing open and
#: nothing being opened), ``"warming"`` (connects in flight, or fewer open than its share
#: of the pool's ``min_idle``) or ``"warm"`` (open, that share met, nothing being opened).
WarmingState = Union[Literal["cold"], Literal["warming"], Literal["warm"]]


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
    :meth:`Manager.on_event` callback. Fields that do not apply to its kind are
    ``None``. Events of one manager arrive in the order they happened."""

    #: What happened: ``"leak_suspected"`` (a lease held longer than
    #: ``pool.leak_detection_threshold``), ``"connection_state"``, ``"endpoint_state"``,
    #: ``"breaker_state"`` (a change from ``old_state`` to ``new_state``),
    #: ``"health_check"`` (``new_state`` ``"ok"`` or ``"failed"``, ``age`` its duration),
    #: ``"rejected"`` (a caller turned away, or a registry limit: ``reason`` is its key),
    #: the sessions' kinds, and the registry's ``"registered"``, ``"unregistered"``
    #: (``reason`` says why), ``"subscribed"``, ``"unsubscribed"`` (``topic``) and
    #: ``"slow_consumer"`` (``reason`` is the policy), and the resources'
    #: ``"resource_state"`` (``old_state`` -> ``new_state``, ``reason`` the error),
    #: ``"resource_detached"`` (a consumer detached by a forced delete) and
    #: ``"resource_rebound"`` (an update swapped the connection), and the cluster's
    #: ``"cluster_joined"`` (``reason`` ``"joined"`` or ``"rejoined"``) and
    #: ``"cluster_lost"`` (``reason`` ``"redis_unavailable"``: serving locally until it
    #: rejoins); more kinds may come, so ignore the ones you don't know.
    kind: str
    #: The pool it concerns (``""`` when none).
    pool: str
    #: The connection (``Lease.id``) it concerns, if one.
    connection_id: Optional[int]
    #: How long the lease had been held, in seconds (``leak_suspected``), or how long
    #: the check took (``health_check``).
    age: Optional[float]
    #: The reason, as a sentence for humans.
    message: str
    #: When it happened, in seconds since the Unix epoch (``time.time()`` style).
    time: float
    #: The endpoint it concerns, as written in the target (``"tcp://host:port"``).
    endpoint: Optional[str] = None
    #: For state changes: the state before (``"closed"``, ``"connecting"``, ...).
    old_state: Optional[str] = None
    #: For state changes: the state after; for ``health_check``: ``"ok"`` or ``"failed"``.
    new_state: Optional[str] = None
    #: The session it concerns, if one.
    session_id: Optional[int] = None
    #: The stream it concerns, if one.
    stream: Optional[str] = None
    #: The registry topic it concerns, if one (``subscribed``, ``unsubscribed``).
    topic: Optional[str] = None
    #: The user of the registry connection it concerns, if it has one.
    user: Optional[str] = None
    #: A short machine-readable reason: why a registry connection left (``stale``,
    #: ``send_failed``, ``slow_consumer``, or the program's own), which policy a slow
    #: consumer met, or which limit refused a call (``registry.max_total_connections``).
    reason: Optional[str] = None
    #: The resource it concerns (``manager.resources``), if one.
    resource: Optional[str] = None


@dataclass(frozen=True)
class EndpointHealth:
    """One endpoint of a pool: its state, breaker, quality and counters
    (:meth:`Pool.health`, :meth:`Pool.healthy_endpoints`, ``PoolStats.endpoints``).
    Durations are seconds; times are seconds since the Unix epoch."""

    #: The endpoint, as written in the target (``"tcp://127.0.0.1:6379"``).
    endpoint: str
    #: Its state: ``"idle"``, ``"connecting"``, ``"connected"``, ``"reconnecting"``,
    #: ``"disconnecting"``, ``"disconnected"`` or ``"failed"``.
    state: ConnState
    #: Its circuit breaker's state: ``"closed"``, ``"open"``, ``"half_open"``,
    #: ``"forced_open"``, ``"disabled"`` or ``"metrics_only"``.
    breaker: BreakerState
    #: Quality score in [0, 1], higher is better (0 while the breaker refuses calls).
    quality: float
    #: Latency EWMA of successful calls, or ``None`` before the first success.
    latency_ewma: Optional[float]
    #: Success rate (EWMA) in [0, 1].
    success_rate: float
    #: Calls recorded: connects, probes, health checks, reported calls.
    calls: int
    #: Of them, failed.
    failures: int
    #: Reconnect attempts (connects after a failure).
    reconnects: int
    #: Health checks run.
    checks: int
    #: Of them, failed.
    checks_failed: int
    #: Times the breaker opened.
    breaker_opened: int
    #: Breaker state changes.
    breaker_transitions: int
    #: Calls the breaker refused.
    breaker_rejected: int
    #: Connections open to it now.
    open_connections: int
    #: Of them, leased now (its in-flight load).
    in_flight: int
    #: The last successful call, or ``None``.
    last_success: Optional[float]
    #: Connected without a failure since, or ``None``.
    connected_since: Optional[float]
    #: The last failure's message, or ``None``.
    last_error: Optional[str]
    #: Seconds until the next reconnect may start, while backing off; else ``None``.
    backoff_remaining: Optional[float]
    #: How warm it is: ``"cold"`` (no connection open and none being opened),
    #: ``"warming"`` (connects in flight, or fewer open than its share of ``min_idle``)
    #: or ``"warm"``.
    warming: WarmingState


@dataclass(frozen=True)
class HealthReport:
    """A pool's health, from :meth:`Pool.health`: totals over its endpoints and each
    endpoint. Times are seconds since the Unix epoch."""

    #: The pool's name.
    pool: str
    #: Calls over all endpoints.
    calls: int
    #: Failures over all endpoints.
    failures: int
    #: ``1 - failures / calls`` (1.0 with no calls).
    success_rate: float
    #: Reconnect attempts over all endpoints.
    reconnects: int
    #: The latest success of any endpoint, or ``None``.
    last_success: Optional[float]
    #: The earliest ``connected_since`` of the endpoints that are connected, or ``None``.
    connected_since: Optional[float]
    #: Each endpoint, in target order.
    endpoints: tuple[EndpointHealth, ...] = ()

    def endpoint(self, name: str) -> EndpointHealth:
        """The endpoint called ``name`` (as written in the target); raises
        :class:`NotFound` for another name."""
        for e in self.endpoints:
            if e.endpoint == name:
                return e
        known = ", ".join(e.endpoint for e in self.endpoints)
        raise NotFound(f"pool {self.pool!r} has no endpoint {name!r}; its endpoints: {known}")


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
    #: Each endpoint's health, breaker and load (as in :meth:`Pool.health`).
    endpoints: tuple[EndpointHealth, ...] = ()
