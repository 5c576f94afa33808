"""The registry's admin side from Python: the auth hook, listing with a cursor,
disconnect, events, metrics and the envelope."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import pytest
from conftest import wait_until
from registry_support import Recorder, drain_events, make
from registry_support import manager as manager  # the fixture, re-exported for pytest

import switchboard


# --- authentication --------------------------------------------------------------------


def test_the_auth_hook_grants_and_refuses_with_their_codes(manager: switchboard.Manager) -> None:
    r = manager.registry
    with pytest.raises(switchboard.FailedPrecondition, match="no authenticate hook is set"):
        r.register_outbox(token="ok:x")

    def authenticate(token: str) -> Optional[Tuple[Optional[str], Dict[str, str]]]:
        if token.startswith("ok:"):
            return token[3:], {"auth": "token"}
        if token == "boom":
            raise ValueError("token expired at noon")
        return None

    seen: List[Tuple[int, Optional[str], str]] = []

    def authorize(conn_id: int, user: Optional[str], topic: str) -> bool:
        seen.append((conn_id, user, topic))
        if topic == "secret":
            raise PermissionError("secret is sealed")
        return not topic.startswith("admin.") or user == "root"

    r.set_authenticator(authenticate, authorize)
    a = r.register_outbox(token="ok:alice", topics=["news"], user="ignored", metadata={"k": "v"})
    info = a.info()
    assert info.user == "alice"
    assert info.metadata == {"auth": "token", "k": "v"}
    assert seen == [(a.id, "alice", "news")]

    with pytest.raises(switchboard.Unauthenticated) as refused:
        r.register_outbox(token="nope")
    err = refused.value
    assert isinstance(err, PermissionError) and err.code == "SB_UNAUTHENTICATED"
    assert str(err) == "the authenticate hook refused the token: the hook returned None"
    with pytest.raises(
        switchboard.Unauthenticated,
        match="the authenticate hook refused the token: token expired at noon",
    ):
        r.register(lambda m: None, token="boom")

    with pytest.raises(switchboard.PermissionDenied) as denied:
        a.subscribe("admin.logs")
    assert isinstance(denied.value, PermissionError)
    assert denied.value.code == "SB_PERMISSION_DENIED"
    assert 'the authorize hook refused topic "admin.logs"' in str(denied.value)
    assert "the hook returned False" in str(denied.value)
    with pytest.raises(switchboard.PermissionDenied, match="secret is sealed"):
        a.subscribe("secret")
    with pytest.raises(switchboard.PermissionDenied):
        r.register_outbox(token="ok:bob", topics=["admin.x"])
    root = r.register_outbox(token="ok:root", topics=["admin.x"])
    assert root.info().topics == ("admin.x",)
    assert len(r) == 2
    assert a.info().topics == ("news",)

    r.set_authenticator(None)
    assert a.subscribe("admin.logs") is True, "no hook: every topic is allowed"
    with pytest.raises(switchboard.FailedPrecondition):
        r.register_outbox(token="ok:x")
    with pytest.raises(switchboard.InvalidArgument, match="authorize= needs authenticate="):
        r.set_authenticator(None, authorize)


# --- listing ---------------------------------------------------------------------------


def test_list_filters_and_pages_with_a_cursor() -> None:
    m = make(registry_max_total_connections=0, registry_max_connections_per_topic=0)
    try:
        r = m.registry
        keep = []
        for i in range(250):
            keep.append(
                r.register_outbox(
                    user=f"u{i % 5}",
                    metadata={"parity": "even" if i % 2 == 0 else "odd"},
                    topics=["three"] if i % 3 == 0 else [],
                )
            )
        ids = [o.id for o in keep]
        seen: List[int] = []
        cursor: Optional[int] = None
        for _ in range(100):
            page = r.list(limit=50, cursor=cursor)
            seen.extend(c.id for c in page.connections)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == ids
        three: List[int] = []
        cursor = None
        for _ in range(100):
            page = r.list(topic="three", meta=("parity", "even"), limit=7, cursor=cursor)
            assert len(page.connections) <= 7
            three.extend(c.id for c in page.connections)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert three == [id for i, id in enumerate(ids) if i % 6 == 0]
        u = r.list(user="u1", limit=1000)
        assert len(u.connections) == 50 and u.next_cursor is None
        assert all(c.user == "u1" for c in u.connections)
        assert len(r.list().connections) == 100, "limit 0 means 100"
        m.advance_clock(60)
        keep[0].touch()
        idle = r.list(min_idle=59, limit=1000)
        assert len(idle.connections) == 249
        assert [c.id for c in r.list(state="active").connections] == [ids[0]]
        assert r.list(user="nobody").connections == ()
        with pytest.raises(
            switchboard.InvalidArgument, match='state must be one of active | idle, got "x"'
        ):
            r.list(state="x")  # type: ignore[arg-type]
        with pytest.raises(switchboard.InvalidArgument, match="meta must be a"):
            r.list(meta="parity")  # type: ignore[arg-type]
        with pytest.raises(switchboard.InvalidArgument, match="limit must be"):
            r.list(limit=-1)
    finally:
        m.close(timeout=1.0)


# --- disconnect ------------------------------------------------------------------------


def test_disconnect_by_user_and_topic_with_a_reason() -> None:
    m = make()
    r = m.registry
    rec = Recorder()
    a = rec.register(r, user="alice", topics=["x"])
    a2 = rec.register(r, user="alice")
    b = rec.register(r, user="bob", topics=["x"])
    c = rec.register(r, user="carol", topics=["x"])
    ob = r.register_outbox(user="dave", topics=["y"])
    assert r.disconnect(user="alice", reason="banned") == 2
    assert r.disconnect(topic="x", exclude=[c.id], reason="maintenance") == 1
    assert r.disconnect(topics=["y"]) == 1
    assert ob.next(timeout=5) is None and ob.closed_reason == "disconnected"
    with pytest.raises(switchboard.InvalidArgument, match="a disconnect target must name"):
        r.disconnect(reason="nobody")
    wait_until(lambda: len(rec.closed) == 3, what="close callbacks")
    assert sorted(rec.closed) == sorted(
        [(a.id, "banned"), (a2.id, "banned"), (b.id, "maintenance")]
    )
    assert len(r) == 1
    s = r.stats()
    assert s.disconnects == {"banned": 2, "maintenance": 1, "disconnected": 1}
    m.close(timeout=1.0)
    wait_until(lambda: len(rec.closed) == 4, what="the manager's close callback")
    assert rec.closed[3] == (c.id, "manager_closed")


# --- events and metrics ----------------------------------------------------------------


def test_events_come_in_order(manager: switchboard.Manager) -> None:
    r = manager.registry
    a = r.register_outbox(user="alice", topics=["a"])
    a.subscribe("b")
    a.unsubscribe("a")
    r.unregister(a.id, "done")
    got = [
        (e.kind, e.topic, e.user, e.reason)
        for e in drain_events(manager)
        if e.connection_id == a.id
    ]
    assert got == [
        ("registered", None, "alice", None),
        ("subscribed", "a", "alice", None),
        ("subscribed", "b", "alice", None),
        ("unsubscribed", "a", "alice", None),
        ("unregistered", None, "alice", "done"),
    ]


def test_events_reach_the_callback_with_the_new_fields(manager: switchboard.Manager) -> None:
    got: List[switchboard.Event] = []
    manager.on_event(got.append)
    o = manager.registry.register_outbox(user="zoe", topics=["t"])
    o.close()
    manager.on_event(None)
    assert [(e.kind, e.topic, e.user, e.reason) for e in got] == [
        ("registered", None, "zoe", None),
        ("subscribed", "t", "zoe", None),
        ("unregistered", None, "zoe", "unregistered"),
    ]


def test_metrics_lines() -> None:
    m = make(registry_metrics_top_topics=1)
    try:
        r = m.registry
        a = r.register_outbox(user="u", topics=["big", "small"])
        b = r.register_outbox(topics=["big"])
        r.broadcast("x", topic="big")
        assert a.try_next() == "x"
        r.unregister(b.id, "gone")
        text = m.metrics_text()
        for line in [
            "switchboard_registry_connections 1",
            'switchboard_registry_topic_connections{topic="big"} 1',
            'switchboard_registry_topic_connections{topic="_other"} 1',
            'switchboard_registry_messages_total{result="queued"} 2',
            'switchboard_registry_messages_total{result="sent"} 1',
            'switchboard_registry_messages_total{result="dropped"} 1',
            'switchboard_registry_disconnects_total{reason="gone"} 1',
            "switchboard_registry_registrations_total 2",
            "switchboard_registry_broadcasts_total 1",
        ]:
            assert line in text, f"missing {line!r} in\n{text}"
    finally:
        m.close(timeout=1.0)



# --- the envelope ----------------------------------------------------------------------


def test_the_envelope_round_trips_through_core() -> None:
    text = switchboard.envelope("notification", {"id": 7, "tags": ["a"]}, topic="news")
    env = switchboard.parse_envelope(text)
    assert env["type"] == "notification" and env["topic"] == "news"
    assert env["data"] == {"id": 7, "tags": ["a"]}
    assert env["error"] is None
    assert isinstance(env["timestamp"], str) and env["timestamp"].endswith("Z")
    err = switchboard.parse_envelope(switchboard.envelope("error", error="bad topic"))
    assert (err["type"], err["error"], err["data"], err["topic"]) == ("error", "bad topic", None, None)
    assert switchboard.parse_envelope(b'{"type":"ping"}')["type"] == "ping"
    with pytest.raises(switchboard.InvalidArgument, match="type must be a non-empty string"):
        switchboard.envelope("")
    with pytest.raises(switchboard.InvalidArgument, match="an envelope must be JSON text"):
        switchboard.parse_envelope("not json")
    with pytest.raises(switchboard.InvalidArgument, match='must have a string "type" field'):
        switchboard.parse_envelope('{"topic": "x"}')
    with pytest.raises(switchboard.InvalidArgument, match='"topic" must be a string'):
        switchboard.parse_envelope('{"type": "x", "topic": 5}')
