"""``gpttrace [OPTIONS] "INTENT"``: plan a program, show it, run it, stream its events."""

from __future__ import annotations

from typing import Any

import click

from .options import Seconds, planner_options, run_options


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
    from ..execute import TraceOptions, parse_command
    from ..ui import UI

    text = " ".join(intent)
    if backend != "bcc" and not explain:
        from ..run import bpftrace

        bpftrace.prestart(unsafe)  # loads its libraries while this process plans
    options = TraceOptions(backend=backend, retries=retries, yes=yes, command=parse_command(command),
                           duration=duration, json_out=json_out, dry_run=dry_run, show_spec=show_spec, output=output,
                           explain=explain, unsafe=unsafe, max_seconds=max_seconds,
                           session_log=None if no_log else _session_log())
    ui = UI()
    try:
        result = _remembered(text, offline, options, ui)
        if result is None:
            from ..pipeline import trace as run_trace
            from ..planning.select import get_planner

            planner = get_planner(offline=offline, model=model, fallback=not no_fallback)
            result = run_trace(text, planner, options, ui)
            _remember(text, offline, options, result)
    except GpttraceError as exc:
        if options.session_log is not None:
            options.session_log.error(exc.message, exc.hint)
        raise
    if result.code != ExitCode.OK:
        raise SystemExit(int(result.code))


def _cache_key(text: str, offline: bool, options: Any) -> tuple[Any, dict[str, Any]] | None:
    """Where this request's program is remembered, when it is one the offline planner plans (program_cache.py)."""
    from .. import program_cache
    from ..planning.select import llm_configured

    if not program_cache.enabled() or options.explain or not (offline or not llm_configured()):
        return None
    cache = program_cache.ProgramCache()
    return cache, cache.key(text, options.backend)


def _remembered(text: str, offline: bool, options: Any, ui: Any) -> Any:
    """The run of the program remembered for this request; None when there is none (or it no longer loads)."""
    from ..execute import run_remembered

    found = _cache_key(text, offline, options)
    if found is None:
        return None
    cache, key = found
    planned = cache.get(key)
    if planned is None:
        return None
    result = run_remembered(text, planned, options, ui)
    if result is None:
        cache.forget(key)
    return result


def _remember(text: str, offline: bool, options: Any, result: Any) -> None:
    """After a run whose program loaded: remember it for the next time the same request comes."""
    if result.planned is None or result.planned.source != "offline":
        return
    found = _cache_key(text, offline, options)
    if found is not None:
        cache, key = found
        cache.put(key, result.planned)


def _session_log():
    """A session log of this run (``gpttrace log``), when the session log module is there."""
    try:
        from ..sessionlog import SessionLog
    except ImportError:
        return None
    return SessionLog(mode="trace")
