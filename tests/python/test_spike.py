"""HikariCP's spike test through the Python boundary: 50 threads at once against a
150 ms connect, each holding its lease 20 ms (so 5 warm connections cannot absorb
them), end with far fewer than 50 connections: returned connections serve waiters
while only a few new ones open (pool.max_connecting). Uncapped, all 50 open."""

import itertools
import threading
import time

import switchboard


def test_a_demand_spike_opens_only_what_demand_needs(manager: switchboard.Manager) -> None:
    counter = itertools.count()

    def connect(endpoint: str) -> int:
        time.sleep(0.15)
        return next(counter)

    pool = manager.pool("spike", "db://x", connect=connect, max_size=50, min_idle=5)
    pool.warm()
    assert pool.stats().idle == 5
    errors: list[BaseException] = []

    def user() -> None:
        try:
            with pool.acquire(timeout=30):
                time.sleep(0.02)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=user) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    s = pool.stats()
    assert s.acquired_total == 50
    assert s.created_total < 25, f"a spike of 50 opened {s.created_total} connections"
