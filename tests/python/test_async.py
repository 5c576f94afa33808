"""asyncio: acquire without blocking the loop, and cancellation that never leaks a
connection."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from conftest import EchoServer, wait_until

import switchboard


async def aecho(conn: switchboard.Lease, data: bytes) -> bytes:
    # The socket helpers block; a real program would use loop.sock_* on conn.fileno()
    # or run them in a thread. For a loopback echo this is instant.
    conn.sendall(data)
    got = b""
    while len(got) < len(data):
        got += conn.recv(len(data) - len(got))
    return got


async def wait_for_stats(pool: switchboard.Pool, pred, what: str, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred(pool.stats()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {pool.stats()}"
        await asyncio.sleep(0.005)


def test_async_with_round_trip_and_reuse(manager: switchboard.Manager, server: EchoServer) -> None:
    pool = manager.pool("echo", server.target)

    async def main() -> tuple[int, int]:
        async with pool.acquire_async(timeout=10) as conn:
            assert await aecho(conn, b"async hello\n") == b"async hello\n"
            first = conn.id
        assert conn.released
        conn2 = await pool.acquire_async()  # plain await gives the Lease
        try:
            return first, conn2.id
        finally:
            conn2.release()

    first, second = asyncio.run(main())
    assert first == second
    assert server.accepted() == 1


def test_async_block_that_raises_discards(manager: switchboard.Manager, server: EchoServer) -> None:
    pool = manager.pool("echo", server.target)

    async def main() -> None:
        with pytest.raises(KeyError):
            async with pool.acquire_async() as conn:
                raise KeyError("boom")
        assert conn.released

    asyncio.run(main())
    assert pool.stats().closed_total == 1


def test_async_acquire_times_out(manager: switchboard.Manager, server: EchoServer) -> None:
    pool = manager.pool("one", server.target, max_size=1)
    held = pool.acquire(timeout=10)

    async def main() -> float:
        start = time.monotonic()
        with pytest.raises(switchboard.Timeout) as info:
            await pool.acquire_async(timeout=0.2)
        assert isinstance(info.value, TimeoutError)
        return time.monotonic() - start

    elapsed = asyncio.run(main())
    assert 0.15 <= elapsed < 0.2 + 5.0
    held.release()


def test_the_event_loop_keeps_running_while_acquire_waits(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("one", server.target, max_size=1)
    held = pool.acquire(timeout=10)

    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.ensure_future(ticker())
        waiter = asyncio.ensure_future(pool.acquire_async(timeout=30))
        await wait_for_stats(pool, lambda s: s.waiting == 1, "the waiter")
        before = ticks
        await asyncio.sleep(0.3)
        during = ticks - before
        held.release()  # now the waiter gets the connection
        lease = await asyncio.wait_for(waiter, 10)
        lease.release()
        t.cancel()
        return during

    assert asyncio.run(main()) >= 3  # the loop ran while the acquire waited


def test_cancelling_the_awaiting_task_returns_the_connection(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("one", server.target, max_size=1)

    async def main() -> None:
        held = await pool.acquire_async(timeout=10)
        first = held.id
        waiter = asyncio.ensure_future(pool.acquire_async(timeout=30))
        await wait_for_stats(pool, lambda s: s.waiting == 1, "the waiter")
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        held.release()
        # Whether the cancelled waiter left the queue before the release or was granted
        # the connection first, the connection ends up idle in the pool.
        await wait_for_stats(
            pool, lambda s: (s.idle, s.leased, s.waiting) == (1, 0, 0), "an idle connection"
        )
        async with pool.acquire_async(timeout=5) as conn:
            assert conn.id == first
        stats = pool.stats()
        assert (stats.created_total, stats.size, stats.idle) == (1, 1, 1)

    asyncio.run(main())
    assert server.accepted() == 1


def test_wait_for_timeout_cancels_cleanly(manager: switchboard.Manager, server: EchoServer) -> None:
    pool = manager.pool("one", server.target, max_size=1)

    async def main() -> None:
        held = await pool.acquire_async(timeout=10)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(pool.acquire_async(timeout=30), 0.2)
        held.release()
        await wait_for_stats(pool, lambda s: (s.idle, s.waiting) == (1, 0), "an idle connection")

    asyncio.run(main())


def test_many_acquirers_cancelled_at_random_leak_nothing(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    max_size = 3
    pool = manager.pool("busy", server.target, max_size=max_size)
    rng = random.Random(1234)

    async def worker(i: int) -> None:
        async with pool.acquire_async(timeout=30) as conn:
            await asyncio.sleep(rng.random() * 0.01)
            assert await aecho(conn, b"%d\n" % i) == b"%d\n" % i

    async def main() -> None:
        for _round in range(5):
            tasks = [asyncio.ensure_future(worker(i)) for i in range(40)]
            await asyncio.sleep(rng.random() * 0.02)
            for t in tasks:
                if rng.random() < 0.4:
                    t.cancel()
            results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
            for r in results:
                assert r is None or isinstance(r, asyncio.CancelledError), r
            s = pool.stats()
            assert s.size <= max_size
        await wait_for_stats(
            pool,
            lambda s: s.leased == 0 and s.waiting == 0 and s.idle == s.size,
            "every connection back",
        )

    asyncio.run(main())
    stats = pool.stats()
    assert 1 <= stats.size <= max_size
    assert stats.created_total == server.accepted() <= max_size + stats.closed_total


def test_a_result_for_a_closed_loop_goes_back_to_the_pool(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    pool = manager.pool("one", server.target, max_size=1)
    held = pool.acquire(timeout=10)
    loop = asyncio.new_event_loop()
    task = loop.create_task(pool.acquire_async(timeout=30).__aenter__())
    task._log_destroy_pending = False  # type: ignore[attr-defined]  # abandoned on purpose

    async def until_waiting() -> None:
        await wait_for_stats(pool, lambda s: s.waiting == 1, "the waiter")

    loop.run_until_complete(until_waiting())
    loop.close()  # the task is still waiting; its loop is gone
    held.release()  # granted to the abandoned waiter, whose callback returns it
    wait_until(lambda: pool.stats().idle == 1, what="the connection back in the pool")
    assert not task.done()
    with pool.acquire(timeout=5) as conn:
        assert conn.id == held.id


def test_async_acquire_after_close_is_unavailable(server: EchoServer) -> None:
    m = switchboard.Manager()
    pool = m.pool("p", server.target)
    m.close()

    async def main() -> None:
        with pytest.raises(switchboard.Unavailable):
            await pool.acquire_async(timeout=1)

    asyncio.run(main())


def test_closing_the_manager_fails_an_async_waiter(server: EchoServer) -> None:
    m = switchboard.Manager()
    pool = m.pool("p", server.target, max_size=1)
    held = pool.acquire(timeout=10)

    async def main() -> None:
        waiter = asyncio.ensure_future(pool.acquire_async(timeout=60))
        await wait_for_stats(pool, lambda s: s.waiting == 1, "the waiter")
        await asyncio.get_running_loop().run_in_executor(None, lambda: m.close(timeout=0.1))
        with pytest.raises(switchboard.Unavailable):
            await asyncio.wait_for(waiter, 20)

    asyncio.run(main())
    held.release()
