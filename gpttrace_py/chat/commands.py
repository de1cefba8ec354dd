"""The chat's slash-commands: names, arguments and one-line help (for /help and completion)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    args: str
    help: str
    aliases: tuple[str, ...] = ()


COMMANDS: tuple[Command, ...] = (
    Command("run", "", "run the current program (streams above the prompt; /stop or Ctrl-C ends it)"),
    Command("stop", "", "stop the running trace and print its aggregates"),
    Command("show", "", "show the current program again"),
    Command("spec", "", "show the current program's spec (JSON)"),
    Command("explain", "", "explain the current program line by line"),
    Command("save", "FILE", "save the program to FILE (the spec when FILE ends in .json)"),
    Command("backend", "bpftrace|bcc|auto", "choose the program flavour"),
    Command("duration", "SECONDS|off", "stop runs after SECONDS (like \"run it for 5 seconds\")"),
    Command("examples", "[QUERY]", "search the worked examples"),
    Command("lesson", "N", "load the example of tutorial lesson N as the current program"),
    Command("new", "", "forget the current program (the next message plans a new one)"),
    Command("log", "", "where this session is logged"),
    Command("help", "", "this help"),
    Command("quit", "", "leave (Ctrl-D too)", ("exit", "q")),
)

BACKENDS = ("bpftrace", "bcc", "auto")


def lookup(name: str) -> Command | None:
    name = name.lower()
    for c in COMMANDS:
        if name == c.name or name in c.aliases:
            return c
    return None


def help_text() -> str:
    width = max(len(f"/{c.name} {c.args}".rstrip()) for c in COMMANDS)
    lines = ["Ask for a trace in words; each message plans a program and shows it without running it.",
             'Then refine it in words: "only for pid 1234", "just nginx", "make it a histogram",',
             '"in milliseconds", "add the return value", "use BCC instead", "count by process instead",',
             '"every 2 seconds", "at 99 Hz", "top 5", "run it for 5 seconds".', "", "Commands:"]
    for c in COMMANDS:
        lines.append(f"  {f'/{c.name} {c.args}'.rstrip():<{width}}  {c.help}")
    lines += ["", "Keys: Esc-Enter (or a trailing \\) for a new line; Ctrl-C cancels the line or stops a running",
              "trace; Ctrl-D leaves; Up/Down browse the history; Right accepts a suggestion; Tab completes."]
    return "\n".join(lines)
