"""The end marker: END prints a line last, and the runner, seeing it, ends bpftrace's final 100 ms wait.

bpftrace 0.17, once stopped, detaches its probes, runs END, then reads its buffers until an epoll_wait of
100 ms finds nothing: a wait that no output can end, since nothing is attached any more. A SIGINT ends it.
A stand-in tracer makes that wait long (5 s), so a run that ends quickly shows the cut; the real bpftrace
runs last, through the CLI, to show that the marker never reaches the user and the aggregates still do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GPTTRACE

from gpttrace_py.render.program import ProgramLayout
from gpttrace_py.run import RunOptions
from gpttrace_py.run.bpftrace import END_MARKER_PREFIX, end_marker, with_end_marker
from gpttrace_py.run.failure import LoadFailure
from gpttrace_py.run.records import Printer
from gpttrace_py.run.session import run_tracer

PROGRAM = """BEGIN
{
	printf("Tracing x... Hit Ctrl-C to end.\\n");
}

tracepoint:raw_syscalls:sys_enter
{
	@count[comm] = count();
}
"""
END = """
END
{
	printf("\\nCount by comm\\n");
	print(@count, 20);
	if (1) {
		clear(@count);
	}
}
"""


def test_the_marker_is_the_last_statement_of_END() -> None:
    text = with_end_marker(PROGRAM + END, "gpttrace-end-1234")
    assert text is not None
    lines = text.splitlines()
    assert lines[-2:] == ['\tprintf("gpttrace-end-1234\\n");', "}"]
    assert lines[:-2] == (PROGRAM + END).splitlines()[:-1]  # every other line where it was: errors keep their lines


def test_a_program_without_END_gets_one() -> None:
    text = with_end_marker(PROGRAM, "gpttrace-end-1234")
    assert text is not None and text.startswith(PROGRAM)
    assert text.endswith('\nEND\n{\n\tprintf("gpttrace-end-1234\\n");\n}\n')


def test_an_END_that_is_not_last_gets_no_marker() -> None:
    assert with_end_marker(END + "\n" + PROGRAM, "gpttrace-end-1234") is None


def test_END_is_found_by_its_tokens_not_its_lines() -> None:
    """The last top-level block whose only probe is END, wherever it is written; an END in a comment or a
    string is not one, an END sharing its block with BEGIN gets no marker (BEGIN would print it too), nor one
    whose last statement has no ';'."""
    mark = '\tprintf("m\\n");\n'
    assert with_end_marker("END\n{\n\tprint(@x);\n}\n", "m") == "END\n{\n\tprint(@x);\n" + mark + "}\n"
    assert with_end_marker("BEGIN { }\nEND { clear(@x); } // done\n", "m") == (
        "BEGIN { }\nEND { clear(@x); " + mark + "} // done\n")
    commented = 'BEGIN { printf("END {"); }\n// END\n/* END { } */\n'
    assert with_end_marker(commented, "m") == commented.rstrip("\n") + "\n\nEND\n{\n" + mark + "}\n"
    assert with_end_marker("BEGIN, END\n{\n}\n", "m") is None
    assert with_end_marker("END { print(@x) }\n", "m") is None


def test_each_run_has_its_own_marker() -> None:
    a, b = end_marker(), end_marker()
    assert a != b and a.startswith(END_MARKER_PREFIX) and b.startswith(END_MARKER_PREFIX)


READY = "Tracing x... Hit Ctrl-C to end."
# bpftrace's ending, reduced: the first SIGINT stops it; END prints the aggregate and the marker; then it waits
# for more output (5 s here) unless a SIGINT comes during the wait, and prints what it prints last (its maps).
# ``deaf`` seconds after the marker, SIGINTs are taken but do not end the wait: one that lands before the wait
# begins.
TRACER = """
import json, signal, sys, time
sigints = []
signal.signal(signal.SIGINT, lambda *a: sigints.append(time.monotonic()))
def say(text):
    sys.stdout.write(json.dumps({"type": "printf", "data": text}) + "\\n")
    sys.stdout.flush()
say(%(ready)r + "\\n")
while not sigints:
    time.sleep(0.01)
say("@count[x]: 3\\n")
say(%(marker)r + "\\n")
marked = time.monotonic()
deaf_until = marked + %(deaf)f
end = marked + 5.0
while time.monotonic() < end and not any(t > deaf_until for t in sigints[1:]):
    time.sleep(0.002)
say("maps printed after %%.2f s\\n" %% (time.monotonic() - marked))
"""


@pytest.mark.parametrize("deaf", [0.0, 0.01])
def test_the_wait_after_END_is_cut(tmp_path: Path, deaf: float) -> None:
    marker = end_marker()
    script = tmp_path / "tracer.py"
    script.write_text(TRACER % {"ready": READY, "marker": marker, "deaf": deaf})
    lines: list[str] = []
    printer = Printer(ProgramLayout(ready=READY), write=lines.append)
    started = time.monotonic()
    outcome = run_tracer([sys.executable, str(script)], printer, RunOptions(command=["true"]),
                         lambda text, rc: LoadFailure(backend="x", stage="start", message=text), lambda m: None,
                         end_marker=marker)
    seconds = time.monotonic() - started
    out = "".join(lines)
    assert outcome.attached and outcome.crashed is None and outcome.returncode == 0, out
    assert outcome.end_cut and outcome.sigints == 1
    assert "@count[x]: 3" in out and "maps printed after" in out  # what comes before and after the marker
    assert marker not in out
    assert seconds < 3.0, f"{seconds:.2f} s: the wait after END was not cut ({out!r})"


def test_without_a_marker_nothing_is_cut(tmp_path: Path) -> None:
    script = tmp_path / "tracer.py"
    script.write_text(TRACER.replace("5.0", "0.3") % {"ready": READY, "marker": "not the marker", "deaf": 0.0})
    lines: list[str] = []
    printer = Printer(ProgramLayout(ready=READY), write=lines.append)
    outcome = run_tracer([sys.executable, str(script)], printer, RunOptions(command=["true"]),
                         lambda text, rc: LoadFailure(backend="x", stage="start", message=text), lambda m: None)
    out = "".join(lines)
    assert not outcome.end_cut and "not the marker" in out and "maps printed after 0.3" in out


@pytest.mark.kernel
@pytest.mark.parametrize("json_out", [False, True])
def test_bpftrace_ends_without_showing_the_marker(tmp_path: Path, json_out: bool) -> None:
    target = tmp_path / "target.txt"
    target.write_text("x\n")
    env = {**os.environ, "GPTTRACE_NO_CACHE": "1", "GPTTRACE_HOME": str(tmp_path / "home"),
           "GPTTRACE_TIMINGS": "1"}
    argv = [GPTTRACE, "--offline", "-y", *(["--json"] if json_out else []), "-c", f"cat {target}",
            "count syscalls by process"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert END_MARKER_PREFIX not in proc.stdout + proc.stderr
    if json_out:
        records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        counts = [r for r in records if r.get("type") == "aggregate"]
        assert counts and counts[-1]["data"].get("cat", 0) > 0, proc.stdout
    else:
        assert any(line.split()[:1] == ["cat"] for line in proc.stdout.splitlines()), proc.stdout
    timings = json.loads(proc.stderr.split("timings-json ", 1)[1].splitlines()[0])
    assert timings["end_cut"], timings
