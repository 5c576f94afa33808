"""Custom connectors: pools of the program's own Python objects, made by ``connect``,
checked by ``check`` and closed by ``close`` callables, managed like sockets."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any, Optional

import pytest
from conftest import wait_until

import switchboard


class Client:
    """Stands in for a database client."""

    def __init__(self, endpoint: str, n: int) -> None:
        self.endpoint = endpoint
        self.n = n
        self.healthy = True
        self.closed = False

    def query(self, q: str) -> str:
        assert not self.closed, "query on a closed client"
        return f"{self.endpoint}#{self.n}: {q}"


class Hooks:
    """connect / check / close callables that record what the pool did, and on which
    threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.made: list[Client] = []
        self.checked = 0
        self.closes: Counter[int] = Counter()
        self.threads: dict[str, set[str]] = {"connect": set(), "check": set(), "close": set()}

    def _seen(self, what: str) -> None:
        self.threads[what].add(threading.current_thread().name)

    def connect(self, endpoint: str) -> Client:
        with self.lock:
            self._seen("connect")
            c = Client(endpoint, len(self.made) + 1)
            self.made.append(c)
            return c

    def check(self, c: Client) -> Optional[bool]:
        with self.lock:
            self._seen("check")
            self.checked += 1
        return c.healthy

    def close(self, c: Client) -> None:
        with self.lock:
            self._seen("close")
            self.closes[c.n] += 1
            c.closed = True

    def pool(self, manager: switchboard.Manager, name: str = "db", **kw: Any) -> switchboard.Pool:
        return manager.pool(
            name, "db://primary", connect=self.connect, check=self.check, close=self.close, **kw
        )


def test_lifecycle_connect_reuse_and_close_once(manager: switchboard.Manager) -> None:
    hooks = Hooks()
    pool = hooks.pool(manager, max_size=2)
    assert pool.custom
    with pool.acquire(timeout=10) as conn:
        assert isinstance(conn.obj, Client)
        assert conn.obj.query("select 1") == "db://primary#1: select 1"
        first = conn.obj
    assert conn.released
    with pool.acquire(timeout=10) as conn:  # the same object comes back
        assert conn.obj is first
        assert "custom" in repr(conn)
    a, b = pool.acquire(timeout=10), pool.acquire(timeout=10)
    assert {a.obj.n, b.obj.n} == {1, 2}
    assert len(hooks.made) == 2
    discarded = a.obj
    a.discard()  # closed by the program's choice
    assert hooks.closes == Counter({discarded.n: 1})
    b.release()
    s = pool.stats()
    assert (s.created_total, s.closed_by.discarded, s.size) == (2, 1, 1)
    pool.close()
    assert sorted(hooks.closes.items()) == [(1, 1), (2, 1)]
    assert all(c.closed for c in hooks.made)
    assert hooks.threads["connect"]  # ran somewhere other than a caller's thread
    assert threading.current_thread().name not in hooks.threads["connect"]


def test_a_custom_lease_has_no_socket(manager: switchboard.Manager) -> None:
    hooks = Hooks()
    pool = hooks.pool(manager)
    with pool.acquire(timeout=10) as conn:
        for call in (lambda: conn.sendall(b"x"), lambda: conn.recv(1), conn.fileno):
            with pytest.raises(switchboard.FailedPrecondition, match="custom connection"):
                call()
    with pytest.raises(switchboard.FailedPrecondition, match="already released"):
        conn.obj


def test_a_socket_lease_has_no_object(manager: switchboard.Manager, server: Any) -> None:
    pool = manager.pool("echo", server.target)
    assert not pool.custom
    with pool.acquire(timeout=10) as conn:
        with pytest.raises(switchboard.FailedPrecondition, match="built-in socket"):
            conn.obj


def test_a_failed_check_replaces_the_object(manager: switchboard.Manager) -> None:
    hooks = Hooks()
    pool = hooks.pool(manager, validate_after=0)
    with pool.acquire(timeout=10) as conn:
        first = conn.obj
    first.healthy = False
    with pool.acquire(timeout=10) as conn:
        assert conn.obj is not first
        assert conn.obj.n == 2
    # Checked on checkout, or by the upkeep while idle (racing the checkout): either way
    # one failed check closes it.
    wait_until(lambda: hooks.closes[first.n] == 1, what="the unhealthy object to close")
    assert first.closed
    s = pool.stats()
    assert (s.probe_failed_total, s.closed_by.broken, s.created_total) == (1, 1, 2)
    assert hooks.checked >= 1


def test_a_check_that_raises_also_replaces(manager: switchboard.Manager) -> None:
    made: list[object] = []
    closed: list[object] = []

    def check(obj: object) -> None:
        if obj is made[0]:
            raise RuntimeError("server went away")

    def connect(endpoint: str) -> object:
        made.append(object())
        return made[-1]

    pool = manager.pool(
        "db", "db://x", connect=connect, check=check, close=closed.append, validate_after=0
    )
    pool.acquire(timeout=10).release()
    with pool.acquire(timeout=10) as conn:
        assert conn.obj is made[1]
    assert closed == [made[0]]
    assert pool.stats().probe_failed_total == 1


def test_connect_exception_reaches_the_acquirer(manager: switchboard.Manager) -> None:
    def connect(endpoint: str) -> object:
        raise ValueError(f"{endpoint} said no")

    pool = manager.pool("db", "db://replica", connect=connect, acquire_timeout=5000)
    with pytest.raises(switchboard.Unavailable) as info:
        pool.acquire()
    err = info.value
    assert "db://replica said no" in str(err)
    assert "ValueError" in str(err) and "connect callback" in str(err)
    assert isinstance(err.__cause__, ValueError)
    assert str(err.__cause__) == "db://replica said no"
    assert pool.stats().connect_failed_total == 1

    async def main() -> None:
        with pytest.raises(switchboard.Unavailable, match="said no") as ainfo:
            await pool.acquire_async(timeout=5)
        assert isinstance(ainfo.value.__cause__, ValueError)

    asyncio.run(main())


@pytest.mark.parametrize(
    "raised, expected",
    [
        (switchboard.ResourceExhausted("db quota reached"), switchboard.ResourceExhausted),
        (switchboard.InvalidArgument("bad dsn"), switchboard.InvalidArgument),
        (TimeoutError("handshake took too long"), switchboard.Timeout),
    ],
)
def test_connect_exception_keeps_its_kind(
    manager: switchboard.Manager, raised: Exception, expected: type[Exception]
) -> None:
    def connect(endpoint: str) -> object:
        raise raised

    pool = manager.pool("db", "db://x", connect=connect)
    with pytest.raises(expected, match=str(raised)) as info:
        pool.acquire(timeout=5)
    assert info.value.__cause__ is raised


def test_async_acquire_on_a_custom_pool(manager: switchboard.Manager) -> None:
    hooks = Hooks()
    pool = hooks.pool(manager, max_size=1)

    async def main() -> list[int]:
        async with pool.acquire_async(timeout=5) as conn:
            first = conn.obj.n
            # A second task waits for the only object, then gets the same one.
            waiter = asyncio.ensure_future(pool.acquire_async(timeout=5))
            await asyncio.sleep(0.05)
            assert not waiter.done()
        second = await waiter
        n = second.obj.n
        second.release()
        return [first, n]

    assert asyncio.run(main()) == [1, 1]
    assert len(hooks.made) == 1


def test_async_def_callables_run_on_the_loop(manager: switchboard.Manager) -> None:
    closed: list[int] = []
    loop_threads: set[str] = set()

    async def main() -> None:
        made = 0

        async def connect(endpoint: str) -> dict[str, Any]:
            nonlocal made
            loop_threads.add(threading.current_thread().name)
            await asyncio.sleep(0.01)
            made += 1
            return {"n": made, "endpoint": endpoint}

        async def close(obj: dict[str, Any]) -> None:
            await asyncio.sleep(0)
            closed.append(obj["n"])

        pool = manager.pool("adb", "db://async", connect=connect, close=close, max_size=2)
        async with pool.acquire_async(timeout=5) as conn:
            assert conn.obj == {"n": 1, "endpoint": "db://async"}
        assert await pool.warm_async() == 0
        pool.evict_all()  # close runs on the loop (scheduled from the loop's thread)
        for _ in range(100):
            if closed:
                break
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert closed == [1]
    assert loop_threads == {threading.current_thread().name}


def test_async_def_connect_needs_a_running_loop(manager: switchboard.Manager) -> None:
    async def connect(endpoint: str) -> object:
        return object()

    with pytest.raises(switchboard.InvalidArgument, match="event loop"):
        manager.pool("db", "db://x", connect=connect)


def test_check_and_close_need_connect(manager: switchboard.Manager) -> None:
    with pytest.raises(switchboard.InvalidArgument, match="connect="):
        manager.pool("db", "tcp://127.0.0.1:9", close=print)
    with pytest.raises(switchboard.InvalidArgument, match="callable"):
        manager.pool("db", "db://x", connect="not a function")  # type: ignore[arg-type]


def test_min_idle_and_warm_with_custom_objects(manager: switchboard.Manager) -> None:
    hooks = Hooks()
    pool = hooks.pool(manager, max_size=4, min_idle=3)
    pool.warm()
    assert pool.stats().idle >= 3
    wait_until(lambda: len(hooks.made) == 3, what="three objects made")
    assert len(hooks.made) == 3


@pytest.mark.parametrize("release_from", ["main", "thread"])
def test_closing_the_manager_closes_idle_and_leased_objects_once(release_from: str) -> None:
    hooks = Hooks()
    manager = switchboard.Manager()
    pool = hooks.pool(manager, max_size=4)
    leases = [pool.acquire(timeout=10) for _ in range(4)]
    leases[0].release()
    leases[1].release()  # two idle, two leased
    done = threading.Event()

    def close() -> None:
        manager.close(timeout=0.2)
        done.set()

    closer = threading.Thread(target=close)
    closer.start()
    if release_from == "thread":
        # One lease comes back while the manager is closing, from another thread.
        t = threading.Thread(target=leases[2].release)
        t.start()
        t.join(timeout=30)
        assert not t.is_alive()
    closer.join(timeout=30)
    assert done.is_set(), "manager.close() deadlocked"
    # Leases still out after the close: closed when they come back.
    for lease in leases[2:]:
        lease.release()
    assert sorted(hooks.closes.items()) == [(1, 1), (2, 1), (3, 1), (4, 1)]
    assert all(c.closed for c in hooks.made)
    manager.close()  # twice: nothing more
    assert sum(hooks.closes.values()) == 4


def test_dropping_leases_and_pool_without_close(manager: switchboard.Manager) -> None:
    hooks = Hooks()
    pool = hooks.pool(manager, max_size=2)
    lease = pool.acquire(timeout=10)
    obj = lease.obj
    del lease  # garbage-collected: goes back to the pool
    wait_until(lambda: pool.stats().idle == 1, what="lease returned by the GC")
    del pool
    manager.close(timeout=1)
    assert hooks.closes[obj.n] == 1


def test_an_object_made_after_connect_timeout_is_closed(manager: switchboard.Manager) -> None:
    made: list[object] = []
    closed: list[object] = []

    def slow_connect(endpoint: str) -> object:
        time.sleep(0.3)
        made.append(object())
        return made[-1]

    pool = manager.pool(
        "slow", "db://slow", connect=slow_connect, close=closed.append, connect_timeout=50
    )
    with pytest.raises(switchboard.Timeout, match="connect_timeout"):
        pool.acquire(timeout=5)
    # The pool gave up on it; when it arrives anyway it is closed, exactly once.
    wait_until(lambda: len(made) >= 1 and len(closed) == len(made), what="late object closed")
    assert closed == made
    assert pool.stats().size == 0


EXIT_SCRIPT = """
import switchboard
def close(obj):
    print("closed", obj["n"], flush=True)
made = []
def connect(endpoint):
    made.append(1)
    return {"n": len(made)}
m = switchboard.Manager()
p = m.pool("db", "db://x", connect=connect, close=close, max_size=3, min_idle=1)
held = [p.acquire(timeout=5), p.acquire(timeout=5)]
p.warm()
def bad_close(obj):
    raise RuntimeError("close failed")
q = m.pool("db2", "db://y", connect=lambda ep: object(), close=bad_close)
q.acquire(timeout=5).release()
print("exiting", flush=True)
"""


def test_interpreter_exit_with_custom_objects_idle_and_leased() -> None:
    # Never closed by the program: the manager is closed at exit (idle objects closed
    # through the callable; a failing close is reported, not raised) and the process
    # ends promptly.
    proc = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exiting" in proc.stdout
    assert proc.stdout.count("closed 3") == 1  # the idle one made by warm()
    assert "RuntimeError: close failed" in proc.stderr


def test_a_check_past_validation_timeout_replaces_the_object(
    manager: switchboard.Manager,
) -> None:
    hooks = Hooks()
    slow: set[int] = set()

    def check(c: Client) -> Optional[bool]:
        if c.n in slow:
            time.sleep(0.5)
        return hooks.check(c)

    pool = manager.pool(
        "db",
        "db://x",
        connect=hooks.connect,
        check=check,
        close=hooks.close,
        validate_after=0,
        validation_timeout=50,
    )
    with pool.acquire(timeout=10) as conn:
        first = conn.obj
    slow.add(first.n)
    with pool.acquire(timeout=10) as conn:
        assert conn.obj is not first
    assert hooks.closes[first.n] == 1
    assert pool.stats().probe_failed_total == 1


def test_cancelled_async_acquires_leak_nothing(manager: switchboard.Manager) -> None:
    hooks = Hooks()

    def slow_connect(endpoint: str) -> Client:
        time.sleep(0.02)
        return hooks.connect(endpoint)

    pool = manager.pool(
        "db", "db://x", connect=slow_connect, close=hooks.close, max_size=3, max_overflow=1
    )

    async def one(i: int) -> None:
        async with pool.acquire_async(timeout=5) as conn:
            await asyncio.sleep(0.001 * (i % 4))
            assert not conn.obj.closed

    async def main() -> None:
        for round_ in range(5):
            tasks = [asyncio.ensure_future(one(i)) for i in range(12)]
            await asyncio.sleep(0.005 * round_)
            for t in tasks[round_::3]:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            s = pool.stats()
            assert s.size <= s.max_size + s.max_overflow
            assert s.waiting == 0

    asyncio.run(main())
    wait_until(
        lambda: pool.stats().leased == 0 and pool.stats().connecting == 0,
        what="every lease back",
    )
    pool.close()
    assert sorted(hooks.closes) == [c.n for c in hooks.made]
    assert all(v == 1 for v in hooks.closes.values())
