"""Benchmark (not a test): broadcast to one topic of 10,000 send-callback connections
from Python, against the seed's design written plainly in Python as the peer.

    build/venv/bin/python bench/registry_python.py [--connections 10000] [--runs 21]

Prints one JSON object per line:

- ``broadcast_10k``: switchboard with plain send callbacks (``def send(msg):
  got.append(msg)``). ``call_ns`` is one ``registry.broadcast`` call as Python sees it
  (the fan-out runs in core and only queues); ``core_fanout_ns`` is core's own timing of
  that fan-out (``BroadcastReport.elapsed``), so ``call_ns - core_fanout_ns`` is the
  binding's cost; ``all_delivered_ns`` is from before the call until all 10,000
  callbacks have run (on switchboard's delivery threads, one GIL acquisition per round
  of up to 256 connections). ``peer_ns`` is the peer's broadcast, which returns when
  all its sends have run: a dict of sets (topic -> connection ids) and
  ``asyncio.gather`` over one ``async def send(msg): got.append(msg)`` coroutine per
  subscriber (seed 004's design). Ratios: ``peer_over_call`` and
  ``peer_over_all_delivered``.
- ``broadcast_10k_async``: the same with ``async def send`` callbacks on switchboard
  (each coroutine runs on the event loop and reports back); ``all_delivered_ns`` is
  until the last coroutine ran.

Every number is the median of ``--runs`` broadcasts after one warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import defaultdict
from typing import Any, Callable, Dict, List, Set

import switchboard


def median(xs: List[int]) -> int:
    return int(statistics.median(xs))


class PeerRegistry:
    """Seed 004's registry written plainly: connections by id, a dict of sets for topics,
    and a broadcast that gathers one send coroutine per subscriber."""

    def __init__(self) -> None:
        self.connections: Dict[int, Callable[[Any], Any]] = {}
        self.topics: Dict[str, Set[int]] = defaultdict(set)
        self.next_id = 1

    def register(self, send: Callable[[Any], Any], topics: List[str]) -> int:
        cid = self.next_id
        self.next_id += 1
        self.connections[cid] = send
        for t in topics:
            self.topics[t].add(cid)
        return cid

    async def broadcast(self, topic: str, msg: Any, exclude: Set[int] = set()) -> int:
        ids = self.topics.get(topic, set()) - exclude
        results = await asyncio.gather(
            *(self.connections[cid](msg) for cid in ids), return_exceptions=True
        )
        return len(results)


def wait_for_count(got: List[Any], n: int, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while len(got) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(got)} of {n} callbacks ran within {deadline_s}s")
        time.sleep(0.00002)  # releases the GIL for the delivery threads


def bench_sync(n: int, runs: int) -> Dict[str, Any]:
    got: List[Any] = []

    def send(msg: Any) -> None:
        got.append(msg)

    m = switchboard.Manager(
        registry_max_total_connections=0, registry_max_connections_per_topic=0
    )
    try:
        r = m.registry
        for _ in range(n):
            r.register(send, topics=["t"])
        calls: List[int] = []
        fanouts: List[int] = []
        alls: List[int] = []
        for i in range(runs + 1):
            got.clear()
            t0 = time.perf_counter_ns()
            rep = r.broadcast("tick", topic="t")
            t1 = time.perf_counter_ns()
            wait_for_count(got, n)
            t2 = time.perf_counter_ns()
            assert rep.recipients == n and rep.queued == n, rep
            if i == 0:
                continue  # warm-up
            calls.append(t1 - t0)
            fanouts.append(int(rep.elapsed * 1e9))
            alls.append(t2 - t0)
        return {
            "call_ns": median(calls),
            "core_fanout_ns": median(fanouts),
            "all_delivered_ns": median(alls),
        }
    finally:
        m.close(timeout=5.0)


def bench_async(n: int, runs: int) -> Dict[str, Any]:
    async def main() -> Dict[str, Any]:
        got: List[Any] = []
        done = asyncio.Event()

        async def send(msg: Any) -> None:
            got.append(msg)
            if len(got) == n:
                done.set()

        m = switchboard.Manager(
            registry_max_total_connections=0, registry_max_connections_per_topic=0
        )
        try:
            r = m.registry
            for _ in range(n):
                r.register(send, topics=["t"])
            calls: List[int] = []
            alls: List[int] = []
            for i in range(runs + 1):
                got.clear()
                done.clear()
                t0 = time.perf_counter_ns()
                rep = r.broadcast("tick", topic="t")
                t1 = time.perf_counter_ns()
                await asyncio.wait_for(done.wait(), timeout=60)
                t2 = time.perf_counter_ns()
                assert rep.recipients == n
                # Let the lanes report the last results before the next round.
                for _ in range(10_000):
                    if r.stats().messages_sent >= (i + 1) * n:
                        break
                    await asyncio.sleep(0.001)
                if i == 0:
                    continue
                calls.append(t1 - t0)
                alls.append(t2 - t0)
            return {"call_ns": median(calls), "all_delivered_ns": median(alls)}
        finally:
            m.close(timeout=5.0)

    return asyncio.run(main())


def bench_peer(n: int, runs: int) -> int:
    async def main() -> int:
        got: List[Any] = []

        async def send(msg: Any) -> None:
            got.append(msg)

        peer = PeerRegistry()
        for _ in range(n):
            peer.register(send, ["t"])
        times: List[int] = []
        for i in range(runs + 1):
            got.clear()
            t0 = time.perf_counter_ns()
            count = await peer.broadcast("t", "tick")
            t1 = time.perf_counter_ns()
            assert count == n and len(got) == n
            if i:
                times.append(t1 - t0)
        return median(times)

    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    n, runs = args.connections, args.runs
    peer_ns = bench_peer(n, runs)
    sync = bench_sync(n, runs)
    line = {
        "lang": "python",
        "op": "broadcast_10k",
        "connections": n,
        "runs": runs,
        **sync,
        "peer_ns": peer_ns,
        "peer_over_call": round(peer_ns / sync["call_ns"], 2),
        "peer_over_all_delivered": round(peer_ns / sync["all_delivered_ns"], 2),
    }
    print(json.dumps(line), flush=True)
    asy = bench_async(n, runs)
    line = {
        "lang": "python",
        "op": "broadcast_10k_async",
        "connections": n,
        "runs": runs,
        **asy,
        "peer_ns": peer_ns,
        "peer_over_call": round(peer_ns / asy["call_ns"], 2),
        "peer_over_all_delivered": round(peer_ns / asy["all_delivered_ns"], 2),
    }
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
