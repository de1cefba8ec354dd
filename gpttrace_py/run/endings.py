"""How a run ended: what to tell the user about the tracer's exit, the signals' names, the cut of bpftrace's
wait after END, and the signal handlers put back after a run.

The end, with bpftrace: once stopped, it detaches, runs END, and then waits until 100 ms pass without output
before it prints its maps and exits; nothing can come by then. The program it is given prints a marker line
last in END (run/bpftrace.py's with_end_marker); the marker is not shown, and a SIGINT ends that wait.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from types import FrameType

# After END, bpftrace 0.17 reads its buffers until an epoll_wait of 100 ms finds nothing more: 100 ms of every
# run spent waiting for output that cannot come (the probes are detached, END has run). A SIGINT ends that
# wait (it returns on EINTR once a SIGINT was received). Seconds to wait for the exit after each SIGINT sent:
END_CUT_REPEATS = (0.02, 0.05)
LATE_SIGNAL_WINDOW = 3.0  # seconds after an interrupted run in which another Ctrl-C is ignored

# What signal.signal takes and gives back: a handler, SIG_DFL/SIG_IGN, or None (set from outside Python).
SignalHandler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


def signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def how_it_ended(name: str, rc: int | None, reason: str | None, killed: str | None, interrupted: bool) -> str | None:
    """None for an ending someone asked for; else what went wrong, for the user."""
    if killed and not interrupted:
        return f"{name} {killed} and was killed; its aggregates are lost"
    if killed:
        return None  # the user insisted (a second Ctrl-C)
    if rc is None or rc == 0:
        return None
    if rc < 0:
        sig = -rc
        if reason is not None and sig in (signal.SIGINT, signal.SIGTERM):
            return None
        by = "" if reason is None else " (not by gpttrace)"
        return f"{name} was killed by {signal_name(sig)}{by}; its aggregates are lost"
    if reason is not None and rc in (130, 2):  # some tracers exit 130 on SIGINT
        return None
    return f"{name} stopped with status {rc}"


def cut_end_wait(proc: subprocess.Popen[bytes]) -> None:
    """END has printed everything it prints; bpftrace would wait 100 ms for more before it prints its maps
    and exits. A SIGINT ends that wait at once. One that lands just before the wait starts is taken and
    the wait runs its course; so it is sent again while the tracer is still there (in a thread of its own)."""

    def cut() -> None:
        for delay in END_CUT_REPEATS:
            if proc.poll() is not None:
                return
            try:
                os.kill(proc.pid, signal.SIGINT)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=delay)
                return
            except subprocess.TimeoutExpired:
                pass

    threading.Thread(target=cut, daemon=True, name="gpttrace-end").start()


def after_run(sig: int, old: SignalHandler, until: float) -> Callable[[int, FrameType | None], None]:
    """The handler after an interrupted run: a second Ctrl-C (or SIGTERM) that comes just after the tracer
    stopped is swallowed instead of turning the clean exit into a KeyboardInterrupt traceback; later ones
    do what they did before the run."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if time.monotonic() < until:
            return
        signal.signal(sig, old)
        if callable(old):
            old(signum, frame)
        elif old == signal.SIG_DFL:
            os.kill(os.getpid(), sig)

    return handler
