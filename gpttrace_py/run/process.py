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

The end, with bpftrace: once stopped, it detaches, runs END, and then waits until 100 ms pass without output
before it prints its maps and exits; nothing can come by then. The program it is given prints a marker line
last in END (run/bpftrace.py's with_end_marker); the marker is not shown, and a SIGINT ends that wait.

Flow control and memory: the tracer writes into a pipe that is read here as fast as the output can take it.
Nothing is queued in gpttrace: when the reader falls behind, the pipe fills, the tracer blocks, its perf
buffer fills and the kernel drops events, which bpftrace reports (``lost_events``) and the Printer shows.
stderr is kept (the last 5000 lines: the load error is there) and shown as it comes once attached.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from json.decoder import scanstring
from typing import Any

from ..errors import ExitCode, GpttraceError, UsageError
from .failure import LoadFailure, StderrFilter
from .records import Printer

PR_SET_PDEATHSIG = 1
DRAIN_QUIET = 0.1  # seconds per window while the tracer works off a backlog after the workload
DRAIN_BACKLOG = 500  # events in one window that mean a backlog rather than other processes' activity
SIGINT_REPEAT = 0.3  # seconds between SIGINTs while the tracer shows no sign of stopping
# bpftrace 0.17 waits for events in epoll_waits of 100 ms, the first timed from the event it handled last, and
# stops only when SIGINT interrupts one: a SIGINT that lands as one times out is missed. A stop steers clear.
EPOLL_PERIOD = 0.1
EPOLL_MARGIN = 0.015
# After END, bpftrace 0.17 reads its buffers until an epoll_wait of 100 ms finds nothing more: 100 ms of every
# run spent waiting for output that cannot come (the probes are detached, END has run). A SIGINT ends that
# wait (it returns on EINTR once a SIGINT was received). Seconds to wait for the exit after each SIGINT sent:
END_CUT_REPEATS = (0.02, 0.05)
LATE_SIGNAL_WINDOW = 3.0  # seconds after an interrupted run in which another Ctrl-C is ignored
STDERR_KEPT = 5000  # lines of the tracer's stderr kept (the load error is in the first ones)


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
    session_log: Any = None  # an object with .event(kind, **data) (gpttrace_py.sessionlog.SessionLog)
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


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


class _SessionLogSink:
    """Calls into the session log without ever breaking a run; says once when the log cannot be written."""

    def __init__(self, log: Any, warn: Callable[[str], None]) -> None:
        self.log = log
        self.warn = warn
        self.warned = False

    def call(self, method: str, *args: Any, **data: Any) -> None:
        if self.log is None:
            return
        fn = getattr(self.log, method, None)
        try:
            if fn is not None:
                fn(*args, **data)
            elif method != "event":
                self.log.event(method, **({"line": args[0]} if args else {}), **data)
        except Exception as exc:
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


def spawn_tracer(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a tracer in a session of its own, its output piped to us; it gets SIGINT if gpttrace dies."""
    try:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=lambda p=os.getpid(): _die_with_parent(p),
                                env=env)
    except OSError as exc:
        raise GpttraceError(f"cannot start {argv[0]}: {exc.strerror}", "run `gpttrace doctor` to see what is missing",
                            ExitCode.USAGE) from None


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
    END (run/bpftrace.py's with_end_marker); it is not shown, and it ends the tracer's last wait (END_CUT_REPEATS)."""
    started = time.monotonic()
    name = options.tracer_name or os.path.basename(argv[0])
    if proc is None:
        proc = spawn_tracer(argv, env)

    outcome = RunOutcome(attached=False, events=0, lost=0, returncode=None)
    pump = _PumpState(end_marker=None if end_marker is None else end_marker + "\n")
    log = _SessionLogSink(options.session_log, warn)
    attached = threading.Event()
    finished = threading.Event()
    lock = threading.RLock()
    state: dict[str, Any] = {"reason": None, "killed": None, "signals": 0, "phase": "pump", "output_closed": False}

    # -- the tracer's stderr: kept until attach (the load error; bounded), shown as it comes after ---------
    stderr_lines: collections.deque[str] = collections.deque(maxlen=STDERR_KEPT)
    stderr_lock = threading.Lock()

    shown_before: list[str] = []  # worth showing, come before attach: shown then
    worth_showing = StderrFilter()

    def read_stderr() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with stderr_lock:
                stderr_lines.append(line)
                show = worth_showing(line)
                if show and not attached.is_set():
                    shown_before.append(line)
                    show = False
            if show:
                warn(line)

    err_thread = threading.Thread(target=read_stderr, daemon=True, name="gpttrace-stderr")
    err_thread.start()

    # -- stopping --------------------------------------------------------------------------------------
    def send(sig: int) -> None:
        if sig == signal.SIGINT:
            time.sleep(clear_of_epoll_timeout(time.monotonic() - pump.last_read))
        if proc.poll() is None:
            if sig == signal.SIGINT:
                outcome.sigints += 1
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(why: str) -> None:
        with lock:
            if state["killed"] is None:
                state["killed"] = why
        send(signal.SIGKILL)

    def stop(reason: str = "") -> None:
        """SIGINT the tracer (once); if it is still there ``stop_grace`` s later, kill it."""
        with lock:
            if state["reason"] is not None:
                return
            state["reason"] = reason or "stopped"
        send(signal.SIGINT)

        def _progress() -> int:
            return printer.events + printer.lost + len(printer.aggregates_seen)

        def watchdog() -> None:
            # bpftrace 0.17 misses a SIGINT that lands outside its epoll wait: repeat it (the handler only sets
            # a flag) while the tracer shows no sign of stopping (no new output), then kill after the grace.
            deadline = time.monotonic() + options.stop_grace
            last = _progress()
            while time.monotonic() < deadline:
                try:
                    proc.wait(timeout=min(SIGINT_REPEAT, max(0.05, deadline - time.monotonic())))
                    return
                except subprocess.TimeoutExpired:
                    now = _progress()
                    if now == last:
                        send(signal.SIGINT)
                    last = now
            if proc.poll() is None:
                kill(f"did not exit within {options.stop_grace:g} s of SIGINT")

        threading.Thread(target=watchdog, daemon=True, name="gpttrace-stop").start()

    def end_ran() -> None:
        """END has printed everything it prints; bpftrace would wait 100 ms for more before it prints its maps
        and exits. A SIGINT ends that wait at once. One that lands just before the wait starts is taken and
        the wait runs its course; so it is sent again while the tracer is still there."""
        outcome.end_cut = True

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

    pump.on_end = end_ran

    def on_signal(signum: int, frame: object) -> None:
        # Runs in the main thread between bytecodes: no locks that the main thread may hold, no UI calls.
        state["signals"] += 1
        outcome.interrupted = True
        if state["signals"] == 1:
            if attached.is_set():
                _say(f"\nStopping {name} ({_signal_name(signum)}); its aggregates follow. Again to force.\n")
            stop(_signal_name(signum))
            return
        send(signal.SIGKILL)
        state["killed"] = state["killed"] or f"{_signal_name(signum)} again"
        if state["phase"] == "pump":
            raise _ForceStop

    workload: subprocess.Popen[bytes] | None = None
    timers: list[threading.Timer] = []

    def on_attached() -> None:
        nonlocal workload
        with stderr_lock:  # what came before attach is shown here, what comes after by read_stderr
            attached.set()
            before = list(shown_before)
        outcome.attached = True
        outcome.seconds_to_attach = time.monotonic() - started
        for line in before:
            warn(line)
        log.call("run_start", tracer=name, seconds_to_attach=round(outcome.seconds_to_attach, 3),
                 command=options.command, duration=options.duration)
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
                # The linger is for what comes just after the exit (completions, the parent's wait). Then, while
                # the tracer is still working off a backlog, wait (up to drain_max): bpftrace 0.17 drops, without
                # counting them, the events of the batch it is printing when SIGINT comes. A backlog shows as
                # full reads of the pipe (we are behind) or many events per window; the steady trickle of a
                # busy system's other processes is neither, and waiting for it to stop only cost time.
                seen = (printer.events + printer.lost, pump.full_reads)
                quiet = options.linger
                deadline = time.monotonic() + options.linger + options.drain_max
                while True:
                    if finished.wait(quiet):
                        return
                    now = (printer.events + printer.lost, pump.full_reads)
                    backlog = now[1] > seen[1] or now[0] - seen[0] >= DRAIN_BACKLOG
                    if not backlog or time.monotonic() >= deadline:
                        break
                    seen, quiet = now, DRAIN_QUIET
                stop("workload exited")

            threading.Thread(target=watch, daemon=True, name="gpttrace-workload").start()
        if options.stop_event is not None:
            ev = options.stop_event

            def watch_stop() -> None:
                while not finished.is_set():
                    if ev.wait(0.2):
                        stop("stop requested")
                        return

            threading.Thread(target=watch_stop, daemon=True, name="gpttrace-stop-event").start()
        if options.duration:
            t = threading.Timer(options.duration, stop, args=("duration",))
            t.daemon = True
            t.start()
            timers.append(t)

    # -- output: stop on a closed or full stdout instead of dying mid-run ------------------------------------
    real_write = printer.write

    def write(line: str) -> None:
        if state["output_closed"]:
            return
        try:
            real_write(line)
        except OSError as exc:
            state["output_closed"] = True
            if exc.errno != errno.EPIPE:
                outcome.output_error = exc.strerror or str(exc)
            _quiet_stdout()
            stop("output closed")

    printer.write = write
    printer.on_ready = on_attached
    if options.max_event_rate:
        printer.max_rate = options.max_event_rate
        printer.drop_over_rate = options.drop_over_rate
        printer.overload_hint = options.overload_hint or printer.overload_hint
    if options.session_log is not None:
        printer.log_line = lambda line: log.call("output", line)
        printer.log_record = lambda kind, **data: log.call("event", kind, **data)

    old_handlers: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                # nohup: keep ignoring hangups. SIGINT is handled even when a non-interactive shell ignores it
                # for a background job (bpftrace does the same): `kill -INT` is how a script stops a trace.
                if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
                    continue
                old_handlers[sig] = signal.signal(sig, on_signal)
            except (ValueError, OSError):
                pass
    attach_deadline = threading.Timer(options.attach_timeout,
                                      lambda: None if attached.is_set() else stop("attach timeout"))
    attach_deadline.daemon = True
    attach_deadline.start()
    timers.append(attach_deadline)
    try:
        try:
            _pump(proc, printer, pump)
        except _ForceStop:
            pass
        state["phase"] = "cleanup"
    finally:
        state["phase"] = "cleanup"
        finished.set()
        for t in timers:
            t.cancel()
        if proc.poll() is None:
            stop("cleanup")
            try:
                proc.wait(timeout=options.stop_grace + 5)
            except subprocess.TimeoutExpired:
                kill("did not exit during cleanup")
                proc.wait()
        if workload is not None and workload.poll() is None:
            workload.terminate()
            try:
                workload.wait(timeout=3)
            except subprocess.TimeoutExpired:
                workload.kill()
                workload.wait()
        err_thread.join(timeout=2)
        if state["signals"] < 2:
            printer.flush()
        printer.finish()
        until = time.monotonic() + LATE_SIGNAL_WINDOW if state["signals"] else 0.0
        for sig, handler in old_handlers.items():
            try:
                signal.signal(sig, _after_run(sig, handler, until) if until else handler)
            except (ValueError, OSError):
                pass
    outcome.returncode = proc.returncode
    outcome.events = printer.events
    outcome.lost = printer.lost
    outcome.dropped = printer.dropped
    outcome.stop_reason = state["reason"]
    if not outcome.attached:
        stderr_text = "\n".join(stderr_lines)
        outcome.failure = parse_failure(stderr_text, proc.returncode)
        if state["reason"] == "attach timeout":
            outcome.failure.message = f"the program did not attach within {options.attach_timeout:g} s"
            outcome.failure.stage = "attach"
        if outcome.interrupted:
            raise KeyboardInterrupt
        if proc.returncode is not None and proc.returncode < 0 and state["reason"] is None:
            outcome.failure.message = (f"{name} was killed by {_signal_name(-proc.returncode)} while loading"
                                       + (f": {outcome.failure.message}" if stderr_text.strip() else ""))
        raise LoadFailed(outcome.failure)
    outcome.crashed = _how_it_ended(name, proc.returncode, state["reason"], state["killed"], outcome.interrupted)
    log.call("run_end", events=outcome.events, lost=outcome.lost, dropped=outcome.dropped,
             returncode=outcome.returncode, stopped=outcome.stop_reason, crashed=outcome.crashed)
    return outcome


def _how_it_ended(name: str, rc: int | None, reason: str | None, killed: str | None, interrupted: bool) -> str | None:
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
        return f"{name} was killed by {_signal_name(sig)}{by}; its aggregates are lost"
    if reason is not None and rc in (130, 2):  # some tracers exit 130 on SIGINT
        return None
    return f"{name} stopped with status {rc}"


def _after_run(sig: int, old: Any, until: float) -> Callable[[int, Any], None]:
    """The handler after an interrupted run: a second Ctrl-C (or SIGTERM) that comes just after the tracer
    stopped is swallowed instead of turning the clean exit into a KeyboardInterrupt traceback; later ones
    do what they did before the run."""

    def handler(signum: int, frame: Any) -> None:
        if time.monotonic() < until:
            return
        signal.signal(sig, old)
        if callable(old):
            old(signum, frame)
        elif old == signal.SIG_DFL:
            os.kill(os.getpid(), sig)

    return handler


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


_PRINTF = b'{"type": "printf", "data": "'  # how bpftrace -f json (and a BCC program) writes a printf record
_PRINTF_AT = len(_PRINTF)


@dataclass
class _PumpState:
    full_reads: int = 0  # reads that found the pipe full: the reader is behind the tracer
    last_read: float = 0.0  # time.monotonic() of the last output read: when bpftrace's epoll cycle began
    end_marker: str | None = None  # the data of the printf record that says END has printed all it prints
    on_end: Callable[[], None] | None = None  # called (in the reading thread) when that record comes


def clear_of_epoll_timeout(since_output: float) -> float:
    """Seconds to wait before a SIGINT so that it does not land within EPOLL_MARGIN of one of bpftrace's epoll
    timeouts, which fall every EPOLL_PERIOD after its last output (``since_output`` s ago). A stop timed from
    that output, such as ``linger`` after a workload whose last event it was, would otherwise meet one."""
    phase = since_output % EPOLL_PERIOD
    if phase < EPOLL_MARGIN:
        return EPOLL_MARGIN - phase
    if phase > EPOLL_PERIOD - EPOLL_MARGIN:
        return EPOLL_PERIOD - phase + EPOLL_MARGIN
    return 0.0


def _pump(proc: subprocess.Popen[bytes], printer: Printer, state: _PumpState) -> None:
    """Read the tracer's records until it closes stdout. Signals do not interrupt this (see on_signal).

    It takes what the pipe holds at once rather than a line at a time, and takes printf records (nearly all
    of a stream) apart without a full JSON parse: about a quarter less CPU a line, which is what decides
    whether gpttrace keeps up with a flood (bench/pump.py)."""
    assert proc.stdout is not None
    handle = printer.handle
    loads = json.loads
    fd = proc.stdout.fileno()
    rest = b""
    while True:
        chunk = os.read(fd, 1 << 16)
        state.last_read = time.monotonic()
        if len(chunk) == 1 << 16:
            state.full_reads += 1
        if chunk:
            lines = (rest + chunk).split(b"\n") if rest else chunk.split(b"\n")
            rest = lines.pop()
        else:
            lines = [rest] if rest else []
        for raw in lines:
            text = raw.decode("utf-8", "replace")
            if raw.startswith(_PRINTF) and raw.endswith(b'"}'):
                try:
                    data, end = scanstring(text, _PRINTF_AT)
                except ValueError:
                    end = -1
                if end == len(text) - 1:
                    if data == state.end_marker and state.on_end is not None:
                        state.on_end()
                    else:
                        handle({"type": "printf", "data": data})
                    continue
            try:
                record = loads(text)
            except ValueError:
                if text:
                    handle({"type": "printf", "data": text + "\n"})
                continue
            if isinstance(record, dict):
                handle(record)
        if not chunk:
            return
