"""The BCC launcher (run/bcc_cache.py) is a speed trick: GPTTRACE_SPEEDUPS=0 runs plain BCC."""

from __future__ import annotations

import pytest

from gpttrace_py.run import bcc


def test_the_launcher_is_used_with_the_speed_tricks_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPTTRACE_SPEEDUPS", raising=False)
    monkeypatch.delenv("GPTTRACE_BCC_CACHE", raising=False)
    cache = bcc.cache_dir()
    assert cache is not None
    assert str(bcc.LAUNCHER) in bcc.command("/usr/bin/python3", "/tmp/p.py", cache)


@pytest.mark.parametrize("variable", ["GPTTRACE_SPEEDUPS", "GPTTRACE_BCC_CACHE"])
def test_plain_bcc_when_switched_off(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "0")
    assert bcc.cache_dir() is None
    assert bcc.command("/usr/bin/python3", "/tmp/p.py", bcc.cache_dir()) == [
        "/usr/bin/python3", "-I", "-B", "/tmp/p.py", "--records"]
