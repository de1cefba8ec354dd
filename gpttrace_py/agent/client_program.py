"""A bpftrace program written by the client, made ready to run through the same gates as a planned one.

What it passes: a size bound, bpftrace's structure (bpftrace_outline: every block, string and
comment closed), the unsafe-call check (safety.check, refused unless the server was started with
--unsafe), and then the load itself (the verifier) when it runs. BCC programs are refused: a BCC program
is a Python program, and running a client's Python as root is running anything at all.

A client is not the person at the terminal, so two things a root user may do in their own program are
refused from a client unless the server was started with --unsafe: ``cat()``, which prints any file, and
including anything but a system header (``#include <linux/sched.h>``): clang quotes an included file's
lines in its errors, and those come back to the client.

To know when every probe is attached (when its events start to count), the program prints a line no
traced data can forge as the last thing BEGIN does: appended to its BEGIN block, or a BEGIN block of its
own (bpftrace runs BEGIN once the other probes are attached).
"""

from __future__ import annotations

import os
import re

from .. import safety
from ..errors import UsageError
from ..lang.bpftrace_lexer import Outline, Token, bpftrace_outline, bpftrace_tokens
from ..render.program import ProgramLayout, RenderedProgram
from ..service.options import PlannedProgram

MAX_PROGRAM_BYTES = 64 * 1024
READY_PREFIX = "gpttrace-ready-"
OVERLOAD_HINT = "count in the kernel instead of printing each event, e.g. @[comm] = count()"
READS_FILES = {"cat": "reads any file on this machine, as root, for the client"}
_SYSTEM_HEADER = re.compile(r"#\s*include\s*<(?!/)(?![^>]*\.\.)[A-Za-z0-9_][A-Za-z0-9_./+-]*\.h>\s*$")


def prepare(text: str, allow_unsafe: bool) -> PlannedProgram:
    """The client's program, ready for execute.show_and_run; UsageError says why it is refused."""
    if len(text.encode("utf-8", "replace")) > MAX_PROGRAM_BYTES:
        raise UsageError(f"the program is longer than {MAX_PROGRAM_BYTES} bytes", "send a shorter program")
    if "\x00" in text:
        raise UsageError("the program contains a NUL character")
    if _looks_like_bcc(text):
        raise UsageError("only bpftrace programs run from a client: a BCC program is Python, run as root",
                         "send a bpftrace program, or a request in words (the planner writes BCC when needed)")
    outline = bpftrace_outline(text)
    if not outline.ok:
        raise UsageError(f"not a bpftrace program gpttrace can read: {'; '.join(outline.errors[:3])}",
                         "check its braces, quotes and comments")
    if not outline.blocks:
        raise UsageError("the program has no probe block")
    safety.check(text, "bpftrace", allow_unsafe)
    reads = file_reads(outline)
    if reads and not allow_unsafe:
        raise UsageError(f"refusing a client's program that {safety.describe(reads)}",
                         "only the person who starts this server can allow it (gpttrace mcp --unsafe)")
    ready = READY_PREFIX + os.urandom(8).hex()
    marked = with_ready_line(text, ready)
    program = RenderedProgram("bpftrace", marked, ProgramLayout(ready=ready))
    return PlannedProgram(program=program, spec={"title": "the client's program"}, source="the client",
                          overload_hint=OVERLOAD_HINT)


def file_reads(outline: Outline) -> list[tuple[str, str]]:
    """(what, why) for each way the program reads files of this machine other than system headers."""
    found = [(name, why) for name, why in READS_FILES.items() if name in outline.calls]
    for directive in outline.directives:
        if re.match(r"#\s*include\b", directive) and not _SYSTEM_HEADER.match(directive):
            found.append((directive.strip()[:80], "includes a file other than a system header (its lines come back "
                                                  "in error messages)"))
    return found


def with_ready_line(text: str, line: str) -> str:
    """The program printing ``line`` last in BEGIN. Refused when BEGIN shares its block with other probes."""
    statement = f'\tprintf("{line}\\n");\n'
    tokens = [t for t in bpftrace_tokens(text) if t.kind not in ("ws", "comment", "directive")]
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.kind == "punct" and tok.text == "{":
            depth += 1
        elif tok.kind == "punct" and tok.text == "}":
            depth -= 1
        if depth != 0 or tok.kind != "ident" or tok.text != "BEGIN":
            continue
        before = tokens[i - 1].text if i else ""
        after = tokens[i + 1].text if i + 1 < len(tokens) else ""
        if before == "," or after == ",":
            raise UsageError("BEGIN shares a block with other probes", "give BEGIN a block of its own")
        if after != "{":
            raise UsageError("BEGIN has a predicate or no block", "write BEGIN { ... }")
        close = _matching_brace(tokens, i + 1)
        return text[:close] + "\n" + statement + text[close:]
    return text.rstrip("\n") + "\n\nBEGIN\n{\n" + statement + "}\n"


def _matching_brace(tokens: list[Token], open_at: int) -> int:
    depth = 0
    for tok in tokens[open_at:]:
        if tok.kind == "punct" and tok.text == "{":
            depth += 1
        elif tok.kind == "punct" and tok.text == "}":
            depth -= 1
            if depth == 0:
                return tok.pos
    raise UsageError("BEGIN's block is not closed")


def _looks_like_bcc(text: str) -> bool:
    from ..explain import detect_backend

    return detect_backend(text) == "bcc"
