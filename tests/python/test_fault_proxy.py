"""Self-test of the fault proxy fixture (tests/fixtures/fault_proxy.py) through its
Python helper: plain sockets through the proxy to the echo server, one case per fault."""

from __future__ import annotations

import errno
import socket
import time
from typing import Iterator

import pytest
from conftest import EchoServer
from fault_proxy import FaultProxy, FaultProxyError


@pytest.fixture
def proxy(server: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(server.port) as p:
        yield p


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def round_trip(s: socket.socket, data: bytes) -> bytes:
    s.sendall(data)
    got = b""
    for _ in range(1000):
        if len(got) >= len(data):
            break
        chunk = s.recv(len(data) - len(got))
        if not chunk:
            break
        got += chunk
    return got


def refused(port: int) -> bool:
    try:
        connect(port, timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_pass_forwards_both_ways_and_stats_count_accepts(proxy: FaultProxy) -> None:
    assert proxy.stats() == {"accepted": 0, "active": 0, "mode": "pass"}
    with connect(proxy.port) as a, connect(proxy.port) as b:
        assert round_trip(a, b"hello\n") == b"hello\n"
        assert round_trip(b, b"world\n") == b"world\n"
        stats = proxy.stats()
        assert (stats["accepted"], stats["active"], stats["mode"]) == (2, 2, "pass")


def test_refuse_then_pass_listens_again_on_the_same_port(proxy: FaultProxy) -> None:
    with connect(proxy.port) as old:
        assert proxy.command("refuse").startswith("OK")
        assert refused(proxy.port)
        assert round_trip(old, b"still here") == b"still here"  # existing ones stay
        proxy.command("pass")
        with connect(proxy.port) as new:
            assert round_trip(new, b"back") == b"back"


def test_reset_resets_existing_and_new_connections_until_pass(proxy: FaultProxy) -> None:
    with connect(proxy.port) as old:
        assert round_trip(old, b"x") == b"x"
        proxy.command("reset")
        # The proxy answers after the RST went out, so the next read sees it.
        with pytest.raises(ConnectionResetError):
            old.recv(1)
    # Accepted, then reset at once: the RST can beat the end of connect() (a connect
    # with a timeout polls, then reads SO_ERROR), so either call may report it.
    with pytest.raises(ConnectionResetError):
        with connect(proxy.port) as new:
            new.recv(1)
    proxy.command("pass")
    with connect(proxy.port) as again:
        assert round_trip(again, b"ok") == b"ok"


def test_reset_existing_resets_once_and_keeps_forwarding(proxy: FaultProxy) -> None:
    with connect(proxy.port) as old:
        assert round_trip(old, b"x") == b"x"
        assert proxy.command("reset_existing") == "OK reset_existing connections=1"
        with pytest.raises(ConnectionResetError):
            old.recv(1)
    with connect(proxy.port) as new:
        assert round_trip(new, b"fine") == b"fine"


def test_blackhole_answers_nothing_and_holds_existing_connections(proxy: FaultProxy) -> None:
    with connect(proxy.port) as old:
        assert round_trip(old, b"x") == b"x"
        proxy.command("blackhole")
        with connect(proxy.port) as new:  # the connect itself succeeds
            new.settimeout(0.3)
            new.sendall(b"anyone?")
            t0 = time.monotonic()
            with pytest.raises(socket.timeout):
                data = new.recv(16)
                pytest.fail(f"blackhole answered {data!r}")
            assert time.monotonic() - t0 < 10
            old.settimeout(0.3)
            old.sendall(b"held")
            with pytest.raises(socket.timeout):
                old.recv(16)
            assert proxy.stats()["mode"] == "blackhole"
        proxy.command("pass")
        old.settimeout(10)
        assert old.recv(16) == b"held"  # held, not lost


def test_latency_delays_each_direction(proxy: FaultProxy) -> None:
    with connect(proxy.port) as s:
        proxy.command("latency 200")
        t0 = time.monotonic()
        assert round_trip(s, b"slow") == b"slow"
        assert time.monotonic() - t0 >= 0.15
        proxy.command("latency 0")
        assert round_trip(s, b"fast") == b"fast"


def test_close_after_cuts_the_stream_then_closes(proxy: FaultProxy) -> None:
    proxy.command("close_after 5")
    with connect(proxy.port) as s:
        s.sendall(b"0123456789")
        got = b""
        for _ in range(100):
            chunk = s.recv(100)
            if not chunk:
                break
            got += chunk
        else:
            pytest.fail("no EOF after 100 reads")
        assert got == b"01234"
    proxy.command("close_after 0")
    with connect(proxy.port) as s:
        assert round_trip(s, b"0123456789") == b"0123456789"


def test_drop_closes_existing_connections_with_fin(proxy: FaultProxy) -> None:
    with connect(proxy.port) as s:
        assert round_trip(s, b"x") == b"x"
        assert proxy.command("drop") == "OK drop connections=1"
        assert s.recv(1) == b""  # EOF, not a reset
    assert proxy.stats()["active"] == 0


def test_flap_alternates_refused_and_working(proxy: FaultProxy) -> None:
    proxy.command("flap 100 100")
    saw_refused = saw_echo = False
    deadline = time.monotonic() + 10  # 2 s is plenty; a loaded machine gets more
    for _ in range(2000):
        if (saw_refused and saw_echo) or time.monotonic() > deadline:
            break
        try:
            with connect(proxy.port, timeout=2) as s:
                saw_echo = saw_echo or round_trip(s, b"f") == b"f"
        except ConnectionRefusedError:
            saw_refused = True
        except OSError as e:  # reset by a switch to down mid-way: neither
            assert e.errno in (errno.ECONNRESET, errno.EPIPE) or isinstance(e, socket.timeout)
        time.sleep(0.01)
    assert saw_refused and saw_echo, (saw_refused, saw_echo)
    assert proxy.stats()["mode"] == "flap"
    proxy.command("pass")
    with connect(proxy.port) as s:
        assert round_trip(s, b"steady") == b"steady"


def test_bad_commands_raise_and_close_stops_the_proxy(server: EchoServer) -> None:
    p = FaultProxy(server.port)
    with pytest.raises(FaultProxyError, match="unknown command"):
        p.command("explode")
    with pytest.raises(FaultProxyError, match="whole numbers"):
        p.command("latency soon")
    with pytest.raises(FaultProxyError, match="argument"):
        p.command("flap 100")
    proc = p.proc
    assert proc is not None
    p.close()
    assert proc.returncode == 0
    p.close()  # safe twice
    assert refused(p.port)
    with pytest.raises(FaultProxyError, match="closed"):
        p.command("pass")
