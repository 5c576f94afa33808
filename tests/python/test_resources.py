"""Named shared connections (``manager.resources``) against real loopback servers: one
physical connection for many consumers through a server close, a down endpoint (the
fault proxy), a configuration error, delete with and without force, anonymous
resources, report_failure, update while the old connection drains, the metric lines,
the async wait and the GIL released while waiting. Custom types and persistence are in
test_resources_types.py, the real redis-server scenario in test_resources_redis.py."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Iterator, List

import pytest
from conftest import EchoServer, wait_until
from fault_proxy import FaultProxy
from resources_support import LONG, events, roundtrip, transitions

import switchboard

@pytest.fixture
def proxy(server: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(server.port) as p:
        yield p


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A raw loopback listener: the test sees each connection the resource makes."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.settimeout(LONG)
    try:
        yield s
    finally:
        s.close()


def target_of(s: socket.socket) -> str:
    return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def test_three_consumers_share_one_connection_through_a_server_close(
    manager: switchboard.Manager, server: EchoServer, proxy: FaultProxy
) -> None:
    r = manager.resources
    r.create("bus", "tcp", endpoint=proxy.target, health_interval="20ms")
    a = r.attach("bus", "feed")
    b = r.attach("bus", "control")
    c = r.attach("bus", "audit")
    r.wait_ready("bus", LONG)
    roundtrip(a, b"one\n")
    roundtrip(b, b"two\n")
    assert proxy.stats()["accepted"] == 1, "one physical connection for three consumers"
    info = r.get("bus")
    assert (info.status, info.consumers, info.type) == ("connected", ("feed", "control", "audit"), "tcp")
    assert isinstance(info, switchboard.ResourceInfo)

    # The server closes it (the proxy in front of it: FIN): every consumer sees
    # recovering, then connected again.
    proxy.command("drop")
    seen: List[str] = []
    wait_until(lambda: len(transitions(manager, "bus", seen)) >= 3, LONG, "three transitions")
    assert seen == ["connecting->connected", "connected->recovering", "recovering->connected"]
    for h in (a, b, c):
        roundtrip(h, b"again\n")
        assert h.id == "bus"
    assert proxy.stats()["accepted"] == 2
    assert r.get("bus").reconnects == 1
    for h in (a, b, c):
        h.detach()
    assert r.get("bus").consumers == ()


def test_a_down_endpoint_is_connecting_until_it_comes_up(
    manager: switchboard.Manager, proxy: FaultProxy
) -> None:
    proxy.command("refuse")
    r = manager.resources
    r.create("feed", "tcp", endpoint=proxy.target, backoff={"initial": 20, "max": "50ms"})
    with r.attach("feed", "reader") as h:
        info = wait_until(lambda: (i := r.get("feed")).last_error and i, LONG, "a connect error")
        assert info.status == "connecting" and h.status == "connecting"
        assert "refused" in (info.last_error or ""), info
        with pytest.raises(switchboard.Unavailable, match="is connecting"):
            h.recv(4)
        with pytest.raises(switchboard.Timeout):
            r.wait_ready("feed", 0.05)
        proxy.command("pass")
        roundtrip(h, b"up\n")
        assert transitions(manager, "feed", []) == ["connecting->connected"]


def test_a_configuration_error_stops_with_disconnected_and_the_reason(
    manager: switchboard.Manager,
) -> None:
    r = manager.resources
    r.create("sock", "unix", endpoint="unix:///tmp/" + "x" * 200)
    info = wait_until(lambda: (i := r.get("sock")).status == "disconnected" and i, LONG, "disconnected")
    assert info.stopped and info.last_error, info
    seen: List[str] = []
    assert transitions(manager, "sock", seen) == ["connecting->disconnected"]
    with pytest.raises(switchboard.Unavailable):
        r.wait_ready("sock", LONG)
    # Bad props are refused at once, by core, naming them.
    with pytest.raises(switchboard.InvalidArgument, match=r"pool\.connect_timeout"):
        r.create("x", "tcp", endpoint="tcp://127.0.0.1:1", connect_timeout="soon")
    with pytest.raises(switchboard.InvalidArgument, match="is not a tcp address"):
        r.create("x", "tcp", endpoint="unix:///tmp/a.sock")
    with pytest.raises(switchboard.InvalidArgument, match="built-in types are tcp and unix"):
        r.create("x", "carrier-pigeon", endpoint="x")
    with pytest.raises(switchboard.InvalidArgument, match="no_such_key"):
        r.create("x", "tcp", endpoint="tcp://127.0.0.1:1", no_such_key=1)
    with pytest.raises(switchboard.InvalidArgument, match="already exists"):
        r.create("sock", "unix", endpoint="/tmp/y.sock")
    with pytest.raises(switchboard.InvalidArgument, match="id must be a str"):
        r.create(7, "tcp", endpoint="tcp://127.0.0.1:1")  # type: ignore[arg-type]
    with pytest.raises(switchboard.NotFound):
        r.get("x")


def test_delete_is_refused_while_attached_unless_forced(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    r = manager.resources
    r.create("a", "tcp", endpoint=server.target)
    h1 = r.attach("a", "one")
    h2 = r.attach("a", "two")
    with pytest.raises(switchboard.FailedPrecondition, match='"one", "two"'):
        r.delete("a")
    h1.detach()
    h1.detach()  # safe twice
    with pytest.raises(switchboard.FailedPrecondition, match="has detached"):
        h1.recv(1)
    assert "detached" in repr(h1)
    with h2:
        pass
    h2.close()
    r.delete("a")
    with pytest.raises(switchboard.NotFound):
        r.get("a")

    r.create("b", "tcp", endpoint=server.target)
    h = r.attach("b", "stubborn")
    h.wait_ready(LONG)
    r.delete("b", force=True)
    assert len(events(manager, "resource_detached", "b")) == 1
    assert h.status == "disconnected"
    with pytest.raises(switchboard.Unavailable):
        h.sendall(b"x")
    with pytest.raises(switchboard.NotFound):
        r.attach("b", "late")
    h.detach()


def test_anonymous_resources_are_shared_by_equal_props_and_closed_by_the_last_detach(
    manager: switchboard.Manager, listener: socket.socket
) -> None:
    r = manager.resources
    target = target_of(listener)
    x = r.attach_anonymous("tcp", "x", endpoint=target, tcp_nodelay=True)
    y = r.attach_anonymous("tcp", "y", endpoint=target, tcp_nodelay=True)
    assert x.id == y.id and x.id.startswith("anonymous-")
    x.wait_ready(LONG)
    server_side, _ = listener.accept()
    with server_side:
        other = r.attach_anonymous("tcp", "z", endpoint=target)
        assert other.id != x.id, "different props, another resource"
        assert sum(1 for i in r.list() if i.anonymous) == 2
        with pytest.raises(switchboard.FailedPrecondition, match="anonymous"):
            r.update(x.id, endpoint=target)
        id = x.id
        x.detach()
        assert r.get(id).consumers == ("y",), "still has y"
        y.detach()
        server_side.settimeout(LONG)
        assert server_side.recv(1) == b"", "the server sees the close"
        with pytest.raises(switchboard.NotFound):
            r.get(id)
        other.detach()


def test_report_failure_checks_at_once(
    manager: switchboard.Manager, listener: socket.socket
) -> None:
    r = manager.resources
    # No periodic checks: only report_failure can notice the loss.
    r.create("ctl", "tcp", endpoint=target_of(listener), health_interval=0)
    with r.attach("ctl", "c") as h:
        h.wait_ready(LONG)
        server_side, _ = listener.accept()
        server_side.close()
        h.report_failure()
        wait_until(lambda: r.get("ctl").reconnects == 1, LONG, "a reconnect")
        again, _ = listener.accept()
        again.close()
        r.report_failure("ctl")


def test_update_swaps_every_consumer_while_the_old_one_drains(
    manager: switchboard.Manager, listener: socket.socket, server: EchoServer, closed_port: int
) -> None:
    r = manager.resources
    old_target = target_of(listener)
    r.create("bus", "tcp", endpoint=old_target, health_interval="20ms")
    a = r.attach("bus", "a")
    b = r.attach("bus", "b")
    a.wait_ready(LONG)
    old_conn, _ = listener.accept()
    old_conn.settimeout(LONG)

    # An update that cannot connect changes nothing.
    with pytest.raises(switchboard.Unavailable, match="was not updated"):
        r.update("bus", endpoint=f"tcp://127.0.0.1:{closed_port}")
    assert r.get("bus").endpoint == old_target

    # A send in flight on the old connection: more than the socket buffers hold, so it
    # is still running (the server has not read it) when the update swaps.
    big = b"x" * (32 << 20)
    sender = threading.Thread(target=a.sendall, args=(big,))
    sender.start()
    got = old_conn.recv(65536)
    assert got, "the send started on the old connection"
    r.update("bus", endpoint=server.target, health_interval="20ms")
    assert len(events(manager, "resource_rebound", "bus")) == 1
    roundtrip(b, b"on the new one\n")
    assert r.get("bus").endpoint == server.target

    # The old connection drains the send still using it, then closes.
    total = len(got)
    while total < len(big):
        chunk = old_conn.recv(1 << 20)
        assert chunk, "the old connection closed under the send still using it"
        total += len(chunk)
    sender.join(LONG)
    assert not sender.is_alive()
    assert old_conn.recv(1) == b"", "closed once the last user let go"
    old_conn.close()
    roundtrip(a, b"a too\n")
    # (asked once: the server counts its STATS connections too)
    assert server.accepted() == 1, "one new connection for both consumers"
    with pytest.raises(switchboard.NotFound):
        r.update("nope", endpoint=old_target)
    a.detach()
    b.detach()


def test_metric_lines_and_a_closed_manager(server: EchoServer) -> None:
    m = switchboard.Manager()
    r = m.resources
    r.create("bus", "tcp", endpoint=server.target)
    r.create("dead", "unix", endpoint="/tmp/" + "y" * 200)
    h = r.attach("bus", "feed")
    h.wait_ready(LONG)
    assert h.send(b"hey\n") == 4
    assert h.recv(4) == b"hey\n"
    wait_until(lambda: r.get("dead").status == "disconnected", LONG, "dead disconnected")
    text = m.metrics_text()
    for line in [
        'switchboard_resource_status{resource="bus",type="tcp"} 1',
        'switchboard_resource_status{resource="dead",type="unix"} -1',
        'switchboard_resource_consumers{resource="bus",type="tcp"} 1',
        'switchboard_resource_reconnects_total{resource="bus",type="tcp"} 0',
        'switchboard_resource_bytes_total{resource="bus",type="tcp",direction="out"} 4',
        'switchboard_resource_bytes_total{resource="bus",type="tcp",direction="in"} 4',
    ]:
        assert line in text, f"missing {line!r} in\n{text}"
    assert (r.get("bus").bytes_in, r.get("bus").bytes_out) == (4, 4)
    m.close(timeout=LONG)
    with pytest.raises(switchboard.Unavailable):
        r.get("bus")
    assert h.status == "disconnected"
    assert repr(r) == "<switchboard.Resources closed>"
    h.detach()


def test_ready_async_waits_without_blocking_the_loop_and_cancels(
    manager: switchboard.Manager, proxy: FaultProxy
) -> None:
    proxy.command("refuse")
    r = manager.resources
    r.create("feed", "tcp", endpoint=proxy.target, backoff={"initial": 20, "max": "50ms"})
    h = r.attach("feed", "reader")

    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        t = asyncio.ensure_future(ticker())
        with pytest.raises(switchboard.Timeout):
            await h.ready_async(0.1)
        # A cancelled wait ends; the handle stays usable.
        waiting = asyncio.ensure_future(h.ready_async(LONG))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        proxy.command("pass")
        await h.ready_async(LONG)
        t.cancel()
        assert ticks > 1, "the loop ran while waiting"

    asyncio.run(main())
    roundtrip(h, b"async\n")
    h.detach()


def test_blocking_waits_release_the_gil(
    manager: switchboard.Manager, proxy: FaultProxy, server: EchoServer
) -> None:
    proxy.command("refuse")
    r = manager.resources
    r.create("feed", "tcp", endpoint=proxy.target, backoff={"initial": 20, "max": "50ms"})
    counted = threading.Event()
    stop = threading.Event()
    count = 0

    def spin() -> None:
        nonlocal count
        while not stop.is_set():
            count += 1
            if count > 1000:
                counted.set()

    t = threading.Thread(target=spin)
    t.start()
    try:
        with pytest.raises(switchboard.Timeout):
            r.wait_ready("feed", 2.0)
        assert counted.is_set(), "another Python thread ran during wait_ready"
    finally:
        stop.set()
        t.join(LONG)
    # recv blocked in one thread while another sends on the same handle.
    proxy.command("pass")
    with r.attach("feed", "rw") as h:
        h.wait_ready(LONG)
        got: List[bytes] = []
        reader = threading.Thread(target=lambda: got.append(h.recv(5)))
        reader.start()
        h.settimeout(LONG)
        assert h.gettimeout() == LONG
        h.sendall(b"hello")
        reader.join(LONG)
        assert got == [b"hello"]
        assert h.fileno() >= 0
