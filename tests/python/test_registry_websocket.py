"""A real WebSocket server built on the registry, tried as a new user would.

A `websockets` server in this process on 127.0.0.1:0 registers every connection: the
even ones with an outbox drained by a writer task, the odd ones with `async def` send,
ping and close callbacks. 200 real `websockets` clients say hello (their user), then
subscribe to topics with JSON envelopes, which the server turns into
`registry.subscribe`. Then:
- a broadcast to one topic reaches exactly its subscribers (asserted per client, with a
  marker broadcast to everyone behind it: a client that got nothing before the marker
  got nothing);
- a client that stops answering the server's pings is removed as `stale`, within
  connection_timeout plus one cleanup interval (real small intervals, generous deadline),
  and sees `stale` as the WebSocket close reason, while the others stay;
- an admin disconnect by user closes exactly that user's sockets, each with the reason
  as the WebSocket close reason.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, List, Optional

import pytest

import switchboard

websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.asyncio.server import ServerConnection, serve  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

CLIENTS = 200
USERS = 10
HEARTBEAT = 0.2
TIMEOUT = 1.0
CLEANUP = 0.2
DEADLINE = 30.0  # generous: every wait below is bounded by it


def topics_of(i: int) -> List[str]:
    out = [f"room{i % 4}"]
    if i % 5 == 0:
        out.append("alerts")
    return out


class Server:
    """The program under test: WebSocket transport, registry for everything else."""

    def __init__(self, registry: switchboard.Registry) -> None:
        self.registry = registry
        self.errors: List[BaseException] = []

    async def handler(self, ws: ServerConnection) -> None:
        try:
            hello = switchboard.parse_envelope(await ws.recv())
            assert hello["type"] == "hello", hello
            user = hello["data"]["user"]
            if hello["data"]["sink"] == "outbox":
                await self.serve_outbox(ws, user)
            else:
                await self.serve_callbacks(ws, user)
        except ConnectionClosed:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(exc)
            raise

    async def on_message(self, ws: ServerConnection, conn: switchboard.Connection, raw: Any) -> None:
        conn.touch()  # every message from the client, the pong included
        env = switchboard.parse_envelope(raw)
        if env["type"] == "subscribe":
            conn.subscribe(env["topic"])
            await ws.send(switchboard.envelope("subscribed", topic=env["topic"]))

    async def serve_outbox(self, ws: ServerConnection, user: str) -> None:
        outbox = self.registry.register_outbox(user=user)

        async def writer() -> None:
            async for item in outbox:
                if item is switchboard.PING:
                    await ws.send(switchboard.envelope("ping"))
                else:
                    await ws.send(item)
            await ws.close(1000, outbox.closed_reason or "")

        task = asyncio.ensure_future(writer())
        try:
            await ws.send(switchboard.envelope("welcome", {"id": outbox.id}))
            async for raw in ws:
                await self.on_message(ws, outbox, raw)
        finally:
            outbox.close()  # unregisters (if still registered): the writer ends
            await task

    async def serve_callbacks(self, ws: ServerConnection, user: str) -> None:
        async def send(msg: Any) -> None:
            await ws.send(msg)

        async def on_ping() -> None:
            await ws.send(switchboard.envelope("ping"))

        async def on_close(reason: str) -> None:
            await ws.close(1000, reason)

        conn = self.registry.register(send, user=user, on_ping=on_ping, on_close=on_close)
        try:
            await ws.send(switchboard.envelope("welcome", {"id": conn.id}))
            async for raw in ws:
                await self.on_message(ws, conn, raw)
        finally:
            conn.unregister("client_left")


class Client:
    def __init__(self, i: int, port: int) -> None:
        self.i = i
        self.user = f"user{i % USERS}"
        self.port = port
        self.answering = True
        self.id: Optional[int] = None
        self.data: List[Any] = []
        self.acks: asyncio.Queue[str] = asyncio.Queue()
        self.welcomed = asyncio.Event()
        self.ended = asyncio.Event()
        self.close_reason: Optional[str] = None
        self.closed_at: Optional[float] = None
        self.ws: Optional[ClientConnection] = None

    async def start(self) -> None:
        self.ws = await connect(f"ws://127.0.0.1:{self.port}", ping_interval=None, open_timeout=DEADLINE)
        self.reader = asyncio.ensure_future(self.read())
        sink = "outbox" if self.i % 2 == 0 else "callback"
        await self.ws.send(switchboard.envelope("hello", {"user": self.user, "sink": sink}))
        await asyncio.wait_for(self.welcomed.wait(), DEADLINE)
        for t in topics_of(self.i):
            await self.ws.send(switchboard.envelope("subscribe", topic=t))
            assert await asyncio.wait_for(self.acks.get(), DEADLINE) == t

    async def read(self) -> None:
        ws = self.ws
        assert ws is not None
        try:
            async for raw in ws:
                env = switchboard.parse_envelope(raw)
                kind = env["type"]
                if kind == "ping":
                    if self.answering:
                        await ws.send(switchboard.envelope("pong"))
                elif kind == "welcome":
                    self.id = env["data"]["id"]
                    self.welcomed.set()
                elif kind == "subscribed":
                    self.acks.put_nowait(env["topic"])
                else:
                    self.data.append(env["data"])
        except ConnectionClosed:
            pass
        finally:
            self.close_reason = ws.close_reason
            self.closed_at = time.monotonic()
            self.ended.set()


async def wait_for(check: Any, what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


async def scenario(m: switchboard.Manager) -> Dict[str, float]:
    r = m.registry
    server = Server(r)
    async with serve(server.handler, "127.0.0.1", 0, ping_interval=None) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        clients = [Client(i, port) for i in range(CLIENTS)]
        try:
            for batch in range(0, CLIENTS, 50):
                await asyncio.gather(*(c.start() for c in clients[batch : batch + 50]))
            assert len(r) == CLIENTS
            ids = {c.i: c.id for c in clients}
            assert len(set(ids.values())) == CLIENTS
            room1 = {c.id for c in clients if "room1" in topics_of(c.i)}
            listed = r.list(topic="room1", limit=1000)
            assert {info.id for info in listed.connections} == room1
            sinks = {info.id: info.sink for info in r.list(limit=1000).connections}
            assert sinks[clients[0].id] == "outbox" and sinks[clients[1].id] == "callback"

            # A broadcast reaches exactly the subscribers; the marker (to all) comes after it.
            rep = r.broadcast(switchboard.envelope("data", "for room1", topic="room1"), topic="room1")
            assert rep.recipients == len(room1) == CLIENTS // 4
            r.broadcast(switchboard.envelope("data", "marker"), all=True)
            await wait_for(lambda: all("marker" in c.data for c in clients), "the marker everywhere")
            for c in clients:
                before = c.data[: c.data.index("marker")]
                want = ["for room1"] if "room1" in topics_of(c.i) else []
                assert before == want, f"client {c.i} ({topics_of(c.i)}) got {before}"
            rep = r.broadcast(
                switchboard.envelope("data", "alert"), topic="alerts", exclude=[clients[0].id or 0]
            )
            assert rep.recipients == CLIENTS // 5 - 1
            await wait_for(
                lambda: all(("alert" in c.data) == (c.i % 5 == 0 and c.i != 0) for c in clients)
                and sum("alert" in c.data for c in clients) == CLIENTS // 5 - 1,
                "the alert to its subscribers",
            )

            # A client that stops answering pings is removed as stale; nobody else is.
            silent = clients[3]
            silent.answering = False
            stopped = time.monotonic()
            await wait_for(lambda: silent.ended.is_set(), "the silent client's close")
            assert silent.id not in r
            assert silent.close_reason == "stale"
            stale_after = (silent.closed_at or 0) - stopped
            others = [c for c in clients if c is not silent]
            assert all(c.id in r and not c.ended.is_set() for c in others), "only the silent one left"
            assert r.stats().disconnects.get("stale") == 1

            # An admin disconnect by user closes that user's sockets with the reason.
            banned = [c for c in clients if c.user == "user7"]
            assert len(banned) == CLIENTS // USERS
            assert r.disconnect(user="user7", reason="banned by admin") == len(banned)
            await wait_for(lambda: all(c.ended.is_set() for c in banned), "the banned sockets' close")
            assert [c.close_reason for c in banned] == ["banned by admin"] * len(banned)
            assert not any(c.ended.is_set() for c in others if c.user != "user7")
            assert len(r) == CLIENTS - 1 - len(banned)
            assert server.errors == []
            return {"stale_after": stale_after}
        finally:
            for c in clients:
                if c.ws is not None:
                    await c.ws.close()
            await asyncio.gather(*(c.reader for c in clients if hasattr(c, "reader")))
            # Every server handler unregisters its connection when its client leaves.
            await wait_for(lambda: len(r) == 0, "the server to unregister every client")


def test_a_websocket_server_on_the_registry() -> None:
    m = switchboard.Manager(
        registry_heartbeat_interval=f"{int(HEARTBEAT * 1000)}ms",
        registry_connection_timeout=f"{int(TIMEOUT * 1000)}ms",
        registry_cleanup_interval=f"{int(CLEANUP * 1000)}ms",
    )
    try:
        got = asyncio.run(asyncio.wait_for(scenario(m), timeout=100))
        # Removal happens once the client has been silent for the timeout (from its last
        # pong, at most one heartbeat before it stopped), at the next pass.
        assert got["stale_after"] < TIMEOUT + CLEANUP + DEADLINE
        print(f"stale client closed {got['stale_after']:.3f}s after it stopped answering")
    finally:
        m.close(timeout=1.0)
