"""What the registry tests share: a manager on the manual clock, its event drain and a
recorder of what each connection's send callbacks got."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import switchboard


def make(**keys: Any) -> switchboard.Manager:
    return switchboard.Manager(runtime_clock="manual", **keys)


@pytest.fixture
def manager() -> Iterator[switchboard.Manager]:
    m = make()
    try:
        yield m
    finally:
        m.close(timeout=1.0)


def drain_events(m: switchboard.Manager) -> List[switchboard.Event]:
    out = []
    for _ in range(100_000):
        e = m.poll_event()
        if e is None:
            break
        out.append(e)
    return out


class Recorder:
    """Send callbacks that record what each connection got, by connection."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.got: Dict[int, List[Any]] = defaultdict(list)
        self.closed: List[Tuple[int, str]] = []
        self.pings: Dict[int, int] = defaultdict(int)

    def register(self, registry: switchboard.Registry, **kw: Any) -> switchboard.Connection:
        box: List[int] = []

        def send(msg: Any) -> None:
            with self.lock:
                self.got[box[0]].append(msg)

        def on_ping() -> None:
            with self.lock:
                self.pings[box[0]] += 1

        def on_close(reason: str) -> None:
            with self.lock:
                self.closed.append((box[0], reason))

        # The id is known only after register; no message can come before it returns.
        conn = registry.register(send, on_ping=on_ping, on_close=on_close, **kw)
        box.append(conn.id)
        return conn

    def total(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.got.values())

    def of(self, conn: switchboard.Connection) -> List[Any]:
        with self.lock:
            return list(self.got[conn.id])
