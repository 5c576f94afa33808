"""Tried as a new user would: a pool to a real redis-server (the Debian package, started
here on a free loopback port) with a PING probe; then the server dies (acquire fails fast
with Unavailable) and comes back on the same port (acquire works again)."""

from __future__ import annotations

import socket
import time

import pytest
from conftest import RedisServer

import switchboard


def read_reply(conn: switchboard.Lease, size: int) -> bytes:
    """Reads exactly `size` bytes of reply (recv may return fewer)."""
    got = b""
    for _ in range(1000):
        if len(got) >= size:
            break
        chunk = conn.recv(size - len(got))
        assert chunk, "redis closed the connection"
        got += chunk
    return got


def ping_calls(port: int) -> int:
    """How many PING commands redis has run, from INFO commandstats (own connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"INFO commandstats\r\n")
        data = b""
        deadline = time.monotonic() + 10
        while b"\r\n" not in data or len(data) < int(data[1:data.index(b"\r\n")]) + 4:
            chunk = s.recv(65536)
            assert chunk and time.monotonic() < deadline, "no full INFO reply"
            data += chunk
    for line in data.decode().splitlines():
        if line.startswith("cmdstat_ping:"):
            fields = dict(kv.split("=") for kv in line.split(":", 1)[1].split(","))
            return int(fields["calls"])
    return 0


def test_redis_pool_with_a_ping_probe(manager: switchboard.Manager, redis: RedisServer) -> None:
    pool = manager.pool(
        "redis",
        redis.target,
        max_size=2,
        probe_send="PING\r\n",
        probe_expect="+PONG",
        validate_after=0,
        acquire_timeout=2000,
        connect_timeout=1000,
    )
    pings_before = ping_calls(redis.port)
    with pool.acquire() as conn:  # a new connection: not probed
        conn.sendall(b"PING\r\n")
        assert read_reply(conn, 7) == b"+PONG\r\n"
        conn.sendall(b"SET switchboard python\r\n")
        assert read_reply(conn, 5) == b"+OK\r\n"
        first = conn.id
    with pool.acquire() as conn:  # probed with PING on checkout, then handed out
        assert conn.id == first
        conn.sendall(b"GET switchboard\r\n")
        assert read_reply(conn, 12) == b"$6\r\npython\r\n"  # nothing of the probe left over
    # Our PING and the probe's.
    assert ping_calls(redis.port) == pings_before + 2
    s = pool.stats()
    assert (s.probe_failed_total, s.created_total, s.closed_by.broken) == (0, 1, 0)

    redis.stop()  # SIGKILL
    started = time.monotonic()
    with pytest.raises(switchboard.Unavailable):
        pool.acquire(timeout=2.0)  # the idle connection fails its probe; the reconnect is refused
    # Fails within its deadline plus a generous margin, never hangs.
    assert time.monotonic() - started < 2.0 + 10.0
    assert pool.stats().leased == 0
    # The endpoint is backing off: the next acquire fails fast, naming why.
    started = time.monotonic()
    with pytest.raises(switchboard.Unavailable, match="backing off"):
        pool.acquire(timeout=2.0)
    assert time.monotonic() - started < 1.0 + 10.0
    ep = pool.health().endpoints[0]
    assert ep.state == "reconnecting" and ep.backoff_remaining is not None

    # Restarted on the same port: after reset_backoff the next acquire connects at once.
    redis.start()
    pool.reset_backoff()
    with pool.acquire(timeout=2.0) as conn:
        conn.sendall(b"PING\r\n")
        assert read_reply(conn, 7) == b"+PONG\r\n"
        assert conn.id != first
    ep = pool.health().endpoints[0]
    assert ep.state == "connected" and ep.failures >= 1 and ep.connected_since is not None
    assert pool.stats().closed_by.broken == 1  # the connection to the killed server
