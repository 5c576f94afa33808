"""Sync pool behaviour against a real echo server: round trip, reuse, release,
discard, timeouts on the socket, snapshots and reprs."""

from __future__ import annotations

import socket
import struct

import pytest
from conftest import EchoServer, echo

import switchboard


def test_round_trip_release_reacquire_reuses_the_connection(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("echo", server.target, max_size=2)
    with pool.acquire(timeout=10) as conn:
        assert echo(conn, b"hello switchboard\n") == b"hello switchboard\n"
        first_id, first_fd = conn.id, conn.fileno()
    assert conn.released
    with pool.acquire(timeout=10) as again:
        assert (again.id, again.fileno()) == (first_id, first_fd)
        assert echo(again, b"again\n") == b"again\n"
    assert server.accepted() == 1
    stats = pool.stats()
    assert stats.created_total == 1
    assert (stats.size, stats.idle, stats.leased, stats.waiting) == (1, 1, 0, 0)


def test_try_acquire_only_takes_an_idle_connection(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("echo", server.target)
    assert pool.try_acquire() is None  # nothing idle yet, and it never connects
    pool.acquire(timeout=10).release()
    lease = pool.try_acquire()
    assert lease is not None
    assert pool.try_acquire() is None
    lease.release()
    assert server.accepted() == 1


def test_use_after_release_is_a_clear_error(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("echo", server.target)
    conn = pool.acquire(timeout=10)
    conn.release()
    for call in (
        lambda: conn.recv(1),
        lambda: conn.send(b"x"),
        lambda: conn.sendall(b"x"),
        lambda: conn.fileno(),
        lambda: conn.settimeout(1.0),
    ):
        with pytest.raises(switchboard.FailedPrecondition, match="already released") as info:
            call()
        assert info.value.code == "SB_FAILED_PRECONDITION"
    conn.release()  # releasing or discarding twice is harmless
    conn.discard()
    assert "released" in repr(conn)
    assert pool.stats().idle == 1


def test_leaving_a_block_by_exception_discards_the_connection(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("echo", server.target)
    with pytest.raises(RuntimeError):
        with pool.acquire(timeout=10) as conn:
            conn.sendall(b"half a request")
            raise RuntimeError("the conversation on conn is in an unknown state")
    first = conn.id
    stats = pool.stats()
    assert (stats.closed_total, stats.size) == (1, 0)
    with pool.acquire(timeout=10) as fresh:
        assert fresh.id != first
        assert echo(fresh, b"clean\n") == b"clean\n"


def test_discard_closes_instead_of_returning(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("echo", server.target)
    conn = pool.acquire(timeout=10)
    old = conn.id
    conn.discard()
    assert pool.stats().closed_total == 1
    with pool.acquire(timeout=10) as conn2:
        assert conn2.id != old
    assert server.accepted() == 2


def _rcvtimeo(fd: int) -> tuple[int, int]:
    dup = socket.socket(fileno=socket.dup(fd))
    try:
        raw = dup.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
    finally:
        dup.close()
    sec, usec = struct.unpack("ll", raw)
    return sec, usec


def test_settimeout_is_seconds_and_ends_with_the_lease(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    import time

    pool = manager.pool("echo", server.target, max_size=1)
    with pool.acquire(timeout=10) as conn:
        assert conn.gettimeout() is None
        conn.settimeout(0.2)
        assert conn.gettimeout() == 0.2
        assert _rcvtimeo(conn.fileno()) == (0, 200_000)
        start = time.monotonic()
        with pytest.raises(switchboard.Timeout) as info:
            conn.recv(16)  # the echo server sends nothing unasked
        elapsed = time.monotonic() - start
        assert isinstance(info.value, TimeoutError)
        assert 0.15 <= elapsed < 0.2 + 5.0
        # A timed-out recv leaves the connection usable; released normally below.
    with pool.acquire(timeout=10) as conn:
        assert conn.gettimeout() is None
        assert _rcvtimeo(conn.fileno()) == (0, 0), "the next lease starts blocking again"
        with pytest.raises(switchboard.InvalidArgument, match="non-negative"):
            conn.settimeout(-1)


def test_send_accepts_bytes_like_objects(manager: switchboard.Manager, server: EchoServer) -> None:
    import array

    pool = manager.pool("echo", server.target)
    with pool.acquire(timeout=10) as conn:
        for data in (b"bytes", bytearray(b"bytearray"), memoryview(b"memoryview")):
            conn.sendall(data)
        n = conn.send(array.array("B", b"array"))
        assert 1 <= n <= 5
        expected = b"bytesbytearraymemoryview" + b"array"[:n]
        got = b""
        for _ in range(1000):
            if len(got) >= len(expected):
                break
            got += conn.recv(4096)
        assert got == expected
        with pytest.raises(TypeError):
            conn.sendall("text is not bytes")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            conn.sendall(5)  # type: ignore[arg-type]
        with pytest.raises(switchboard.InvalidArgument, match="bufsize"):
            conn.recv(-1)
        assert conn.recv(0) == b""


def test_stats_is_a_typed_snapshot(manager: switchboard.Manager, server: EchoServer) -> None:
    pool = manager.pool("stats", server.target, max_size=3)
    held = [pool.acquire(timeout=10) for _ in range(2)]
    stats = pool.stats()
    assert isinstance(stats, switchboard.PoolStats)
    assert stats.name == "stats"
    assert (stats.max_size, stats.size, stats.leased, stats.idle) == (3, 2, 2, 0)
    assert stats.created_total == 2
    for lease in held:
        lease.release()
    assert pool.stats().idle == 2
    with pytest.raises(AttributeError):
        stats.size = 5  # type: ignore[misc]


def test_reprs_show_state(server: EchoServer) -> None:
    m = switchboard.Manager()
    pool = m.pool("shown", server.target, max_size=2)
    conn = pool.acquire(timeout=10)
    assert repr(m) == "<switchboard.Manager open pools=['shown']>"
    assert repr(pool) == (
        f"<switchboard.Pool 'shown' {server.target} size=1/2 idle=0 leased=1 waiting=0>"
    )
    assert repr(conn) == f"<switchboard.Lease pool='shown' id={conn.id} fd={conn.fileno()}>"
    conn.release()
    assert repr(conn) == f"<switchboard.Lease pool='shown' id={conn.id} released>"
    m.close()
    assert repr(m) == "<switchboard.Manager closed>"
    assert repr(pool) == f"<switchboard.Pool 'shown' {server.target} closed>"


def test_a_pool_outlives_its_manager_object(server: EchoServer) -> None:
    # The pool keeps the manager's runtime alive even if the Manager object is dropped.
    pool = switchboard.Manager().pool("orphan", server.target)
    import gc

    gc.collect()
    with pool.acquire(timeout=10) as conn:
        assert echo(conn, b"still here\n") == b"still here\n"
    pool.manager.close()
    assert pool.closed
