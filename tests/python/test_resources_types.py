"""Resources of the program's own types (``register_type`` with the callables a custom
pool takes; ``handle.object()``), and named resources kept on disk across a manager
reopen (``Manager(resources_path=...)``)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, List

import pytest
from conftest import EchoServer, wait_until
from resources_support import LONG, roundtrip

import switchboard


class Client:
    """A program's object: a "client" with a number and a flag its check reads."""

    def __init__(self, n: int, endpoint: str) -> None:
        self.n = n
        self.endpoint = endpoint
        self.healthy = True


def test_a_registered_type_shares_the_programs_objects(manager: switchboard.Manager) -> None:
    made: List[Client] = []
    closed: List[Client] = []
    lock = threading.Lock()
    unwell = threading.Event()

    def connect(endpoint: str) -> Client:
        with lock:
            c = Client(len(made) + 1, endpoint)
            made.append(c)
        return c

    def check(c: Client) -> bool:
        return not unwell.is_set()

    def close(c: Client) -> None:
        with lock:
            closed.append(c)

    r = manager.resources
    r.register_type("bus", connect, check, close)
    with pytest.raises(switchboard.InvalidArgument):
        r.register_type("tcp", connect)
    with pytest.raises(switchboard.InvalidArgument, match="already registered"):
        r.register_type("bus", connect)
    r.create("main", "bus", endpoint="bus://primary", health_interval="20ms")
    a = r.attach("main", "a")
    b = r.attach("main", "b")
    a.wait_ready(LONG)
    obj = a.object()
    assert isinstance(obj, Client) and obj.n == 1 and obj.endpoint == "bus://primary"
    assert b.object() is obj, "one object for both consumers"
    assert r.get("main").type == "bus"
    with pytest.raises(switchboard.FailedPrecondition):
        a.recv(1)
    # The check fails: the object is replaced (and the old one closed), same id.
    unwell.set()
    wait_until(lambda: len(made) >= 2, LONG, "a second object")
    unwell.clear()
    wait_until(lambda: _n(a) >= 2, LONG, "the consumers see the new object")
    wait_until(lambda: len(closed) >= 1, LONG, "the old object closed")
    assert a.id == "main"
    # update dials the new object with the GIL released: `connect` needs it on a
    # runtime thread meanwhile.
    r.update("main", endpoint="bus://secondary")
    assert a.object().endpoint == "bus://secondary"
    a.detach()
    b.detach()
    r.delete("main")
    manager.close(timeout=LONG)
    wait_until(lambda: len(closed) == len(made), LONG, "every object closed")
    assert sorted(c.n for c in closed) == sorted(c.n for c in made)


def _n(h: switchboard.ResourceHandle) -> int:
    try:
        n: int = h.object().n
        return n
    except switchboard.Unavailable:
        return 0


def test_a_failing_connect_callable_is_the_resources_last_error(
    manager: switchboard.Manager,
) -> None:
    def connect(endpoint: str) -> Any:
        raise ConnectionRefusedError(f"{endpoint} is down")

    r = manager.resources
    r.register_type("flaky", connect)
    r.create("f", "flaky", endpoint="flaky://x", backoff={"initial": 20, "max": "50ms"})
    info = wait_until(lambda: (i := r.get("f")).last_error and i, LONG, "a connect error")
    assert info.status == "connecting"
    assert "flaky://x is down" in (info.last_error or ""), info
    with pytest.raises(switchboard.Unavailable):
        with r.attach("f", "c") as h:
            h.object()


def test_async_callables_run_on_the_loop_that_registered_them(
    manager: switchboard.Manager,
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        ran_on: List[asyncio.AbstractEventLoop] = []

        async def connect(endpoint: str) -> str:
            ran_on.append(asyncio.get_running_loop())
            return f"client of {endpoint}"

        r = manager.resources
        r.register_type("aio", connect)
        r.create("x", "aio", endpoint="aio://1")
        with r.attach("x", "c") as h:
            await h.ready_async(LONG)
            assert h.object() == "client of aio://1"
        assert ran_on == [loop]
        r.delete("x")

    asyncio.run(main())


def test_named_resources_persist_across_a_manager_reopen(
    tmp_path: Path, server: EchoServer
) -> None:
    other = EchoServer()
    path = str(tmp_path / "resources.redb")
    try:
        with switchboard.Manager(resources_path=path) as m:
            r = m.resources
            r.create("kept", "tcp", endpoint=server.target, health_interval="1s")
            r.create("moved", "tcp", endpoint=server.target)
            r.create("gone", "tcp", endpoint=server.target)
            r.update("moved", endpoint=other.target)
            r.delete("gone")
            r.register_type("bus", lambda ep: 7)
            r.create("mine", "bus", endpoint="bus://x")
            anon = r.attach_anonymous("tcp", "x", endpoint=server.target)
            anon.detach()
        with switchboard.Manager(resources_path=path) as m:
            r = m.resources
            assert [i.id for i in r.list()] == ["kept", "moved"], "named ones only, as last updated"
            # A stored resource of the program's type comes back once it is registered.
            r.register_type("bus", lambda ep: ("made for", ep))
            with r.attach("mine", "me") as mine:
                mine.wait_ready(LONG)
                assert mine.object() == ("made for", "bus://x")
            assert r.get("moved").endpoint == other.target
            with r.attach("kept", "again") as h:
                roundtrip(h, b"back\n")
    finally:
        other.stop()
