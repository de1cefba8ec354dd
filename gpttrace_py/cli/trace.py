"""``gpttrace [OPTIONS] "INTENT"``: plan a program, show it, run it, stream its events."""

from __future__ import annotations

import click

from .options import Seconds, parse_command, planner_options, run_options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("intent", nargs=-1, required=True)
@planner_options
@run_options
@click.option("--retries", type=click.IntRange(0, 10), default=3, show_default=True,
              help="How many corrected programs to try after a load failure.")
@click.option("--show-spec", is_flag=True, help="Print the program spec (JSON) on stderr.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Save the program to a file.")
@click.option("--explain", is_flag=True, help="Explain the program line by line before running it.")
@click.option("--unsafe", is_flag=True,
              help="Allow programs that change the system (signals, system(), ...). -y never implies it.")
@click.option("--max-seconds", type=Seconds(0), metavar="SECONDS",
              help="Without -d/-c, stop after SECONDS (0: never). Default: GPTTRACE_MAX_SECONDS, else 600 when "
                   "no terminal is attached.")
@click.option("--no-log", is_flag=True, help="Do not keep a session log of this run.")
def trace(intent: tuple[str, ...], offline: bool, no_fallback: bool, model: str | None, backend: str, yes: bool,
          command: str | None,
          duration: float | None, json_out: bool, dry_run: bool, retries: int, show_spec: bool, output: str | None,
          explain: bool, unsafe: bool, max_seconds: float | None, no_log: bool) -> None:
    """Trace what INTENT asks for, e.g. "trace files opened by nginx"."""
    from ..errors import ExitCode, GpttraceError
    from ..planning.select import remembering_planner
    from ..service.options import TraceOptions
    from ..service.trace import TraceService
    from ..sessionlog import SessionLog
    from ..ui import UI

    text = " ".join(intent)
    session_log = None if no_log else SessionLog(mode="trace")
    options = TraceOptions(backend=backend, retries=retries, yes=yes, command=parse_command(command),
                           duration=duration, json_out=json_out, dry_run=dry_run, show_spec=show_spec, output=output,
                           explain=explain, unsafe=unsafe, max_seconds=max_seconds, session_log=session_log)
    planner = remembering_planner(offline=offline, model=model, fallback=not no_fallback)
    try:
        result = TraceService(planner, options, UI()).trace(text)
    except GpttraceError as exc:
        if session_log is not None:
            session_log.error(exc.message, exc.hint)
        raise
    if result.code != ExitCode.OK:
        raise SystemExit(int(result.code))
