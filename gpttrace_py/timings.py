"""Phase timings of one trace, for benchmarks and for finding where the time goes.

``GPTTRACE_TIMINGS=1`` makes the pipeline print, on stderr at the end of each trace, how long each phase took:

    gpttrace: timings (ms): preflight 0.4, plan 31.2, check 0.6, render 18.9, show 1.1, load 640.2, run 1410.7
    gpttrace: timings-json {"start": 1234.5678, "attached": 1235.3, "end": 1236.7, "phases": {...}, "attempts": 1}

``start``/``attached``/``end`` are CLOCK_MONOTONIC seconds (one clock for every process of the machine), so a
harness that noted when it started gpttrace can add the interpreter start-up and imports before ``start``.
``load`` runs from starting the tracer to its ready line (the program is loaded and attached); ``run`` from
there to the tracer's exit. Unset, nothing is measured and nothing printed.
"""

from __future__ import annotations

import json
import os
import sys
import time

_current: Timings | None = None


class Timings:
    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.phases: dict[str, float] = {}
        self.attached: float | None = None
        self.attempts = 0
        self.end_cut = False  # the tracer's wait after END was cut short (run/endings.py, END_CUT_REPEATS)

    def mark(self, phase: str) -> None:
        """The time since the previous mark goes to ``phase``."""
        now = time.monotonic()
        self.phases[phase] = self.phases.get(phase, 0.0) + (now - self.last)
        self.last = now
        if phase == "load":  # a load that failed
            self.attempts += 1

    def ran(self, seconds_to_attach: float | None, end_cut: bool = False) -> None:
        """After the runner returned: split its time into loading (to the ready line) and running."""
        now = time.monotonic()
        spent = now - self.last
        load = min(spent, seconds_to_attach) if seconds_to_attach is not None else spent
        self.phases["load"] = self.phases.get("load", 0.0) + load
        self.phases["run"] = self.phases.get("run", 0.0) + (spent - load)
        self.attempts += 1
        self.end_cut = self.end_cut or end_cut
        if seconds_to_attach is not None and self.attached is None:
            self.attached = self.last + seconds_to_attach
        self.last = now

    def report(self) -> None:
        end = time.monotonic()
        text = ", ".join(f"{k} {v * 1000:.1f}" for k, v in self.phases.items())
        data = {"start": self.start, "attached": self.attached, "end": end, "attempts": self.attempts,
                "end_cut": self.end_cut,
                "phases": {k: round(v * 1000, 3) for k, v in self.phases.items()}}
        try:
            sys.stderr.write(f"gpttrace: timings (ms): {text}\ngpttrace: timings-json {json.dumps(data)}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def begin() -> Timings | None:
    """A new measurement when GPTTRACE_TIMINGS is set (it becomes the current one), else None."""
    global _current
    if os.environ.get("GPTTRACE_TIMINGS", "").lower() in ("", "0", "no", "off", "false"):
        _current = None
        return None
    _current = Timings()
    return _current


def mark(phase: str) -> None:
    if _current is not None:
        _current.mark(phase)


def ran(seconds_to_attach: float | None, end_cut: bool = False) -> None:
    if _current is not None:
        _current.ran(seconds_to_attach, end_cut)


def end(t: Timings | None) -> None:
    global _current
    if t is not None:
        t.report()
        if _current is t:
            _current = None
