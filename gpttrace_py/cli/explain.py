"""``gpttrace explain FILE``: walk through any bpftrace script or BCC program and teach how it works."""

from __future__ import annotations

import sys

import click


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
        text, path = sys.stdin.read(), "-"
    else:
        try:
            with open(file, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError as exc:
            raise UsageError(f"cannot read {file}: {exc.strerror}") from None
        path = file
    if not text.strip():
        raise UsageError("the program is empty")
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
