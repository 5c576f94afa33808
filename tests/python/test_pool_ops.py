"""Sizing, lifetimes, probes and operations through Python, against a real echo server:
max_overflow, min_idle, idle_timeout, max_lifetime, probe_send/probe_expect (str and
bytes), resize, evict_all, warm / warm_async, the full stats snapshot and priority order."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from datetime import timedelta

import pytest
from conftest import EchoServer, echo, wait_until

import switchboard
from switchboard._api import _escape_bytes


def test_overflow_connections_close_on_return(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("echo", server.target, max_size=1, max_overflow=1)
    a = pool.acquire(timeout=10)
    b = pool.acquire(timeout=10)  # beyond max_size: an overflow connection
    assert a.id != b.id
    assert pool.stats().size == 2
    with pytest.raises(switchboard.Timeout):
        pool.acquire(timeout=0.05)  # max_size + max_overflow reached
    a.release()
    b.release()
    s = pool.stats()
    assert s.closed_by.overflow == 1
    assert (s.size, s.idle, s.leased, s.max_overflow) == (1, 1, 0, 1)
    assert server.accepted() == 2


def test_min_idle_is_kept_warm(manager: switchboard.Manager, server: EchoServer) -> None:
    pool = manager.pool("echo", server.target, max_size=4, min_idle=2)
    wait_until(lambda: pool.stats().idle == 2, what="idle == min_idle")
    assert pool.stats().min_idle == 2
    # Take both: the background upkeep opens replacements to keep two idle.
    a, b = pool.acquire(timeout=10), pool.acquire(timeout=10)
    pool._run_upkeep()
    wait_until(lambda: pool.stats().idle == 2, what="idle back at min_idle")
    a.release()
    b.release()
    assert pool.stats().size == 4
    assert server.accepted() == 4


def test_warm_opens_up_to_min_idle(manager: switchboard.Manager, server: EchoServer) -> None:
    pool = manager.pool("echo", server.target, max_size=5, min_idle=3)
    opened = pool.warm()
    assert 0 <= opened <= 3
    assert pool.stats().idle >= 3
    assert pool.warm() == 0  # already warm
    with pool.acquire(timeout=10) as conn:
        assert echo(conn, b"warm\n") == b"warm\n"


def test_warm_async(manager: switchboard.Manager, server: EchoServer) -> None:
    pool = manager.pool("echo", server.target, max_size=5, min_idle=2)

    async def main() -> int:
        return await pool.warm_async()

    assert asyncio.run(main()) >= 0
    assert pool.stats().idle >= 2


def test_warm_raises_the_connect_error(
    manager: switchboard.Manager, closed_port: int
) -> None:
    pool = manager.pool("down", f"tcp://127.0.0.1:{closed_port}", min_idle=1)
    with pytest.raises(switchboard.Unavailable, match="refused"):
        pool.warm()


def test_idle_timeout_closes_idle_connections(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("echo", server.target, max_size=3, idle_timeout=200)
    a, b = pool.acquire(timeout=10), pool.acquire(timeout=10)
    a.release()
    b.release()

    def closed_idle() -> bool:
        pool._run_upkeep()
        return pool.stats().closed_by.idle == 2

    wait_until(closed_idle, what="both idle connections closed by idle_timeout")
    s = pool.stats()
    assert (s.size, s.idle) == (0, 0)


def test_max_lifetime_retires_connections(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("echo", server.target, max_lifetime=timedelta(milliseconds=200))
    with pool.acquire(timeout=10) as conn:
        first = conn.id

    def retired() -> bool:
        pool._run_upkeep()
        return pool.stats().closed_by.lifetime == 1

    wait_until(retired, what="the connection retired by max_lifetime")
    with pool.acquire(timeout=10) as conn:
        assert conn.id != first
        assert echo(conn, b"new\n") == b"new\n"


def test_resize_grows_and_shrinks_without_dropping_leases(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("echo", server.target, max_size=1)
    a = pool.acquire(timeout=10)
    with pytest.raises(switchboard.Timeout):
        pool.acquire(timeout=0.05)
    pool.resize(2)
    b = pool.acquire(timeout=10)
    assert pool.stats().max_size == 2
    pool.resize(1)
    assert echo(a, b"still mine\n") == b"still mine\n"  # leases survive the shrink
    a.release()
    b.release()
    s = pool.stats()
    assert (s.max_size, s.size, s.closed_by.overflow) == (1, 1, 1)
    pool.resize(3, min_idle=2)
    wait_until(lambda: pool.stats().idle >= 2, what="min_idle after resize")
    assert pool.stats().min_idle == 2
    with pytest.raises(switchboard.InvalidArgument, match="max_size"):
        pool.resize(0)
    with pytest.raises(switchboard.InvalidArgument, match="min_idle"):
        pool.resize(2, min_idle=3)
    with pytest.raises(switchboard.InvalidArgument, match="min_idle"):
        pool.resize(2, min_idle=-1)


def test_evict_all_closes_idle_now_and_leased_on_return(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("echo", server.target, max_size=2)
    a, b = pool.acquire(timeout=10), pool.acquire(timeout=10)
    old = {a.id, b.id}
    a.release()
    pool.evict_all()
    assert pool.stats().closed_by.evicted == 1
    assert echo(b, b"leased\n") == b"leased\n"
    b.release()
    s = pool.stats()
    assert (s.closed_by.evicted, s.size) == (2, 0)
    with pool.acquire(timeout=10) as conn:
        assert conn.id not in old
    assert server.accepted() == 3


def test_stats_has_every_field(manager: switchboard.Manager, server: EchoServer) -> None:
    pool = manager.pool("echo", server.target, max_size=3, max_overflow=2, min_idle=0)
    pool.acquire(timeout=10).release()  # waited for a new connection
    pool.acquire(timeout=10).discard()  # served at once from the idle one
    s = pool.stats()
    names = {f.name for f in dataclasses.fields(s)}
    assert {
        "min_idle",
        "max_overflow",
        "closed_by",
        "acquired_direct_total",
        "acquired_waited_total",
        "probe_failed_total",
    } <= names
    assert (s.max_size, s.min_idle, s.max_overflow) == (3, 0, 2)
    assert (s.acquired_waited_total, s.acquired_direct_total, s.acquired_total) == (1, 1, 2)
    assert s.closed_by == switchboard.ClosedBy(discarded=1)
    assert s.closed_by.total == s.closed_total == 1
    assert s.probe_failed_total == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.closed_by.broken = 5  # type: ignore[misc]


def test_probe_with_bytes_and_text(manager: switchboard.Manager, server: EchoServer) -> None:
    # The echo server answers a probe with the probe itself.
    good = manager.pool(
        "good", server.target, probe_send=b"PING\r\n", probe_expect=b"PING", validate_after=0
    )
    with good.acquire(timeout=10) as conn:
        first = conn.id
    for _ in range(3):
        with good.acquire(timeout=10) as conn:  # probed on every checkout
            assert conn.id == first
            assert echo(conn, b"after probe\n") == b"after probe\n"
    assert good.stats().probe_failed_total == 0

    bad = manager.pool(
        "bad", server.target, probe_send="PING\\r\\n", probe_expect="+PONG", validate_after=0
    )
    with bad.acquire(timeout=10) as conn:
        first = conn.id
    with bad.acquire(timeout=10) as conn:  # the probe fails: replaced, never handed out
        assert conn.id != first
    # Probed on checkout, or by the upkeep's first pass while it was idle (then the
    # checkout opened another meanwhile): either way one failed probe closed it.
    wait_until(
        lambda: (bad.stats().probe_failed_total, bad.stats().closed_by.broken) == (1, 1),
        what="one failed probe to close the connection",
    )


def test_bytes_become_c_escapes() -> None:
    assert _escape_bytes(b"PING\r\n") == "PING\\r\\n"
    assert _escape_bytes(b"\x00\xff\\\t") == "\\0\\xff\\\\\\t"


def test_new_keys_are_validated_by_the_core(manager: switchboard.Manager) -> None:
    with pytest.raises(switchboard.InvalidArgument, match="min_idle"):
        manager.pool("p1", "tcp://127.0.0.1:9", min_idle="some")
    with pytest.raises(switchboard.InvalidArgument, match="idle_timeout"):
        manager.pool("p2", "tcp://127.0.0.1:9", idle_timeout="soon")
    with pytest.raises(switchboard.InvalidArgument, match="probe.send"):
        manager.pool("p3", "tcp://127.0.0.1:9", probe_send="bad\\q")
    # Natural spellings still work through **kwargs.
    manager.pool("p4", "tcp://127.0.0.1:9", maxOverflow=3, pool_max_connecting=2)


def test_waiters_are_served_by_priority_then_arrival(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("echo", server.target, max_size=1)
    held = pool.acquire(timeout=10)
    order: list[str] = []
    errors: list[BaseException] = []
    threads = []

    def waiter(tag: str, priority: int) -> None:
        try:
            with pool.acquire(timeout=30, priority=priority):
                order.append(tag)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    plan = [("low", 0), ("high-a", 5), ("mid", 1), ("high-b", 5), ("top", 10)]
    for i, (tag, priority) in enumerate(plan):
        t = threading.Thread(target=waiter, args=(tag, priority))
        t.start()
        threads.append(t)
        wait_until(lambda: pool.stats().waiting == i + 1, what=f"{tag} waiting")
    held.release()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    assert not errors, errors
    assert order == ["top", "high-a", "high-b", "mid", "low"]
