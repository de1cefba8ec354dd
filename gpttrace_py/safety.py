"""Refuse programs that can change the system unless the user asked for it with --unsafe.

The check reads the rendered program text, not the spec: whatever produced the text (a planner, a
template, a hand edit), a call that writes user memory, sends signals, overrides return values or runs
commands is found here.
"""

from __future__ import annotations

import re

from .errors import ExitCode, GpttraceError

UNSAFE_CALLS = {
    "bpftrace": {
        "system": "runs a shell command for each event",
        "signal": "sends a signal to the traced process",
        "override": "changes a kernel function's return value",
        "unwatch": "changes watchpoints",
    },
    "bcc": {
        "bpf_override_return": "changes a kernel function's return value",
        "bpf_send_signal": "sends a signal to the traced process",
        "bpf_send_signal_thread": "sends a signal to the traced thread",
        "bpf_probe_write_user": "writes into the traced process's memory",
        "os.system": "runs a shell command",
        "subprocess": "runs commands",
    },
}


def _strip_strings_and_comments(text: str, backend: str) -> str:
    text = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)
    if backend == "bpftrace":
        text = re.sub(r"//[^\n]*", "", text)
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    else:
        text = re.sub(r"(?m)^\s*#[^\n]*", "", text)
        text = re.sub(r"//[^\n]*", "", text)
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return text


def unsafe_uses(text: str, backend: str) -> list[tuple[str, str]]:
    """(call, what it does) for each unsafe capability the program text uses."""
    code = _strip_strings_and_comments(text, backend)
    found = []
    for name, why in UNSAFE_CALLS.get(backend, {}).items():
        pattern = rf"(?<![\w.]){re.escape(name)}\s*\(" if "." not in name and name != "subprocess" else rf"\b{re.escape(name)}\b"
        if re.search(pattern, code):
            found.append((name, why))
    if backend == "bpftrace" and re.search(r"(?m)^\s*#!.*--unsafe|\s--unsafe\b", code):
        found.append(("--unsafe", "asks bpftrace for unsafe mode"))
    return found


def check(text: str, backend: str, allow_unsafe: bool) -> list[tuple[str, str]]:
    uses = unsafe_uses(text, backend)
    if uses and not allow_unsafe:
        what = "; ".join(f"{name}() {why}" for name, why in uses)
        raise GpttraceError(f"refusing to run a program that changes the system: {what}",
                            "read the program, then pass --unsafe if that is what you want", ExitCode.USAGE)
    return uses
