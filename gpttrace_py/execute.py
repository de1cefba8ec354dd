"""A rendered program to its events: show it, ask, run it, and turn how the run ended into an exit status.

The pipeline (pipeline.py) comes here with each program it plans; a program remembered from an earlier
run of the same request (program_cache.py) comes here directly, without planning. Nothing here imports
the spec models or the templates, so that second way starts in a fraction of the time.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ExitCode, GpttraceError, UsageError
from .render.program import RenderedProgram

if TYPE_CHECKING:
    from .run import RunOutcome
    from .run.failure import LoadFailure
    from .spec import ProgramSpec
    from .ui import UI

DEFAULT_NONINTERACTIVE_SECONDS = 600.0  # run time of a one-shot nobody can Ctrl-C (GPTTRACE_MAX_SECONDS, --max-seconds)
DEFAULT_MAX_EVENT_RATE = 1000.0  # events/s a terminal is shown in a flood (GPTTRACE_MAX_EVENT_RATE; 0: no cap)


@dataclass
class TraceOptions:
    backend: str = "auto"
    retries: int = 3
    yes: bool = False
    command: list[str] | None = None
    duration: float | None = None
    json_out: bool = False
    dry_run: bool = False
    show_spec: bool = False
    output: str | None = None
    explain: bool = False
    unsafe: bool = False
    max_seconds: float | None = None  # run time without -d/-c (0: none); default GPTTRACE_MAX_SECONDS, 600 s off a TTY
    stop_event: threading.Event | None = None  # lets a REPL stop a running trace
    session_log: Any = None  # a sessionlog.SessionLog: the runner appends events and aggregates as they arrive


@dataclass
class PlannedProgram:
    """A program ready to run, with what showing and running it needs from its spec."""

    program: RenderedProgram
    spec: ProgramSpec | dict[str, Any]  # the spec, or its JSON form when the program was remembered
    source: str  # the planner, for "(planned from ...)"
    overload_hint: str  # what to ask for instead when the events flood
    pid: int | None = None  # the pid the program filters on: it must exist when the run starts
    plan: dict[str, Any] | None = None  # what was understood (planning/plan.py Plan.record()), shown before the program

    def spec_data(self) -> dict[str, Any]:
        if isinstance(self.spec, dict):
            return self.spec
        return self.spec.model_dump(mode="json", exclude_none=True)


@dataclass
class TraceResult:
    code: ExitCode
    spec: ProgramSpec | None = None
    program: RenderedProgram | None = None
    attempts: list[LoadFailure] = field(default_factory=list)
    events: int = 0
    planned: PlannedProgram | None = None  # the program that ran (loaded and attached)
    outcome: RunOutcome | None = None  # how the run went: lost events, why it stopped (None: not run)


def parse_command(text: str | None) -> list[str] | None:
    if text is None:
        return None
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"cannot split the -c command: {exc}", "check its quotes") from None
    if not argv:
        raise UsageError("the -c command is empty")
    return argv


def check_settings(options: TraceOptions, ui: UI) -> None:
    """Bad settings (GPTTRACE_MAX_SECONDS, GPTTRACE_MAX_EVENT_RATE) are usage errors before anything runs."""
    max_seconds(options, ui)
    max_event_rate()


def check_pid(pid: int | None) -> None:
    if pid is not None and not Path(f"/proc/{pid}").exists():
        raise UsageError(f"no process with pid {pid} is running",
                         "check the pid with `ps -e`, or filter by process name instead")


def show_and_run(planned: PlannedProgram, options: TraceOptions, ui: UI, confirmed: str | None,
                 explain: Callable[[RenderedProgram], None] | None = None) -> RunOutcome | None:
    """Show the program, ask (unless -y; a text the user already accepted is not asked about again), and run
    it. None when the user said no. Raises ``run.LoadFailed`` when the program does not load."""
    from . import safety, timings
    from .run import RunOptions, run_program

    program = planned.program
    uses = safety.check(program.text, program.backend, options.unsafe)  # on the text that will run
    if planned.plan is not None:
        show_plan(planned.plan, options, ui)
    if options.show_spec:
        ui.show_spec(planned.spec)
    ui.show_program(program, planned.spec, planned.source)
    if explain is not None:
        explain(program)
    if not options.dry_run and not options.yes and confirmed != program.text:
        if not ui.interactive:
            raise UsageError("not running the program without confirmation",
                             "pass -y/--yes to run it, or --dry-run to only check that it loads")
        question = "Run this program?"
        if uses:
            question = f"This program CHANGES THE SYSTEM: {safety.describe(uses)}. Run it anyway?"
        if not ui.confirm(question):
            ui.talk("Not run.")
            return None
    elif uses and not options.dry_run:
        ui.warn(f"gpttrace: --unsafe: this program CHANGES THE SYSTEM: {safety.describe(uses)}")
    if options.output:  # only once the run is accepted (or only checked, with --dry-run)
        save_program(program, options.output, ui)
    log(options, "spec", planned.spec)
    log(options, "program", program)
    duration = options.duration
    if duration is None and planned.plan is not None and planned.plan.get("duration_s"):
        duration = float(planned.plan["duration_s"])  # "for 2 seconds", asked in words
    run_options = RunOptions(command=options.command, duration=duration, json=options.json_out,
                             dry_run=options.dry_run, stop_event=options.stop_event, unsafe=bool(uses),
                             max_event_rate=max_event_rate(), drop_over_rate=_isatty(ui.stdout),
                             overload_hint=planned.overload_hint, session_log=options.session_log,
                             tracer_name="bpftrace" if program.backend == "bpftrace" else "the BCC program")
    if run_options.duration is None and run_options.command is None and not options.dry_run:
        limit = max_seconds(options, ui)
        if limit:
            run_options.duration = limit
            configured = options.max_seconds is not None or os.environ.get("GPTTRACE_MAX_SECONDS")
            why = "" if configured else "no terminal: "
            ui.talk(f"({why}tracing stops after {limit:g} s; set -d or --max-seconds to change)")
    timings.mark("show")
    outcome = run_program(program, run_options, ui.out, ui.warn)
    timings.ran(outcome.seconds_to_attach, outcome.end_cut)
    return outcome


def show_plan(record: dict[str, Any], options: TraceOptions, ui: UI) -> None:
    """What was understood, on stderr before the program (and first in --json): the user sees what the program
    will do, and what of the request it leaves out."""
    from .planning.lexicon import load

    say = load(str(record.get("language") or "en")).say
    if record.get("read_as"):
        ui.talk(f"({record['read_as']})")
    ui.talk(f"{say('understood')}: {record['understood']}")
    if record.get("not_honoured"):
        ui.warn(f"{say('not_honoured')}: {', '.join(record['not_honoured'])}")
    for note in record.get("notes") or []:
        ui.talk(f"{say('note')}: {note}")
    if options.json_out:
        ui.out(json.dumps(record, ensure_ascii=False))
    log(options, "plan", record)


def run_remembered(intent: str, planned: PlannedProgram, options: TraceOptions, ui: UI) -> TraceResult | None:
    """Run a program remembered for this request (program_cache.py), as the pipeline would run it; None when
    it does not load any more (the caller plans the request anew)."""
    from . import safety, timings
    from .run import LoadFailed

    measure = timings.begin()
    try:
        safety.preflight(options.backend)
        check_settings(options, ui)
        timings.mark("preflight")
        log(options, "intent", intent)
        check_pid(planned.pid)
        timings.mark("plan")
        try:
            outcome = show_and_run(planned, options, ui, None)
        except LoadFailed as exc:
            timings.mark("load")
            ui.warn(f"(the program remembered for this request does not load any more: {exc.failure.summary()}; "
                    "planning it again)")
            return None
        if outcome is None:
            return TraceResult(ExitCode.OK, None, planned.program)
        return finish(outcome, planned, options, ui)
    finally:
        timings.end(measure)


def finish(outcome: RunOutcome, planned: PlannedProgram, options: TraceOptions, ui: UI) -> TraceResult:
    """The result of a run that loaded: its exit status, or the error that says how it went wrong."""
    spec = None if isinstance(planned.spec, dict) else planned.spec
    if options.dry_run:
        ui.talk(f"The program loads and attaches on this kernel ({planned.program.backend}).")
        return TraceResult(ExitCode.OK, spec, planned.program, planned=planned, outcome=outcome)
    if outcome.output_error:
        raise GpttraceError(f"cannot write the output: {outcome.output_error}",
                            "free some space, or send the output somewhere else", ExitCode.TRACE_FAILED)
    if outcome.interrupted:
        return TraceResult(ExitCode.INTERRUPTED, spec, planned.program, events=outcome.events, planned=planned,
                           outcome=outcome)
    if outcome.crashed:
        raise GpttraceError(outcome.crashed, "see the messages above" + _nothing_left(planned.program),
                            ExitCode.TRACE_FAILED)
    return TraceResult(ExitCode.OK, spec, planned.program, events=outcome.events, planned=planned, outcome=outcome)


def max_seconds(options: TraceOptions, ui: UI) -> float | None:
    """The run time of a trace without -d/-c: --max-seconds, GPTTRACE_MAX_SECONDS, or 600 s off a terminal."""
    if options.max_seconds is not None:
        return options.max_seconds or None
    if os.environ.get("GPTTRACE_MAX_SECONDS"):
        return _env_limit("GPTTRACE_MAX_SECONDS", "seconds", "no limit")
    return None if ui.interactive else DEFAULT_NONINTERACTIVE_SECONDS


def max_event_rate() -> float | None:
    if not os.environ.get("GPTTRACE_MAX_EVENT_RATE"):
        return DEFAULT_MAX_EVENT_RATE
    return _env_limit("GPTTRACE_MAX_EVENT_RATE", "events per second", "no cap")


def _env_limit(name: str, unit: str, zero: str) -> float | None:
    """A limit set in the environment: a positive number, or 0 for none (None)."""
    text = os.environ[name]
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UsageError(f"{name}={text} is not a number of {unit}", f"set it to a number (0 for {zero})") from None
    return value if value > 0 else None


def log(options: TraceOptions, what: str, value: Any) -> None:
    """Into the session log, when there is one; a log never stops a trace."""
    session_log = options.session_log
    fn = getattr(session_log, what, None) if session_log is not None else None
    if fn is None:
        return
    try:
        fn(value)
    except Exception:
        pass


def spec_json(spec: ProgramSpec | dict[str, Any]) -> str:
    """The spec as --show-spec prints it."""
    if isinstance(spec, dict):
        return json.dumps(spec, indent=2, ensure_ascii=False)
    return spec.model_dump_json(indent=2, exclude_none=True)


def _nothing_left(program: RenderedProgram) -> str:
    """'nothing is left attached' when that is sure: probes and bpf links (XDP, tcx) go when the tracer's
    descriptors close, however it ended; a tc program on a kernel without tcx is a clsact filter, which would
    stay (the program says so when it falls back to one), so nothing is claimed for tc programs."""
    return "" if "attach_tc(" in program.text else "; nothing is left attached"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def save_program(program: RenderedProgram, path: str, ui: UI) -> None:
    from . import safefs

    try:  # a new file renamed over the name: a symlink planted there is replaced, never followed
        safefs.write_output(path, program.text)
    except safefs.UnsafePath as exc:
        raise GpttraceError(f"not writing {path}: {exc}", "write it in a folder that only root can write",
                            ExitCode.USAGE) from None
    except OSError as exc:
        raise GpttraceError(f"cannot write {path}: {exc.strerror}", "choose another -o path", ExitCode.USAGE) from None
    ui.talk(f"(program saved to {path})")
