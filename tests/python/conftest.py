"""Fixtures shared by the Python tests: a real echo server on a free loopback port, a
real redis-server, and managers that are closed however a test ends."""

from __future__ import annotations

import select
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import pytest

import switchboard

ROOT = Path(__file__).resolve().parents[2]
ECHO_SERVER = ROOT / "tests" / "fixtures" / "echo_server.py"

T = TypeVar("T")


class EchoServer:
    """tests/fixtures/echo_server.py in a subprocess; it exits when its stdin closes."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ECHO_SERVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"echo server did not start (first line {line!r})")
        self.port = int(line.split()[1])
        self.target = f"tcp://127.0.0.1:{self.port}"

    def accepted(self) -> int:
        """Connections the server accepted so far (not counting this question)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"STATS\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(64)
                if not chunk:
                    break
                data += chunk
        key, _, value = data.decode().strip().partition("=")
        assert key == "accepted", data
        return int(value)

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def server() -> Iterator[EchoServer]:
    srv = EchoServer()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def manager() -> Iterator[switchboard.Manager]:
    m = switchboard.Manager()
    try:
        yield m
    finally:
        m.close(timeout=1.0)


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Polls `check` (bounded in time) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def echo(conn: switchboard.Lease, data: bytes) -> bytes:
    """Sends `data` and reads back exactly as many bytes (recv may return fewer)."""
    conn.sendall(data)
    got = b""
    for _ in range(10_000):
        if len(got) >= len(data):
            break
        chunk = conn.recv(len(data) - len(got))
        assert chunk, "server closed the connection"
        got += chunk
    return got


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
