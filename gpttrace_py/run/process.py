"""Run a tracing program as a child process: wait for attach, start the workload, stream, stop cleanly.

The tracer runs in its own session (so the terminal's Ctrl-C reaches only us, and we decide how to stop
it) and receives SIGINT if gpttrace dies (PR_SET_PDEATHSIG), so a killed gpttrace never leaves a
program attached. Stopping is always SIGINT first, so the tracer prints its aggregates.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ExitCode, GpttraceError, UsageError
from .failure import LoadFailure, clean_stderr
from .records import Printer

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGINT when the parent dies, so the tracer detaches and exits."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT)
    except OSError:
        pass


@dataclass
class RunOptions:
    command: list[str] | None = None
    duration: float | None = None
    json: bool = False
    dry_run: bool = False
    linger: float = 0.2  # seconds to keep tracing after the workload exits (late events, completions)
    attach_timeout: float = 60.0
    stop_event: threading.Event | None = None  # set it (e.g. from a chat REPL) to stop the run gently


@dataclass
class RunOutcome:
    attached: bool
    events: int
    lost: int
    returncode: int | None
    interrupted: bool = False
    workload_rc: int | None = None
    failure: LoadFailure | None = None
    seconds_to_attach: float | None = None


class LoadFailed(GpttraceError):
    def __init__(self, failure: LoadFailure) -> None:
        super().__init__(failure.summary(), None, ExitCode.TRACE_FAILED)
        self.failure = failure


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop(signum)


def run_tracer(
    argv: list[str],
    printer: Printer,
    options: RunOptions,
    parse_failure: Callable[[str, int | None], LoadFailure],
    warn: Callable[[str], None],
    env: dict[str, str] | None = None,
) -> RunOutcome:
    """Start ``argv`` (a tracer that writes JSON records on stdout) and drive it to the end."""
    started = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=_die_with_parent, env=env)
    except FileNotFoundError as exc:
        raise GpttraceError(f"cannot start {argv[0]}: {exc.strerror}", "run `gpttrace doctor` to see what is missing",
                            ExitCode.USAGE) from None
    stderr_lines: list[str] = []
    attached = threading.Event()

    def read_stderr() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            stderr_lines.append(line)
            if attached.is_set() and clean_stderr(line):
                warn(line)

    err_thread = threading.Thread(target=read_stderr, daemon=True)
    err_thread.start()

    stop_lock = threading.Lock()
    stopped = {"done": False}

    def stop(reason: str = "") -> None:
        with stop_lock:
            if stopped["done"]:
                return
            stopped["done"] = True
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    workload: subprocess.Popen[bytes] | None = None
    outcome = RunOutcome(attached=False, events=0, lost=0, returncode=None)
    timers: list[threading.Timer] = []

    def on_attached() -> None:
        nonlocal workload
        attached.set()
        outcome.attached = True
        outcome.seconds_to_attach = time.monotonic() - started
        for line in clean_stderr("\n".join(stderr_lines)):
            warn(line)
        if options.dry_run:
            stop("dry run")
            return
        if options.command:
            try:
                workload = subprocess.Popen(options.command, stdout=sys.stderr.fileno(), start_new_session=False)
            except OSError as exc:
                stop("workload failed")
                raise UsageError(f"cannot run {options.command[0]!r}: {exc.strerror}",
                                 "check the -c command; it is run directly, not through a shell") from None

            def watch() -> None:
                assert workload is not None
                outcome.workload_rc = workload.wait()
                time.sleep(options.linger)
                stop("workload exited")

            threading.Thread(target=watch, daemon=True).start()
        if options.stop_event is not None:
            ev = options.stop_event

            def watch_stop() -> None:
                ev.wait()
                stop("stop requested")

            threading.Thread(target=watch_stop, daemon=True).start()
        if options.duration:
            t = threading.Timer(options.duration, stop, args=("duration",))
            t.daemon = True
            t.start()
            timers.append(t)

    old_handlers = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            old_handlers[sig] = signal.signal(sig, _raise_stop)
        except (ValueError, OSError):  # not in the main thread
            pass
    attach_deadline = threading.Timer(options.attach_timeout, lambda: None if attached.is_set() else stop("attach timeout"))
    attach_deadline.daemon = True
    attach_deadline.start()
    timers.append(attach_deadline)
    printer.on_ready = on_attached
    try:
        _pump(proc, printer, outcome, stop)
    finally:
        for t in timers:
            t.cancel()
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        if proc.poll() is None:
            stop("cleanup")
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if workload is not None and workload.poll() is None:
            workload.terminate()
            try:
                workload.wait(timeout=3)
            except subprocess.TimeoutExpired:
                workload.kill()
        err_thread.join(timeout=2)
        printer.flush()
    outcome.returncode = proc.returncode
    outcome.events = printer.events
    outcome.lost = printer.lost
    if not outcome.attached:
        outcome.failure = parse_failure("\n".join(stderr_lines), proc.returncode)
        if outcome.interrupted:
            raise KeyboardInterrupt
        raise LoadFailed(outcome.failure)
    return outcome


def _pump(proc: subprocess.Popen[bytes], printer: Printer, outcome: RunOutcome, stop: Callable[[str], None]) -> None:
    assert proc.stdout is not None
    stream = proc.stdout
    while True:
        try:
            for raw in stream:
                text = raw.decode("utf-8", "replace")
                try:
                    record = json.loads(text)
                except ValueError:
                    text = text.rstrip("\n")
                    if text:
                        printer.handle({"type": "printf", "data": text + "\n"})
                    continue
                if not isinstance(record, dict):
                    continue
                printer.handle(record)
            return
        except (KeyboardInterrupt, _Stop):
            # Ctrl-C, SIGTERM or SIGHUP: stop the tracer gently and keep reading its final output.
            outcome.interrupted = True
            stop("interrupted")
