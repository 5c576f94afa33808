"""The live-connection registry from Python: registration, broadcast with exclusions
(asserted per connection), slow consumers, failing sinks, heartbeats and stale cleanup on
the manual clock, every limit, outboxes for threads and asyncio and async send callbacks.
The auth hook, listing, disconnect, events, metrics and the envelope are in
test_registry_admin.py."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from conftest import wait_until
from registry_support import Recorder, drain_events, make
from registry_support import manager as manager  # the fixture, re-exported for pytest

import switchboard


# --- registration ----------------------------------------------------------------------


def test_register_with_user_metadata_and_topics(manager: switchboard.Manager) -> None:
    r = manager.registry
    a = r.register_outbox(
        user="alice", metadata={"ip": "10.0.0.2"}, topics=["news", "chat", "news"]
    )
    info = a.info()
    assert info.user == "alice"
    assert info.metadata == {"ip": "10.0.0.2"}
    assert info.topics == ("chat", "news")
    assert (info.state, info.sink) == ("active", "outbox")
    assert a.subscribe("sport") is True
    assert a.subscribe("sport") is False
    assert a.unsubscribe("chat") is True
    assert a.unsubscribe("chat") is False
    a.set_metadata("room", "7")
    a.set_metadata("ip", None)
    info = r.get(a.id)
    assert info.topics == ("news", "sport")
    assert info.metadata == {"room": "7"}
    cb = r.register(lambda m: None, user="bob")
    assert cb.info().sink == "callback"
    assert len(r) == 2 and a.id in r and cb.id in r and 12345678901 not in r
    assert repr(r) == "<switchboard.Registry connections=2>"
    assert repr(a) == f"<switchboard.Outbox id={a.id} registered>"
    assert repr(cb) == f"<switchboard.Connection id={cb.id} registered>"

    with pytest.raises(switchboard.InvalidArgument, match=r"topics\[0\] must be a non-empty string"):
        r.register_outbox(topics=[""])
    with pytest.raises(switchboard.InvalidArgument, match="user must be a non-empty string"):
        r.register_outbox(user="")
    with pytest.raises(switchboard.InvalidArgument, match="a metadata key must be a non-empty string"):
        r.register_outbox(metadata={"": "x"})
    with pytest.raises(switchboard.InvalidArgument, match=r"write \['news'\]"):
        r.register_outbox(topics="news")
    with pytest.raises(switchboard.InvalidArgument, match="metadata must map str to str"):
        r.register_outbox(metadata={"k": 1})  # type: ignore[dict-item]
    with pytest.raises(switchboard.InvalidArgument, match="send must be callable"):
        r.register(42)  # type: ignore[arg-type]
    with pytest.raises(switchboard.InvalidArgument, match="topic must be a non-empty string"):
        a.subscribe("")
    with pytest.raises(switchboard.NotFound, match="no registered connection with id 999999999"):
        r.get(999_999_999)
    with pytest.raises(switchboard.NotFound):
        r.touch(-1)
    with pytest.raises(switchboard.InvalidArgument, match="a connection id is an int"):
        r.get("1")  # type: ignore[arg-type]
    assert len(r) == 2, "nothing refused was registered"

    r.unregister(a.id, "bye")
    with pytest.raises(switchboard.NotFound):
        r.unregister(a.id, "bye")
    assert a.next(timeout=0) is None and a.closed_reason == "bye"
    a.close()
    a.close()  # safe twice
    assert "closed reason='bye'" in repr(a)
    manager.close()
    with pytest.raises(switchboard.Unavailable, match="the manager is closed"):
        r.get(cb.id)
    with pytest.raises(switchboard.Unavailable):
        r.register_outbox()
    cb.close()  # after the manager closed: nothing to do


def test_messages_keep_their_type_and_bad_ones_are_refused(manager: switchboard.Manager) -> None:
    r = manager.registry
    o = r.register_outbox(topics=["t"])
    r.broadcast("text", topic="t")
    r.broadcast(b"\x00\xffbin", topic="t")
    r.broadcast(bytearray(b"ba"), topic="t")
    r.broadcast(memoryview(b"mv"), topic="t")
    assert [o.try_next() for _ in range(4)] == ["text", b"\x00\xffbin", b"ba", b"mv"]
    assert o.try_next() is None
    with pytest.raises(switchboard.InvalidArgument, match="a message must be str .* got int"):
        r.broadcast(5, topic="t")  # type: ignore[arg-type]
    with pytest.raises(switchboard.InvalidArgument, match="must be a list of names"):
        r.broadcast("x", topics="t")
    with pytest.raises(switchboard.NotFound):
        r.send(424_242_424, "x")
    rep = o.send("direct")
    assert (rep.recipients, rep.queued) == (1, 1)
    assert o.next(timeout=5) == "direct"


# --- broadcast -------------------------------------------------------------------------


def test_broadcast_reaches_exactly_the_right_sinks(manager: switchboard.Manager) -> None:
    r = manager.registry
    rec = Recorder()
    a = rec.register(r, user="alice", topics=["news"])
    b = rec.register(r, user="bob", topics=["news", "chat"])
    c = rec.register(r, user="carol", topics=["chat"])
    a2 = rec.register(r, user="alice")
    ob = r.register_outbox(user="dave", topics=["chat"])

    rep = r.broadcast("n1", topic="news")
    assert (rep.recipients, rep.queued, rep.dropped, rep.disconnected) == (2, 2, 0, 0)
    assert rep.elapsed >= 0
    assert r.broadcast("c1", topic="chat", exclude=[b.id]).recipients == 2
    assert r.broadcast("u1", user="alice").recipients == 2
    rep = r.broadcast("m1", topics=["news", "chat"], user="alice")
    assert rep.recipients == 5, "each connection once"
    assert r.broadcast("all1", all=True, exclude=[a.id, c.id]).recipients == 3
    assert r.broadcast("i1", ids=[c.id, ob.id, 987_654_321]).recipients == 2
    assert r.broadcast("x", users=["nobody"]).recipients == 0
    with pytest.raises(
        switchboard.InvalidArgument,
        match="a broadcast target must name at least one topic, user or connection id, or all",
    ):
        r.broadcast("x")

    wait_until(lambda: rec.total() == 2 + 1 + 2 + 4 + 2 + 1, what="deliveries")
    assert rec.of(a) == ["n1", "u1", "m1"]
    assert rec.of(b) == ["n1", "m1", "all1"]
    assert rec.of(c) == ["c1", "m1", "i1"]
    assert rec.of(a2) == ["u1", "m1", "all1"]
    got = [ob.try_next() for _ in range(5)]
    assert got == ["c1", "m1", "all1", "i1", None]
    s = r.stats()
    assert s.messages_queued == 16
    wait_until(lambda: r.stats().messages_sent == 16, what="sent counted")


def test_many_callbacks_are_delivered_in_rounds() -> None:
    m = make(registry_max_connections_per_topic=0)
    try:
        _many_callbacks(m.registry)
    finally:
        m.close(timeout=1.0)


def _many_callbacks(r: switchboard.Registry) -> None:
    n = 3000
    counts = [0]
    lock = threading.Lock()

    def send(msg: Any) -> None:
        with lock:
            counts[0] += 1

    conns = [r.register(send, topics=["big"]) for _ in range(n)]
    for i in range(3):
        assert r.broadcast(f"m{i}", topic="big").queued == n
    wait_until(lambda: counts[0] == 3 * n, what="9000 callbacks")
    assert sum(c.info().sent for c in conns[:50]) == 150


def test_a_callback_may_call_back_into_the_registry(manager: switchboard.Manager) -> None:
    r = manager.registry
    relay_got: List[Any] = []
    target = r.register(relay_got.append, topics=["out"])

    def relay(msg: Any) -> None:
        r.broadcast(f"relayed {msg}", topic="out")

    r.register(relay, topics=["in"])
    r.broadcast("x", topic="in")
    wait_until(lambda: relay_got == ["relayed x"], what="the relayed message")
    assert target.info().sent == 1


# --- slow consumers and failing sinks --------------------------------------------------


@pytest.mark.parametrize("policy", ["disconnect", "drop_oldest", "drop_new"])
def test_a_slow_outbox_meets_its_policy_while_others_get_everything(policy: str) -> None:
    m = make(registry_queue_max_messages=4, registry_queue_full_policy=policy)
    try:
        r = m.registry
        slow = r.register_outbox(topics=["t"])
        fast = r.register_outbox(topics=["t"])
        rec = Recorder()
        cb = rec.register(r, topics=["t"])
        fast_got = []
        reports = []
        for i in range(10):
            reports.append(r.broadcast(str(i), topic="t"))
            for _ in range(10):
                item = fast.try_next()
                if item is None:
                    break
                fast_got.append(item)
            # The callback sink drains on switchboard's threads: let it keep up.
            wait_until(lambda: len(rec.of(cb)) == i + 1, what="the callback sink")
        assert fast_got == [str(i) for i in range(10)]
        assert rec.of(cb) == [str(i) for i in range(10)]
        texts = []
        for _ in range(20):
            item = slow.try_next()
            if item is None:
                break
            texts.append(item)
        events = drain_events(m)
        slow_events = [e for e in events if e.kind == "slow_consumer"]
        assert len(slow_events) == 1, f"{policy}: one slow-consumer event per episode"
        assert slow_events[0].connection_id == slow.id
        assert slow_events[0].reason == policy
        if policy == "disconnect":
            assert texts == [], "its queue is discarded"
            assert slow.closed_reason == "slow_consumer"
            assert slow.id not in r
            assert reports[4].disconnected == 1
            assert any(
                e.kind == "unregistered" and e.reason == "slow_consumer" and e.connection_id == slow.id
                for e in events
            )
        elif policy == "drop_oldest":
            assert texts == ["6", "7", "8", "9"]
            assert reports[4].dropped == 1
        else:
            assert texts == ["0", "1", "2", "3"]
            assert sum(rep.dropped for rep in reports) == 6
        assert fast.id in r and cb.id in r
    finally:
        m.close(timeout=1.0)


def test_a_failing_sink_is_removed_after_the_configured_failures() -> None:
    m = make(registry_max_send_failures=3)
    try:
        r = m.registry
        calls = [0]
        closed: List[str] = []

        def failing(msg: Any) -> None:
            calls[0] += 1
            raise ConnectionResetError("socket gone")

        bad = r.register(failing, topics=["t"], on_close=closed.append)
        rec = Recorder()
        good = rec.register(r, topics=["t"])
        for i in range(5):
            r.broadcast(str(i), topic="t")
            wait_until(lambda: len(rec.of(good)) == i + 1, what="delivery to the good sink")
        wait_until(lambda: bad.id not in r, what="removal of the failing sink")
        assert calls[0] == 3
        wait_until(lambda: closed == ["send_failed"], what="its close callback")
        assert good.id in r
        s = r.stats()
        assert s.messages_failed == 3
        assert s.disconnects.get("send_failed") == 1
        unreg = [e for e in drain_events(m) if e.kind == "unregistered"]
        assert unreg and unreg[0].reason == "send_failed" and "socket gone" in unreg[0].message
    finally:
        m.close(timeout=1.0)


def test_a_closed_outbox_counts_failures_then_leaves() -> None:
    m = make(registry_max_send_failures=2)
    try:
        r = m.registry
        o = r.register_outbox(topics=["t"])
        o._outbox.close()  # the outbox alone, as when the program stops reading
        r.broadcast("1", topic="t")
        assert o.id in r
        r.broadcast("2", topic="t")
        assert o.id not in r
        assert r.stats().disconnects.get("send_failed") == 1
    finally:
        m.close(timeout=1.0)


# --- heartbeats and stale cleanup ------------------------------------------------------


def test_heartbeats_and_stale_cleanup_on_the_manual_clock() -> None:
    m = make(
        registry_heartbeat_interval="10s",
        registry_connection_timeout="30s",
        registry_cleanup_interval="1h",
    )
    try:
        r = m.registry
        chatty = r.register_outbox()
        rec = Recorder()
        quiet = rec.register(r)
        assert r.cleanup().pinged == 0
        m.advance_clock(10)
        rep = r.cleanup()
        assert (rep.pinged, rep.removed) == (2, 0)
        assert chatty.try_next() is switchboard.PING
        wait_until(lambda: rec.pings[quiet.id] == 1, what="the ping callback")
        assert quiet.info().state == "idle"
        assert r.list(state="idle").connections[0].id == chatty.id
        m.advance_clock(15)
        chatty.touch()
        assert chatty.info().state == "active"
        m.advance_clock(15)
        rep = r.cleanup()
        assert rep.removed == 1, "the quiet one is stale at 30 s; the chatty one touched at 25 s"
        assert quiet.id not in r and chatty.id in r
        wait_until(lambda: rec.closed == [(quiet.id, "stale")], what="the close callback")
        assert r.stats().cleanup_runs == 3
        assert r.stats().disconnects == {"stale": 1}
    finally:
        m.close(timeout=1.0)


def test_advance_clock_needs_a_manual_clock() -> None:
    with switchboard.Manager() as m:
        with pytest.raises(switchboard.FailedPrecondition, match="manual"):
            m.advance_clock(1)
    with make(registry_connection_timeout="5s", registry_heartbeat_interval="1s") as m:
        o = m.registry.register_outbox()
        m.advance_clock(5)
        assert m.registry.cleanup().removed == 1
        assert o.next(timeout=0) is None and o.closed_reason == "stale"
        with pytest.raises(switchboard.InvalidArgument):
            m.advance_clock(-1)


# --- limits ----------------------------------------------------------------------------


def test_every_limit_refuses_and_changes_nothing() -> None:
    m = make(
        registry_max_total_connections=3,
        registry_max_connections_per_topic=2,
        registry_max_connections_per_user=1,
        registry_max_topics_per_connection=2,
    )
    try:
        r = m.registry
        a = r.register_outbox(user="u", topics=["t"])
        with pytest.raises(switchboard.ResourceExhausted) as info:
            r.register_outbox(user="u")
        assert str(info.value).startswith(
            'registry.max_connections_per_user (1) reached: user "u" already has 1 connections'
        )
        assert info.value.code == "SB_RESOURCE_EXHAUSTED"
        b = r.register_outbox(topics=["t"])
        with pytest.raises(
            switchboard.ResourceExhausted,
            match=r'registry.max_connections_per_topic \(2\) reached: topic "t" already has 2 subscribers',
        ):
            r.register_outbox(topics=["t"])
        with pytest.raises(
            switchboard.ResourceExhausted, match=r"registry.max_topics_per_connection \(2\) reached"
        ):
            r.register_outbox(topics=["x", "y", "z"])
        c = r.register_outbox()
        with pytest.raises(
            switchboard.ResourceExhausted,
            match=r"registry.max_total_connections \(3\) reached: 3 connections are registered",
        ):
            r.register_outbox()
        with pytest.raises(switchboard.ResourceExhausted):
            c.subscribe("t")
        b.subscribe("x")
        with pytest.raises(
            switchboard.ResourceExhausted, match=r"registry.max_topics_per_connection \(2\)"
        ):
            b.subscribe("y")
        assert len(r) == 3
        assert c.info().topics == ()
        s = r.stats()
        assert s.topic_counts == (("t", 2), ("x", 1))
        assert sum(s.rejections.values()) == 6
        assert s.rejections["registry.max_topics_per_connection"] == 2
        rejected = [e for e in drain_events(m) if e.kind == "rejected"]
        assert len(rejected) == 6
        assert {e.reason for e in rejected} == {
            "registry.max_connections_per_user",
            "registry.max_connections_per_topic",
            "registry.max_topics_per_connection",
            "registry.max_total_connections",
        }
        del a
    finally:
        m.close(timeout=1.0)



# --- outboxes --------------------------------------------------------------------------


def test_an_outbox_iterates_on_a_thread_with_the_gil_released(
    manager: switchboard.Manager,
) -> None:
    r = manager.registry
    o = r.register_outbox(topics=["t"])
    got: List[Any] = []

    def reader() -> None:
        for item in o:
            got.append(item)

    t = threading.Thread(target=reader)
    t.start()
    # While the reader waits (GIL released), this thread keeps running Python.
    spins = 0
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        spins += 1
    assert spins > 1000
    for i in range(3):
        r.broadcast(str(i), topic="t")
    wait_until(lambda: len(got) == 3, what="the reader")
    r.unregister(o.id, "end")
    t.join(timeout=10)
    assert not t.is_alive(), "iteration ends when the connection leaves"
    assert got == ["0", "1", "2"] and o.closed_reason == "end"
    assert o.next() is None, "after the end every call returns None at once"


def test_next_times_out_with_none(manager: switchboard.Manager) -> None:
    o = manager.registry.register_outbox()
    start = time.monotonic()
    assert o.next(timeout=0.05) is None
    assert time.monotonic() - start >= 0.04
    assert o.closed_reason is None
    with pytest.raises(switchboard.InvalidArgument):
        o.next(timeout=-1)
    with pytest.raises(switchboard.InvalidArgument):
        o.next(timeout="soon")  # type: ignore[arg-type]


def test_an_outbox_closes_with_its_with_block(manager: switchboard.Manager) -> None:
    r = manager.registry
    with r.register_outbox(topics=["t"]) as o:
        assert o.id in r
    assert o.id not in r
    assert o.next() is None and o.closed_reason == "unregistered"
    with r.register(lambda m: None) as c:
        assert c.registered
    assert not c.registered


def test_async_for_and_a_cancelled_next_async_loses_nothing(
    manager: switchboard.Manager,
) -> None:
    r = manager.registry

    async def main() -> Tuple[List[Any], List[Any], Optional[str]]:
        o = r.register_outbox(topics=["t"])
        # A wait cancelled before anything came: its item goes to the next call.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(o.next_async(), timeout=0.05)
        r.broadcast("first", topic="t")
        first = [await asyncio.wait_for(o.next_async(), timeout=10)]
        for i in range(3):
            r.broadcast(str(i), topic="t")
        manager.advance_clock(0)  # (no-op; the clock is manual)

        async def stop_later() -> None:
            await asyncio.sleep(0.05)
            r.unregister(o.id, "done")

        stopper = asyncio.ensure_future(stop_later())
        rest = [item async for item in o]
        await stopper
        return first, rest, o.closed_reason

    first, rest, reason = asyncio.run(asyncio.wait_for(main(), timeout=30))
    assert first == ["first"]
    assert rest == ["0", "1", "2"]
    assert reason == "done"


def test_outbox_close_ends_a_pending_next_async(manager: switchboard.Manager) -> None:
    r = manager.registry

    async def main() -> Optional[Any]:
        o = r.register_outbox()
        waiter = asyncio.ensure_future(o.next_async())
        await asyncio.sleep(0.05)
        o.close()
        return await asyncio.wait_for(waiter, timeout=10)

    assert asyncio.run(main()) is None


# --- async send callbacks --------------------------------------------------------------


def test_async_send_callbacks_run_in_order_on_the_loop_and_report(
    manager: switchboard.Manager,
) -> None:
    r = manager.registry

    async def main() -> None:
        loop = asyncio.get_running_loop()
        got: Dict[int, List[str]] = defaultdict(list)
        threads = set()

        def make_send(k: int) -> Callable[[Any], Any]:
            async def send(msg: Any) -> None:
                threads.add(threading.get_ident())
                # Later messages sleep less: out of order unless they are chained.
                await asyncio.sleep(0.002 * (5 - int(msg)))
                got[k].append(msg)

            return send

        conns = [r.register(make_send(k), topics=["t"]) for k in range(5)]
        for i in range(5):
            r.broadcast(str(i), topic="t")
        for _ in range(1000):
            if all(len(got[k]) == 5 for k in range(5)):
                break
            await asyncio.sleep(0.01)
        assert all(got[k] == ["0", "1", "2", "3", "4"] for k in range(5)), got
        assert threads == {threading.get_ident()}, "the coroutines run on the loop's thread"
        for _ in range(1000):
            if all(c.info().sent == 5 for c in conns):
                break
            await asyncio.sleep(0.01)
        assert [c.info().sent for c in conns] == [5] * 5
        assert loop.is_running()

    asyncio.run(asyncio.wait_for(main(), timeout=30))


def test_a_failing_async_send_is_removed_and_its_async_close_runs() -> None:
    m = make(registry_max_send_failures=2)
    try:
        r = m.registry

        async def main() -> Tuple[List[str], Dict[str, int]]:
            closed: List[str] = []

            async def send(msg: Any) -> None:
                await asyncio.sleep(0)
                raise ConnectionError("peer went away")

            async def on_close(reason: str) -> None:
                await asyncio.sleep(0)
                closed.append(reason)

            c = r.register(send, topics=["t"], on_close=on_close)
            for i in range(2):
                r.broadcast(str(i), topic="t")
                await asyncio.sleep(0.05)
            for _ in range(1000):
                if closed:
                    break
                await asyncio.sleep(0.01)
            assert c.id not in r
            return closed, r.stats().disconnects

        closed, disconnects = asyncio.run(asyncio.wait_for(main(), timeout=30))
        assert closed == ["send_failed"]
        assert disconnects == {"send_failed": 1}
        assert r.stats().messages_failed == 2
    finally:
        m.close(timeout=1.0)


def test_an_async_send_needs_a_running_loop(manager: switchboard.Manager) -> None:
    async def send(msg: Any) -> None:
        pass

    with pytest.raises(switchboard.InvalidArgument, match="needs an event loop"):
        manager.registry.register(send)
