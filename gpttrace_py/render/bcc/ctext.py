"""Pieces of the C text of a BCC program: its limits, the error a spec it cannot express raises, and the
small text helpers every part of the C generator uses (comments safe inside the Python string, parentheses,
indentation, finding the C text in a rendered program)."""

from __future__ import annotations

from ..escape import Code, comment

STRLEN = 128  # bytes kept of a text value (gpttrace runs bpftrace with BPFTRACE_STRLEN=128 too)
COMM_LEN = 16
MAP_ENTRIES = 10240
STACK_ENTRIES = 16384
RINGBUF_PAGES = 64  # 256 KiB shared by all CPUs
PERF_PAGES = 64  # per CPU
JOIN_ARGS = 8  # join(argv): at most this many arguments ...
JOIN_ARG_LEN = 64  # ... of at most this many bytes each
PT_REGS_ARGS = 6  # arguments passed in registers (x86-64, arm64 has 8 but keep one rule)

TASK_BUILTINS = ("pid", "tid", "uid", "gid", "comm", "cgroup", "kstack", "ustack")


class RenderError(ValueError):
    """A spec the BCC backend cannot express; the message says why (and what to write instead)."""


def c_comment(text: str, limit: int = 200) -> Code:
    """Text for a // comment inside the C text, which sits in a Python r\"\"\"...\"\"\" string: no quotes (they could
    end the string) and no backslashes (one at the end of the line would continue the comment)."""
    return comment(text.replace('"', "'").replace("\\", "/"), limit)


def wrap(text: str) -> str:
    simple = text.replace("_", "").replace("->", "").replace(".", "").isalnum()
    return text if simple or (text.startswith("(") and text.endswith(")") and _balanced(text[1:-1])) else f"({text})"


def _balanced(text: str) -> bool:
    depth = 0
    for c in text:
        depth += c == "("
        depth -= c == ")"
        if depth < 0:
            return False
    return depth == 0


def indent(lines: list[str], n: int = 4) -> list[str]:
    pad = " " * n
    return [ln if ln.startswith("#") else pad + ln for ln in lines]


def c_text_of(program_text: str) -> str:
    """The C text inside a rendered BCC program (between the BPF_TEXT quotes)."""
    start = program_text.index('BPF_TEXT = r"""') + len('BPF_TEXT = r"""')
    return program_text[start:program_text.index('"""', start)]


def c_first_line(program_text: str) -> int:
    """The line of the program file holding line 1 of the C text."""
    before = program_text[: program_text.index('BPF_TEXT = r"""')]
    return before.count("\n") + 1
