"""gpttrace's output path alone, without the kernel: how many event lines a second it can take.

    .venv/bin/python bench/pump.py [--json] [--lines N] > FILE

A fake tracer (``cat`` of a prepared file of bpftrace ``-f json`` printf records) feeds gpttrace's runner
(``run_tracer``) and Printer, which write through the UI to stdout, exactly as in a trace whose tracer is
fast. Prints ``{"lines": N, "seconds": S, "rate": R, "cpu_us_per_line": C}`` on stderr (C: this process's
CPU time). When this rate is below the rate the tracer produces at, the pipe fills and the kernel drops
events: it is the ceiling of the streaming benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--lines", type=int, default=200000)
    args = ap.parse_args()
    from gpttrace_py.render.program import ProgramLayout
    from gpttrace_py.run import RunOptions
    from gpttrace_py.run.failure import LoadFailure
    from gpttrace_py.run.records import Printer
    from gpttrace_py.run.session import run_tracer
    from gpttrace_py.ui import UI

    layout = ProgramLayout(ready="Tracing reads... Hit Ctrl-C to end.", header="PID     COMM             FD      BYTES",
                           columns=["PID", "COMM", "FD", "BYTES"])
    with tempfile.NamedTemporaryFile("w", prefix="gptbench-pump-", suffix=".json", delete=False) as fh:
        for text in (layout.ready, layout.header):
            fh.write(json.dumps({"type": "printf", "data": text + "\n"}) + "\n")
        line = json.dumps({"type": "printf", "data": f"{4242:<7d} {'gptbench_dd':<16s} {0:<7d} 1\n"}) + "\n"
        fh.write(line * args.lines)
        path = fh.name
    try:
        ui = UI()
        printer = Printer(layout, ui.out, json_mode=args.json, warn=ui.warn)
        options = RunOptions(max_event_rate=1000.0, drop_over_rate=False)
        t = time.perf_counter()
        cpu = time.process_time()
        outcome = run_tracer(["cat", path], printer, options, lambda err, rc: LoadFailure("bpftrace", "start", err),
                             lambda s: None)
        seconds = time.perf_counter() - t
        cpu = time.process_time() - cpu
    finally:
        os.unlink(path)
    sys.stdout.flush()
    sys.stderr.write(json.dumps({"lines": outcome.events, "seconds": seconds, "rate": outcome.events / seconds,
                                 "cpu_us_per_line": cpu / max(1, outcome.events) * 1e6}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
