"""Helpers the resources tests share: the event drains and an echo round trip through
a handle."""

from __future__ import annotations

from typing import List

import switchboard

LONG = 20.0


def transitions(manager: switchboard.Manager, id: str, seen: List[str]) -> List[str]:
    """The resource_state transitions of `id` queued so far, as "a->b" (appended to `seen`)."""
    while True:
        e = manager.poll_event(0)
        if e is None:
            return seen
        if e.kind == "resource_state" and e.resource == id:
            seen.append(f"{e.old_state}->{e.new_state}")


def events(manager: switchboard.Manager, kind: str, id: str) -> List[switchboard.Event]:
    out = []
    while True:
        e = manager.poll_event(0)
        if e is None:
            return out
        if e.kind == kind and e.resource == id:
            out.append(e)


def roundtrip(h: switchboard.ResourceHandle, data: bytes) -> None:
    h.wait_ready(LONG)
    h.sendall(data)
    got = b""
    for _ in range(1000):
        if len(got) >= len(data):
            break
        chunk = h.recv(len(data) - len(got))
        assert chunk, "the echo server closed the connection"
        got += chunk
    assert got == data
