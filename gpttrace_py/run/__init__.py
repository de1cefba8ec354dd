"""Load, attach, stream and stop a rendered program."""

from __future__ import annotations

from collections.abc import Callable

from ..render.program import RenderedProgram
from .failure import LoadFailure
from .session import LoadFailed, RunOptions, RunOutcome


def run_program(program: RenderedProgram, options: RunOptions, write: Callable[[str], None],
                warn: Callable[[str], None]) -> RunOutcome:
    if program.backend == "bcc":
        from . import bcc

        return bcc.run(program, options, write, warn)
    from . import bpftrace

    return bpftrace.run(program, options, write, warn)


__all__ = ["LoadFailed", "LoadFailure", "RunOptions", "RunOutcome", "run_program"]
