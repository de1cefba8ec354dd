"""gpttrace's own trace service on a fixed spec: the streaming benchmark's tool side (run with .venv/bin/python).

    tool_stream.py [--comm NAME] [--json] -c CMD   run the spec below the way `gpttrace -y -c CMD` runs a plan
    tool_stream.py [--comm NAME] --render FILE     write the bpftrace program it renders (for the bpftrace side)

The spec prints one line per read() of the process named NAME (default dd; the benchmark runs a copy of dd
under a name of its own, so that other dd processes on the machine do not count). A fixed spec (rather than an
intent) keeps the benchmark about streaming: what the planner makes of an intent changes as it improves, and
an aggregation would stream nothing. Everything after planning is the tool's: preflight, catalog check,
render, safety check, the runner, the Printer and the UI writing to stdout (`service.trace.run_spec`,
as `gpttrace examples run` does).
"""

from __future__ import annotations

import argparse
import sys

SPEC = {
    "title": "Reads by one process",
    "rationale": "sys_enter_read fires once per read(); the benchmark's workload reads one byte at a time.",
    "probes": ["tracepoint:syscalls:sys_enter_read"],
    "filter": {"comm": "dd"},
    "print": [{"expr": "pid", "label": "PID"}, {"expr": "comm", "label": "COMM"},
              {"expr": "args.fd", "label": "FD"}, {"expr": "args.count", "label": "BYTES"}],
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("-c", dest="command")
    ap.add_argument("--render")
    ap.add_argument("--comm", default="dd")
    args = ap.parse_args()
    from gpttrace_py.spec import ProgramSpec

    spec = ProgramSpec.model_validate({**SPEC, "filter": {"comm": args.comm}})
    if args.render:
        from gpttrace_py.kernel.catalog import Catalog
        from gpttrace_py.service.backends import render

        cat = Catalog()
        with open(args.render, "w") as fh:
            fh.write(render(spec, "bpftrace", cat).text)
        return 0
    from gpttrace_py.cli.options import parse_command
    from gpttrace_py.service.trace import run_spec

    return run_spec(spec, backend="bpftrace", yes=True, command=parse_command(args.command), json_out=args.json)


if __name__ == "__main__":
    import atexit
    import gc

    atexit.register(gc.freeze)  # as gpttrace's CLI does
    sys.exit(main())
