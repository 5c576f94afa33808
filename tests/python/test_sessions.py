"""Issue 5 through the Python package: sessions, Kafka-style stream offsets, the durable
offset store (surviving SIGKILL of a child process), events and the stream_api metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

import switchboard


@pytest.fixture
def sessions(manager: switchboard.Manager) -> switchboard.Sessions:
    s = manager.sessions
    assert s.register("ds", "k") is True
    return s


def drain(manager: switchboard.Manager) -> list[tuple[str, int | None, str | None]]:
    """(kind, session_id, stream) of every queued event (they are queued synchronously)."""
    out: list[tuple[str, int | None, str | None]] = []
    for _ in range(100_000):
        e = manager.poll_event()
        if e is None:
            return out
        out.append((e.kind, e.session_id, e.stream))
    raise AssertionError("the event queue never ran dry")


def test_validation_errors_name_the_field(
    manager: switchboard.Manager, sessions: switchboard.Sessions
) -> None:
    IA = switchboard.InvalidArgument
    cases: list[tuple[dict[str, object], str]] = [
        ({"data_source": "", "session_key": "k"}, "data_source must be a non-empty string"),
        ({"data_source": "ds", "session_key": ""}, "session_key must be a non-empty string"),
        ({"streams": ["a", "b", "a"]}, 'streams[2] "a" repeats streams[0]'),
        ({"streams": ["a", ""]}, "streams[1] must be a non-empty"),
        ({"streams": ["a", "b"], "stream_offsets": [1]}, "stream_offsets has 1 entries but streams has 2"),
        ({"streams": ["a", "b"], "stream_offsets": [1, -4]}, "stream_offsets[1] must be a non-negative offset"),
    ]
    for fields, message in cases:
        args: dict[str, object] = {"data_source": "ds", "session_key": "k", **fields}
        with pytest.raises(IA) as info:
            sessions.open(**args)  # type: ignore[arg-type]
        assert message in str(info.value), (fields, info.value)
        assert isinstance(info.value, ValueError) and info.value.code == "SB_INVALID_ARGUMENT"
    with pytest.raises(IA, match="data_source"):
        sessions.register("", "k")
    with pytest.raises(IA, match="session_key"):
        sessions.register("ds", "")
    # Python-side type checks say what is accepted.
    with pytest.raises(IA, match="list of stream names"):
        sessions.open("ds", "k", streams="abc")
    with pytest.raises(IA, match=r"stream_offsets\[0\] must be an integer"):
        sessions.open("ds", "k", streams=["a"], stream_offsets=[1.5])  # type: ignore[list-item]
    # Nothing was opened by the failures.
    assert sessions.open_count == 0
    assert drain(manager) == []

    sid = sessions.open("ds", "k", ["a"])
    with pytest.raises(IA, match="already in session"):
        sessions.add_stream(sid, "a", 0)
    with pytest.raises(IA, match="stream must be a non-empty"):
        sessions.add_stream(sid, "", 0)
    with pytest.raises(IA, match="offset must be a non-negative"):
        sessions.add_stream(sid, "b", -1)
    with pytest.raises(IA, match="offset must be a non-negative"):
        sessions.commit(sid, "a", -1)
    with pytest.raises(IA, match="offset must be a non-negative"):
        sessions.seek(sid, "a", -1)
    with pytest.raises(IA, match="packets must be a non-negative integer"):
        sessions.deliver(sid, "a", packets=-1)
    with pytest.raises(switchboard.NotFound, match='no stream named "zz"'):
        sessions.commit(sid, "zz", 1)
    with pytest.raises(switchboard.NotFound, match='no stream named "zz"'):
        sessions.remove_stream(sid, "zz")
    with pytest.raises(switchboard.NotFound, match="no open session with id") as nf:
        sessions.get(sid + 1_000_000)
    assert isinstance(nf.value, LookupError)
    with pytest.raises(switchboard.NotFound, match="no open session with id -1"):
        sessions.get(-1)
    with pytest.raises(IA, match="session id is an int"):
        sessions.get("1")  # type: ignore[arg-type]


def test_the_catalog_decides_what_may_be_opened(manager: switchboard.Manager) -> None:
    s = manager.sessions
    assert s is manager.sessions
    with pytest.raises(switchboard.FailedPrecondition, match='has no registered session key "eu"'):
        s.open("quotes", "eu", ["a"])
    assert s.register("quotes", "eu") is True
    assert s.register("quotes", "eu") is False
    assert s.register("quotes", "us") is True
    assert s.is_registered("quotes", "eu") and not s.is_registered("quotes", "asia")
    assert s.catalog() == [("quotes", "eu"), ("quotes", "us")]
    sid = s.open("quotes", "eu", ["a"])
    with pytest.raises(switchboard.FailedPrecondition, match="has 1 open session"):
        s.unregister("quotes", "eu")
    s.close(sid)
    assert s.unregister("quotes", "eu") is True
    assert s.unregister("quotes", "eu") is False
    assert s.catalog() == [("quotes", "us")]


def test_open_with_offsets_then_get_list_and_close(
    manager: switchboard.Manager, sessions: switchboard.Sessions
) -> None:
    assert sessions.register("ds", "k2")
    a = sessions.open("ds", "k", ["x", "y"], [5, 9], exclude_main_stream=True)
    b = sessions.open("ds", "k2", ("x",))
    assert b > a > 0
    info = sessions.get(a)
    assert isinstance(info, switchboard.SessionInfo)
    assert (info.id, info.data_source, info.session_key, info.exclude_main_stream) == (
        a, "ds", "k", True,
    )
    assert [(st.name, st.position, st.committed) for st in info.streams] == [
        ("x", 5, None), ("y", 9, None),
    ]
    assert info.stream("y").position == 9
    with pytest.raises(switchboard.NotFound):
        info.stream("z")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.id = 0  # type: ignore[misc]
    assert [s.id for s in sessions.list()] == [a, b]
    assert [s.id for s in sessions.list(session_key="k2")] == [b]
    assert [s.id for s in sessions.list("ds", "k")] == [a]
    assert sessions.list("other") == []
    assert sessions.open_count == 2 and sessions.store_kind == "memory"
    assert sessions.buffered_commits == 0
    sessions.close(a)
    with pytest.raises(switchboard.NotFound):
        sessions.close(a)
    with pytest.raises(switchboard.NotFound):
        sessions.get(a)
    assert sessions.open_count == 1
    assert repr(sessions) == "<switchboard.Sessions open=1 store=memory>"


def test_deliver_commit_close_then_resume_at_the_committed_offsets(
    sessions: switchboard.Sessions,
) -> None:
    sid = sessions.open("ds", "k", ["a", "b"])
    sessions.record_read(sid, "a", packets=10, bytes=1000, essential=2)
    assert sessions.deliver(sid, "a", packets=7, bytes=700, essential=1) == 7
    assert sessions.deliver(sid, "b", 3) == 3
    assert sessions.position(sid, "a") == 7
    sessions.commit(sid, "a", 7)
    sessions.commit(sid, "b", 2)
    st = sessions.get(sid).stream("a")
    assert (st.position, st.committed) == (7, 7)
    assert (st.data_packets_read, st.data_bytes_read, st.essential_packets_read) == (10, 1000, 2)
    assert (st.data_packets_delivered, st.data_bytes_delivered, st.essential_packets_delivered) == (
        7, 700, 1,
    )
    sessions.close(sid)
    assert sessions.committed("ds", "k", "a") == 7
    assert sessions.committed("ds", "k", "never") is None

    again = sessions.resume("ds", "k", ["a", "b", "c"])
    assert again != sid
    info = sessions.get(again)
    assert [(s.name, s.position, s.committed) for s in info.streams] == [
        ("a", 7, 7), ("b", 2, 2), ("c", 0, None),
    ]
    # A Session object: the same calls without the id; closed by its block.
    with sessions.open_session("ds", "k", ["a"], resume=True) as session:
        assert session.info().stream("a").position == 7
        assert session.deliver("a", 5) == 12
        session.commit("a", 12)
        session.add_stream("z", 3)
        assert session.position("z") == 3
        session.remove_stream("z")
        session.record_read("a")
        session.record_router(2, 64)
        assert session.info().router_messages_received == 2
    assert session.closed
    session.close()  # safe twice
    assert sessions.committed("ds", "k", "a") == 12


def test_commits_never_go_backwards_unless_seek_says_so(
    manager: switchboard.Manager, sessions: switchboard.Sessions
) -> None:
    sid = sessions.open("ds", "k", ["a"], [10])
    with pytest.raises(switchboard.FailedPrecondition, match="would go backwards"):
        sessions.commit(sid, "a", 5)  # below where it started
    sessions.commit(sid, "a", 20)
    sessions.commit(sid, "a", 20)  # the same again is fine
    with pytest.raises(switchboard.FailedPrecondition, match=r'call seek\("a", 15\) first'):
        sessions.commit(sid, "a", 15)
    assert sessions.committed("ds", "k", "a") == 20
    sessions.seek(sid, "a", 15)
    assert sessions.position(sid, "a") == 15
    sessions.commit(sid, "a", 15)
    assert sessions.committed("ds", "k", "a") == 15
    failed = [e for e in drain(manager) if e[0] == "commit_failed"]
    assert failed == [("commit_failed", sid, "a"), ("commit_failed", sid, "a")]


def test_limits_are_resource_exhausted() -> None:
    with switchboard.Manager(sessions={"max_total": 3, "max_per_key": 2}) as m:
        s = m.sessions
        s.register("ds", "a")
        s.register("ds", "b")
        s.open("ds", "a")
        s.open("ds", "a")
        with pytest.raises(switchboard.ResourceExhausted, match="sessions.max_per_key"):
            s.open("ds", "a")
        s.open("ds", "b")
        with pytest.raises(switchboard.ResourceExhausted, match="sessions.max_total"):
            s.open("ds", "b")
        assert s.open_count == 3


def test_session_events_arrive_in_order(
    manager: switchboard.Manager, sessions: switchboard.Sessions
) -> None:
    seen: list[switchboard.Event] = []
    manager.on_event(seen.append)  # runs on this thread: session calls emit synchronously
    sid = sessions.open("ds", "k", ["a"])
    sessions.add_stream(sid, "b", 4)
    sessions.remove_stream(sid, "a")
    with pytest.raises(switchboard.FailedPrecondition):
        sessions.commit(sid, "b", 1)
    sessions.close(sid)
    manager.on_event(None)
    assert [(e.kind, e.session_id, e.stream) for e in seen] == [
        ("session_opened", sid, None),
        ("stream_added", sid, "b"),
        ("stream_removed", sid, "a"),
        ("commit_failed", sid, "b"),
        ("session_closed", sid, None),
    ]
    assert all(e.pool == "" and e.endpoint is None for e in seen)
    assert "added to session" in seen[1].message and "at offset 4" in seen[1].message
    assert [e.time for e in seen] == sorted(e.time for e in seen)
    # The queue gets them when no callback is set.
    again = sessions.open("ds", "k", ["a"])
    assert drain(manager) == [("session_opened", again, None)]


def test_metrics_text_has_the_stream_api_series(
    manager: switchboard.Manager,
) -> None:
    s = manager.sessions
    s.register("feed", "k1")
    a = s.open("feed", "k1", ["x", "y"])
    b = s.open("feed", "k1", ["x"])
    s.close(b)
    s.record_read(a, "x", 10, 1000, 2)
    s.record_read(a, "x", 1, 50, 0)
    s.deliver(a, "x", 7, 700, 1)
    s.record_read(a, "y", 4, 40, 4)
    assert s.deliver(a, "y", 3, 30, 3) == 3
    s.record_router(a, 3, 300)

    def series(name: str, stream: str, value: int) -> str:
        return (
            f'{name}{{connection="{a}",data_source="feed",session_key="k1",stream="{stream}"}} '
            f"{value}"
        )

    want = [
        'stream_api_connections_total{data_source="feed",session_key="k1"} 2',
        'stream_api_connections_open{data_source="feed",session_key="k1"} 1',
        series("stream_api_data_packets_read_total", "x", 11),
        series("stream_api_data_bytes_read_total", "x", 1050),
        series("stream_api_data_packets_delivered_total", "x", 7),
        series("stream_api_data_bytes_delivered_total", "x", 700),
        series("stream_api_essential_packets_read_total", "x", 2),
        series("stream_api_essential_packets_delivered_total", "x", 1),
        series("stream_api_data_packets_read_total", "y", 4),
        series("stream_api_data_packets_delivered_total", "y", 3),
        series("stream_api_essential_packets_delivered_total", "y", 3),
        f'stream_api_router_messages_received_total{{connection="{a}",data_source="feed",'
        'session_key="k1"} 3',
        f'stream_api_router_messages_received_bytes_total{{connection="{a}",data_source="feed",'
        'session_key="k1"} 300',
        "# EOF",
    ]
    lines = manager.metrics_text().splitlines()
    for line in want:
        assert line in lines, f"missing {line!r} in:\n" + "\n".join(lines)
    assert not any(f'connection="{b}"' in line for line in lines)


def test_a_closed_manager_makes_session_calls_unavailable() -> None:
    m = switchboard.Manager()
    s = m.sessions
    s.register("ds", "k")
    sid = s.open("ds", "k", ["a"])
    session = switchboard.Session(s, sid)
    m.close(timeout=1)
    for call in (
        lambda: s.open("ds", "k", ["a"]),
        lambda: s.get(sid),
        lambda: s.commit(sid, "a", 1),
        lambda: s.deliver(sid, "a"),
        lambda: s.register("ds", "k2"),
        lambda: s.committed("ds", "k", "a"),
        lambda: s.list(),
    ):
        with pytest.raises(switchboard.Unavailable, match="the manager is closed"):
            call()
    assert s.open_count == 0
    session.close()  # closed with its manager: no error


def test_commit_releases_the_gil(tmp_path: Path) -> None:
    with switchboard.Manager(offsets_path=str(tmp_path / "gil.redb")) as m:
        s = m.sessions
        assert s.store_kind == "durable"
        s.register("ds", "k")
        sid = s.open("ds", "k", ["a"])
        ticks = 0
        stop = threading.Event()

        def count() -> None:
            nonlocal ticks
            while not stop.is_set() and ticks < 1_000_000:
                ticks += 1
                time.sleep(0)

        t = threading.Thread(target=count)
        t.start()
        try:
            for offset in range(1, 201):  # 200 fsynced commits
                s.commit(sid, "a", offset)
        finally:
            stop.set()
            t.join(timeout=10)
        assert ticks > 0
        assert s.committed("ds", "k", "a") == 200


def test_asyncio_commits_go_to_disk_off_the_event_loop(tmp_path: Path) -> None:
    path = str(tmp_path / "async.redb")
    with switchboard.Manager(offsets_path=path) as m:
        s = m.sessions
        s.register("ds", "k")

        async def main() -> None:
            with s.open_session("ds", "k", ["a"]) as session:
                for offset in (5, 7):
                    await session.commit_async("a", offset)
                with pytest.raises(switchboard.FailedPrecondition, match="backwards"):
                    await s.commit_async(session.id, "a", 6)
                await s.flush_async()

        asyncio.run(main())
    with switchboard.Manager(offsets_path=path) as m:
        assert m.sessions.committed("ds", "k", "a") == 7


def test_interval_sync_buffers_until_flush(tmp_path: Path) -> None:
    path = str(tmp_path / "interval.redb")
    with switchboard.Manager(offsets={"path": path, "sync": "interval", "sync_interval": "1h"}) as m:
        s = m.sessions
        s.register("ds", "k")
        sid = s.open("ds", "k", ["a"])
        s.commit(sid, "a", 3)
        assert s.buffered_commits == 1
        s.flush()
        assert s.buffered_commits == 0
        s.commit(sid, "a", 4)  # flushed by close
    with switchboard.Manager(offsets_path=path) as m:
        assert m.sessions.committed("ds", "k", "a") == 4
    with pytest.raises(switchboard.InvalidArgument, match="offsets.sync"):
        switchboard.Manager(offsets_sync="sometimes")


def test_a_store_held_by_another_manager_is_an_io_error(tmp_path: Path) -> None:
    path = str(tmp_path / "held.redb")
    with switchboard.Manager(offsets_path=path):
        with pytest.raises(switchboard.IoError):
            switchboard.Manager(offsets_path=path)
    with switchboard.Manager(offsets_path=path) as m:  # released by close
        assert m.sessions.store_kind == "durable"


CHILD = r"""
import sys
import switchboard

m = switchboard.Manager(offsets_path=sys.argv[1])
s = m.sessions
s.register("ds", "k")
sid = s.resume("ds", "k", ["a", "b"])
offset = 0
while True:
    offset += 1
    s.commit(sid, "a", offset)
    s.commit(sid, "b", offset * 2)
    print(offset, flush=True)   # acknowledged: both commits returned
"""


@pytest.fixture
def child_path(tmp_path: Path) -> Iterator[str]:
    yield str(tmp_path / "sigkill.redb")


def test_durable_commits_survive_sigkill_of_a_child_process(child_path: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, child_path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    acked = 0
    try:
        deadline = time.monotonic() + 60
        buf = b""
        while acked < 200 and time.monotonic() < deadline:
            ready, _, _ = select.select([child.stdout], [], [], 1.0)
            if not ready:
                assert child.poll() is None, child.stderr.read() if child.stderr else b""
                continue
            chunk = os.read(child.stdout.fileno(), 4096)
            assert chunk, child.stderr.read() if child.stderr else b"child exited"
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                acked = max(acked, int(line))
        assert acked >= 200, "the child acknowledged too few commits in time"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    # Acknowledgements written before the kill but not read yet count too.
    rest = child.stdout.read()
    child.stdout.close()
    if child.stderr is not None:
        child.stderr.close()
    for line in (buf + rest).split(b"\n"):
        if line.strip():
            acked = max(acked, int(line))

    with switchboard.Manager(offsets_path=child_path) as m:
        s = m.sessions
        a = s.committed("ds", "k", "a")
        b = s.committed("ds", "k", "b")
        assert a is not None and a >= acked, (a, acked)
        assert b is not None and b >= 2 * acked, (b, acked)
        s.register("ds", "k")
        sid = s.resume("ds", "k", ["a"])
        assert s.position(sid, "a") == a
