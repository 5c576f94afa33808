"""pool.queue_mode through the Python boundary: which idle connection comes next."""

import pytest

import switchboard
from conftest import EchoServer


@pytest.mark.parametrize("mode", ["fifo", "lifo"])
def test_queue_mode_orders_idle_connections(
    manager: switchboard.Manager, server: EchoServer, mode: str
) -> None:
    pool = manager.pool(f"q-{mode}", server.target, queue_mode=mode)
    a = pool.acquire(timeout=5)
    b = pool.acquire(timeout=5)
    ida, idb = a.id, b.id
    a.release()
    b.release()
    with pool.acquire(timeout=5) as nxt:
        assert nxt.id == (idb if mode == "lifo" else ida)


def test_a_bad_queue_mode_names_the_choices(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    with pytest.raises(switchboard.InvalidArgument, match=r"pool.queue_mode must be one of fifo \| lifo"):
        manager.pool("q-bad", server.target, queue_mode="random")
