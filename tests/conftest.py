"""Shared test setup: an isolated user directory, and markers for tests that need the real kernel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GPTTRACE = str(ROOT / ".venv" / "bin" / "gpttrace") if (ROOT / ".venv" / "bin" / "gpttrace").exists() else "gpttrace"


def kernel_ready() -> str | None:
    """None when real programs can be loaded here, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("bpftrace") is None:
        return "needs bpftrace"
    if not os.path.isdir("/sys/kernel/tracing/events"):
        return "needs tracefs at /sys/kernel/tracing"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = kernel_ready()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "kernel" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "gpttrace-home"
    monkeypatch.setenv("GPTTRACE_HOME", str(home))
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GPTTRACE_MODEL"):
        monkeypatch.delenv(var, raising=False)
    return home


def run_cli(*args: str, timeout: float = 60, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real gpttrace command as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([GPTTRACE, *args], capture_output=True, text=True, timeout=timeout, env=full_env,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL)


@pytest.fixture
def speedups_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """For a test of a speed trick itself: the trick on, whatever GPTTRACE_SPEEDUPS the suite runs with."""
    monkeypatch.setenv("GPTTRACE_SPEEDUPS", "1")


@pytest.fixture
def cli():
    return run_cli


sys.path.insert(0, str(ROOT))
