"""The speed tricks' one switch (gpttrace_py/speedups.py): with GPTTRACE_SPEEDUPS=0 each trick does nothing and
gpttrace still works (the corpus is parsed from its YAML every time, the process ends the ordinary way)."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

from gpttrace_py import speedups

MARSHAL = "corpus-parsed.marshal"


@pytest.mark.parametrize("switch", ["1", "0"])
def test_a_one_shot_dry_run_keeps_the_parsed_corpus_only_with_speedups(isolated_home: Path, switch: str) -> None:
    r = run_cli("--offline", "--dry-run", "trace files opened", env={"GPTTRACE_SPEEDUPS": switch})
    assert r.returncode == 0, r.stderr
    assert "sys_enter_openat" in r.stdout + r.stderr  # the program, shown
    cached = list(isolated_home.rglob(MARSHAL))
    assert cached if switch == "1" else not cached


def test_switched_off_exit_now_exits_the_ordinary_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPTTRACE_SPEEDUPS", "0")
    with pytest.raises(SystemExit) as exc:  # os._exit would end the test run instead
        speedups.exit_now(3)
    assert exc.value.code == 3


def test_switched_off_collections_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPTTRACE_SPEEDUPS", "0")
    before = gc.get_threshold()
    speedups.fewer_collections()
    assert gc.get_threshold() == before


def test_switched_off_pydantic_keeps_its_plugin_loader() -> None:
    code = (
        "import sys\n"
        "from gpttrace_py.speedups import PYDANTIC_PLUGIN_LOADER, no_pydantic_plugins\n"
        "no_pydantic_plugins()\n"
        "assert PYDANTIC_PLUGIN_LOADER not in sys.modules, 'a stand-in was installed'\n"
        "from gpttrace_py.spec import ProgramSpec\n"
        "ProgramSpec.model_validate({'title': 't', 'probes': ['BEGIN'], 'print': [{'expr': 'pid'}]})\n"
        "assert getattr(sys.modules[PYDANTIC_PLUGIN_LOADER], '__file__', None), 'not the real loader'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={"GPTTRACE_SPEEDUPS": "0", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr


def test_switched_off_bcc_programs_are_compiled_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpttrace_py.run import bcc

    monkeypatch.setenv("GPTTRACE_SPEEDUPS", "1")
    assert bcc.cache_dir() is not None
    monkeypatch.setenv("GPTTRACE_SPEEDUPS", "0")
    assert bcc.cache_dir() is None  # no bytecode cache: the launcher is not used
