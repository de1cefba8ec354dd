"""``gpttrace explain FILE``: walk through any bpftrace script or BCC program and teach how it works."""

from __future__ import annotations

import os
import stat
import sys

import click

MAX_PROGRAM_BYTES = 1 << 20  # a program to explain is at most 1 MiB
MAX_NESTING = 64  # brackets nested deeper than this are refused


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True), required=False)
@click.option(
    "-e",
    "--program",
    "program_text",
    metavar="PROGRAM",
    help="Explain this program text instead of a file (like bpftrace -e).",
)
@click.option(
    "--backend",
    type=click.Choice(["auto", "bpftrace", "bcc"]),
    default="auto",
    show_default=True,
    help="What the program is; auto detects it from the text.",
)
@click.option(
    "--color/--no-color", default=None, help="Rich terminal output; by default only when stdout is a terminal."
)
@click.option("--no-listing", is_flag=True, help="Do not print the program itself, only the explanation.")
@click.option("-w", "--width", type=click.IntRange(40, 400), default=None, help="Line width of the text.")
def explain(
    file: str | None, program_text: str | None, backend: str, color: bool | None, no_listing: bool, width: int | None
) -> None:
    """Explain FILE (a bpftrace script or a BCC program; - reads stdin): each probe and what fires it, the
    fields it offers on this kernel, each builtin, helper and map, the filters, the output, the overhead,
    and the lessons to read next.

    \b
      gpttrace explain /usr/sbin/opensnoop.bt
      gpttrace explain -e 'tracepoint:syscalls:sys_enter_openat { printf("%s\\n", str(args->filename)); }'
      cat tool.py | gpttrace explain -
    """
    from ..errors import UsageError

    if program_text is not None and file is not None:
        raise UsageError("give a FILE or -e PROGRAM, not both")
    if program_text is not None:
        text, path = program_text, None
    elif file is None:
        raise UsageError("nothing to explain", "gpttrace explain FILE (or - for stdin, or -e 'PROGRAM')")
    elif file == "-":
        text, path = _bounded(sys.stdin.buffer.read(MAX_PROGRAM_BYTES + 1), "stdin"), "-"
    else:
        text, path = _read_program(file), file
    if not text.strip():
        raise UsageError("the program is empty")
    _check_nesting(text)
    from ..terminal import escape

    text = escape(text, keep_newlines=True)  # an escape sequence in the file is shown, not sent to the terminal
    if color is None:
        try:
            color = sys.stdout.isatty()
        except (ValueError, AttributeError):
            color = False
    from ..explain import explain_program
    from ..kernel.catalog import Catalog

    out = explain_program(text, backend, Catalog(), color=color, path=path, listing=not no_listing, width=width)
    sys.stdout.write(out)
    sys.stdout.flush()


def _read_program(file: str) -> str:
    """A regular file's text, at most MAX_PROGRAM_BYTES (no device, FIFO or directory: they could be endless)."""
    from ..errors import UsageError

    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(f"{file} is not a regular file", "explain a program file, or - for stdin")
        return _bounded(fh.read(MAX_PROGRAM_BYTES + 1), file)


def _bounded(data: bytes, where: str) -> str:
    from ..errors import UsageError

    if len(data) > MAX_PROGRAM_BYTES:
        raise UsageError(f"{where} is larger than {MAX_PROGRAM_BYTES // 1024} KiB: not a program to explain")
    return data.decode("utf-8", "replace")


def _check_nesting(text: str) -> None:
    """Refuse brackets nested deeper than MAX_NESTING (one linear pass; the explainer is not built for it)."""
    from ..errors import UsageError

    depth = deepest = 0
    for c in text:
        if c in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in ")]}":
            depth = max(0, depth - 1)
    if deepest > MAX_NESTING:
        raise UsageError(f"the program nests brackets {deepest} deep; at most {MAX_NESTING} are explained")
