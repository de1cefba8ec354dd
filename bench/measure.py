"""Run one process the same way for either side of a comparison and measure it.

``run(argv, ...)`` starts the process with stdin from /dev/null and stdout/stderr to files, notes the
CLOCK_MONOTONIC time just before starting it (``spawn``), samples the peak RSS (VmHWM) of the process and of
any bpftrace/BCC tracer below it every few milliseconds, and waits for it (with a timeout that kills the
whole process group). The timing line the process prints on stderr (gpttrace's ``GPTTRACE_TIMINGS=1`` line,
or driver.py's ``driver-timings`` line) gives the moment the program was attached.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Run:
    argv: list[str]
    rc: int | None
    wall: float  # spawn → exit, seconds
    spawn: float
    end: float
    stdout: str
    stderr: str
    timed_out: bool = False
    rss_kb: int = 0  # peak RSS of the measured process itself
    child_rss_kb: int = 0  # peak RSS of the tracer below it (largest of them)
    timings: dict = field(default_factory=dict)  # the parsed timing line
    output_done: float | None = None  # when the stdout file last grew (with stdout_path), CLOCK_MONOTONIC

    @property
    def attached(self) -> float | None:
        t = self.timings.get("attached")
        return t if isinstance(t, (int, float)) else None

    @property
    def to_attach(self) -> float | None:
        """Seconds from spawn to the ready line."""
        return None if self.attached is None else self.attached - self.spawn

    @property
    def startup(self) -> float | None:
        """gpttrace only: seconds from spawn to the start of the pipeline (interpreter, imports, CLI)."""
        t = self.timings.get("start")
        return None if not isinstance(t, (int, float)) else t - self.spawn

    @property
    def phases(self) -> dict[str, float]:
        return self.timings.get("phases") or {}


def _vm_hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    out += [int(x) for x in fh.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def _is_tracer(pid: int) -> bool:
    """A tracer runs in a session of its own (gpttrace and driver.py start it so); a workload does not."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            rest = fh.read().rsplit(")", 1)[1].split()
        return int(rest[3]) == pid  # field 6: session id
    except (OSError, ValueError, IndexError):
        return False


class _RssSampler(threading.Thread):
    """Samples peak RSS every few ms, and the size of an output file (when it last grew)."""

    def __init__(self, pid: int, every: float = 0.01, watch: str | None = None) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.watch = pid, every, watch
        self.own = 0
        self.child = 0
        self.size = 0
        self.last_growth: float | None = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.own = max(self.own, _vm_hwm(self.pid))
            for c in _children(self.pid):
                if _is_tracer(c):
                    self.child = max(self.child, _vm_hwm(c))
            if self.watch:
                try:
                    size = os.stat(self.watch).st_size
                except OSError:
                    size = self.size
                if size != self.size:
                    self.size, self.last_growth = size, time.monotonic()
            self.done.wait(self.every)


def parse_timings(stderr: str) -> dict:
    for line in reversed(stderr.splitlines()):
        for prefix in ("gpttrace: timings-json ", "driver-timings "):
            at = line.find(prefix)  # the workload's output may end without a newline just before it
            if at >= 0:
                try:
                    return json.loads(line[at + len(prefix):])
                except ValueError:
                    return {}
    return {}


def run(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 120.0, cwd: str | None = None,
        stdout_path: str | None = None, sample_rss: bool = True, keep_output: bool = True) -> Run:
    """Start argv, wait for it, and measure it (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="gptbench-") as tmp:
        out_path = stdout_path or os.path.join(tmp, "stdout")
        err_path = os.path.join(tmp, "stderr")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            spawn = time.monotonic()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd,
                                    start_new_session=True)
            sampler = _RssSampler(proc.pid, watch=stdout_path) if sample_rss else None
            if sampler:
                sampler.start()
            # A blocking wait (Popen.wait with a timeout polls with sleeps of up to 50 ms, which would blur
            # the end time); a timer kills the process group when the timeout passes.
            expired = threading.Event()

            def on_timeout() -> None:
                expired.set()
                _kill_group(proc)

            timer = threading.Timer(timeout, on_timeout)
            timer.daemon = True
            timer.start()
            proc.wait()
            end = time.monotonic()
            timer.cancel()
            timed_out = expired.is_set()
            if sampler:
                sampler.done.set()
                sampler.join()
        stdout = Path(out_path).read_text(errors="replace") if keep_output else ""
        stderr = Path(err_path).read_text(errors="replace")
    return Run(argv=argv, rc=None if timed_out else proc.returncode, wall=end - spawn, spawn=spawn, end=end,
               stdout=stdout, stderr=stderr, timed_out=timed_out, rss_kb=sampler.own if sampler else 0,
               child_rss_kb=sampler.child if sampler else 0, timings=parse_timings(stderr),
               output_done=sampler.last_growth if sampler else None)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGINT to the process group, SIGKILL 5 s later if it is still there (runs beside a blocking wait)."""
    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                return
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


# -- statistics ---------------------------------------------------------------------------------------------
def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def quantile(xs, q: float):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    i = min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))
    return xs[i]


def fmt_s(x, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def fmt_ms(x, digits: int = 1) -> str:
    return "–" if x is None else f"{x * 1000:.{digits}f}"


def fmt_ratio(x) -> str:
    return "–" if x is None else f"{x:.2f}x"
