"""The Redis offset store (``offsets={"store": "redis", ...}``, issue 12) through the Python
package, as core/tests/offsets_redis.rs shows it in Rust: a real redis-server (Debian's) on a
free loopback port with an append-only file fsynced on every write, and managers in separate
processes (instances are ``python -c CHILD <role> <url>``):

- a session committed and closed on instance A resumes on instance B at A's commits, and
  this process sees B's;
- a FLUSHALL between commit and resume fails the resume (and a commit) with
  FailedPrecondition naming the epoch ("now none"), instead of starting from zero;
- redis-server killed with SIGKILL and restarted on the same port and dir: every commit
  acknowledged before is there; a commit while it is down fails with Unavailable or Timeout;
  commits work again after it returns, with no reconnect code of the program's own;
- ``store = redis`` without ``redis_url`` is InvalidArgument at manager creation."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from conftest import wait_until

import switchboard

LONG = 20.0
PREFIX = "sbtest"
STREAMS = ["engine", "brakes"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PersistentRedis:
    """redis-server with ``--appendonly yes --appendfsync always --save ""`` in ``dir``, so a
    SIGKILL loses nothing it acknowledged; ``start`` again reuses the port and the dir."""

    def __init__(self, binary: str, dir: Path) -> None:
        self.binary = binary
        self.dir = dir
        self.port = free_port()
        self.proc: "subprocess.Popen[bytes] | None" = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + LONG
        while True:
            try:
                if self.command("PING").startswith(b"+PONG"):
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL (Popen.kill), then reap; only our own child."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def command(self, *args: str) -> bytes:
        """One command as raw RESP over a plain socket; the whole reply's first chunk."""
        req = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(req.encode())
            data = b""
            for _ in range(100):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
                if data.endswith(b"\r\n") and self._complete(data):
                    break
            return data

    @staticmethod
    def _complete(data: bytes) -> bool:
        # Replies used here: +simple, -error, :int, $bulk (or $-1).
        if data[:1] != b"$":
            return True
        head, _, rest = data.partition(b"\r\n")
        n = int(head[1:])
        return n < 0 or len(rest) >= n + 2

    def get(self, key: str) -> str:
        reply = self.command("GET", key)
        assert reply.startswith(b"$"), reply
        head, _, rest = reply.partition(b"\r\n")
        return "" if int(head[1:]) < 0 else rest[: int(head[1:])].decode()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[PersistentRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        # make test-python installs it (apt-get install -y redis-server); never skip quietly.
        pytest.fail("redis-server is not installed (run `make test-python`, which installs it)")
    d = tmp_path / "redis"
    d.mkdir()
    srv = PersistentRedis(binary, d)
    try:
        yield srv
    finally:
        srv.kill()


def manager(url: str) -> switchboard.Manager:
    """A manager on the shared Redis, with the session key registered (every instance)."""
    m = switchboard.Manager(
        offsets={"store": "redis", "redis_url": url, "prefix": PREFIX, "redis_timeout": "2s"}
    )
    try:
        m.sessions.register("telemetry", "race-1")
    except BaseException:
        m.close(timeout=5.0)
        raise
    return m


# Another instance: `commit:E:B` opens, commits E/B and closes; `resume:E:B` resumes, checks
# it starts at E/B, commits E+1/B+1 and closes. Exits non-zero (with the traceback) otherwise.
CHILD = r"""
import sys
import switchboard

role, url = sys.argv[1], sys.argv[2]
what, e, b = role.split(":")
e, b = int(e), int(b)
m = switchboard.Manager(
    offsets={"store": "redis", "redis_url": url, "prefix": "sbtest", "redis_timeout": "2s"}
)
try:
    s = m.sessions
    s.register("telemetry", "race-1")
    if what == "commit":
        sid = s.open("telemetry", "race-1", ["engine", "brakes"])
        s.commit(sid, "engine", e)
        s.commit(sid, "brakes", b)
        s.close(sid)
    elif what == "resume":
        sid = s.resume("telemetry", "race-1", ["engine", "brakes"])
        got = (s.position(sid, "engine"), s.position(sid, "brakes"))
        assert got == (e, b), f"resumed at {got}, expected {(e, b)}"
        s.commit(sid, "engine", e + 1)
        s.commit(sid, "brakes", b + 1)
        s.close(sid)
    else:
        raise SystemExit(f"unknown role {role}")
finally:
    m.close(timeout=5.0)
print("ok", flush=True)
"""


def instance(role: str, url: str) -> None:
    """Runs one instance in its own process, bounded in time."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, role, url],
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 0 and out.stdout.strip() == b"ok", (
        f"instance {role} failed ({out.returncode}):\n"
        f"{out.stdout.decode(errors='replace')}\n{out.stderr.decode(errors='replace')}"
    )


def test_a_session_resumes_on_another_instance_at_its_commits(redis: PersistentRedis) -> None:
    instance("commit:100:50", redis.url)  # A
    instance("resume:100:50", redis.url)  # B starts at A's commits, commits 101/51
    # C, this process, sees B's.
    with manager(redis.url) as m:
        s = m.sessions
        assert s.committed("telemetry", "race-1", "engine") == 101
        sid = s.resume("telemetry", "race-1", STREAMS)
        assert (s.position(sid, "engine"), s.position(sid, "brakes")) == (101, 51)
        s.close(sid)


def test_a_flushed_redis_fails_the_resume_naming_the_epoch(redis: PersistentRedis) -> None:
    with manager(redis.url) as m:  # this instance's epoch is the one A commits under
        s = m.sessions
        instance("commit:100:50", redis.url)  # A, another process
        live = s.open("telemetry", "race-1", STREAMS)
        epoch = redis.get(f"{PREFIX}:epoch")
        assert epoch, "the first instance set the epoch"
        assert redis.command("FLUSHALL").startswith(b"+OK")

        with pytest.raises(switchboard.FailedPrecondition) as info:
            s.resume("telemetry", "race-1", STREAMS)
        message = str(info.value)
        assert info.value.code == "SB_FAILED_PRECONDITION"
        assert epoch in message, f"the message names the epoch {epoch}: {message}"
        assert "now none" in message, message

        # A commit fails the same way: nothing is acknowledged into the new, empty Redis.
        with pytest.raises(switchboard.FailedPrecondition) as info:
            s.commit(live, "engine", 8)
        assert epoch in str(info.value), str(info.value)
        assert redis.command("EXISTS", f"{PREFIX}:offsets").startswith(b":0")


def test_acknowledged_commits_survive_a_redis_restart(redis: PersistentRedis) -> None:
    with manager(redis.url) as m:
        s = m.sessions
        sid = s.open("telemetry", "race-1", STREAMS)
        for n in range(1, 51):
            s.commit(sid, "engine", n)  # each one acknowledged: in Redis's fsynced AOF
        redis.kill()  # SIGKILL

        with pytest.raises((switchboard.Unavailable, switchboard.Timeout)):
            s.commit(sid, "engine", 51)  # refused, not acknowledged

        redis.start()  # the same port and dir: it replays the append-only file

        def commits_again() -> bool:
            try:
                s.commit(sid, "brakes", 9)
                return True
            except (switchboard.Unavailable, switchboard.Timeout):
                return False

        wait_until(commits_again, timeout=LONG, what="a commit after Redis came back")
        s.close(sid)
    # Another process sees every acknowledged commit (and not the refused one).
    instance("resume:50:9", redis.url)


def test_store_kind_says_redis(redis: PersistentRedis) -> None:
    with manager(redis.url) as m:
        assert m.sessions.store_kind == "redis"


def test_redis_without_a_url_is_refused_at_creation() -> None:
    with pytest.raises(switchboard.InvalidArgument) as info:
        switchboard.Manager(offsets={"store": "redis"})
    assert "offsets.redis_url" in str(info.value), str(info.value)
    assert isinstance(info.value, ValueError) and info.value.code == "SB_INVALID_ARGUMENT"
