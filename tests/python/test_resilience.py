"""Issue 4 through the Python package: breakers, backoff, health and multi-endpoint pools
under real faults (a loopback echo server behind tests/fixtures/fault_proxy.py).

Nothing here asserts how fast something happened, only that it happened within its
deadline plus a generous margin; every loop is bounded in count and time."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import threading
import time
from typing import Iterator, Optional

import pytest
from conftest import EchoServer, echo, wait_until
from fault_proxy import FaultProxy

import switchboard

#: Added to every deadline before a test calls a wait too long (slow CI, 2 cores).
MARGIN = 5.0


@pytest.fixture
def proxy(server: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(server.port) as p:
        yield p


def all_events(manager: switchboard.Manager, limit: float = 0.2) -> list[switchboard.Event]:
    """The queued events, polling until none came for `limit` seconds, for at most 2 s
    (health checks keep adding events, so the queue may never run dry)."""
    out: list[switchboard.Event] = []
    deadline = time.monotonic() + max(limit, 2.0)
    while time.monotonic() < deadline:
        event = manager.poll_event(timeout=limit)
        if event is None:
            break
        out.append(event)
    return out


def events_of(manager: switchboard.Manager, kind: str, limit: float = 0.2) -> list[switchboard.Event]:
    """The queued events of `kind` (the others are polled and dropped)."""
    return [e for e in all_events(manager, limit) if e.kind == kind]


def timed_echo(conn: switchboard.Lease, data: bytes = b"hi\n") -> float:
    """One round trip on `conn`; returns how long it took in seconds."""
    started = time.monotonic()
    assert echo(conn, data) == data
    return time.monotonic() - started


# --- configuration ------------------------------------------------------------------


def test_resilience_keys_accept_numbers_text_and_section_mappings(
    manager: switchboard.Manager, server: EchoServer, closed_port: int
) -> None:
    pool = manager.pool(
        "cfg",
        server.target,
        breaker={"failure_threshold": 3, "slow_call_rate_threshold": 50, "open_wait": "2s"},
        backoff={"multiplier": 1.6, "jitter": 0.25, "initial": 100.5, "strategy": "full"},
        breaker_failure_rate_threshold=62.5,
        retry_max_attempts=1,
        health={"interval": 0, "timeout": 2e-3},
    )
    with pool.acquire(timeout=10) as conn:
        assert echo(conn, b"ok\n") == b"ok\n"
    # Manager-level defaults for every pool, in the same spellings.
    with switchboard.Manager(
        {"breaker.open_wait_multiplier": 2.0}, breaker={"failure_threshold": 1}
    ) as m:
        down = m.pool("down", f"tcp://127.0.0.1:{closed_port}")
        with pytest.raises(switchboard.Unavailable):
            down.acquire(timeout=5)
        assert down.breaker_state() == "open"  # one failure was enough

    with pytest.raises(switchboard.InvalidArgument, match="backoff.jitter"):
        manager.pool("bad1", server.target, backoff={"jitter": 1.5})
    with pytest.raises(switchboard.InvalidArgument, match="breaker.window_type"):
        manager.pool("bad2", server.target, breaker_window_type="sliding")
    with pytest.raises(switchboard.InvalidArgument, match="breaker.nonsense"):
        manager.pool("bad3", server.target, breaker={"nonsense": 1})
    with pytest.raises(switchboard.InvalidArgument, match="must be strings"):
        manager.pool("bad4", server.target, breaker={1: 2})  # type: ignore[dict-item]


# --- endpoint down at start ---------------------------------------------------------


def test_endpoint_down_at_start_fails_within_the_timeout_then_fails_fast(
    manager: switchboard.Manager, closed_port: int
) -> None:
    target = f"tcp://127.0.0.1:{closed_port}"
    pool = manager.pool("down", target, backoff_initial="30s")  # builds: connects lazily
    started = time.monotonic()
    with pytest.raises(switchboard.Unavailable) as first:
        pool.acquire(timeout=2.0)
    assert time.monotonic() - started < 2.0 + MARGIN
    assert isinstance(first.value, ConnectionError)
    assert "refused" in str(first.value).lower(), first.value
    # Backing off now: the next one fails at once, its message naming the backoff.
    started = time.monotonic()
    with pytest.raises(switchboard.Unavailable, match="backing off") as second:
        pool.acquire(timeout=2.0)
    assert time.monotonic() - started < 1.0 + MARGIN
    assert target in str(second.value)

    # Also through asyncio.
    async def main() -> None:
        with pytest.raises(switchboard.Unavailable, match="backing off"):
            await pool.acquire_async(timeout=2.0)

    asyncio.run(main())

    h = pool.health()
    assert h.pool == "down" and h.failures == 1 and h.calls == 1
    ep = h.endpoint(target)
    assert ep.state == "reconnecting" and ep.breaker == "closed"
    assert ep.backoff_remaining is not None and 0 < ep.backoff_remaining <= 30 * 1.2
    assert ep.last_error is not None and "refused" in ep.last_error.lower()
    assert ep.last_success is None and h.connected_since is None
    states = [(e.old_state, e.new_state, e.endpoint) for e in events_of(manager, "endpoint_state")]
    assert states == [("idle", "connecting", target), ("connecting", "reconnecting", target)]

    # reset_backoff: the next acquire connects again (refused again, not "backing off").
    pool.reset_backoff()
    with pytest.raises(switchboard.Unavailable) as third:
        pool.acquire(timeout=2.0)
    assert "backing off" not in str(third.value) and third.value.errno == errno.ECONNREFUSED
    assert pool.health().failures == 2
    assert pool.stats().leased == 0


# --- blackhole ----------------------------------------------------------------------


def test_blackhole_acquire_and_recv_honour_their_deadlines(
    manager: switchboard.Manager, proxy: FaultProxy
) -> None:
    pool = manager.pool("bh", proxy.target, max_size=1, connect_timeout=300)
    conn = pool.acquire(timeout=5)
    timed_echo(conn)
    proxy.command("blackhole")
    conn.settimeout(0.2)
    conn.sendall(b"hi\n")
    started = time.monotonic()
    with pytest.raises(switchboard.Timeout):
        conn.recv(16)
    assert time.monotonic() - started < 0.2 + MARGIN
    # The pool is full (one lease): a second caller times out on time.
    started = time.monotonic()
    with pytest.raises(switchboard.Timeout):
        pool.acquire(timeout=0.3)
    assert time.monotonic() - started < 0.3 + MARGIN
    conn.discard()
    # A new connect is accepted by the proxy and never answered: the lease comes (TCP
    # connects), and its first recv times out on time too.
    conn = pool.acquire(timeout=5)
    conn.settimeout(0.2)
    conn.sendall(b"hi\n")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        conn.recv(16)
    assert time.monotonic() - started < 0.2 + MARGIN
    conn.discard()


def test_a_blackholed_health_check_honours_its_timeout_with_the_gil_released(
    manager: switchboard.Manager, proxy: FaultProxy
) -> None:
    pool = manager.pool(
        "bh-check", proxy.target, probe_send="hi\n", probe_expect="hi",
        health={"interval": 0, "timeout": "300ms"},
    )
    pool.acquire(timeout=5).release()
    pool.run_health_checks()
    assert pool.health().endpoints[0].checks == 1
    proxy.command("blackhole")
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set() and ticks < 100_000:
            ticks += 1
            time.sleep(0.001)

    ticker = threading.Thread(target=count)
    ticker.start()
    started = time.monotonic()
    try:
        pool.run_health_checks()  # waits for the probe's deadline
    finally:
        stop.set()
        ticker.join(timeout=10)
    assert time.monotonic() - started < 0.3 + MARGIN
    assert ticks > 0  # the other thread ran meanwhile
    ep = pool.health().endpoints[0]
    assert (ep.checks, ep.checks_failed) == (2, 1)
    checks = events_of(manager, "health_check")
    assert [e.new_state for e in checks] == ["ok", "failed"]
    assert all(e.endpoint == proxy.target and e.age is not None for e in checks)


# --- reset mid-lease ----------------------------------------------------------------


def test_a_reset_mid_lease_fails_the_call_and_the_next_acquire_is_fresh(
    manager: switchboard.Manager, proxy: FaultProxy
) -> None:
    pool = manager.pool("rst", proxy.target)
    conn = pool.acquire(timeout=5)
    timed_echo(conn)
    first = conn.id
    proxy.command("reset_existing")
    conn.settimeout(2.0)

    def call_fails() -> bool:
        try:
            conn.sendall(b"x\n")
            return conn.recv(16) == b""
        except switchboard.SwitchboardError:
            return True

    wait_until(call_fails, timeout=10, what="a call to fail after the reset")
    conn.release()  # released, not discarded: the pool closes it as broken
    s = pool.stats()
    assert s.closed_by.broken == 1, s.closed_by
    assert s.idle == 0
    assert s.endpoints[0].failures == 1  # the broken lease counted against its endpoint
    with pool.acquire(timeout=5) as fresh:
        assert fresh.id != first
        timed_echo(fresh)


# --- slow calls trip the breaker ----------------------------------------------------


def test_slow_calls_trip_the_breaker_and_acquire_then_fails_fast(
    manager: switchboard.Manager, proxy: FaultProxy
) -> None:
    pool = manager.pool(
        "slow",
        proxy.target,
        breaker={
            "failure_threshold": 0,
            "slow_call_duration": 50,
            "slow_call_rate_threshold": 50,
            "minimum_calls": 4,
            "open_wait": "30s",
        },
    )
    proxy.command("latency 150")
    slow_calls = 0
    while pool.breaker_state() == "closed" and slow_calls < 10:
        with pool.acquire(timeout=5) as conn:
            took = timed_echo(conn)
            assert took >= 0.1, took
            conn.report(True, took)
        slow_calls += 1
    # The window holds the fast connect and the slow calls: 3 of 4 slow >= 50 %.
    assert slow_calls == 3
    assert pool.breaker_state() == "open"
    assert pool.breaker_state(proxy.target) == "open"
    started = time.monotonic()
    with pytest.raises(switchboard.Unavailable, match="breaker open"):
        pool.acquire(timeout=5)
    assert time.monotonic() - started < 1.0 + MARGIN  # fails fast, not after 5 s

    events = all_events(manager)
    tripped = [e for e in events if e.kind == "breaker_state"]
    assert [(e.old_state, e.new_state) for e in tripped] == [("closed", "open")]
    assert tripped[0].endpoint == proxy.target and tripped[0].pool == "slow"
    assert "slow-call rate" in tripped[0].message
    rejected = [e for e in events if e.kind == "rejected"]
    assert rejected and "breaker open" in rejected[-1].message, events
    assert events.index(tripped[0]) < events.index(rejected[-1])
    ep = pool.health().endpoints[0]
    assert (ep.breaker, ep.breaker_opened, ep.quality) == ("open", 1, 0.0)
    assert pool.stats().idle == 0  # the open breaker evicted the idle connection
    assert pool.healthy_endpoints() == []

    text = manager.metrics_text()
    line = (
        f'switchboard_endpoint_breaker_state{{pool="slow",endpoint="{proxy.target}",'
        'state="open"} 1'
    )
    assert line in text, text


# --- HALF_OPEN admits exactly the configured probes ---------------------------------


class Gate:
    """A connect callable that fails while `failing`, then blocks on `gate`."""

    def __init__(self) -> None:
        self.failing = True
        self.started = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()

    def connect(self, endpoint: str) -> object:
        with self.lock:
            self.started += 1
        if self.failing:
            raise ConnectionRefusedError(f"{endpoint} is down (test)")
        assert self.gate.wait(timeout=30), "the gate never opened"
        return object()

    def count(self) -> int:
        with self.lock:
            return self.started


def test_half_open_admits_exactly_the_configured_probes_then_closes(
    manager: switchboard.Manager,
) -> None:
    g = Gate()
    pool = manager.pool(
        "half",
        "svc://half",
        connect=g.connect,
        max_size=8,
        max_connecting=8,  # so only the breaker limits the connects
        breaker={"failure_threshold": 1, "open_wait": "200ms", "half_open_probes": 2},
        backoff={"initial": "10ms", "max": "10ms"},
        health={"interval": 0},
    )
    with pytest.raises(switchboard.Unavailable, match="is down"):
        pool.acquire(timeout=5)
    assert pool.breaker_state() == "open"
    before = g.count()
    with pytest.raises(switchboard.Unavailable, match="breaker open"):
        pool.acquire(timeout=5)
    assert g.count() == before  # refused without a connect

    time.sleep(0.5)  # past the open wait (200 ms + jitter) and the backoff
    g.failing = False
    results: list[Optional[BaseException]] = [None] * 5
    leases: list[switchboard.Lease] = []

    def acquire(i: int) -> None:
        try:
            leases.append(pool.acquire(timeout=20))
        except BaseException as e:  # noqa: BLE001 - handed to the asserting thread
            results[i] = e

    threads = [threading.Thread(target=acquire, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: g.count() == before + 2, timeout=10, what="two probe connects")
        wait_until(
            lambda: sum(not t.is_alive() for t in threads) == 3,
            timeout=10,
            what="three callers refused while the probes run",
        )
        assert pool.breaker_state() == "half_open"
        assert g.count() == before + 2
    finally:
        g.gate.set()
        for t in threads:
            t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    refused = [e for e in results if e is not None]
    assert len(leases) == 2 and len(refused) == 3, results
    for e in refused:
        assert isinstance(e, switchboard.Unavailable), repr(e)
        assert "half_open" in str(e), e
    assert g.count() == before + 2, "no third connect"
    assert pool.breaker_state() == "closed"
    for lease in leases:
        lease.release()
    states = [e.new_state for e in events_of(manager, "breaker_state")]
    assert states == ["open", "half_open", "closed"]


# --- flap ---------------------------------------------------------------------------


def test_a_flapping_endpoint_opens_the_breaker_and_recovers_with_events_in_order(
    manager: switchboard.Manager, proxy: FaultProxy
) -> None:
    max_open_wait = 0.3
    pool = manager.pool(
        "flap",
        proxy.target,
        connect_timeout="1s",
        breaker={
            "failure_threshold": 2,
            "open_wait": "100ms",
            "max_open_wait": f"{int(max_open_wait * 1000)}ms",
            "half_open_probes": 1,
        },
        backoff={"initial": "20ms", "max": "50ms"},
        health={"interval": "50ms"},
    )
    proxy.command("flap 200 200")
    saw_open = False
    rounds = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and rounds < 2000:
        rounds += 1
        try:
            conn = pool.acquire(timeout=0.3)
        except switchboard.SwitchboardError:
            pass
        else:
            conn.settimeout(0.3)
            try:
                conn.sendall(b"hi\n")
                ok = conn.recv(4) != b""
            except switchboard.SwitchboardError:
                ok = False
            if ok:
                conn.release()
            else:
                conn.discard()
        saw_open = saw_open or pool.breaker_state() == "open"
        if saw_open and rounds > 50:
            break
        time.sleep(0.005)
    assert saw_open, "the breaker opened while the endpoint flapped"
    proxy.command("pass")
    started = time.monotonic()

    def recovered() -> bool:
        if pool.breaker_state() != "closed":
            return False
        try:
            pool.acquire(timeout=0.3).release()
        except switchboard.SwitchboardError:
            return False
        return True

    wait_until(recovered, timeout=max_open_wait + 10, what="the breaker to close again")
    assert time.monotonic() - started < max_open_wait + 10
    events = events_of(manager, "breaker_state")
    assert len(events) >= 3, events
    for before, after in zip(events, events[1:]):
        assert before.new_state == after.old_state, events
        assert before.time <= after.time, events
    assert events[0].old_state == "closed"
    assert events[-1].new_state == "closed"
    assert "open" in [e.new_state for e in events]
    assert all(e.endpoint == proxy.target and e.pool == "flap" for e in events)


# --- two endpoints, one down --------------------------------------------------------


def test_with_one_of_two_endpoints_down_every_acquire_goes_to_the_healthy_one(
    manager: switchboard.Manager, server: EchoServer, closed_port: int
) -> None:
    good = server.target
    bad = f"tcp://127.0.0.1:{closed_port}"
    pool = manager.pool("two", f"{bad},{good}", max_size=20)
    leases = [pool.acquire(timeout=5) for _ in range(20)]
    try:
        assert [c.endpoint for c in leases] == [good] * 20
        for c in leases:
            timed_echo(c)
    finally:
        for c in leases:
            c.release()
    best = pool.healthy_endpoints()
    assert best[0].endpoint == good
    assert bad not in [e.endpoint for e in best]
    assert pool.select_best() == good
    assert pool.select_best([good, bad]) == good
    with pytest.raises(switchboard.Unavailable):
        pool.select_best([bad])
    with pytest.raises(switchboard.NotFound):
        pool.select_best(["tcp://nowhere:1"])
    with pytest.raises(switchboard.InvalidArgument, match="list of endpoint names"):
        pool.select_best(good)
    h = pool.health()
    assert [e.endpoint for e in h.endpoints] == [bad, good]
    assert h.endpoint(bad).state == "reconnecting"
    assert h.endpoint(good).state == "connected"
    assert h.endpoint(good).open_connections == 20
    assert h.endpoint(good).quality > h.endpoint(bad).quality
    with pytest.raises(switchboard.NotFound):
        h.endpoint("tcp://nowhere:1")
    # Several endpoints: breaker_state needs a name.
    with pytest.raises(switchboard.InvalidArgument):
        pool.breaker_state()
    assert pool.breaker_state(good) == "closed"
    assert [e.endpoint for e in pool.stats().endpoints] == [bad, good]


# --- operators ----------------------------------------------------------------------


def test_operators_force_open_disable_and_reset_the_breaker(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("ops", server.target)
    pool.acquire(timeout=5).release()
    pool.breaker_op("force_open")
    assert pool.breaker_state() == "forced_open"
    assert pool.stats().idle == 0  # forcing open closed the idle connection
    started = time.monotonic()
    with pytest.raises(switchboard.Unavailable, match="forced_open"):
        pool.acquire(timeout=5)
    assert time.monotonic() - started < 1.0 + MARGIN
    pool.breaker_op("reset")
    assert pool.breaker_state() == "closed"
    with pool.acquire(timeout=5) as conn:
        timed_echo(conn)
    pool.breaker_op("disable", server.target)
    assert pool.breaker_state() == "disabled"
    pool.breaker_op("metrics_only", endpoint=server.target)
    assert pool.breaker_state() == "metrics_only"
    with pytest.raises(switchboard.InvalidArgument, match="force_open"):
        pool.breaker_op("open-ish")  # type: ignore[arg-type]
    with pytest.raises(switchboard.NotFound):
        pool.breaker_op("reset", "tcp://127.0.0.1:1")
    with pytest.raises(switchboard.NotFound):
        pool.breaker_state("tcp://127.0.0.1:1")
    states = [(e.old_state, e.new_state) for e in events_of(manager, "breaker_state")]
    assert states == [
        ("closed", "forced_open"),
        ("forced_open", "closed"),
        ("closed", "disabled"),
        ("disabled", "metrics_only"),
    ]


def test_drain_closes_one_endpoint_and_health_checks_run_from_asyncio(
    manager: switchboard.Manager, server: EchoServer, proxy: FaultProxy
) -> None:
    pool = manager.pool(
        "drain", f"{server.target},{proxy.target}", max_size=4,
        probe_send=b"hi\n", probe_expect=b"hi", health_interval=0,
    )
    # Four leases at once: spread over both endpoints by their in-flight load.
    leases = [pool.acquire(timeout=5) for _ in range(4)]
    on_proxy = sum(c.endpoint == proxy.target for c in leases)
    assert 1 <= on_proxy <= 3, [c.endpoint for c in leases]
    for c in leases:
        c.release()
    assert pool.stats().idle == 4
    pool.drain(proxy.target)
    s = pool.stats()
    assert (s.closed_by.evicted, s.idle) == (on_proxy, 4 - on_proxy)
    assert {e.endpoint: e.open_connections for e in s.endpoints} == {
        server.target: 4 - on_proxy,
        proxy.target: 0,
    }
    with pytest.raises(switchboard.NotFound):
        pool.drain("tcp://127.0.0.1:1")

    async def main() -> None:
        await pool.run_health_checks_async()

    asyncio.run(main())
    h = pool.health()
    assert h.endpoint(server.target).checks == 1
    assert h.endpoint(server.target).latency_ewma is not None
    checks = events_of(manager, "health_check")
    assert [(e.endpoint, e.new_state) for e in checks if e.endpoint == server.target] == [
        (server.target, "ok")
    ]


# --- leases, stats and events -------------------------------------------------------


def test_lease_endpoint_and_report(manager: switchboard.Manager, server: EchoServer) -> None:
    pool = manager.pool("rep", server.target, breaker_failure_threshold=2)
    conn = pool.acquire(timeout=5)
    assert conn.endpoint == server.target
    conn.report(True, 0.004)
    conn.report(False, 0.5)
    ep = pool.health().endpoints[0]
    assert (ep.calls, ep.failures) == (3, 1)  # the connect and the two reports
    assert ep.last_error is not None and "reported" in ep.last_error
    assert 0 < ep.success_rate < 1 and 0 < ep.quality < 1
    with pytest.raises(switchboard.InvalidArgument, match="latency"):
        conn.report(True, -1.0)
    conn.report(False, 0.1)  # the second failure in a row opens the breaker
    assert pool.breaker_state() == "open"
    conn.release()
    assert pool.stats().idle == 0  # its connection was closed on release
    with pytest.raises(switchboard.FailedPrecondition):
        conn.endpoint
    with pytest.raises(switchboard.FailedPrecondition):
        conn.report(True, 0.1)


def test_health_report_and_events_are_typed_and_frozen(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("typed", server.target)
    with pool.acquire(timeout=5) as conn:
        lease_id = conn.id
    h = pool.health()
    assert isinstance(h, switchboard.HealthReport)
    ep = h.endpoints[0]
    assert isinstance(ep, switchboard.EndpointHealth)
    assert (h.calls, h.failures, h.success_rate, h.reconnects) == (1, 0, 1.0, 0)
    assert h.last_success is not None and abs(h.last_success - time.time()) < 600
    assert h.connected_since is not None and h.connected_since <= h.last_success
    assert (ep.state, ep.breaker, ep.open_connections) == ("connected", "closed", 1)
    assert ep.last_error is None and ep.backoff_remaining is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        ep.quality = 1.0  # type: ignore[misc]
    assert [e.endpoint for e in pool.stats().endpoints] == [server.target]
    opened = [e for e in events_of(manager, "connection_state") if e.connection_id == lease_id]
    assert opened and opened[0].new_state == "connected"
    assert opened[0].endpoint == server.target and opened[0].pool == "typed"
    assert opened[0].session_id is None and opened[0].stream is None
