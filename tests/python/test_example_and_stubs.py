"""The example and the documentation run, and the type stubs match the module."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, EchoServer

import switchboard

PLACEHOLDER = "tcp://127.0.0.1:7000"


def run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, cwd=tempfile.gettempdir()
    )


def test_the_example_runs(server: EchoServer) -> None:
    proc = run([sys.executable, str(ROOT / "examples" / "python" / "echo.py"), server.target], 60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reused connection #1" in proc.stdout
    assert "async acquire got connection" in proc.stdout
    assert "python: 3 leases" in proc.stdout
    assert 'switchboard_pool_acquires_total{pool="echo",result="direct"} 2' in proc.stdout
    assert f"endpoint {server.target} connected, breaker closed" in proc.stdout
    assert server.accepted() == 1


def _doc_snippets() -> list[Any]:
    """Python blocks of the docs that use a placeholder server at tcp://127.0.0.1:7000."""
    found: list[Any] = []
    for doc in (ROOT / "README.md", ROOT / "docs" / "python.md", ROOT / "docs" / "registry.md"):
        if doc.exists():
            blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)
            for i, code in enumerate(blocks):
                # Blocks that need a server use the placeholder; session, registry
                # and resource blocks need none.
                if "import switchboard" in code and (
                    PLACEHOLDER in code
                    or "manager.sessions" in code
                    or "manager.registry" in code
                    or "manager.resources" in code
                ):
                    found.append(pytest.param(f"{doc.name}#{i}", code))
    return found


@pytest.mark.parametrize("name, code", _doc_snippets() or [("none", "")])
def test_the_doc_snippets_run(server: EchoServer, name: str, code: str) -> None:
    if not code:
        pytest.skip("no runnable Python snippet in the docs")
    proc = run([sys.executable, "-c", code.replace(PLACEHOLDER, server.target)], 60)
    assert proc.returncode == 0, f"{name}:\n{proc.stdout}{proc.stderr}"


def _mypy_env() -> dict[str, str]:
    env = dict(os.environ)
    env["MYPY_CACHE_DIR"] = tempfile.mkdtemp(prefix="switchboard-mypy-")
    return env


def test_stubs_match_the_native_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "switchboard", "--concise"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tempfile.gettempdir(),
        env=_mypy_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "target",
    [["-p", "switchboard"], [str(ROOT / "examples" / "python" / "echo.py")]],
    ids=["package", "example"],
)
def test_package_and_example_type_check_strictly(target: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", *target],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tempfile.gettempdir(),
        env=_mypy_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_package_ships_its_type_information() -> None:
    pkg = Path(switchboard.__file__).parent
    assert (pkg / "py.typed").exists()
    assert (pkg / "_native.pyi").exists()
