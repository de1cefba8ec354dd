"""After the -c workload exits: stop soon despite other processes' steady events, wait out a backlog.

A stand-in tracer (a Python script speaking bpftrace's JSON records) makes the timing exact; the real
tracers are covered by tests/test_stress.py.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from gpttrace_py.render.program import ProgramLayout
from gpttrace_py.run.failure import LoadFailure
from gpttrace_py.run.process import RunOptions, run_tracer
from gpttrace_py.run.records import Printer

READY = "Tracing x... Hit Ctrl-C to end."
TRACER = """
import json, signal, sys, time
stop = []
signal.signal(signal.SIGINT, lambda *a: stop.append(1))
def say(text):
    sys.stdout.write(json.dumps({"type": "printf", "data": text + "\\n"}) + "\\n")
    sys.stdout.flush()
say(%(ready)r)
start = time.monotonic()
while not stop:
    n = %(burst)d if time.monotonic() - start < %(burst_s)f else %(trickle)d
    for i in range(n):
        say("event %%d" %% i)
    time.sleep(0.05)
"""


def run(tmp_path: Path, burst: int, burst_s: float, trickle: int) -> tuple[float, Printer]:
    script = tmp_path / "tracer.py"
    script.write_text(TRACER % {"ready": READY, "burst": burst, "burst_s": burst_s, "trickle": trickle})
    printer = Printer(ProgramLayout(ready=READY), write=lambda line: None)
    started = time.monotonic()
    outcome = run_tracer([sys.executable, str(script)], printer, RunOptions(command=["true"]),
                         lambda text, rc: LoadFailure(backend="x", stage="start", message=text), lambda m: None)
    assert outcome.attached and outcome.crashed is None
    return time.monotonic() - started, printer


def test_a_steady_trickle_does_not_hold_the_stop(tmp_path: Path) -> None:
    seconds, printer = run(tmp_path, burst=0, burst_s=0, trickle=10)  # 200 events/s: a busy system's opens
    assert printer.events > 0
    assert seconds < 1.5, f"{seconds:.2f} s: waited for the trickle to stop"


def test_a_backlog_is_worked_off_before_the_stop(tmp_path: Path) -> None:
    seconds, printer = run(tmp_path, burst=2000, burst_s=1.2, trickle=0)  # 30,000 events/s for 1.2 s
    assert printer.events > 5000
    assert seconds >= 1.2, f"{seconds:.2f} s: stopped in the middle of the burst"
    assert seconds < 4.5
