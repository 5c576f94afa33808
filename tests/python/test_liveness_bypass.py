"""``pool.liveness_bypass`` through the Python package: within the window after its
return a connection is handed out without the FIN/RST check (so a socket the server reset
meanwhile reaches the caller); past it, the check closes the reset socket. Off by default.
Time moves by the manual clock; the only real wait lets an RST cross loopback."""

from __future__ import annotations

import time
from typing import Iterator

import pytest
from conftest import EchoServer
from fault_proxy import FaultProxy

import switchboard


@pytest.fixture
def proxy(server: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(server.port) as p:
        yield p


def reset_and_settle(proxy: FaultProxy) -> None:
    assert proxy.command("reset_existing").startswith("OK")
    time.sleep(0.1)  # the RST crosses loopback; what follows holds however long it took


def test_the_check_is_skipped_only_within_the_bypass_window(proxy: FaultProxy) -> None:
    with switchboard.Manager(runtime_clock="manual") as m:
        checked = m.pool("checked", proxy.target)
        checked.acquire(timeout=5).release()
        reset_and_settle(proxy)
        assert checked.try_acquire() is None, "a reset socket was handed out"
        assert checked.stats().closed_by.broken == 1

        hot = m.pool("hot", proxy.target, liveness_bypass="1s")
        lease = hot.acquire(timeout=5)
        first = lease.id
        lease.release()
        reset_and_settle(proxy)
        m.advance_clock(0.9)
        again = hot.try_acquire()
        assert again is not None and again.id == first, "within the window: no check"
        again.release()  # returned: its window starts again
        assert hot.stats().closed_by.broken == 0
        m.advance_clock(1.001)
        assert hot.try_acquire() is None, "past the window: checked"
        assert hot.stats().closed_by.broken == 1


def test_a_bad_window_names_the_key_and_what_is_accepted() -> None:
    with switchboard.Manager() as m:
        with pytest.raises(switchboard.InvalidArgument, match="pool.liveness_bypass") as e:
            m.pool("bad", "tcp://127.0.0.1:1", liveness_bypass="soon")
        assert "duration" in str(e.value)
