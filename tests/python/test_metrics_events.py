"""Metrics text, latency summaries in the stats and leak-suspected events (issue 3).

Connections and endpoints also report their state changes as events (issue 4), so the
tests here pick the leak events out by kind."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from conftest import EchoServer, wait_until

import switchboard

LEAK_MS = 100


def test_metrics_text_has_the_scripted_counts(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("x", server.target, max_size=1, max_overflow=0)
    first = pool.acquire(timeout=10)  # waited for a new connection
    with pytest.raises(switchboard.Timeout):
        pool.acquire(timeout=0.05)  # the only connection is out
    first.release()
    pool.acquire(timeout=10).discard()  # served at once from the idle one

    text = manager.metrics_text()
    lines = set(text.splitlines())
    for line in [
        'switchboard_pool_acquires_total{pool="x",result="direct"} 1',
        'switchboard_pool_acquires_total{pool="x",result="waited"} 1',
        'switchboard_pool_acquires_total{pool="x",result="timed_out"} 1',
        'switchboard_pool_acquires_total{pool="x",result="rejected"} 0',
        'switchboard_pool_connections_created_total{pool="x"} 1',
        'switchboard_pool_connections_closed_total{pool="x",reason="discarded"} 1',
        'switchboard_pool_connections_closed_total{pool="x",reason="broken"} 0',
        'switchboard_pool_max_size{pool="x"} 1',
        'switchboard_pool_lease_seconds_count{pool="x"} 2',
    ]:
        assert line in lines, f"{line!r} missing from:\n{text}"
    assert text.rstrip().endswith("# EOF")


def test_metrics_text_lists_every_open_pool(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    manager.pool("a", server.target)
    b = manager.pool("b", server.target)
    text = manager.metrics_text()
    assert 'switchboard_pool_max_size{pool="a"}' in text
    assert 'switchboard_pool_max_size{pool="b"}' in text
    b.close()
    assert 'pool="b"' not in manager.metrics_text()


def test_closed_manager_metrics_text_raises(server: EchoServer) -> None:
    m = switchboard.Manager()
    m.pool("x", server.target)
    m.close(timeout=1)
    try:
        text = m.metrics_text()
    except switchboard.SwitchboardError:
        return
    assert 'pool="x"' not in text  # no pool of a closed manager is listed


def test_stats_have_wait_and_lease_summaries(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("x", server.target, max_size=1)
    empty = pool.stats()
    assert empty.wait == switchboard.LatencyStats() == empty.lease
    assert empty.wait.count == 0 and empty.lease.peak == 0.0

    held = pool.acquire(timeout=10)
    time.sleep(0.05)
    held.release()
    for _ in range(3):
        pool.acquire(timeout=10).release()

    s = pool.stats()
    assert isinstance(s.wait, switchboard.LatencyStats)
    assert s.wait.count == s.acquired_total == 4
    assert s.lease.count == 4
    # Lease times come from the coarse monotonic clock (docs/metrics.md): a 50 ms lease
    # may read one kernel tick (at most 10 ms) short.
    assert s.lease.peak >= 0.04
    assert s.lease.avg > 0
    assert 0 <= s.lease.p50 <= s.lease.p90 <= s.lease.p99 <= s.lease.peak
    assert 0 <= s.wait.p50 <= s.wait.p90 <= s.wait.p99 <= s.wait.peak
    # Three quick leases and one of 50 ms: the median is far below the peak.
    assert s.lease.p50 < 0.05
    assert s.lease.avg < s.lease.peak
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.lease.count = 0  # type: ignore[misc]


def _leak_pool(manager: switchboard.Manager, server: EchoServer, name: str) -> switchboard.Pool:
    return manager.pool(name, server.target, max_size=2, leak_detection_threshold=LEAK_MS)


def _next_leak(manager: switchboard.Manager, timeout: float) -> switchboard.Event | None:
    """The next queued leak_suspected event, skipping other kinds (state changes)."""
    deadline = time.monotonic() + timeout
    for _ in range(10_000):
        event = manager.poll_event(timeout=max(0.0, deadline - time.monotonic()))
        if event is None or event.kind == "leak_suspected":
            return event
    raise AssertionError("more than 10,000 events without a leak_suspected one")


def _poll_leak(manager: switchboard.Manager, pool: switchboard.Pool) -> switchboard.Event:
    """Runs the upkeep until it reports the held lease (bounded in count and time)."""

    def one() -> switchboard.Event | None:
        pool._run_upkeep()
        return _next_leak(manager, timeout=0.02)

    event = wait_until(one, timeout=20, what="a leak_suspected event")
    assert event is not None
    return event


def test_leak_event_by_polling(manager: switchboard.Manager, server: EchoServer) -> None:
    pool = _leak_pool(manager, server, "leaky")
    assert manager.poll_event() is None
    held = pool.acquire(timeout=10)
    quick = pool.acquire(timeout=10)
    quick.release()  # given back in time: never reported

    event = _poll_leak(manager, pool)
    assert isinstance(event, switchboard.Event)
    assert event.kind == "leak_suspected"
    assert event.pool == "leaky"
    assert event.connection_id == held.id
    assert event.age is not None and event.age >= LEAK_MS / 1000
    assert "leaky" in event.message and f"#{held.id}" in event.message
    assert abs(event.time - time.time()) < 600  # wall clock, seconds since the epoch

    # Reported once: another pass finds nothing new.
    pool._run_upkeep()
    assert _next_leak(manager, timeout=0.05) is None
    assert manager.events_dropped() == 0
    held.release()


def test_poll_event_waits_with_the_gil_released(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = _leak_pool(manager, server, "leaky")
    held = pool.acquire(timeout=10)
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set() and ticks < 100_000:
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    try:
        # Nothing is queued and nobody runs the upkeep by hand: the background upkeep
        # reports the lease while this thread waits inside poll_event.
        event = None
        for _ in range(40):
            event = _next_leak(manager, timeout=0.5)
            if event is not None:
                break
    finally:
        stop.set()
        t.join(timeout=10)
    assert event is not None and event.connection_id == held.id
    assert ticks > 0  # the other thread ran while this one waited
    held.release()


def test_poll_event_argument_checks(manager: switchboard.Manager) -> None:
    with pytest.raises(switchboard.InvalidArgument):
        manager.poll_event(timeout="1s")  # type: ignore[arg-type]
    with pytest.raises(switchboard.InvalidArgument):
        manager.poll_event(timeout=-1)
    with pytest.raises(switchboard.InvalidArgument):
        manager.on_event(42)  # type: ignore[arg-type]


def test_leak_event_by_callback_on_a_runtime_thread(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    got: list[tuple[switchboard.Event, str]] = []
    arrived = threading.Event()

    def on_event(event: switchboard.Event) -> None:
        if event.kind == "leak_suspected":
            got.append((event, threading.current_thread().name))
            arrived.set()

    manager.on_event(on_event)
    pool = _leak_pool(manager, server, "cb")
    held = pool.acquire(timeout=10)
    # The background upkeep (on a runtime thread) reports it; no manual pass.
    assert arrived.wait(timeout=20), "no event reached the callback"
    event, thread = got[0]
    assert event.kind == "leak_suspected" and event.pool == "cb"
    assert event.connection_id == held.id
    assert thread != threading.main_thread().name
    # With a callback set, nothing is queued.
    assert manager.poll_event() is None

    # Cleared: the next leak goes to the queue again.
    manager.on_event(None)
    second = pool.acquire(timeout=10)
    later = _poll_leak(manager, pool)
    assert later.connection_id == second.id
    assert len(got) == 1
    held.release()
    second.release()


def test_callback_exceptions_go_to_unraisablehook(
    manager: switchboard.Manager, server: EchoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)

    def boom(event: switchboard.Event) -> None:
        if event.kind == "leak_suspected":  # state changes come first; they pass
            raise ValueError(f"boom {event.kind} {event.connection_id}")

    manager.on_event(boom)
    pool = _leak_pool(manager, server, "boom")
    held = pool.acquire(timeout=10)
    leak = f"boom leak_suspected {held.id}"

    def reported() -> bool:
        pool._run_upkeep()
        return any(str(u.exc_value) == leak for u in seen)

    wait_until(reported, timeout=20, what="unraisablehook")
    assert isinstance(seen[0].exc_value, ValueError)
    assert str(seen[0].exc_value) == leak
    held.release()


def test_callback_that_refers_to_the_manager_does_not_hang_close(server: EchoServer) -> None:
    m = switchboard.Manager()
    calls: list[int] = []

    def on_event(event: switchboard.Event) -> None:
        calls.append(len(m.pool_names()))  # calls back into the library

    m.on_event(on_event)
    pool = _leak_pool(m, server, "ref")
    held = pool.acquire(timeout=10)
    wait_until(lambda: calls, timeout=20, what="the callback")
    assert calls[0] == 1
    # Swapping the callback while the upkeep may be calling it, then closing.
    for _ in range(20):
        m.on_event(on_event)
    held.release()
    m.close(timeout=1)
    assert m.closed


EXIT_SCRIPT = """
import sys, threading, time
import switchboard

target = sys.argv[1]
m = switchboard.Manager()
seen = threading.Event()

def on_event(event):
    # Refers to the manager (a cycle through the native side) and is still being
    # called by the upkeep while the interpreter exits.
    m.pool_names()
    seen.set()

m.on_event(on_event)
pool = m.pool("exit", target, max_size=2, leak_detection_threshold=20)
held = pool.acquire(timeout=10)
other = pool.acquire(timeout=10)
assert seen.wait(20), "no event"
print("exiting", flush=True)
"""


def test_interpreter_exit_with_a_callback_set_and_leases_out(server: EchoServer) -> None:
    # Never closed by the program: the manager is closed at exit with the callback set
    # and leases out; the process ends promptly and cleanly.
    proc = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, server.target],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exiting" in proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
