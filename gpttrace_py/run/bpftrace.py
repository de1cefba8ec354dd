"""Run a rendered bpftrace script."""

from __future__ import annotations

import atexit
import errno
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ExitCode, GpttraceError
from ..kernel.features import find_bpftrace
from ..lang.bpftrace_lexer import top_level_blocks
from ..render.dialect import Dialect, installed
from ..render.program import RenderedProgram
from .failure import parse_bpftrace_error
from .records import Printer
from .session import RunOptions, RunOutcome, run_tracer, spawn_tracer

MAP_KEYS_MAX = 4096  # keys per map; BPFTRACE_MAP_KEYS_MAX in the environment overrides it
PERF_RB_BYTES = 16 << 20  # bpftrace's perf ring buffers, all CPUs together; BPFTRACE_PERF_RB_PAGES overrides it
# what every gpttrace program is run with, wherever it runs (here, or in a pod: fleet/k8s.py)
PROGRAM_ENV = {"BPFTRACE_STRLEN": "128", "BPFTRACE_MAP_KEYS_MAX": str(MAP_KEYS_MAX)}


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


def _env(text: str) -> dict[str, str]:
    """bpftrace's environment for a program of this ``text``."""
    env = dict(os.environ)
    for name, value in PROGRAM_ENV.items():  # BPFTRACE_MAP_KEYS_MAX: every map is bounded (bpftrace preallocates)
        env.setdefault(name, value)
    env.setdefault("BPFTRACE_PERF_RB_PAGES", str(perf_rb_pages()))
    if without_kernel_headers(text, env):
        env["BPFTRACE_KERNEL_SOURCE"] = ""
    return env


END_MARKER_PREFIX = "gpttrace-end-"


def end_marker() -> str:
    """A line for END to print last: a new one each run, so that no traced data can pass for it."""
    return END_MARKER_PREFIX + os.urandom(8).hex()


def with_end_marker(text: str, marker: str) -> str | None:
    """The program, printing ``marker`` as the last thing END does (after its aggregates), so that the runner
    knows when everything has come; None when the program has an END that is not the last block, shares its
    block, or ends on a statement without its ';'. The text shown and saved is the program without it; lines
    keep their numbers."""
    statement = f'\tprintf("{marker}\\n");\n'
    blocks, trailing = top_level_blocks(text)
    if blocks and not trailing:
        last = blocks[-1]
        if (last.probes == ("END",) and last.close is not None
                and (last.last is None or last.last.text in (";", "{", "}"))):
            return text[:last.close] + statement + text[last.close:]
    if any("END" in b.probes for b in blocks):
        return None
    return text.rstrip("\n") + "\n\nEND\n{\n" + statement + "}\n"


def _argv(bpftrace: str, unsafe: bool, path: str) -> list[str]:
    return [bpftrace, "-f", "json"] + (["--unsafe"] if unsafe else []) + [path]


@dataclass
class Prestarted:
    proc: subprocess.Popen[bytes]
    argv: list[str]
    env: dict[str, str]  # what it was started with: a program it suits needs the same
    directory: str
    fifo: str


_prestarted: Prestarted | None = None


def prestarted() -> Prestarted | None:
    """The bpftrace started ahead of its program and not yet given one, if any."""
    return _prestarted


def prestart(unsafe: bool) -> None:
    """Start bpftrace now, before its program exists, reading the program from a FIFO: it loads its libraries
    (LLVM, clang: about 30 ms) while gpttrace imports, plans and renders, then waits in open() until run()
    writes the program. run() takes it if the program suits it; otherwise, and at exit, it is killed, having
    done nothing else."""
    global _prestarted
    bpftrace = find_bpftrace()
    if _prestarted is not None or bpftrace is None:
        return
    directory = tempfile.mkdtemp(prefix="gpttrace-")
    fifo = os.path.join(directory, "program.bt")
    argv, env = _argv(bpftrace, unsafe, fifo), _env("")
    try:
        os.mkfifo(fifo, 0o600)
        proc = spawn_tracer(argv, env)
    except (OSError, GpttraceError):
        shutil.rmtree(directory, ignore_errors=True)
        return
    _prestarted = Prestarted(proc, argv, env, directory, fifo)


@atexit.register
def discard_prestarted() -> None:
    """Kill a prestarted bpftrace that no program was given to (it is still opening its FIFO)."""
    global _prestarted
    pre, _prestarted = _prestarted, None
    if pre is not None:
        if pre.proc.poll() is None:
            pre.proc.kill()
        pre.proc.wait()
        for stream in (pre.proc.stdout, pre.proc.stderr):
            if stream is not None:
                stream.close()
        shutil.rmtree(pre.directory, ignore_errors=True)


def _take_prestarted(text: str, unsafe: bool) -> Prestarted | None:
    """The prestarted bpftrace, its program written into the FIFO; None if there is none or it does not suit."""
    global _prestarted
    pre = _prestarted
    if pre is None:
        return None
    suits = ("--unsafe" in pre.argv) == unsafe and pre.env == _env(text) and pre.proc.poll() is None
    fd = _open_for_writing(pre) if suits else None
    if fd is None:
        discard_prestarted()
        return None
    _prestarted = None
    os.set_blocking(fd, True)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError:  # bpftrace went away while reading: run_tracer reports how it ended
        pass
    return pre


def _open_for_writing(pre: Prestarted, wait: float = 5.0) -> int | None:
    """The FIFO's writing end, once bpftrace opens it for reading (it may still be loading its libraries);
    None if it dies first. A non-blocking open fails (ENXIO) while nobody reads, so it is tried again."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return os.open(pre.fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO or pre.proc.poll() is not None or time.monotonic() > deadline:
                return None
        time.sleep(0.002)


def marked_program(text: str, dialect: Dialect) -> tuple[str, str | None]:
    """The program to run, and the marker it prints last in END (None: it prints none): only for a bpftrace
    whose wait after END is cut (Dialect.end_wait_cut)."""
    if not dialect.end_wait_cut:
        return text, None
    marker = end_marker()
    marked = with_end_marker(text, marker)
    return (text, None) if marked is None else (marked, marker)


def run(program: RenderedProgram, options: RunOptions, write: Callable[[str], None],
        warn: Callable[[str], None]) -> RunOutcome:
    printer = Printer(program.layout, write, json_mode=options.json, warn=warn)
    text, marker = marked_program(program.text, installed())
    pre = _take_prestarted(text, options.unsafe)
    if pre is not None:
        try:
            return run_tracer(pre.argv, printer, options, parse_bpftrace_error, warn, proc=pre.proc,
                              end_marker=marker)
        finally:
            shutil.rmtree(pre.directory, ignore_errors=True)
    bpftrace = find_bpftrace()
    if bpftrace is None:
        raise GpttraceError("bpftrace is not installed", "apt-get install -y bpftrace (or set GPTTRACE_BPFTRACE)",
                            ExitCode.USAGE)
    fd, path = tempfile.mkstemp(prefix="gpttrace-", suffix=".bt")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return run_tracer(_argv(bpftrace, options.unsafe, path), printer, options, parse_bpftrace_error, warn,
                          env=_env(text), end_marker=marker)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
