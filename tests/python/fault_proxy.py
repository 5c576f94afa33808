"""The fault proxy (tests/fixtures/fault_proxy.py) for the Python tests.

    with FaultProxy(server.port) as proxy:      # in front of 127.0.0.1:<server.port>
        target = proxy.target                   # "tcp://127.0.0.1:<proxy.port>"
        proxy.command("refuse")                 # -> "OK mode=refuse port=..."
        proxy.stats()                           # -> {"accepted": 0, "active": 0, "mode": "refuse"}

`command` raises FaultProxyError on an "ERR" reply or when no reply comes within
`timeout` seconds (the proxy is then told to exit: a late reply would answer the next
command). `close()` (also the context manager's exit) closes the proxy's stdin,
which makes it close every connection and exit; safe twice. As a pytest fixture:

    @pytest.fixture
    def proxy(server):
        with FaultProxy(server.port) as p:
            yield p
"""

from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Union

FAULT_PROXY = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "fault_proxy.py"


class FaultProxyError(RuntimeError):
    """The proxy answered ERR, did not answer in time, or did not start."""


class FaultProxy:
    """tests/fixtures/fault_proxy.py in a subprocess, forwarding to `upstream_host:upstream_port`."""

    def __init__(
        self, upstream_port: int, upstream_host: str = "127.0.0.1", start_timeout: float = 30.0
    ) -> None:
        self.upstream = f"{upstream_host}:{upstream_port}"
        self.proc: "Optional[subprocess.Popen[bytes]]" = subprocess.Popen(
            [sys.executable, str(FAULT_PROXY), "--upstream", self.upstream],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,  # unbuffered, so that select() sees every byte not yet read
        )
        line = self._read_line(start_timeout)
        if not line.startswith("PORT "):
            self.close()
            raise FaultProxyError(f"fault proxy did not start (first line {line!r})")
        self.port = int(line.split()[1])
        self.target = f"tcp://127.0.0.1:{self.port}"

    def _read_line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline().decode().strip() if ready else ""

    def command(self, line: str, timeout: float = 10.0) -> str:
        """Sends one command line (see the proxy's docstring); returns its "OK ..." reply."""
        if self.proc is None or self.proc.stdin is None or self.proc.stdin.closed:
            raise FaultProxyError(f"command {line!r}: the proxy is closed")
        try:
            self.proc.stdin.write(line.strip().encode() + b"\n")
            self.proc.stdin.flush()
        except OSError as e:
            raise FaultProxyError(f"command {line!r}: the proxy is gone ({e})") from e
        reply = self._read_line(timeout)
        if not reply:
            # A late reply would answer the next command: this proxy is done.
            self.proc.stdin.close()
        if not reply.startswith("OK"):
            raise FaultProxyError(f"command {line!r}: {reply or f'no reply within {timeout}s'}")
        return reply

    def stats(self) -> Dict[str, Union[int, str]]:
        """{"accepted": n, "active": m, "mode": name} from the `stats` command."""
        out: Dict[str, Union[int, str]] = {}
        for word in self.command("stats").split()[1:]:
            key, _, value = word.partition("=")
            out[key] = int(value) if value.isdigit() else value
        return out

    def close(self, timeout: float = 10.0) -> None:
        """Closes stdin (the proxy then exits) and waits; kills it after `timeout` s."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.proc is None else f"port={self.port}"
        return f"<FaultProxy {state} upstream={self.upstream}>"
