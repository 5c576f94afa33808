"""Tried as a new user would: a named resource to a real redis-server (RESP3 through
``on_connect``, so the one connection both SUBSCRIBEs and PUBLISHes) shared by two
consumers, a reader thread and a publisher. redis is killed with SIGKILL and restarted
on the same port; both consumers go on, with no reconnect code of the program's own:
the resource redials and ``on_connect`` subscribes again."""

from __future__ import annotations

import threading
import time
from typing import List

from conftest import RedisServer, wait_until

import switchboard

LONG = 20.0


class Reader:
    """Reads the shared connection on its own thread, as a subscriber loop would: what
    it reads is kept; a lost connection is reported, then waited out."""

    def __init__(self, handle: switchboard.ResourceHandle) -> None:
        self.handle = handle
        self.data = b""
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        h = self.handle
        h.settimeout(0.2)
        deadline = time.monotonic() + 120  # bounded even if the test forgets stop()
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                chunk = h.recv(4096)
            except switchboard.Timeout:
                continue
            except switchboard.Unavailable:  # connecting or recovering: wait for it
                try:
                    h.wait_ready(0.5)
                except (switchboard.Timeout, switchboard.Unavailable):
                    pass
                continue
            except switchboard.SwitchboardError:  # reset under the read
                chunk = b""
            if not chunk:  # redis went away: say so, the resource redials
                h.report_failure()
                time.sleep(0.01)
                continue
            with self.lock:
                self.data += chunk

    def count(self, text: str) -> int:
        with self.lock:
            return self.data.count(text.encode())

    def close(self) -> None:
        self.stop.set()
        self.thread.join(LONG)
        assert not self.thread.is_alive()


def test_two_consumers_of_one_redis_connection_survive_a_redis_restart(
    manager: switchboard.Manager, redis: RedisServer
) -> None:
    r = manager.resources
    r.create(
        "redis",
        "tcp",
        endpoint=redis.target,
        on_connect=b"HELLO 3\r\nSUBSCRIBE news\r\n",
        health_interval="50ms",
        backoff={"initial": "50ms", "max": "200ms"},
    )
    publisher = r.attach("redis", "publisher")
    reader = Reader(r.attach("redis", "reader"))
    try:
        wait_until(lambda: reader.count("subscribe") == 1, LONG, "subscribed on connect")
        publisher.wait_ready(LONG)
        publisher.sendall(b"PUBLISH news first\r\n")
        wait_until(lambda: reader.count("first") == 1, LONG, "the first message")

        redis.stop()  # SIGKILL
        wait_until(lambda: publisher.status != "connected", LONG, "the loss seen")
        redis.start()  # the same port
        publisher.wait_ready(LONG)
        wait_until(lambda: reader.count("subscribe") == 2, LONG, "subscribed again by on_connect")
        publisher.sendall(b"PUBLISH news second\r\n")
        wait_until(lambda: reader.count("second") == 1, LONG, "the message after the restart")
    finally:
        reader.close()
    info = r.get("redis")
    states: List[str] = []
    reasons: List[str] = []
    while (e := manager.poll_event(0)) is not None:
        if e.kind == "resource_state" and e.resource == "redis" and e.new_state:
            states.append(e.new_state)
            reasons.append(f"{e.new_state}: {e.reason}")
    # A redial that lands while the killed redis is still closing its listening socket
    # may complete the handshake in the kernel and be reset at once (redis never sees
    # it): one more connected/recovering round. So: at least one reconnect, each a
    # recovering -> connected pair, ending connected.
    assert info.reconnects >= 1, reasons
    assert states == ["connected"] + ["recovering", "connected"] * info.reconnects, reasons
    assert info.consumers == ("publisher", "reader")
    assert info.bytes_out == len(b"PUBLISH news first\r\nPUBLISH news second\r\n")
    publisher.detach()
    reader.handle.detach()
