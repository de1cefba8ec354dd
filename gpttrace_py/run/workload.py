"""The workload (``-c CMD``): started once the tracer is attached; when it exits, the tracer is stopped
``linger`` s later, or later while the tracer works off a backlog."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable

from ..errors import UsageError

DRAIN_QUIET = 0.1  # seconds per window while the tracer works off a backlog after the workload
DRAIN_BACKLOG = 500  # events in one window that mean a backlog rather than other processes' activity


class Workload:
    """The command traced, run directly (no shell), its stdout on our stderr."""

    def __init__(self, command: list[str]) -> None:
        """Start ``command``; UsageError when it cannot be started."""
        try:
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(command, stdout=sys.stderr.fileno(),
                                                                  start_new_session=False)
        except OSError as exc:
            raise UsageError(f"cannot run {command[0]!r}: {exc.strerror}",
                             "check the -c command; it is run directly, not through a shell") from None

    def watch(self, linger: float, drain_max: float, finished: threading.Event,
              progress: Callable[[], tuple[int, int]], exited: Callable[[int], None],
              stop: Callable[[str], None]) -> None:
        """In a thread: when the workload exits, tell ``exited`` its status, and ``stop`` the tracer once the
        events that follow have come (``progress``: events and lost events so far, and full reads of the pipe),
        unless the run is ``finished`` first."""

        def watch() -> None:
            exited(self.proc.wait())
            # The linger is for what comes just after the exit (completions, the parent's wait). Then, while
            # the tracer is still working off a backlog, wait (up to drain_max): bpftrace 0.17 drops, without
            # counting them, the events of the batch it is printing when SIGINT comes. A backlog shows as
            # full reads of the pipe (we are behind) or many events per window; the steady trickle of a
            # busy system's other processes is neither, and waiting for it to stop only cost time.
            seen = progress()
            quiet = linger
            deadline = time.monotonic() + linger + drain_max
            while True:
                if finished.wait(quiet):
                    return
                now = progress()
                backlog = now[1] > seen[1] or now[0] - seen[0] >= DRAIN_BACKLOG
                if not backlog or time.monotonic() >= deadline:
                    break
                seen, quiet = now, DRAIN_QUIET
            stop("workload exited")

        threading.Thread(target=watch, daemon=True, name="gpttrace-workload").start()

    def end(self) -> None:
        """At the end of the run: a workload still running is terminated (killed if it takes over 3 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
