#!/usr/bin/env python3
"""switchboard from Python: pool connections to an echo server and reuse them.

Usage: python examples/python/echo.py tcp://127.0.0.1:7000
"""

from __future__ import annotations

import asyncio
import sys

import switchboard


def round_trip(conn: switchboard.Lease, message: bytes) -> bytes:
    conn.sendall(message)
    reply = b""
    while len(reply) < len(message):
        chunk = conn.recv(len(message) - len(reply))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        reply += chunk
    return reply


async def async_round_trip(pool: switchboard.Pool) -> None:
    # Waiting for a connection never blocks the event loop.
    async with pool.acquire_async(timeout=5.0) as conn:
        reply = round_trip(conn, b"hello from asyncio\n")
        print(f"python: async acquire got connection #{conn.id}, echoed {reply!r}")


def main(target: str) -> int:
    with switchboard.Manager(worker_threads=2) as manager:
        pool = manager.pool("echo", target, max_size=2, acquire_timeout="2s")

        with pool.acquire() as conn:
            reply = round_trip(conn, b"hello from python\n")
            first = conn.id
            print(f"python: acquired connection #{conn.id}, echoed {reply!r}")
        # Leaving the block released the connection to the pool; the next acquire reuses it.
        with pool.acquire() as conn:
            round_trip(conn, b"again\n")
            reused = "reused" if conn.id == first else "did NOT reuse"
            print(f"python: released and acquired again: {reused} connection #{first}")

        asyncio.run(async_round_trip(pool))
        print(f"python: {pool!r}")
        lease = pool.stats().lease
        print(f"python: {lease.count} leases, held {lease.avg * 1000:.2f} ms on average")
        acquires = [
            line
            for line in manager.metrics_text().splitlines()
            if line.startswith("switchboard_pool_acquires_total{")
        ]
        print("python: metrics: " + "; ".join(acquires))
        ep = pool.health().endpoints[0]
        print(
            f"python: endpoint {ep.endpoint} {ep.state}, breaker {pool.breaker_state()}, "
            f"quality {ep.quality:.2f}, {ep.calls} calls, {ep.failures} failed"
        )

        try:
            manager.pool("bad", target, max_size="lots")
        except switchboard.InvalidArgument as err:  # also a ValueError
            print(f"python: bad config rejected ({err.code}): {err}")
    print("python: manager closed")
    return 0 if reused == "reused" else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
