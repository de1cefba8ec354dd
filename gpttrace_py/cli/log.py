"""``gpttrace log``: past sessions (chat, and one-shot runs that keep a log), and one session in full."""

from __future__ import annotations

import click


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many sessions to list.")
@click.pass_context
def log(ctx: click.Context, limit: int) -> None:
    """List past sessions: time, turns, first intent. `gpttrace log show ID` shows one."""
    if ctx.invoked_subcommand is not None:
        return
    from ..sessionlog import sessions, sessions_dir
    from ..terminal import escape

    found = sessions()
    if not found:
        click.echo(f"No sessions logged yet (they go to {sessions_dir()}).", err=True)
        return
    click.echo(f"{'#':>3}  {'ID':<19} {'STARTED':<19} {'MODE':<5} {'TURNS':>5} {'RUNS':>4}  FIRST INTENT")
    for i, s in enumerate(found[:limit], 1):
        started = s.started.replace("T", " ")[:19]
        first = (s.first_intent or "-").replace("\n", " ")
        if len(first) > 60:
            first = first[:57] + "..."
        click.echo(escape(f"{i:>3}  {s.id:<19} {started:<19} {s.mode:<5} {s.turns:>5} {s.runs:>4}  {first}"))
    if len(found) > limit:
        click.echo(f"({len(found) - limit} older sessions not shown; -n to see more)", err=True)


@log.command("show")
@click.argument("ident", metavar="ID", default="last")
@click.option("--json", "as_json", is_flag=True, help="The raw records, one JSON object per line.")
@click.option("--programs/--no-programs", default=True, show_default=True, help="Show the program texts.")
def show(ident: str, as_json: bool, programs: bool) -> None:
    """Show session ID (an id, a unique prefix, a number from the listing, or `last`)."""
    import json

    from ..errors import UsageError
    from ..sessionlog import find

    found = find(ident)
    if found is None:
        raise UsageError(f"no session {ident!r}", "run `gpttrace log` to list them")
    from ..terminal import escape

    if as_json:
        for rec in found.records:
            click.echo(json.dumps(rec, ensure_ascii=False))  # escapes control characters itself
        return
    for line in render(found.records, programs=programs):
        click.echo(escape(line))  # traced data and model text are data: no escape sequence reaches the terminal


@log.command("path")
def path() -> None:
    """Print the folder that holds the session logs."""
    from ..sessionlog import sessions_dir

    click.echo(str(sessions_dir()))


def render(records: list[dict], programs: bool = True) -> list[str]:
    """A session as a readable transcript."""
    out: list[str] = []
    for r in records:
        kind = r.get("kind")
        t = str(r.get("t", ""))[11:19]
        if kind == "session":
            extra = ", ".join(f"{k} {r[k]}" for k in ("planner", "backend") if r.get(k))
            out.append(f"Session started {str(r.get('t', ''))[:19].replace('T', ' ')} ({r.get('mode', '?')}"
                       f"{', ' + extra if extra else ''})")
        elif kind == "intent":
            mode = r.get("mode")
            out.append("")
            out.append(f"{t} > {r.get('text', '')}" + (f"   [{mode}]" if mode else ""))
        elif kind == "command":
            out.append(f"{t} > /{r.get('name')}" + (f" {r['arg']}" if r.get("arg") else ""))
        elif kind == "spec":
            spec = r.get("spec") or {}
            changes = r.get("changes") or []
            out.append(f"         program: {spec.get('title', '?')}" + (f"  ({'; '.join(changes)})" if changes else "")
                       + ("  [revised]" if r.get("mode") == "revised" else ""))
        elif kind == "program":
            if programs:
                out.append(f"         --- {r.get('backend')} ---")
                out += [f"         {ln}" for ln in str(r.get("text", "")).rstrip("\n").splitlines()]
                out.append("         ---")
        elif kind == "error":
            out.append(f"{t} ! {r.get('message')}" + (f" ({r['hint']})" if r.get("hint") else ""))
        elif kind == "run_start":
            dur = f" for {r['duration']:g} s" if r.get("duration") else ""
            out.append(f"{t} run {r.get('title', '')!r} ({r.get('backend')}){dur}")
        elif kind == "output":
            out.append(f"         | {r.get('line', '')}")
        elif kind == "run_end":
            tail = r.get("tail") or []
            if tail:
                out.append(f"         | ... ({r.get('lines')} lines in all; the last {len(tail)}:)")
                out += [f"         | {ln}" for ln in tail]
            out.append(f"{t} run ended ({r.get('outcome')}): {r.get('events', 0)} events in {r.get('seconds', '?')} s")
        elif kind == "explain":
            out += [f"         {ln}" for ln in str(r.get("text", "")).splitlines()]
        elif kind == "saved":
            out.append(f"{t} saved {r.get('what')} to {r.get('path')}")
        elif kind == "quit":
            out.append(f"{t} (left)")
        elif kind in ("declined",):
            out.append(f"{t} (not run)")
    return out
