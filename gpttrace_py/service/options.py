"""What a trace is asked to do (TraceOptions), the program it runs (PlannedProgram) and how it went (TraceResult),
with the checks of settings made before anything runs.

Nothing here imports the spec models or the templates: a program remembered from an earlier run of the same
request (remember.py) is run without them, in a fraction of the time.
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import ExitCode, GpttraceError, UsageError
from ..render.program import RenderedProgram
from ..run import RunOptions

if TYPE_CHECKING:
    from ..run import RunOutcome
    from ..run.failure import LoadFailure
    from ..sessionlog import SessionLog
    from ..spec import ProgramSpec
    from ..ui import UI

DEFAULT_NONINTERACTIVE_SECONDS = 600.0  # run time of a one-shot nobody can Ctrl-C (GPTTRACE_MAX_SECONDS, --max-seconds)
DEFAULT_MAX_EVENT_RATE = 1000.0  # events/s a terminal is shown in a flood (GPTTRACE_MAX_EVENT_RATE; 0: no cap)


@dataclass
class TraceOptions:
    """How to plan, show and run one trace. The run settings are the runner's own RunOptions (``run``); the
    keywords command, duration, json_out, dry_run, stop_event and session_log fill them in."""

    backend: str = "auto"
    retries: int = 3
    yes: bool = False
    show_spec: bool = False
    output: str | None = None
    explain: bool = False
    unsafe: bool = False
    max_seconds: float | None = None  # run time without -d/-c (0: none); default GPTTRACE_MAX_SECONDS, 600 s off a TTY
    command: InitVar[list[str] | None] = None
    duration: InitVar[float | None] = None
    json_out: InitVar[bool] = False
    dry_run: InitVar[bool] = False
    stop_event: InitVar[threading.Event | None] = None  # lets a REPL stop a running trace
    session_log: InitVar[SessionLog | None] = None  # the runner appends events and aggregates as they arrive
    run: RunOptions = field(init=False)

    def __post_init__(self, command: list[str] | None, duration: float | None, json_out: bool, dry_run: bool,
                      stop_event: threading.Event | None, session_log: SessionLog | None) -> None:
        self.run = RunOptions(command=command, duration=duration, json=json_out, dry_run=dry_run,
                              stop_event=stop_event, session_log=session_log)

    @property
    def log(self) -> SessionLog | None:
        """The session log, as the service writes to it (the runner sees only its ``event``)."""
        return cast("SessionLog | None", self.run.session_log)


for _keyword in ("command", "duration", "json_out", "dry_run", "stop_event", "session_log"):
    delattr(TraceOptions, _keyword)  # the settings live in ``run``: no class default to read by mistake


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


def check_settings(options: TraceOptions, ui: UI) -> None:
    """Bad settings (GPTTRACE_MAX_SECONDS, GPTTRACE_MAX_EVENT_RATE) are usage errors before anything runs."""
    max_seconds(options, ui)
    max_event_rate()


def check_pid(pid: int | None) -> None:
    if pid is not None and not Path(f"/proc/{pid}").exists():
        raise UsageError(f"no process with pid {pid} is running",
                         "check the pid with `ps -e`, or filter by process name instead")


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


def spec_json(spec: ProgramSpec | dict[str, Any]) -> str:
    """The spec as --show-spec prints it."""
    if isinstance(spec, dict):
        return json.dumps(spec, indent=2, ensure_ascii=False)
    return spec.model_dump_json(indent=2, exclude_none=True)


def save_program(program: RenderedProgram, path: str, ui: UI) -> None:
    from .. import safefs

    try:  # a new file renamed over the name: a symlink planted there is replaced, never followed
        safefs.write_output(path, program.text)
    except safefs.UnsafePath as exc:
        raise GpttraceError(f"not writing {path}: {exc}", "write it in a folder that only root can write",
                            ExitCode.USAGE) from None
    except OSError as exc:
        raise GpttraceError(f"cannot write {path}: {exc.strerror}", "choose another -o path", ExitCode.USAGE) from None
    ui.talk(f"(program saved to {path})")
