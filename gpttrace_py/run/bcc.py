"""Run a rendered BCC program: a Python program executed by the interpreter that has BCC's module.

The program prints bpftrace-compatible JSON records with ``--records``, so the same Printer formats its
output. It is started through ``bcc_cache.py`` (same interpreter), which reuses the compiled bytecode of an
identical earlier program (see there); ``GPTTRACE_BCC_CACHE=0`` turns that off.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import ExitCode, GpttraceError
from ..kernel.features import find_bcc_python
from ..render.program import RenderedProgram
from .failure import LoadFailure, clean_stderr
from .process import RunOptions, RunOutcome, run_tracer
from .records import Printer

LAUNCHER = Path(__file__).with_name("bcc_cache.py")

_CLANG = re.compile(r"^/virtual/main\.c:(?P<line>\d+):(?P<col>\d+): (?P<level>error|fatal error): (?P<msg>.*)$")
_OURS = re.compile(r"^load failed \((?P<stage>\w+)\): (?P<msg>.*)$")
_VERIFIER_NOISE = re.compile(r"^(\d+: |; |processed \d+ insns|HINT: |bpf: Failed to load program|from \d+ to \d+|"
                             r"func#\d|last_idx|regs=|parent didn't|Live regs|verification time|stack depth)")
_CLANG_WARNING = re.compile(r"^\S+:\d+:\d+: warning: ")
_CARET = re.compile(r"^\s*[\^~]+\s*$")
BCC_NOISE = (
    re.compile(r"^In file included from "),
    re.compile(r"^\d+ warnings? generated\.$"),
    re.compile(r"warning: "),
)


def cache_dir() -> Path | None:
    from .. import paths, speedups

    if not speedups.enabled() or os.environ.get("GPTTRACE_BCC_CACHE", "1").lower() in ("0", "no", "off", "false"):
        return None
    return paths.cache_dir() / "bcc"


def command(python: str, program_path: str, cache: Path | None) -> list[str]:
    """The child's argv: the program under the cache launcher (or alone), printing JSON records.

    ``-I`` (isolated: no script directory, PYTHON* variables or user site on the path) because this runs as
    root; ``-B`` writes no bytecode files."""
    if cache is not None and LAUNCHER.exists():
        return [python, "-I", "-B", str(LAUNCHER), "--cache-dir", str(cache), program_path, "--records"]
    return [python, "-I", "-B", program_path, "--records"]


def run(program: RenderedProgram, options: RunOptions, write: Callable[[str], None],
        warn: Callable[[str], None]) -> RunOutcome:
    python = find_bcc_python()
    if python is None:
        raise GpttraceError("BCC's Python module is not installed (no Python interpreter here can import bcc)",
                            "apt-get install -y python3-bpfcc (or point GPTTRACE_BCC_PYTHON at a Python that has it)",
                            ExitCode.USAGE)
    with tempfile.TemporaryDirectory(prefix="gpttrace-bcc-") as tmp:  # private (0700)
        path = os.path.join(tmp, "program.py")
        with open(path, "w") as fh:
            fh.write(program.text)
        printer = Printer(program.layout, write, json_mode=options.json, warn=_quiet(warn))
        def parse(stderr: str, rc: int | None) -> LoadFailure:
            return parse_bcc_error(stderr, rc, program_text=program.text)

        if getattr(options, "tracer_name", "") is None:  # messages say "the BCC program", not "python3"
            options = dataclasses.replace(options, tracer_name="the BCC program")
        return run_tracer(command(python, path, cache_dir()), printer, options, parse, _quiet(warn))


def _quiet(warn: Callable[[str], None]) -> Callable[[str], None]:
    """Drop clang's warnings (kernel headers cause some on every compile) with the source and caret lines
    clang prints under each."""
    state = {"snippet": 0}

    def inner(line: str) -> None:
        if any(p.search(line) for p in BCC_NOISE):
            state["snippet"] = 2 if _CLANG_WARNING.search(line) else 0
            return
        if state["snippet"]:
            state["snippet"] -= 1
            if state["snippet"] == 1 or _CARET.match(line):
                return
        warn(line)

    return inner


def _c_offset(text: str) -> int:
    """Lines of the program file before line 1 of the C text (clang numbers lines of the C text)."""
    marker = 'BPF_TEXT = r"""'
    at = text.find(marker)
    return text[:at].count("\n") if at >= 0 else 0


def parse_bcc_error(stderr: str, returncode: int | None, c_line_offset: int | None = None,
                    program_text: str | None = None) -> LoadFailure:
    """What went wrong, from the stderr of a BCC program that exited before it was attached.

    stage: 'compile' (clang's errors, with the line in the program file and the column), 'verifier' (the
    kernel refused a function; the log is the verifier's), 'attach' (a probe, interface or library could not
    be attached), else 'start'."""
    lines = [ln for ln in clean_stderr(stderr) if not any(p.search(ln) for p in BCC_NOISE[:2])]
    log = "\n".join(lines)
    ours = next((m for m in map(_OURS.match, lines) if m), None)
    at = next((i for i, ln in enumerate(lines) if _CLANG.match(ln)), None)
    if at is not None:
        clang = _CLANG.match(lines[at])
        assert clang is not None
        source = lines[at + 1] if at + 1 < len(lines) else None
        line = _program_line(int(clang.group("line")), source, c_line_offset, program_text)
        return LoadFailure(backend="bcc", stage="compile", message=clang.group("msg"), line=line,
                           column=int(clang.group("col")), log=log[-4000:])
    if ours is not None:
        stage, message = ours.group("stage"), ours.group("msg")
        if stage == "verifier":
            reason = verifier_reason(lines)
            if reason and reason not in message:
                message = f"{reason} ({message.split(':', 1)[0]})"
        return LoadFailure(backend="bcc", stage=stage, message=message, log=log[-4000:])
    if any("Failed to load BPF program" in ln or "bpf: Failed to load program" in ln for ln in lines):
        reason = verifier_reason(lines) or "the kernel refused to load the program"
        return LoadFailure(backend="bcc", stage="verifier", message=reason, log=log[-4000:])
    for ln in reversed(lines):
        if ln.startswith(("Exception:", "OSError:", "ModuleNotFoundError:", "ImportError:")):
            stage = "attach" if "attach" in ln.lower() else "start"
            return LoadFailure(backend="bcc", stage=stage, message=ln.split(":", 1)[1].strip(), log=log[-4000:])
    message = lines[-1] if lines else f"the BCC program exited with status {returncode} before attaching"
    return LoadFailure(backend="bcc", stage="start", message=message, log=log[-4000:])


def _program_line(c_line: int, source: str | None, offset: int | None, program_text: str | None) -> int:
    """The line of the program file that clang's line ``c_line`` of /virtual/main.c is.

    BCC inserts the argument struct of each tracepoint into the C text before clang sees it, so clang's
    numbers run ahead of the program's; clang prints the offending source line under the error, and that line
    is looked up in the program (the nearest copy before clang's number wins)."""
    if offset is None:
        offset = _c_offset(program_text) if program_text else 0
    guess = c_line + offset
    if program_text and source is not None and source.strip():
        found = [i + 1 for i, ln in enumerate(program_text.splitlines()) if ln == source]
        before = [n for n in found if n <= guess]
        if before:
            return before[-1]
        if found:
            return found[0]
    return guess


def verifier_reason(lines: list[str]) -> str | None:
    """The verifier's own complaint: the last log line that is not an instruction, a source line or a note."""
    start = next((i for i, ln in enumerate(lines) if ln.startswith("bpf: Failed to load program")), None)
    if start is None:
        return None
    reason = None
    for ln in lines[start + 1:]:
        if ln.startswith("processed ") or ln.startswith("load failed"):
            break
        if ln.strip() and not _VERIFIER_NOISE.match(ln.strip()):
            reason = ln.strip()
    return reason
