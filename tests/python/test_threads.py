"""Threads: blocking calls release the GIL, and many threads share one pool."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import EchoServer, echo, wait_until

import switchboard


class Progress:
    """A pure-Python thread that records when it runs; it can only run while no other
    thread holds the GIL."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for _ in range(100_000):  # bounded
            if self.stop.is_set():
                return
            self.times.append(time.monotonic())
            time.sleep(0.005)

    def ran_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.times if start < t < end)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def test_acquire_releases_the_gil_while_it_waits(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("one", server.target, max_size=1)
    held = pool.acquire(timeout=10)
    progress = Progress()
    try:
        start = time.monotonic()
        with pytest.raises(switchboard.Timeout):
            pool.acquire(timeout=1.0)
        end = time.monotonic()
    finally:
        progress.finish()
        held.release()
    # Had the wait held the GIL, the other thread could not have run in its middle.
    assert progress.ran_between(start + 0.3, end - 0.3) >= 1


def test_recv_releases_the_gil_while_it_waits(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("one", server.target)
    with pool.acquire(timeout=10) as conn:
        conn.settimeout(1.0)
        progress = Progress()
        try:
            start = time.monotonic()
            with pytest.raises(switchboard.Timeout):
                conn.recv(10)  # nothing is coming
            end = time.monotonic()
        finally:
            progress.finish()
    assert progress.ran_between(start + 0.3, end - 0.3) >= 1


def test_a_waiting_thread_gets_the_released_connection(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("one", server.target, max_size=1)
    held = pool.acquire(timeout=10)
    got: list[int] = []

    def waiter() -> None:
        with pool.acquire(timeout=30) as conn:
            got.append(conn.id)

    t = threading.Thread(target=waiter)
    t.start()
    wait_until(lambda: pool.stats().waiting == 1, what="the thread to wait")
    held.release()
    t.join(timeout=30)
    assert got == [held.id]


def test_many_threads_share_a_small_pool(manager: switchboard.Manager, server: EchoServer) -> None:
    max_size = 3
    pool = manager.pool("shared", server.target, max_size=max_size)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                with pool.acquire(timeout=30) as conn:
                    msg = b"thread %d message %d\n" % (n, i)
                    assert echo(conn, msg) == msg
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    stats = pool.stats()
    assert (stats.leased, stats.waiting) == (0, 0)
    assert stats.size <= max_size
    assert server.accepted() == stats.created_total <= max_size


def test_send_and_recv_from_two_threads_on_one_lease(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("duplex", server.target)
    payload = bytes(range(256)) * 512  # 128 KiB: more than the socket buffers hold
    received = bytearray()
    with pool.acquire(timeout=10) as conn:
        conn.settimeout(30)

        def reader() -> None:
            for _ in range(100_000):
                if len(received) >= len(payload):
                    return
                chunk = conn.recv(65536)
                if not chunk:
                    return
                received.extend(chunk)

        t = threading.Thread(target=reader)
        t.start()
        conn.sendall(payload)
        t.join(timeout=60)
        assert not t.is_alive()
    assert bytes(received) == payload
