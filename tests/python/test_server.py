"""The embedded server (issue 11) from Python.

The shared recipe (.notes/server-api.md, "The server test recipe"): this Python program
starts the server on 127.0.0.1:0 with a token, a pool, a session key and the registry
auth hook (the registry's Python API), then runs the shared driver
tests/fixtures/server_client.py with ``--prometheus`` (Python is the language that runs
the real Prometheus) and answers the driver's ``broadcast`` / ``advance`` commands pulled
with ``manager.hub.recv``.

Then what the Python binding adds: a non-loopback bind without a token raises
InvalidArgument, the addresses are None with no server, ``await hub.next()`` from
asyncio with a real ``websockets`` client (the loop keeps running while it waits, a
cancelled next() loses no message, a pending one fails with Unavailable on close), and
Ctrl-C interrupts a ``hub.recv()`` that would wait for ever.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Iterator, List, Mapping, Optional, Tuple

import pytest
from conftest import ROOT, EchoServer

import switchboard

TOKEN = "secret-token"
DRIVER = ROOT / "tests" / "fixtures" / "server_client.py"
DRIVER_LIMIT = 240.0

# The recipe's manager. Dotted keys: `server` is not yet one of core's short sections
# (.notes/server-python-requests.md #1), so `server_listen=` is refused today.
RECIPE_CONFIG: Mapping[str, switchboard.ConfigValue] = {
    "server.listen": "127.0.0.1:0",
    "server.token": TOKEN,
    "runtime.clock": "manual",
    "registry.heartbeat_interval": "30s",
    "registry.connection_timeout": "90s",
}


def driver_python() -> str:
    """The python that runs the driver: $SB_TEST_PYTHON (make server-tools), else this
    one (the venv make test-python uses has websockets, grpcio and grpcio-tools)."""
    return os.environ.get("SB_TEST_PYTHON") or sys.executable


# --- the recipe ----------------------------------------------------------------------


def authenticate(token: str) -> Optional[Tuple[Optional[str], Mapping[str, str]]]:
    """The recipe's hook: token ``tok-<user>`` is user ``<user>``."""
    user = token[len("tok-"):] if token.startswith("tok-") else ""
    if not user:
        raise switchboard.Unauthenticated("unknown token")
    return user, {"auth": "token"}


def authorize(conn_id: int, user: Optional[str], topic: str) -> bool:
    """Topic ``forbidden`` is refused to everyone, naming the reason."""
    if topic == "forbidden":
        raise switchboard.PermissionDenied("topic forbidden is closed")
    return True


def act(manager: switchboard.Manager, message: switchboard.HubMessage) -> None:
    """What the program does with a hub message: the driver's commands."""
    if message.type != "data":
        return
    data = message.json().get("data") or {}
    cmd = data.get("cmd") if isinstance(data, dict) else None
    registry = manager.registry
    if cmd == "broadcast":
        for k in range(4):
            topic = f"t{k}"
            registry.broadcast(switchboard.envelope("data", {"n": k}, topic=topic), topic=topic)
        registry.broadcast(switchboard.envelope("fence"), all=True)
    elif cmd == "advance":
        # Only the clock, as in the Rust and Node programs: the driver runs the
        # registry's pass itself (POST /registry/cleanup) once it sees the clock moved.
        # The recipe's extra registry.cleanup() here makes the driver fail (a paused
        # client is gone at 30 s): .notes/server-python-requests.md #2.
        manager.advance_clock(float(data["seconds"]))


def start_driver(addr: str, echo_port: int) -> Tuple[subprocess.Popen[str], List[str], List[threading.Thread]]:
    """The driver in a subprocess; its output is echoed (pytest -s shows it) and kept."""
    proc = subprocess.Popen(
        [driver_python(), str(DRIVER), "--addr", addr, "--token", TOKEN,
         "--echo", f"127.0.0.1:{echo_port}", "--prometheus"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=str(ROOT),
    )
    lines: List[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            print("driver:", line, end="", flush=True)
            lines.append(line.rstrip("\n"))

    readers = [threading.Thread(target=pump, daemon=True)]
    for r in readers:
        r.start()
    return proc, lines, readers


@pytest.mark.timeout(DRIVER_LIMIT + 60)
def test_the_shared_driver_against_a_python_program(server: EchoServer) -> None:
    # 1. The manager, with the server on.
    manager = switchboard.Manager(RECIPE_CONFIG)
    proc: Optional[subprocess.Popen[str]] = None
    try:
        # 2. A pool on the echo server and the session key.
        manager.pool("echo", server.target)
        assert manager.sessions.register("telemetry", "race-1")
        # 3. The auth hook, through the registry's Python API.
        manager.registry.set_authenticator(authenticate, authorize)
        # 4. A non-loopback bind without a token.
        with pytest.raises(switchboard.InvalidArgument, match="server.token"):
            switchboard.Manager({"server.listen": "0.0.0.0:0"})

        # 5. The driver, answering its commands until it exits.
        addr = manager.server_address
        assert addr is not None and addr.startswith("127.0.0.1:"), addr
        assert int(addr.rsplit(":", 1)[1]) != 0
        assert manager.grpc_address == addr, "gRPC shares server.listen"
        proc, lines, readers = start_driver(addr, server.port)
        deadline = time.monotonic() + DRIVER_LIMIT
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                tail = "\n".join(lines[-40:])
                pytest.fail(f"the driver still ran after {DRIVER_LIMIT}s; its last lines:\n{tail}")
            message = manager.hub.recv(timeout=0.1)
            if message is not None:
                act(manager, message)
        for r in readers:
            r.join(timeout=10)
        # 6. It passed.
        tail = "\n".join(lines[-40:])
        assert proc.returncode == 0, f"the driver failed ({proc.returncode}); its last lines:\n{tail}"
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        manager.close(timeout=5)


# --- what Python adds ----------------------------------------------------------------


def test_a_non_loopback_bind_without_a_token_raises_invalid_argument() -> None:
    with pytest.raises(switchboard.InvalidArgument) as err:
        switchboard.Manager(server={"listen": "0.0.0.0:0"})
    assert isinstance(err.value, ValueError)  # InvalidArgument is also a ValueError
    assert "server.token" in str(err.value)


def test_no_server_by_default(manager: switchboard.Manager) -> None:
    assert manager.server_address is None
    assert manager.grpc_address is None
    # The hub is present and inert.
    assert manager.hub.recv(timeout=0) is None
    assert manager.hub.queued == 0 and manager.hub.dropped == 0
    assert "queued=0" in repr(manager.hub)


def test_recv_waits_its_timeout_and_fails_after_close() -> None:
    m = switchboard.Manager({"server.listen": "127.0.0.1:0"})
    hub = m.hub
    started = time.monotonic()
    assert hub.recv(timeout=0.2) is None
    assert 0.15 <= time.monotonic() - started < 5
    with pytest.raises(switchboard.InvalidArgument):
        hub.recv(timeout=-1)
    m.close()
    with pytest.raises(switchboard.Unavailable):
        hub.recv(timeout=1)


@pytest.fixture
def served() -> Iterator[switchboard.Manager]:
    m = switchboard.Manager({"server.listen": "127.0.0.1:0", "server.token": TOKEN})
    try:
        yield m
    finally:
        m.close(timeout=1)


def test_hub_next_from_asyncio_with_a_websockets_client(served: switchboard.Manager) -> None:
    pytest.importorskip("websockets")
    from websockets.asyncio.client import connect

    manager = served
    url = f"ws://{manager.server_address}/ws?token={TOKEN}"

    async def main() -> None:
        async with connect(url) as ws:
            welcome = json.loads(await ws.recv())
            assert welcome["type"] == "welcome", welcome
            conn_id = welcome["data"]["connection_id"]

            # The loop keeps running while next() waits: a ticker reaches 10 ticks
            # meanwhile (waited for with a deadline, not timed).
            ticks = 0
            ten = asyncio.Event()

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1
                    if ticks >= 10:
                        ten.set()

            tick_task = asyncio.create_task(ticker())
            waiting = asyncio.create_task(manager.hub.next())
            await asyncio.wait_for(ten.wait(), 30)
            assert not waiting.done()
            assert ticks >= 10, f"the event loop was blocked while hub.next() waited ({ticks} ticks)"
            await ws.send(json.dumps({"type": "data", "topic": "room", "data": {"x": 1}}))
            msg = await asyncio.wait_for(waiting, 10)
            tick_task.cancel()

            assert isinstance(msg, switchboard.HubMessage)
            assert msg.connection_id == conn_id
            assert msg.user is None  # no hook: anonymous
            assert (msg.type, msg.topic) == ("data", "room")
            assert msg.json()["data"] == {"x": 1}
            assert json.loads(msg.text) == msg.json()

            # The program answers through the registry.
            report = manager.registry.send(
                msg.connection_id, switchboard.envelope("reply", {"got": msg.json()["data"]})
            )
            assert report.recipients == 1
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert reply["type"] == "reply" and reply["data"] == {"got": {"x": 1}}, reply

            # A message already queued is taken without waiting; `async for` works too.
            for n in range(3):
                await ws.send(json.dumps({"type": "chat", "data": {"n": n}}))
            got = []
            async for m in manager.hub:
                got.append(m.json()["data"]["n"])
                if len(got) == 3:
                    break
            assert got == [0, 1, 2]

            # A cancelled next() loses no message: many cancelled waits, then a send.
            for _ in range(20):
                t = asyncio.create_task(manager.hub.next())
                await asyncio.sleep(0.005)
                t.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await t
            await ws.send(json.dumps({"type": "data", "data": {"after": "cancel"}}))
            msg = await asyncio.wait_for(manager.hub.next(), 10)
            assert msg.json()["data"] == {"after": "cancel"}

            # Only the hub's own types are kept from the program: a ping gets a pong.
            await ws.send(json.dumps({"type": "ping"}))
            pong = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert pong["type"] == "pong"
            assert manager.hub.recv(timeout=0.1) is None

    asyncio.run(main())


def test_a_pending_next_fails_with_unavailable_when_the_manager_closes() -> None:
    manager = switchboard.Manager({"server.listen": "127.0.0.1:0"})

    async def main() -> None:
        waiting = asyncio.create_task(manager.hub.next())
        await asyncio.sleep(0.1)
        await asyncio.get_running_loop().run_in_executor(None, manager.close, 1.0)
        with pytest.raises(switchboard.Unavailable):
            await asyncio.wait_for(waiting, 10)
        # And `async for` just ends.
        async for _ in manager.hub:
            raise AssertionError("a closed hub yields nothing")

    try:
        asyncio.run(main())
    finally:
        manager.close()


def test_ctrl_c_interrupts_a_recv_that_waits_for_ever() -> None:
    code = textwrap.dedent(
        """
        import sys, time, switchboard
        m = switchboard.Manager({"server.listen": "127.0.0.1:0"})
        print("waiting", flush=True)
        started = time.monotonic()
        try:
            m.hub.recv()
        except KeyboardInterrupt:
            print(f"interrupted after {time.monotonic() - started:.2f}s", flush=True)
            m.close()
            sys.exit(0)
        sys.exit(3)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "waiting"
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        assert time.monotonic() - sent < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out + err
    assert "interrupted after" in out
