"""Reading the tracer's output into the Printer, and the timing of a SIGINT against bpftrace's epoll cycle.

The tracer writes into a pipe that is read here as fast as the output can take it. Nothing is queued in
gpttrace: when the reader falls behind, the pipe fills, the tracer blocks, its perf buffer fills and the kernel
drops events, which bpftrace reports (``lost_events``) and the Printer shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]  # typeshed leaves out the C scanner's entry

from .records import Printer

# bpftrace 0.17 waits for events in epoll_waits of 100 ms, the first timed from the event it handled last, and
# stops only when SIGINT interrupts one: a SIGINT that lands as one times out is missed. A stop steers clear.
EPOLL_PERIOD = 0.1
EPOLL_MARGIN = 0.015

PRINTF_PREFIX = b'{"type": "printf", "data": "'  # how bpftrace -f json (and a BCC program) writes a printf record
PRINTF_DATA_AT = len(PRINTF_PREFIX)
READ_SIZE = 1 << 16


@dataclass
class PumpState:
    full_reads: int = 0  # reads that found the pipe full: the reader is behind the tracer
    last_read: float = 0.0  # time.monotonic() of the last output read: when bpftrace's epoll cycle began
    end_marker: str | None = None  # the data of the printf record that says END has printed all it prints
    on_end: Callable[[], None] | None = None  # called (in the reading thread) when that record comes


def clear_of_epoll_timeout(since_output: float) -> float:
    """Seconds to wait before a SIGINT so that it does not land within EPOLL_MARGIN of one of bpftrace's epoll
    timeouts, which fall every EPOLL_PERIOD after its last output (``since_output`` s ago). A stop timed from
    that output, such as ``linger`` after a workload whose last event it was, would otherwise meet one."""
    phase = since_output % EPOLL_PERIOD
    if phase < EPOLL_MARGIN:
        return EPOLL_MARGIN - phase
    if phase > EPOLL_PERIOD - EPOLL_MARGIN:
        return EPOLL_PERIOD - phase + EPOLL_MARGIN
    return 0.0


def pump_output(proc: subprocess.Popen[bytes], printer: Printer, state: PumpState) -> None:
    """Read the tracer's records until it closes stdout. Signals do not interrupt this (see
    TracerSession.on_signal).

    It takes what the pipe holds at once rather than a line at a time, and takes printf records (nearly all
    of a stream) apart without a full JSON parse: about a quarter less CPU a line, which is what decides
    whether gpttrace keeps up with a flood (bench/pump.py)."""
    assert proc.stdout is not None
    handle = printer.handle
    loads = json.loads
    fd = proc.stdout.fileno()
    rest = b""
    while True:
        chunk = os.read(fd, READ_SIZE)
        state.last_read = time.monotonic()
        if len(chunk) == READ_SIZE:
            state.full_reads += 1
        if chunk:
            lines = (rest + chunk).split(b"\n") if rest else chunk.split(b"\n")
            rest = lines.pop()
        else:
            lines = [rest] if rest else []
        for raw in lines:
            text = raw.decode("utf-8", "replace")
            if raw.startswith(PRINTF_PREFIX) and raw.endswith(b'"}'):
                try:
                    data, end = scanstring(text, PRINTF_DATA_AT)
                except ValueError:
                    end = -1
                if end == len(text) - 1:
                    if data == state.end_marker and state.on_end is not None:
                        state.on_end()
                    else:
                        handle({"type": "printf", "data": data})
                    continue
            try:
                record = loads(text)
            except ValueError:
                if text:
                    handle({"type": "printf", "data": text + "\n"})
                continue
            if isinstance(record, dict):
                handle(record)
        if not chunk:
            return
