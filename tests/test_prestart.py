"""bpftrace started before its program exists (run/bpftrace.py's prestart): it waits on a FIFO, runs the program
written there, and is killed, having done nothing, when no program suits it."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from gpttrace_py.kernel.catalog import Catalog
from gpttrace_py.render.bpftrace import render
from gpttrace_py.run import RunOptions, bpftrace
from gpttrace_py.spec import ProgramSpec

pytestmark = [pytest.mark.kernel,
              pytest.mark.skipif(shutil.which("bpftrace") is None or os.geteuid() != 0, reason="needs bpftrace, root")]


@pytest.fixture
def opens(tmp_path: Path):
    """A program printing the opens of a cat of our own, and the command that makes one."""
    comm = f"cat{os.getpid() % 100000}"
    cat = tmp_path / comm
    shutil.copy(shutil.which("cat"), cat)
    spec = ProgramSpec.model_validate({
        "title": "opens", "probes": ["tracepoint:syscalls:sys_enter_openat"], "filter": {"comm": comm},
        "print": [{"expr": "args.filename", "label": "PATH"}],
    })
    return render(spec, Catalog()), [str(cat), "/etc/hostname"]


def run(program, command, unsafe=False):
    lines: list[str] = []
    outcome = bpftrace.run(program, RunOptions(command=command, unsafe=unsafe), lines.append, lambda m: None)
    assert outcome.attached and outcome.crashed is None, outcome
    assert any("/etc/hostname" in line for line in lines), lines
    return outcome


def test_the_prestarted_bpftrace_runs_the_program(opens) -> None:
    bpftrace.prestart(unsafe=False)
    pre = bpftrace.prestarted()
    assert pre is not None and pre.proc.poll() is None  # waiting for its program
    run(*opens)
    assert bpftrace.prestarted() is None
    assert pre.proc.returncode == 0  # it was the one that ran, and it ended
    assert not os.path.exists(pre.directory)


def test_an_unused_prestarted_bpftrace_is_killed_and_cleaned_up() -> None:
    bpftrace.prestart(unsafe=False)
    pre = bpftrace.prestarted()
    assert pre is not None
    bpftrace.discard_prestarted()
    assert pre.proc.returncode == -signal.SIGKILL and not os.path.exists(pre.directory)


@pytest.mark.parametrize("how", ["it died", "other options"])
def test_a_prestarted_bpftrace_that_does_not_suit_gives_way(opens, how) -> None:
    bpftrace.prestart(unsafe=False)
    pre = bpftrace.prestarted()
    assert pre is not None
    if how == "it died":
        pre.proc.kill()
        pre.proc.wait()
    run(*opens, unsafe=how == "other options")  # a bpftrace of its own
    assert bpftrace.prestarted() is None and pre.proc.returncode == -signal.SIGKILL
    assert not os.path.exists(pre.directory)
