"""Connection warming and preemptive scaling from Python (issue 13 item 8): the
endpoint's warming state in its health record (``EndpointHealth.warming``: cold,
warming, warm) and ``scale_ahead`` opening the next connection before any caller
waits (``created_total`` rising while ``waiting`` stays 0), off by default."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Callable, get_args

import switchboard


def slow_connect(delay: float) -> Callable[[str], int]:
    """A connect callable that takes ``delay`` seconds and numbers its objects."""
    counter = itertools.count(1)

    def connect(endpoint: str) -> int:
        time.sleep(delay)
        return next(counter)

    return connect


def test_the_names_are_the_cores() -> None:
    assert {a for arg in get_args(switchboard.WarmingState) for a in get_args(arg)} == {
        "cold",
        "warming",
        "warm",
    }


def test_an_endpoint_warms_up_to_min_idle(manager: switchboard.Manager) -> None:
    connect = slow_connect(0.1)
    pool = manager.pool("warming", "db://x", connect=connect, min_idle=3, max_connecting=1)
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        e = pool.health().endpoints[0]
        assert isinstance(e, switchboard.EndpointHealth)
        if not seen or seen[-1][0] != e.warming:
            seen.append((e.warming, e.open_connections))
        if e.warming == "warm":
            break
        time.sleep(0.005)
    # A first look may come before the upkeep's first connect has started.
    if seen and seen[0][0] == "cold":
        seen.pop(0)
    assert [s for s, _ in seen] == ["warming", "warm"], seen
    assert seen[-1][1] == 3, "warm once min_idle is open"
    assert pool.stats().endpoints[0].warming == "warm"


def test_an_endpoint_with_nothing_open_is_cold(manager: switchboard.Manager) -> None:
    connect = slow_connect(0.01)
    pool = manager.pool("cold", "db://x", connect=connect)
    assert pool.health().endpoints[0].warming == "cold"
    lease = pool.acquire(timeout=5)
    assert pool.health().endpoints[0].warming == "warm"
    lease.discard()
    assert pool.health().endpoints[0].warming == "cold"


def watch_waiting(pool: switchboard.Pool, stop: threading.Event, out: list[int]) -> None:
    while not stop.is_set():
        out.append(pool.stats().waiting)
        time.sleep(0.002)


def test_scale_ahead_opens_the_next_connection_before_anyone_waits(
    manager: switchboard.Manager,
) -> None:
    connect = slow_connect(0.03)
    pool = manager.pool("ahead", "db://x", connect=connect, max_size=4, scale_ahead=0.5)
    a = pool.acquire(timeout=5)
    time.sleep(0.1)
    assert pool.stats().created_total == 1, "one leased of 4: below 0.5"
    b = pool.acquire(timeout=5)
    # Two leased of 4: the third opens ahead, with nobody waiting for it.
    stop, waiting = threading.Event(), [0]
    watcher = threading.Thread(target=watch_waiting, args=(pool, stop, waiting))
    watcher.start()
    deadline = time.monotonic() + 5
    while pool.stats().idle != 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    stop.set()
    watcher.join()
    s = pool.stats()
    assert (s.created_total, s.size, s.leased, s.idle) == (3, 3, 2, 1), s
    assert max(waiting) == 0
    # Taken without waiting: three of 4 leased, the fourth opens ahead.
    c = pool.try_acquire()
    assert c is not None
    deadline = time.monotonic() + 5
    while pool.stats().created_total != 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    s = pool.stats()
    assert (s.created_total, s.waiting, s.acquired_waited_total) == (4, 0, 2), s
    for lease in (a, b, c):
        lease.release()


def test_scale_ahead_is_off_by_default(manager: switchboard.Manager) -> None:
    connect = slow_connect(0.03)
    pool = manager.pool("on_demand", "db://x", connect=connect, max_size=4)
    a = pool.acquire(timeout=5)
    b = pool.acquire(timeout=5)
    time.sleep(0.15)
    s = pool.stats()
    assert (s.created_total, s.size, s.idle) == (2, 2, 0), s
    assert pool.try_acquire() is None
    a.release()
    b.release()
