"""After the -c workload exits: stop soon despite other processes' steady events, wait out a backlog, and stop
bpftrace with one SIGINT.

A stand-in tracer (a Python script speaking bpftrace's JSON records) makes the timing exact; the real
tracers are covered by tests/test_stress.py, and the missed SIGINT by the last test here.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from gpttrace_py.render.program import ProgramLayout
from gpttrace_py.run import RunOptions
from gpttrace_py.run.failure import LoadFailure
from gpttrace_py.run.records import Printer
from gpttrace_py.run.session import run_tracer

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
    time.sleep(0.01)  # a backlog comes out continuously: a gap as long as the linger would end it
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
    seconds, printer = run(tmp_path, burst=0, burst_s=0, trickle=2)  # 200 events/s: a busy system's opens
    assert printer.events > 0
    assert seconds < 1.5, f"{seconds:.2f} s: waited for the trickle to stop"


def test_a_backlog_is_worked_off_before_the_stop(tmp_path: Path) -> None:
    seconds, printer = run(tmp_path, burst=400, burst_s=1.2, trickle=0)  # up to 40,000 events/s for 1.2 s
    assert printer.events > 5000
    assert seconds >= 1.2, f"{seconds:.2f} s: stopped in the middle of the burst"
    assert seconds < 4.5


def test_a_stop_steers_clear_of_the_epoll_timeout() -> None:
    from gpttrace_py.run.pump import EPOLL_MARGIN, EPOLL_PERIOD, clear_of_epoll_timeout

    for since in (0.0, 0.1, 0.2, 0.3005, 0.099, 0.1949, 1.0):
        phase = (since + clear_of_epoll_timeout(since)) % EPOLL_PERIOD
        assert EPOLL_MARGIN - 1e-9 <= phase <= EPOLL_PERIOD - EPOLL_MARGIN + 1e-9, (since, phase)
    assert clear_of_epoll_timeout(0.05) == 0.0  # mid-cycle: no wait
    assert max(clear_of_epoll_timeout(i / 1000) for i in range(1000)) <= 2 * EPOLL_MARGIN + 1e-9



# bpftrace 0.17's loop, reduced: after the last event it printed, it waits in epoll_waits of 100 ms and stops
# only if SIGINT interrupts one; a SIGINT that lands as one times out is lost. The event here is the
# workload's: it writes to a FIFO and exits, so the runner's stop, ``linger`` after that exit, falls a whole
# number of periods after the event.
EPOLL_TRACER = """
import json, os, signal, sys, time
def say(text):
    sys.stdout.write(json.dumps({"type": "printf", "data": text + "\\n"}) + "\\n")
    sys.stdout.flush()
got = []
def on_int(*a):
    got.append(1)
    phase = (time.monotonic() - last) %% 0.1
    if 0.008 < phase < 0.092:
        raise KeyboardInterrupt
last = time.monotonic()
signal.signal(signal.SIGINT, on_int)
say(%(ready)r)
with open(%(fifo)r) as f:
    f.read()
last = time.monotonic()
say("event")
try:
    while True:
        time.sleep(1)
except KeyboardInterrupt:
    pass
say("sigints %%d" %% len(got))
"""


def test_a_stop_does_not_land_on_the_tracers_epoll_timeout(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    script = tmp_path / "tracer.py"
    script.write_text(EPOLL_TRACER % {"ready": READY, "fifo": str(fifo)})
    for linger in (0.1, 0.2):
        lines: list[str] = []
        printer = Printer(ProgramLayout(ready=READY), write=lines.append)
        outcome = run_tracer([sys.executable, str(script)], printer,
                             RunOptions(command=["sh", "-c", f"echo x > {fifo}"], linger=linger),
                             lambda text, rc: LoadFailure(backend="x", stage="start", message=text), lambda m: None)
        assert outcome.attached and outcome.crashed is None
        assert "sigints 1" in "".join(lines) and outcome.sigints == 1, (linger, lines, outcome.sigints)


def test_known_harmless_warnings_are_not_shown() -> None:
    from gpttrace_py.run.failure import StderrFilter

    lines = [
        "ERROR: Unknown error -1: couldn't set RLIMIT_MEMLOCK for bpftrace. If your program is not loading, ...",
        "/tmp/gpttrace-x.bt:15:23-25: WARNING: Addrspace mismatch",
        '/(str(args->filename) == "/etc/passwd")/',
        "                      ~~",
        "/tmp/gpttrace-x.bt:20:5-9: WARNING: some other warning",
        "    @x = 1;",
    ]
    keep = StderrFilter()
    assert [ln for ln in lines if keep(ln)] == lines[4:]
