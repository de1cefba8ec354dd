"""Run a rendered bpftrace script."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

from ..errors import ExitCode, GpttraceError
from ..kernel.features import find_bpftrace
from ..render.program import RenderedProgram
from .failure import parse_bpftrace_error
from .process import RunOptions, RunOutcome, run_tracer
from .records import Printer

MAP_KEYS_MAX = 4096  # keys per map; BPFTRACE_MAP_KEYS_MAX in the environment overrides it


def run(program: RenderedProgram, options: RunOptions, write: Callable[[str], None],
        warn: Callable[[str], None]) -> RunOutcome:
    bpftrace = find_bpftrace()
    if bpftrace is None:
        raise GpttraceError("bpftrace is not installed", "apt-get install -y bpftrace (or set GPTTRACE_BPFTRACE)",
                            ExitCode.USAGE)
    fd, path = tempfile.mkstemp(prefix="gpttrace-", suffix=".bt")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(program.text)
        printer = Printer(program.layout, write, json_mode=options.json, warn=warn)
        env = dict(os.environ)
        env.setdefault("BPFTRACE_STRLEN", "128")
        env.setdefault("BPFTRACE_MAP_KEYS_MAX", str(MAP_KEYS_MAX))  # every map is bounded (bpftrace preallocates)
        argv = [bpftrace, "-f", "json"] + (["--unsafe"] if options.unsafe else []) + [path]
        return run_tracer(argv, printer, options, parse_bpftrace_error, warn, env=env)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
