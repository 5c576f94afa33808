"""The cluster (issue 12, items 2-5) through the Python package.

The scenarios are the shared driver's (tests/fixtures/cluster_driver.py: a real
redis-server, the fault proxy and three instances, each tests/python/cluster_node.py in
its own process): membership, ids unique across instances, acknowledged and plain
broadcasts, cluster-wide list, stats, resource status and disconnect, shared breakers,
partial results after a SIGKILL, and Redis lost and regained. The rest checks in this
process what the package adds: ``manager.cluster`` is ``None`` without
``cluster.redis_url``, bad ``cluster.*`` values are refused naming their key, and the
cluster calls (sync and async) on one instance."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from conftest import RedisServer

import switchboard

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "fixtures" / "cluster_driver.py"
CHILD = Path(__file__).resolve().parent / "cluster_node.py"


def test_the_shared_cluster_scenarios_pass() -> None:
    if shutil.which("redis-server") is None and not os.environ.get("SB_REDIS_SERVER"):
        pytest.fail("redis-server is not installed (run `make test-python`, which installs it)")
    # The driver bounds itself to 240 s; this bound is a backstop.
    proc = subprocess.run(
        [sys.executable, str(DRIVER), "--", sys.executable, str(CHILD)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stdout
    assert "all cluster checks passed" in proc.stdout, proc.stdout


def test_no_cluster_without_a_redis_url() -> None:
    with switchboard.Manager() as m:
        assert m.cluster is None


def test_a_bad_redis_url_is_refused_naming_the_key() -> None:
    with pytest.raises(switchboard.InvalidArgument, match=r"cluster\.redis_url"):
        switchboard.Manager({"cluster.redis_url": "not a url"})


def test_a_zero_request_timeout_is_refused() -> None:
    with pytest.raises(switchboard.InvalidArgument, match=r"cluster\.request_timeout"):
        switchboard.Manager(
            {"cluster.redis_url": "redis://127.0.0.1:1/0", "cluster.request_timeout": 0}
        )


@pytest.fixture
def member(redis: RedisServer) -> Iterator[switchboard.Manager]:
    """One instance alone in a cluster on a fresh redis-server."""
    m = switchboard.Manager(
        {
            "cluster.redis_url": f"redis://127.0.0.1:{redis.port}/0",
            "cluster.name": f"pytest{os.getpid()}",
            "cluster.node_id": "solo",
            "cluster.heartbeat_interval": "200ms",
            "cluster.request_timeout": "1s",
        }
    )
    try:
        yield m
    finally:
        m.close(timeout=5.0)


def _joined(c: switchboard.Cluster) -> None:
    deadline = time.monotonic() + 10
    while not (c.joined and [x.node_id for x in c.members()] == ["solo"]):
        assert time.monotonic() < deadline, (c, c.members())
        time.sleep(0.05)


def test_one_member_through_the_package(member: switchboard.Manager) -> None:
    c = member.cluster
    assert c is not None and member.cluster is c
    assert (c.name, c.node_id) == (f"pytest{os.getpid()}", "solo")
    assert c.node_number > 0
    _joined(c)
    me = c.members()[0]
    assert me.local and me.number == c.node_number and me.last_seen >= 0
    assert "solo" in repr(c) and "joined=True" in repr(c)

    reg = member.registry
    a = reg.register_outbox(user="ann", topics=["news"])
    b = reg.register_outbox(topics=["news", "sport"])
    assert a.id >> 32 == c.node_number

    r = c.broadcast("hello", topic="news", exclude=[b.id])
    assert (r.local.recipients, r.remote, r.unacknowledged, r.recipients) == (1, {}, 0, 1)
    assert a.try_next() == "hello" and b.try_next() is None

    page = c.list(limit=1)
    assert [(n, x.id) for n, x in page.connections] == [("solo", a.id)]
    assert page.answered == switchboard.Answered(("solo",), ())
    page = c.list(cursor=page.next_cursor)
    assert [x.id for _, x in page.connections] == [b.id] and page.next_cursor is None
    assert [x.id for _, x in c.list(topic="sport").connections] == [b.id]
    assert [x.id for _, x in c.list(user="ann").connections] == [a.id]

    s = c.stats()
    assert s.total.connections == 2 and s.by_node["solo"].connections == 2
    assert isinstance(s.total, switchboard.RegistryStats)

    assert c.resource_status("bus").by_node == {"solo": "absent"}

    n = c.disconnect(topic="sport", reason="bye")
    assert (n.total, n.by_node, n.answered.missing) == (1, {"solo": 1}, ())
    assert b.id not in reg and a.id in reg

    with pytest.raises(switchboard.InvalidArgument):
        c.list(limit=-1)
    with pytest.raises(switchboard.InvalidArgument):
        c.broadcast("x", topics="news")
    with pytest.raises(switchboard.InvalidArgument):
        c.broadcast("x")  # a target naming nobody, as the registry refuses it


def test_the_async_forms(member: switchboard.Manager) -> None:
    c = member.cluster
    assert c is not None
    _joined(c)
    a = member.registry.register_outbox(user="ann", topics=["news"])

    async def main() -> None:
        r = await c.broadcast_async(b"\x00bin", user="ann")
        assert r.recipients == 1
        assert a.try_next() == b"\x00bin"
        page, stats, res = await asyncio.gather(
            c.list_async(), c.stats_async(), c.resource_status_async("bus")
        )
        assert [x.id for _, x in page.connections] == [a.id]
        assert stats.total.connections == 1
        assert res.by_node == {"solo": "absent"}
        n = await c.disconnect_async(ids=[a.id], reason="done")
        assert n.total == 1
        # A cancelled call ends quietly (its callback finds the future cancelled).
        task = asyncio.ensure_future(c.stats_async())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert a.id not in member.registry


def test_cluster_events_are_known_kinds(member: switchboard.Manager) -> None:
    c = member.cluster
    assert c is not None
    _joined(c)
    kinds = []
    for _ in range(1000):
        e = member.poll_event(0)
        if e is None:
            break
        kinds.append((e.kind, e.reason))
    assert ("cluster_joined", "joined") in kinds


def test_after_close_the_calls_are_unavailable(member: switchboard.Manager) -> None:
    c = member.cluster
    assert c is not None
    member.close(timeout=5.0)
    with pytest.raises(switchboard.Unavailable):
        c.stats()

    async def main() -> None:
        with pytest.raises(switchboard.Unavailable):
            await c.list_async()

    asyncio.run(main())
