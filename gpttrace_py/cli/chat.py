"""``gpttrace chat``: plan a program per message, refine it in words, run it with /run."""

from __future__ import annotations

import click

from .options import Seconds, planner_options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@planner_options
@click.option("-d", "--duration", type=Seconds(0.1), metavar="SECONDS",
              help="Stop each run after SECONDS (default: run until /stop or Ctrl-C).")
@click.option("--no-log", is_flag=True, help="Do not keep a session log.")
def chat(offline: bool, no_fallback: bool, model: str | None, backend: str, yes: bool, duration: float | None,
         no_log: bool) -> None:
    """Talk to gpttrace: each message plans (or refines) a program and shows it; /run runs it.

    \b
      gpttrace chat --offline
      > trace files opened by cat
      > only for pid 1234
      > /run
      > count by process instead
      > /explain

    Type /help in the chat for the commands. Sessions are logged; see `gpttrace log`.
    """
    from ..chat import ChatSession, ChatUI
    from ..chat.repl import run_lines, run_repl, stdin_is_terminal
    from ..planning.select import get_planner
    from ..sessionlog import SessionLog

    planner = get_planner(offline=offline, model=model, fallback=not no_fallback)
    log = SessionLog(mode="chat", enabled=not no_log, planner=planner.name, backend=backend,
                     yes=yes)
    ui = ChatUI(log=log)
    session = ChatSession(planner, ui, backend=backend, yes=yes, log=log)
    session.duration = duration
    if stdin_is_terminal():
        code = run_repl(session)
    else:
        import sys

        if not yes:
            session.confirm = lambda question: False
            ui.warn("(no terminal: /run only runs with -y)")
        code = run_lines(session, sys.stdin)
    if log.path is not None:
        ui.talk(f"(session logged: gpttrace log show {log.id})")
    if code:
        raise SystemExit(code)
