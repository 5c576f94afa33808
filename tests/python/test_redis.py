"""Tried as a new user would: a pool to a real redis-server (the Debian package, started
here on a free loopback port) with a PING probe; then the server dies (acquire fails fast
with Unavailable) and comes back on the same port (acquire works again)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from typing import Iterator

import pytest

import switchboard


class RedisServer:
    def __init__(self, binary: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.binary = binary
        self.start()

    def start(self) -> None:
        """Starts redis-server on `self.port` (again, after `stop`) and waits for PONG."""
        binary = self.binary
        self.proc = subprocess.Popen(
            [binary, "--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
             "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.target = f"tcp://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        # make test-python installs it (apt-get install -y redis-server); never skip quietly.
        pytest.fail("redis-server is not installed (run `make test-python`, which installs it)")
    srv = RedisServer(binary)
    try:
        yield srv
    finally:
        srv.stop()


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
