"""What went wrong when a program was loaded: parsed from the tool's error output, for the user and the planner."""

from __future__ import annotations

import re
from dataclasses import dataclass

NOISE = (
    re.compile(r"couldn't set RLIMIT_MEMLOCK"),
    re.compile(r"^WARNING: Cannot parse DWARF"),
    re.compile(r"^Attaching \d+ probes?\.\.\.$"),
    re.compile(r"^\s*$"),
)
# Warnings bpftrace 0.17 gives for what works as meant, each followed by the source line and a ~~~ marker:
# comparing a string read from user memory with a literal ("str(args->filename) == \"/etc/passwd\"").
HARMLESS_WARNING = re.compile(r"^\S+:\d+:\d+(?:-\d+)?: WARNING: Addrspace mismatch$")
HARMLESS_WARNING_LINES = 3
_LOCATED = re.compile(r"^(?P<file>[^:\s]+):(?P<line>\d+):(?P<col>\d+)(?:-\d+)?: ERROR: (?P<msg>.*)$")


@dataclass
class LoadFailure:
    """One failed load: stage (parse, semantic, verifier, attach, start), message, location, full log.
    Made here from the tracer's output, never parsed from outside: a plain dataclass (the runner stays free of
    pydantic, which a remembered program runs without)."""

    backend: str
    stage: str
    message: str
    line: int | None = None
    column: int | None = None
    log: str = ""

    def summary(self) -> str:
        where = f" (line {self.line}, column {self.column})" if self.line else ""
        return f"{self.backend} {self.stage} error{where}: {self.message}"


def clean_stderr(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if not any(p.search(ln) for p in NOISE)]


class StderrFilter:
    """Which lines of the tracer's stderr, fed in order, are worth showing: not noise, and not a known harmless
    warning with the source and marker lines under it."""

    def __init__(self) -> None:
        self._skip = 0

    def __call__(self, line: str) -> bool:
        if HARMLESS_WARNING.match(line):
            self._skip = HARMLESS_WARNING_LINES
        if self._skip:
            self._skip -= 1
            return False
        return bool(clean_stderr(line))


def parse_bpftrace_error(stderr: str, returncode: int | None) -> LoadFailure:
    lines = clean_stderr(stderr)
    log = "\n".join(lines)
    line = col = None
    message = ""
    for ln in lines:
        m = _LOCATED.match(ln)
        if m:
            line, col, message = int(m.group("line")), int(m.group("col")), m.group("msg")
            break
        if "ERROR:" in ln:
            message = ln.split("ERROR:", 1)[1].strip()
            break
    if not message:
        message = lines[-1] if lines else f"bpftrace exited with status {returncode} before attaching"
    lowered = log.lower()
    if "verifier" in lowered or "error loading program" in lowered or "invalid mem access" in lowered:
        stage = "verifier"
    elif "attach" in lowered or "could not resolve symbol" in lowered or "no probes to attach" in lowered:
        stage = "attach"
    elif "syntax error" in lowered:
        stage = "parse"
    elif line is not None:
        stage = "semantic"
    else:
        stage = "start"
    return LoadFailure(backend="bpftrace", stage=stage, message=message, line=line, column=col, log=log[-4000:])
