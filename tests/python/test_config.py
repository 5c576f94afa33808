"""Configuration from Python: natural key spellings, value conversion, and errors that
name the key and the accepted form."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from conftest import EchoServer

import switchboard


def test_an_unknown_key_is_invalid_argument_naming_it() -> None:
    with pytest.raises(switchboard.InvalidArgument) as info:
        switchboard.Manager(bogus_key=1)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.code == "SB_INVALID_ARGUMENT"
    assert '"bogus_key"' in str(err)
    assert "runtime.worker_threads" in str(err), "the message lists the known keys"


def test_an_unknown_pool_key_names_it(manager: switchboard.Manager, server: EchoServer) -> None:
    with pytest.raises(ValueError, match='unknown configuration key "max_sizes"'):
        manager.pool("p", server.target, max_sizes=3)


def test_a_bad_value_names_the_key_and_the_accepted_form(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    with pytest.raises(switchboard.InvalidArgument) as info:
        manager.pool("p", server.target, max_size="abc")
    assert str(info.value) == 'pool.max_size must be an integer 1..=65535, got "abc"'
    with pytest.raises(switchboard.InvalidArgument, match="runtime.worker_threads must be"):
        switchboard.Manager({"runtime.worker_threads": 0})
    with pytest.raises(switchboard.InvalidArgument, match="pool.acquire_timeout must be a duration"):
        manager.pool("p", server.target, acquire_timeout=timedelta(seconds=-1))
    with pytest.raises(switchboard.InvalidArgument, match="'max_size' must be a str, int"):
        manager.pool("p", server.target, max_size=[3])  # type: ignore[arg-type]
    with pytest.raises(switchboard.InvalidArgument, match="keys must be strings"):
        switchboard.Manager({1: 2})  # type: ignore[dict-item]
    # Nothing above created a pool.
    assert manager.pool_names() == []


@pytest.mark.parametrize(
    "config, kwargs",
    [
        ({"runtime.worker_threads": 1}, {}),
        (None, {"worker_threads": 1}),
        (None, {"runtime_worker_threads": 1}),
        ({"workerThreads": "1"}, {}),
    ],
)
def test_manager_keys_in_any_natural_spelling(config: dict | None, kwargs: dict) -> None:
    with switchboard.Manager(config, **kwargs) as m:
        assert not m.closed
    assert m.closed


def test_pool_keys_in_any_natural_spelling(server: EchoServer) -> None:
    with switchboard.Manager(pool_max_size=3) as m:
        assert m.pool("default", server.target).stats().max_size == 3
        assert m.pool("a", server.target, max_size=2).stats().max_size == 2
        assert m.pool("b", server.target, {"pool.max_size": 4}).stats().max_size == 4
        assert m.pool("c", server.target, maxSize=5).stats().max_size == 5
        assert m.pool("d", server.target, pool_max_size=6, tcp_nodelay=False).stats().max_size == 6


@pytest.mark.parametrize(
    "value, shown",
    [
        (timedelta(milliseconds=250), "250ms"),
        (300, "300ms"),  # a bare number is milliseconds, in every language
        (350.0, "350ms"),
        ("0.4s", "400ms"),
    ],
)
def test_duration_values(server: EchoServer, value: object, shown: str) -> None:
    with switchboard.Manager() as m:
        pool = m.pool("p", server.target, max_size=1, acquire_timeout=value)  # type: ignore[arg-type]
        held = pool.acquire(timeout=10)
        start = time.monotonic()
        with pytest.raises(switchboard.Timeout, match=f"no connection within {shown}"):
            pool.acquire()  # the pool's acquire_timeout applies
        assert time.monotonic() - start < 5.0
        held.release()


def test_bad_timeout_arguments(manager: switchboard.Manager, server: EchoServer) -> None:
    pool = manager.pool("p", server.target)
    with pytest.raises(switchboard.InvalidArgument, match="timeout must be a non-negative"):
        pool.acquire(timeout=-1)
    with pytest.raises(switchboard.InvalidArgument, match="timeout must be a number of seconds"):
        pool.acquire(timeout="soon")  # type: ignore[arg-type]
    with pytest.raises(switchboard.InvalidArgument, match="timeout must be a non-negative"):
        pool.acquire(timeout=float("nan"))


def test_pool_names_are_unique_and_targets_checked(
    manager: switchboard.Manager, server: EchoServer
) -> None:
    manager.pool("once", server.target)
    with pytest.raises(switchboard.InvalidArgument, match='a pool named "once" already exists'):
        manager.pool("once", server.target)
    with pytest.raises(switchboard.InvalidArgument, match='target "tcp://nohost" has no port'):
        manager.pool("bad", "tcp://nohost")
