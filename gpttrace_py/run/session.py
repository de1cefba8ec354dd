"""Run a tracing program as a child process: wait for attach, start the workload, stream, stop cleanly.

The tracer runs in its own session (so the terminal's Ctrl-C reaches only us, and we decide how to stop it)
and receives SIGINT if gpttrace dies (PR_SET_PDEATHSIG), so a killed gpttrace never leaves a program
attached: the kernel detaches a program when the last file descriptor of it closes, which happens when the
tracer exits however it exits. Stopping is always SIGINT first, so the tracer prints its aggregates.

How each ending goes:

==========================  ====================================================================  =========
ending                      what happens                                                          aggregates
==========================  ====================================================================  =========
program calls exit()        the tracer ends by itself with status 0                               printed
-c CMD exits                ``linger`` s later (more while a backlog drains): SIGINT              printed
--duration / max run time   SIGINT to the tracer                                                  printed
Ctrl-C, SIGTERM, SIGHUP     SIGINT to the tracer, keep reading its last output (exit 130)        printed
the same signal again       SIGKILL to the tracer, stop reading (exit 130)                        lost
tracer ignores SIGINT       SIGKILL after ``stop_grace`` s; reported (``RunOutcome.crashed``)     lost
tracer killed or crashes    reported as ``RunOutcome.crashed``; the pipeline exits 1              lost
gpttrace killed (SIGKILL)   the kernel sends the tracer SIGINT (PDEATHSIG); it exits              lost
stdout closed (| head)      SIGINT to the tracer, the rest is dropped                             dropped
==========================  ====================================================================  =========

The pieces: the workload (run/workload.py), reading the output (run/pump.py), how it ended and the cut of
bpftrace's wait after END (run/endings.py). stderr is kept (the last 5000 lines: the load error is there) and
shown as it comes once attached.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Protocol

from ..errors import ExitCode, GpttraceError, UsageError
from .endings import LATE_SIGNAL_WINDOW, SignalHandler, after_run, cut_end_wait, how_it_ended, signal_name
from .failure import LoadFailure, StderrFilter
from .pump import PumpState, clear_of_epoll_timeout, pump_output
from .records import Printer
from .workload import Workload

PR_SET_PDEATHSIG = 1
SIGINT_REPEAT = 0.3  # seconds between SIGINTs while the tracer shows no sign of stopping
STDERR_KEPT = 5000  # lines of the tracer's stderr kept (the load error is in the first ones)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class EventLog(Protocol):
    """What the runner asks of a session log (gpttrace_py.sessionlog.SessionLog)."""

    def event(self, kind: str, **data: object) -> None: ...


@dataclass
class RunOptions:
    command: list[str] | None = None
    duration: float | None = None
    json: bool = False
    dry_run: bool = False
    linger: float = 0.05  # seconds to keep tracing after the workload exits (late events, completions)
    drain_max: float = 3.0  # ... and at most this much longer while the tracer works off a backlog
    attach_timeout: float = 60.0
    stop_event: threading.Event | None = None  # set it (e.g. from a chat REPL) to stop the run gently
    unsafe: bool = False  # the user allowed unsafe builtins (the bpftrace runner passes --unsafe)
    stop_grace: float = 10.0  # seconds the tracer gets to exit after SIGINT before it is killed
    max_event_rate: float | None = None  # events/s above which the output counts as a flood (None: never)
    drop_over_rate: bool = False  # in a flood, print max_event_rate lines/s and count the rest (terminals)
    overload_hint: str | None = None  # what to suggest instead of a flood, e.g. 'gpttrace "count ... by process"'
    session_log: EventLog | None = None  # gets .event(kind, **data) (gpttrace_py.sessionlog.SessionLog)
    tracer_name: str | None = None  # how to call the tracer in messages (default: argv[0]'s name)


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
    crashed: str | None = None  # the tracer ended in a way nobody asked for: how (the pipeline exits 1)
    dropped: int = 0  # event lines not printed because of the terminal rate cap
    stop_reason: str | None = None  # why gpttrace stopped the tracer (duration, workload exited, interrupted...)
    output_error: str | None = None  # writing the output failed (disk full...): why
    sigints: int = 0  # SIGINTs sent to stop the tracer (more than one: it missed one; see clear_of_epoll_timeout)
    end_cut: bool = False  # the end marker came, and the tracer's wait after END was cut short


class LoadFailed(GpttraceError):
    def __init__(self, failure: LoadFailure) -> None:
        super().__init__(failure.summary(), None, ExitCode.TRACE_FAILED)
        self.failure = failure


class _ForceStop(Exception):
    """A second Ctrl-C/SIGTERM/SIGHUP: stop reading now."""


class SessionLogSink:
    """Calls into the session log without ever breaking a run; says once when the log cannot be written."""

    def __init__(self, log: EventLog | None, warn: Callable[[str], None]) -> None:
        self.log = log
        self.warn = warn
        self.warned = False

    def call(self, method: str, *args: object, **data: object) -> None:
        if self.log is None:
            return
        fn = getattr(self.log, method, None)
        try:
            if fn is not None:
                fn(*args, **data)
            elif method != "event":
                self.log.event(method, **({"line": args[0]} if args else {}), **data)
        except Exception as exc:  # a log that cannot be written must not end the trace
            self._broken(str(exc))
            return
        if getattr(self.log, "broken", None) or getattr(self.log, "_broken", False):
            self._broken()

    def _broken(self, why: str = "") -> None:
        if self.warned:
            return
        self.warned = True
        where = getattr(self.log, "path", None) or getattr(self.log, "directory", None) or "the session log"
        self.warn(f"gpttrace: cannot write the session log ({where}): the disk is full or read-only"
                  f"{': ' + why if why else ''}; tracing goes on without it")
        self.warn("  free some space there, or set GPTTRACE_HOME to a writable directory")
        self.log = None


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: get SIGINT when the parent dies, so the tracer detaches and exits; and
    take SIGINT/SIGTERM with their default meaning even if gpttrace was started with them ignored (a
    background job of a script), since they are how the tracer is told to stop."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.signal.restype = ctypes.c_void_p
        for sig in (signal.SIGINT, signal.SIGTERM):
            libc.signal(int(sig), ctypes.c_void_p(0))  # SIG_DFL
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl: nobody will stop us
        os._exit(1)


def spawn_tracer(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a tracer in a session of its own, its output piped to us; it gets SIGINT if gpttrace dies."""
    try:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=lambda p=os.getpid(): _die_with_parent(p),
                                env=env)
    except OSError as exc:
        raise GpttraceError(f"cannot start {argv[0]}: {exc.strerror}", "run `gpttrace doctor` to see what is missing",
                            ExitCode.USAGE) from None


class TracerSession:
    """One run of a tracer: started (or taken prestarted), attached, streamed into ``printer``, stopped.

    Threads: the caller's reads the output (``run``); one reads stderr; timers and watchers (the duration,
    the attach deadline, the workload, a stop event, the stop watchdog, the END cut) call ``stop``, which
    takes ``lock``; signal handlers run in the main thread between bytecodes (``on_signal``)."""

    def __init__(self, argv: list[str], printer: Printer, options: RunOptions,
                 parse_failure: Callable[[str, int | None], LoadFailure], warn: Callable[[str], None],
                 env: dict[str, str] | None = None, proc: subprocess.Popen[bytes] | None = None,
                 end_marker: str | None = None) -> None:
        self.started = time.monotonic()
        self.argv = argv
        self.printer = printer
        self.options = options
        self.parse_failure = parse_failure
        self.warn = warn
        self.name = options.tracer_name or os.path.basename(argv[0])
        self.proc = proc if proc is not None else spawn_tracer(argv, env)
        self.outcome = RunOutcome(attached=False, events=0, lost=0, returncode=None)
        self.pump = PumpState(end_marker=None if end_marker is None else end_marker + "\n", on_end=self.end_ran)
        self.log = SessionLogSink(options.session_log, warn)
        self.attached = threading.Event()
        self.finished = threading.Event()
        self.lock = threading.RLock()
        self.reason: str | None = None  # why gpttrace stopped the tracer; None: it has not
        self.killed: str | None = None  # why it was killed; None: it was not
        self.signals = 0  # Ctrl-C/SIGTERM/SIGHUP received
        self.reading = True  # the output is still being read (a second signal stops that)
        self.output_closed = False
        self.workload: Workload | None = None
        self.timers: list[threading.Timer] = []
        self.old_handlers: dict[int, SignalHandler] = {}
        # the tracer's stderr: kept until attach (the load error; bounded), shown as it comes after
        self.stderr_lines: collections.deque[str] = collections.deque(maxlen=STDERR_KEPT)
        self.stderr_lock = threading.Lock()
        self.shown_before: list[str] = []  # worth showing, come before attach: shown then
        self.worth_showing = StderrFilter()
        self.printer_write = printer.write
        self.err_thread = threading.Thread(target=self.read_stderr, daemon=True, name="gpttrace-stderr")
        self.err_thread.start()

    # -- the tracer's stderr ---------------------------------------------------------------------------
    def read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.stderr_lock:
                self.stderr_lines.append(line)
                show = self.worth_showing(line)
                if show and not self.attached.is_set():
                    self.shown_before.append(line)
                    show = False
            if show:
                self.warn(line)

    # -- stopping --------------------------------------------------------------------------------------
    def send(self, sig: int) -> None:
        if sig == signal.SIGINT:
            time.sleep(clear_of_epoll_timeout(time.monotonic() - self.pump.last_read))
        if self.proc.poll() is None:
            if sig == signal.SIGINT:
                self.outcome.sigints += 1
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self, why: str) -> None:
        with self.lock:
            if self.killed is None:
                self.killed = why
        self.send(signal.SIGKILL)

    def progress(self) -> int:
        return self.printer.events + self.printer.lost + len(self.printer.aggregates_seen)

    def stop(self, reason: str = "") -> None:
        """SIGINT the tracer (once); if it is still there ``stop_grace`` s later, kill it."""
        with self.lock:
            if self.reason is not None:
                return
            self.reason = reason or "stopped"
        self.send(signal.SIGINT)
        threading.Thread(target=self.watchdog, daemon=True, name="gpttrace-stop").start()

    def watchdog(self) -> None:
        # bpftrace 0.17 misses a SIGINT that lands outside its epoll wait: repeat it (the handler only sets
        # a flag) while the tracer shows no sign of stopping (no new output), then kill after the grace.
        grace = self.options.stop_grace
        deadline = time.monotonic() + grace
        last = self.progress()
        while time.monotonic() < deadline:
            try:
                self.proc.wait(timeout=min(SIGINT_REPEAT, max(0.05, deadline - time.monotonic())))
                return
            except subprocess.TimeoutExpired:
                now = self.progress()
                if now == last:
                    self.send(signal.SIGINT)
                last = now
        if self.proc.poll() is None:
            self.kill(f"did not exit within {grace:g} s of SIGINT")

    def end_ran(self) -> None:
        """The end marker came: END has printed everything it prints (run/endings.py's cut_end_wait)."""
        self.outcome.end_cut = True
        cut_end_wait(self.proc)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread between bytecodes: no locks that the main thread may hold, no UI calls.
        self.signals += 1
        self.outcome.interrupted = True
        if self.signals == 1:
            if self.attached.is_set():
                _say(f"\nStopping {self.name} ({signal_name(signum)}); its aggregates follow. Again to force.\n")
            self.stop(signal_name(signum))
            return
        self.send(signal.SIGKILL)
        self.killed = self.killed or f"{signal_name(signum)} again"
        if self.reading:
            raise _ForceStop

    # -- attached: the workload, the stop event, the duration -------------------------------------------
    def on_attached(self) -> None:
        options = self.options
        with self.stderr_lock:  # what came before attach is shown here, what comes after by read_stderr
            self.attached.set()
            before = list(self.shown_before)
        self.outcome.attached = True
        self.outcome.seconds_to_attach = time.monotonic() - self.started
        for line in before:
            self.warn(line)
        self.log.call("run_start", tracer=self.name, seconds_to_attach=round(self.outcome.seconds_to_attach, 3),
                      command=options.command, duration=options.duration)
        if options.dry_run:
            self.stop("dry run")
            return
        if options.command:
            try:
                self.workload = Workload(options.command)
            except UsageError:
                self.stop("workload failed")
                raise
            self.workload.watch(options.linger, options.drain_max, self.finished, self.drain_progress,
                                self.workload_exited, self.stop)
        if options.stop_event is not None:
            threading.Thread(target=self.watch_stop_event, args=(options.stop_event,), daemon=True,
                             name="gpttrace-stop-event").start()
        if options.duration:
            t = threading.Timer(options.duration, self.stop, args=("duration",))
            t.daemon = True
            t.start()
            self.timers.append(t)

    def drain_progress(self) -> tuple[int, int]:
        """Events and lost events so far, and reads that found the pipe full (run/workload.py)."""
        return self.printer.events + self.printer.lost, self.pump.full_reads

    def workload_exited(self, rc: int) -> None:
        self.outcome.workload_rc = rc

    def watch_stop_event(self, ev: threading.Event) -> None:
        while not self.finished.is_set():
            if ev.wait(0.2):
                self.stop("stop requested")
                return

    def attach_timed_out(self) -> None:
        if not self.attached.is_set():
            self.stop("attach timeout")

    # -- output: stop on a closed or full stdout instead of dying mid-run ----------------------------------
    def write(self, line: str) -> None:
        if self.output_closed:
            return
        try:
            self.printer_write(line)
        except OSError as exc:
            self.output_closed = True
            if exc.errno != errno.EPIPE:
                self.outcome.output_error = exc.strerror or str(exc)
            _quiet_stdout()
            self.stop("output closed")

    def connect_printer(self) -> None:
        options, printer, log = self.options, self.printer, self.log
        printer.write = self.write
        printer.on_ready = self.on_attached
        if options.max_event_rate:
            printer.max_rate = options.max_event_rate
            printer.drop_over_rate = options.drop_over_rate
            printer.overload_hint = options.overload_hint or printer.overload_hint
        if options.session_log is not None:
            printer.log_line = lambda line: log.call("output", line)
            printer.log_record = lambda kind, **data: log.call("event", kind, **data)

    def install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in STOP_SIGNALS:
            try:
                # nohup: keep ignoring hangups. SIGINT is handled even when a non-interactive shell ignores it
                # for a background job (bpftrace does the same): `kill -INT` is how a script stops a trace.
                if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
                    continue
                self.old_handlers[sig] = signal.signal(sig, self.on_signal)
            except (ValueError, OSError):
                pass

    def restore_signal_handlers(self) -> None:
        until = time.monotonic() + LATE_SIGNAL_WINDOW if self.signals else 0.0
        for sig, handler in self.old_handlers.items():
            try:
                signal.signal(sig, after_run(sig, handler, until) if until else handler)
            except (ValueError, OSError):
                pass

    # -- the run ---------------------------------------------------------------------------------------
    def run(self) -> RunOutcome:
        """Drive the tracer to the end; LoadFailed if it never attached, KeyboardInterrupt if interrupted then."""
        self.connect_printer()
        self.install_signal_handlers()
        attach_deadline = threading.Timer(self.options.attach_timeout, self.attach_timed_out)
        attach_deadline.daemon = True
        attach_deadline.start()
        self.timers.append(attach_deadline)
        try:
            try:
                pump_output(self.proc, self.printer, self.pump)
            except _ForceStop:
                pass
            self.reading = False
        finally:
            self.reading = False
            self.clean_up()
        return self.outcome_of_run()

    def clean_up(self) -> None:
        """The tracer and the workload stopped (waited for, or killed), the output flushed, the handlers back."""
        proc, grace = self.proc, self.options.stop_grace
        self.finished.set()
        for t in self.timers:
            t.cancel()
        if proc.poll() is None:
            self.stop("cleanup")
            try:
                proc.wait(timeout=grace + 5)
            except subprocess.TimeoutExpired:
                self.kill("did not exit during cleanup")
                proc.wait()
        if self.workload is not None:
            self.workload.end()
        self.err_thread.join(timeout=2)
        if self.signals < 2:
            self.printer.flush()
        self.printer.finish()
        self.restore_signal_handlers()

    def outcome_of_run(self) -> RunOutcome:
        proc, outcome, printer = self.proc, self.outcome, self.printer
        outcome.returncode = proc.returncode
        outcome.events = printer.events
        outcome.lost = printer.lost
        outcome.dropped = printer.dropped
        outcome.stop_reason = self.reason
        if not outcome.attached:
            stderr_text = "\n".join(self.stderr_lines)
            outcome.failure = self.parse_failure(stderr_text, proc.returncode)
            if self.reason == "attach timeout":
                outcome.failure.message = f"the program did not attach within {self.options.attach_timeout:g} s"
                outcome.failure.stage = "attach"
            if outcome.interrupted:
                raise KeyboardInterrupt
            if proc.returncode is not None and proc.returncode < 0 and self.reason is None:
                outcome.failure.message = (f"{self.name} was killed by {signal_name(-proc.returncode)} while loading"
                                           + (f": {outcome.failure.message}" if stderr_text.strip() else ""))
            raise LoadFailed(outcome.failure)
        outcome.crashed = how_it_ended(self.name, proc.returncode, self.reason, self.killed, outcome.interrupted)
        self.log.call("run_end", events=outcome.events, lost=outcome.lost, dropped=outcome.dropped,
                      returncode=outcome.returncode, stopped=outcome.stop_reason, crashed=outcome.crashed)
        return outcome


def run_tracer(
    argv: list[str],
    printer: Printer,
    options: RunOptions,
    parse_failure: Callable[[str, int | None], LoadFailure],
    warn: Callable[[str], None],
    env: dict[str, str] | None = None,
    proc: subprocess.Popen[bytes] | None = None,
    end_marker: str | None = None,
) -> RunOutcome:
    """Start ``argv`` (a tracer that writes JSON records on stdout), or take ``proc``, started from it before
    (run/bpftrace.py's prestart), and drive it to the end. ``end_marker``: the line the program prints last in
    END (run/bpftrace.py's with_end_marker); it is not shown, and it ends the tracer's last wait
    (run/endings.py's END_CUT_REPEATS)."""
    return TracerSession(argv, printer, options, parse_failure, warn, env=env, proc=proc,
                         end_marker=end_marker).run()


def _say(text: str) -> None:
    """Write to stderr from a signal handler (no locks, no buffering)."""
    try:
        os.write(2, text.encode("utf-8", "replace"))
    except OSError:
        pass


def _quiet_stdout() -> None:
    """After a broken pipe on stdout, point fd 1 at /dev/null so the exit-time flush does not complain."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass
