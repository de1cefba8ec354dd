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
PERF_RB_BYTES = 16 << 20  # bpftrace's perf ring buffers, all CPUs together; BPFTRACE_PERF_RB_PAGES overrides it


def perf_rb_pages(cpus: int | None = None) -> int:
    """Pages per CPU for bpftrace's perf ring buffers: a power of two from 64 (bpftrace's default, 256 KiB) to
    2048 (8 MiB), within PERF_RB_BYTES in all. gpttrace parses every record (JSON) before printing it, so a
    flood backs up into these buffers sooner than with bpftrace alone: with 64 pages, --json lost two thirds
    of a 200,000-line stream that bpftrace alone delivered whole (bench/results.md, streaming)."""
    per_cpu = PERF_RB_BYTES // 4096 // max(1, cpus or os.cpu_count() or 1)
    pages = max(64, min(2048, per_cpu))
    return 1 << (pages.bit_length() - 1)


def without_kernel_headers(text: str, env: dict[str, str]) -> bool:
    """Should bpftrace leave the kernel headers out? When it finds them (/lib/modules/RELEASE/build, where
    BCC needs them), it parses them with clang for every program that reads a tracepoint's fields: about
    40 ms of each start. With BTF it takes the kernel's types from there, so only a program that includes
    a header needs them. An empty BPFTRACE_KERNEL_SOURCE tells bpftrace 0.17 that there are none; a value the
    user set is kept."""
    return ("BPFTRACE_KERNEL_SOURCE" not in env and "#include" not in text
            and os.path.exists("/sys/kernel/btf/vmlinux"))


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
        env.setdefault("BPFTRACE_PERF_RB_PAGES", str(perf_rb_pages()))
        if without_kernel_headers(program.text, env):
            env["BPFTRACE_KERNEL_SOURCE"] = ""
        argv = [bpftrace, "-f", "json"] + (["--unsafe"] if options.unsafe else []) + [path]
        return run_tracer(argv, printer, options, parse_bpftrace_error, warn, env=env)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
