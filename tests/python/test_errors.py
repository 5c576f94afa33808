"""Errors: the class hierarchy, timeouts, a server that is down, and use after close."""

from __future__ import annotations

import errno
import threading
import time

import pytest
from conftest import EchoServer

import switchboard

HIERARCHY = {
    switchboard.InvalidArgument: ("SB_INVALID_ARGUMENT", ValueError),
    switchboard.NotFound: ("SB_NOT_FOUND", LookupError),
    switchboard.ResourceExhausted: ("SB_RESOURCE_EXHAUSTED", Exception),
    switchboard.FailedPrecondition: ("SB_FAILED_PRECONDITION", Exception),
    switchboard.Unavailable: ("SB_UNAVAILABLE", ConnectionError),
    switchboard.Timeout: ("SB_TIMEOUT", TimeoutError),
    switchboard.Cancelled: ("SB_CANCELLED", Exception),
    switchboard.IoError: ("SB_IO", OSError),
    switchboard.InternalError: ("SB_INTERNAL", Exception),
    switchboard.Unauthenticated: ("SB_UNAUTHENTICATED", PermissionError),
    switchboard.PermissionDenied: ("SB_PERMISSION_DENIED", PermissionError),
}


@pytest.mark.parametrize("cls", list(HIERARCHY))
def test_each_error_extends_switchboard_error_and_its_builtin(cls: type) -> None:
    code, builtin = HIERARCHY[cls]
    assert issubclass(cls, switchboard.SwitchboardError)
    assert issubclass(cls, builtin)
    assert cls.code == code
    assert cls.__module__ == "switchboard"
    assert issubclass(switchboard.SwitchboardError, Exception)


def test_acquire_times_out_within_its_deadline(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("one", server.target, max_size=1)
    held = pool.acquire(timeout=10)
    start = time.monotonic()
    with pytest.raises(switchboard.Timeout) as info:
        pool.acquire(timeout=0.2)
    elapsed = time.monotonic() - start
    err = info.value
    assert isinstance(err, TimeoutError)
    assert err.code == "SB_TIMEOUT"
    assert 0.15 <= elapsed < 0.2 + 5.0, elapsed
    assert 'pool "one": no connection within 200ms' in str(err)
    assert pool.stats().timed_out_total == 1
    held.release()
    pool.acquire(timeout=10).release()


def test_a_server_that_is_down_is_unavailable_naming_the_address(
    manager: switchboard.Manager, closed_port: int
) -> None:
    target = f"tcp://127.0.0.1:{closed_port}"
    pool = manager.pool("down", target)
    start = time.monotonic()
    with pytest.raises((switchboard.Unavailable, switchboard.IoError)) as info:
        pool.acquire(timeout=10)
    assert time.monotonic() - start < 10.0
    err = info.value
    assert isinstance(err, ConnectionError)  # refused: the endpoint is down
    assert f"connect to {target}" in str(err)
    assert err.errno == errno.ECONNREFUSED
    assert pool.stats().connect_failed_total >= 1


def test_close_twice_and_use_after_close(server: EchoServer) -> None:
    m = switchboard.Manager()
    pool = m.pool("p", server.target)
    lease = pool.acquire(timeout=10)
    lease.release()
    m.close()
    m.close()  # a no-op
    assert m.closed and pool.closed
    for call in (
        lambda: pool.acquire(timeout=1),
        lambda: pool.try_acquire(),
        lambda: m.pool("q", server.target),
    ):
        with pytest.raises(switchboard.Unavailable) as info:
            call()
        assert isinstance(info.value, ConnectionError)
        assert "closed" in str(info.value)


def test_close_waits_for_leases_then_closes_them(server: EchoServer) -> None:
    m = switchboard.Manager()
    pool = m.pool("p", server.target)
    lease = pool.acquire(timeout=10)
    start = time.monotonic()
    m.close(timeout=0.2)  # the lease is not coming back: close waits 0.2 s, then goes on
    assert 0.15 <= time.monotonic() - start < 5.0
    lease.release()  # closes the connection now rather than pooling it
    assert pool.stats().idle == 0


def test_context_managers_close(server: EchoServer) -> None:
    with switchboard.Manager() as m:
        with m.pool("p", server.target) as pool:
            pool.acquire(timeout=10).release()
        assert pool.closed and not m.closed
        pool.close()  # twice is fine
        with pytest.raises(switchboard.Unavailable, match='pool "p" is closed'):
            pool.acquire(timeout=1)
    assert m.closed


def test_closing_wakes_a_blocked_acquire(server: EchoServer) -> None:
    m = switchboard.Manager()
    pool = m.pool("p", server.target, max_size=1)
    held = pool.acquire(timeout=10)
    result: list[BaseException] = []

    def waiter() -> None:
        try:
            pool.acquire(timeout=60).release()
        except BaseException as e:  # noqa: BLE001 - recorded for the assertion
            result.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    from conftest import wait_until

    wait_until(lambda: pool.stats().waiting == 1, what="the thread to wait")
    start = time.monotonic()
    m.close(timeout=0.1)
    t.join(timeout=30)
    assert not t.is_alive()
    assert time.monotonic() - start < 20
    assert len(result) == 1 and isinstance(result[0], switchboard.Unavailable), result
    held.release()
