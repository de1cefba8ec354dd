#!/usr/bin/env python3
"""gpttrace benchmarks: one command runs them all and writes bench/results.md (and results.json).

    .venv/bin/python bench/run.py            # full pass (a quiet machine: about 15-20 minutes)
    .venv/bin/python bench/run.py --quick    # short pass: one repetition, smaller workloads
    .venv/bin/python bench/run.py --only e2e,stream --cases d-opensnoop,d-syscount --reps 3

Sections (``--only``):
  e2e      each development-set case end to end (intent → program → attached → workload → aggregates) next to a
           hand-written bpftrace program for the same task (bench/reference/<case>.bt) run by bench/driver.py
           the way gpttrace runs its programs; runs interleaved, medians of --reps; the tool's time to attach
           split into start-up, planning, rendering and loading (GPTTRACE_TIMINGS=1)
  plan     OfflinePlanner().plan() in-process after warm-up, and the first plan of a fresh process, taken apart
  attach   the kernel's share: time to ready of bpftrace programs attaching 1..N syscall tracepoints
  stream   one line per event at a high rate (every read of dd bs=1): lines delivered per second, lines lost and
           peak RSS, for gpttrace's text and --json output against bpftrace writing straight to a file
  startup  `gpttrace --help`, `gpttrace trace --help`, `gpttrace doctor`; which heavy modules --help imports
  bcc      BCC programs (--backend bcc): compile+load time, cold (no cache) and with the bytecode cache
  profile  pyinstrument reports of one full trace and of a cold plan (bench/profiles/*.txt)

Needs root, bpftrace and tracefs (it loads programs). It never changes anything outside a temporary GPTTRACE_HOME.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure
from measure import fmt_ms, fmt_ratio, fmt_s, median, quantile

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DEFAULT_CASES = ROOT.parent / "shared" / "eval" / "dev.json"
SYSTEM_PYTHON = "/usr/bin/python3"
DRIVER = [SYSTEM_PYTHON, "-I", "-S", str(BENCH / "driver.py")]
LINGER = 0.05  # gpttrace's RunOptions.linger
SECTIONS = ("e2e", "plan", "attach", "stream", "startup", "bcc", "profile")
TARGETS = {"ratio_median": 1.15, "ratio_worst": 1.5, "plan_ms": 30.0, "stream_ratio": 0.9}
STREAM_COMM = "gptbench_dd"
BCC_CASES = ("d-opensnoop", "d-syscount", "d-readhist", "d-execsnoop")
HEAVY_MODULES = ("pydantic", "yaml", "jinja2", "rich", "openai", "prompt_toolkit", "httpx")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cmd = shlex.split(args.cmd)
        self.python = str(ROOT / ".venv" / "bin" / "python")
        self.home = Path(tempfile.mkdtemp(prefix="gptbench-home-"))
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("OPENAI_", "GPTTRACE_", "BPFTRACE_", "PYTHON"))}
        self.env.update(GPTTRACE_HOME=str(self.home), GPTTRACE_TIMINGS="1")
        with open(args.cases) as fh:
            self.cases = json.load(fh)
        if args.cases_only:
            wanted = set(args.cases_only.split(","))
            self.cases = [c for c in self.cases if c["id"] in wanted]
        self.results: dict = {"meta": {}, "sections": {}}
        self.md: list[str] = []

    # -- helpers ------------------------------------------------------------------------------------------
    def tool(self, *argv: str, env: dict | None = None, timeout: float | None = None, **kw) -> measure.Run:
        return measure.run([*self.cmd, *argv], env=env or self.env, timeout=timeout or self.args.timeout,
                           cwd=str(ROOT), **kw)

    def driver(self, *argv: str, timeout: float | None = None, **kw) -> measure.Run:
        return measure.run([*DRIVER, "--linger", str(LINGER), *argv], env=self.env,
                           timeout=timeout or self.args.timeout, cwd=str(ROOT), **kw)

    def setup(self) -> None:
        """Kernel facts probed once into the bench home (as `gpttrace doctor` does for a user)."""
        r = self.tool("doctor", timeout=120)
        if r.rc not in (0, 2):
            log(f"gpttrace doctor exited {r.rc}: {r.stderr[-300:]}")
        bt = shutil.which("bpftrace") or "/usr/bin/bpftrace"
        version = subprocess.run([bt, "--version"], capture_output=True, text=True).stdout.strip()
        self.results["meta"] = {
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "kernel": platform.release(), "cpus": os.cpu_count(), "bpftrace": version,
            "python": subprocess.run([self.python, "-V"], capture_output=True, text=True).stdout.strip(),
            "loadavg_start": os.getloadavg(), "reps": self.args.reps, "quick": self.args.quick,
            "command": " ".join(["bench/run.py", *sys.argv[1:]]),
            "corpus_entries": len(list((ROOT / "examples_corpus").glob("*.yaml"))),
        }

    # -- e2e ------------------------------------------------------------------------------------------------
    def e2e(self) -> None:
        reps = self.args.reps
        rows = []
        progdir = Path(tempfile.mkdtemp(prefix="gptbench-progs-"))
        subprocess.run([self.python, str(BENCH / "inproc.py"), "render", str(self.args.cases), str(progdir)],
                       capture_output=True, text=True, cwd=str(ROOT), env=self.env)
        for case in self.cases:
            ref = BENCH / "reference" / f"{case['id']}.bt"
            tool_argv = ["--yes", "--offline", "-c", case["command"], *case.get("extra_args", []), case["intent"]]
            # A: the request asked again (its program remembered, service/remember.py: how a user re-running a
            # command meets it); F: asked the first time (planned and rendered, GPTTRACE_NO_CACHE=1); B: bpftrace.
            self.tool(*tool_argv)  # the first run, which remembers the program
            a_runs: list[measure.Run] = []
            f_runs: list[measure.Run] = []
            b_runs: list[measure.Run] = []
            first_env = {**self.env, "GPTTRACE_NO_CACHE": "1"}
            for i in range(reps):
                order = ("A", "F", "B") if i % 2 == 0 else ("B", "F", "A")
                for side in order:
                    if side == "A":
                        a_runs.append(self.tool(*tool_argv))
                    elif side == "F":
                        f_runs.append(self.tool(*tool_argv, env=first_env))
                    elif ref.exists():
                        b_runs.append(self.driver("-c", case["command"], str(ref)))
            row = self._e2e_row(case, a_runs, b_runs)
            first = self._e2e_row(case, f_runs, b_runs)
            row["first"] = {k: first[k] for k in ("tool_s", "ratio", "startup_s", "phases_s", "teardown_s",
                                                  "tool_attach_s", "eval_ok")}
            row["eval_ok"] = row["eval_ok"] and first["eval_ok"]
            prog = progdir / f"{case['id']}.bt"
            n = 1 if self.args.quick else 3
            row["compile_tool_s"] = median([_compile_only(prog) for _ in range(n)]) if prog.exists() else None
            row["compile_bt_s"] = median([_compile_only(ref) for _ in range(n)]) if ref.exists() else None
            rows.append(row)
            log(f"e2e {case['id']}: tool {fmt_s(row['tool_s'])} s, bpftrace {fmt_s(row['bt_s'])} s, "
                f"ratio {fmt_ratio(row['ratio'])}, eval {'ok' if row['eval_ok'] else 'FAIL'}")
        shutil.rmtree(progdir, ignore_errors=True)
        ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
        first_ratios = [r["first"]["ratio"] for r in rows if r["first"]["ratio"] is not None]
        summary = {"ratio_median": median(ratios), "ratio_worst": max(ratios) if ratios else None,
                   "worst_case": max(rows, key=lambda r: r["ratio"] or 0)["id"] if ratios else None,
                   "first_ratio_median": median(first_ratios),
                   "first_ratio_worst": max(first_ratios) if first_ratios else None,
                   "first_worst_case": (max(rows, key=lambda r: r["first"]["ratio"] or 0)["id"]
                                        if first_ratios else None),
                   "cases": len(rows), "compared": len(ratios), "eval_ok": sum(r["eval_ok"] for r in rows),
                   "stuck": [sum(r["stuck"][0] for r in rows), sum(r["stuck"][1] for r in rows)],
                   "bt_resent": sum(r.get("bt_resent", 0) for r in rows),
                   "runs": [sum(len(r["tool_all"]) for r in rows), sum(len(r["bt_all"]) for r in rows)]}
        self.results["sections"]["e2e"] = {"rows": rows, "summary": summary}

    def _e2e_row(self, case: dict, a_runs: list[measure.Run], b_runs: list[measure.Run]) -> dict:
        ok = [_eval_ok(case, r) for r in a_runs]
        phases: dict[str, list[float]] = {}
        for r in a_runs:
            for k, v in r.phases.items():
                phases.setdefault(k, []).append(v / 1000)
        tool_s = median([r.wall for r in a_runs if not r.timed_out])
        bt_s = median([r.wall for r in b_runs if not r.timed_out and (r.rc == 0 or r.timings.get("killed"))])
        return {
            "id": case["id"], "intent": case["intent"],
            "tool_s": tool_s, "bt_s": bt_s, "ratio": tool_s / bt_s if tool_s and bt_s else None,
            "tool_all": [round(r.wall, 4) for r in a_runs], "bt_all": [round(r.wall, 4) for r in b_runs],
            "tool_attach_s": median([r.to_attach for r in a_runs]),
            "bt_attach_s": median([r.to_attach for r in b_runs]),
            "startup_s": median([r.startup for r in a_runs]),
            "teardown_s": median([r.end - r.timings["end"] for r in a_runs if r.timings.get("end")]),
            "bt_run_s": median([r.end - r.attached for r in b_runs if r.attached]),
            "phases_s": {k: median(v) for k, v in phases.items()},
            "tool_rss_kb": median([r.rss_kb for r in a_runs]),
            "eval_ok": sum(ok) * 2 > len(ok) if ok else False,
            "rc": [r.rc for r in a_runs], "timeouts": sum(r.timed_out for r in a_runs + b_runs),
            "bt_failed": sum(r.rc != 0 for r in b_runs),
            # runs where the tracer ignored SIGINT and was killed 10 s later (see driver.py's stop())
            "stuck": [sum("did not exit within" in r.stderr for r in a_runs),
                      sum(bool(r.timings.get("killed")) for r in b_runs)],
            # bpftrace runs that needed the SIGINT sent again (the first one landed outside epoll_wait)
            "bt_resent": sum(bool(r.timings.get("resent")) for r in b_runs),
            "tool_stderr_tail": a_runs[-1].stderr[-600:] if a_runs else "",
        }

    # -- plan -----------------------------------------------------------------------------------------------
    def plan(self) -> None:
        reps = 2 if self.args.quick else 5
        r = subprocess.run([self.python, str(BENCH / "inproc.py"), "warm", str(self.args.cases), str(reps)],
                           capture_output=True, text=True, cwd=str(ROOT), env=self.env)
        warm = json.loads(r.stdout) if r.returncode == 0 else {"error": r.stderr[-500:]}
        n_cold = 3 if self.args.quick else 10
        intent = "count syscalls by process name"
        cold_runs, plan_runs, walls = [], [], []
        for _ in range(n_cold):
            t = time.monotonic()
            c = subprocess.run([self.python, str(BENCH / "inproc.py"), "cold", intent], capture_output=True,
                               text=True, cwd=str(ROOT), env=self.env)
            walls.append(time.monotonic() - t)
            if c.returncode == 0:
                cold_runs.append(json.loads(c.stdout))
            p = subprocess.run([self.python, str(BENCH / "inproc.py"), "cold-plan", intent], capture_output=True,
                               text=True, cwd=str(ROOT), env=self.env)
            if p.returncode == 0:
                plan_runs.append(json.loads(p.stdout))

        def med_steps(runs):
            return {k: {"median": median([x[k] for x in runs]), "min": min(x[k] for x in runs)}
                    for k in (runs[0] if runs else {})}

        self.results["sections"]["plan"] = {
            "warm": {"median_ms": median(warm.get("plan_ms", [])), "p90_ms": quantile(warm.get("plan_ms", []), 0.9),
                     "max_ms": max(warm.get("plan_ms", []) or [0]) or None,
                     "render_median_ms": median(warm.get("render_ms", [])),
                     "n": len(warm.get("plan_ms", [])), "corpus_entries": warm.get("corpus_entries"),
                     "slowest": warm.get("slowest"), "error": warm.get("error")},
            "cold_steps": med_steps(cold_runs), "cold_plan_steps": med_steps(plan_runs),
            "cold_process_wall_s": median(walls), "cold_n": n_cold, "intent": intent,
        }
        log(f"plan: warm median {fmt_s(median(warm.get('plan_ms', [])), 2)} ms")

    # -- attach (kernel side) -----------------------------------------------------------------------------------
    def attach(self) -> None:
        names = ["openat", "read", "write", "close", "mmap", "fstat", "kill", "unlinkat", "execve", "connect",
                 "chmod", "pread64", "lseek", "dup", "pipe2", "wait4"]
        counts = [0, 1, 2, 4, 8, 16]
        reps = 1 if self.args.quick else 3
        out = []
        with tempfile.TemporaryDirectory(prefix="gptbench-attach-") as tmp:
            for n in counts:
                probes = ",\n".join(f"tracepoint:syscalls:sys_{ph}_{s}" for s in names[: (n + 1) // 2]
                                    for ph in ("enter", "exit"))
                probes = ",\n".join(probes.split(",\n")[:n])
                text = 'BEGIN { printf("ready\\n"); }\n' + (f"{probes}\n{{ @n = count(); }}\n" if n else "")
                path = Path(tmp, f"p{n}.bt")
                path.write_text(text)
                runs = [self.driver("-c", "true", str(path)) for _ in range(reps)]
                out.append({"probes": n, "to_ready_s": median([r.to_attach for r in runs]),
                            "total_s": median([r.wall for r in runs])})
                log(f"attach {n} tracepoints: ready {fmt_ms(out[-1]['to_ready_s'])} ms")
        self.results["sections"]["attach"] = {"rows": out}

    # -- stream -----------------------------------------------------------------------------------------------
    def stream(self) -> None:
        count = 50000 if self.args.quick else 200000
        reps = 1 if self.args.quick else 3
        with tempfile.TemporaryDirectory(prefix="gptbench-stream-") as tmp:
            dd = Path(tmp, STREAM_COMM)  # dd under a name of its own: other dd processes on the machine do not count
            shutil.copy2(shutil.which("dd") or "/usr/bin/dd", dd)
            workload = f"{dd} if=/dev/zero of=/dev/null bs=1 count={count}"
            prog = Path(tmp, "stream.bt")
            tool = [self.python, str(BENCH / "tool_stream.py"), "--comm", STREAM_COMM]
            r = subprocess.run([*tool, "--render", str(prog)], capture_output=True, text=True, cwd=str(ROOT),
                               env=self.env)
            if not prog.exists():
                self.results["sections"]["stream"] = {"error": f"could not render the program: {r.stderr[-400:]}"}
                return

            def tool_side(*extra: str, env: dict | None = None):
                return lambda out: measure.run([*tool, *extra, "-c", workload], env={**self.env, **(env or {})},
                                               cwd=str(ROOT), timeout=self.args.timeout, stdout_path=out,
                                               keep_output=False)

            sides = {
                "gpttrace (text → file)": tool_side(),
                "gpttrace --json (→ file)": tool_side("--json"),
                "bpftrace (text, straight to file)": lambda out: self.driver("--text", "--direct", "-c", workload,
                                                                             str(prog), stdout_path=out,
                                                                             keep_output=False),
                "bpftrace -f json (straight to file)": lambda out: self.driver("--direct", "-c", workload, str(prog),
                                                                               stdout_path=out, keep_output=False),
            }
            if self.args.rb_pages:  # the tool with another perf buffer size (default: bpftrace's own, 64 pages)
                for label, extra in (("text → file", ()), ("--json (→ file)", ("--json",))):
                    sides[f"gpttrace {label}, BPFTRACE_PERF_RB_PAGES={self.args.rb_pages}"] = tool_side(
                        *extra, env={"BPFTRACE_PERF_RB_PAGES": str(self.args.rb_pages)})
            runs: dict[str, list[dict]] = {k: [] for k in sides}
            for i in range(reps):
                for name, fn in (list(sides.items()) if i % 2 == 0 else list(reversed(sides.items()))):
                    out = str(Path(tmp, "out.txt"))
                    run = fn(out)
                    delivered = _count_dd_lines(Path(out))
                    # delivery: ready line → the output file stopped growing (the run's tail, gpttrace's drain
                    # wait and the exits, is not delivery)
                    done = run.output_done or run.end
                    span = (done - run.attached) if run.attached else None
                    runs[name].append({"delivered": delivered, "wall_s": run.wall, "span_s": span,
                                       "rate": delivered / span if span else None,
                                       "reported_lost": _reported_lost(run),
                                       "rss_kb": run.rss_kb, "tracer_rss_kb": run.child_rss_kb, "rc": run.rc})
                    log(f"stream {name}: {delivered} lines, {fmt_s(span)} s, rss {run.rss_kb} kB")
            program_text = prog.read_text()
        rows = []
        for name, rs in runs.items():
            rows.append({"side": name, "delivered": median([r["delivered"] for r in rs]),
                         "lost_vs_workload": max(0, count - (median([r["delivered"] for r in rs]) or 0)),
                         "reported_lost": median([r["reported_lost"] for r in rs]),
                         "rate": median([r["rate"] for r in rs]), "span_s": median([r["span_s"] for r in rs]),
                         "rss_kb": median([r["rss_kb"] for r in rs]),
                         "rss_max_kb": max((r["rss_kb"] for r in rs), default=0),
                         "tracer_rss_kb": median([r["tracer_rss_kb"] for r in rs]), "runs": rs})
        by = {r["side"]: r for r in rows}

        def ratio(a, b):
            x, y = by[a]["rate"], by[b]["rate"]
            return x / y if x and y else None

        summary = {"text_vs_bpftrace": ratio("gpttrace (text → file)", "bpftrace (text, straight to file)"),
                   "json_vs_bpftrace": ratio("gpttrace --json (→ file)", "bpftrace -f json (straight to file)"),
                   "json_vs_bpftrace_text": ratio("gpttrace --json (→ file)", "bpftrace (text, straight to file)")}
        bt_best = max(by["bpftrace (text, straight to file)"]["delivered"] or 0,
                      by["bpftrace -f json (straight to file)"]["delivered"] or 0)
        summary["lines_short_of_bpftrace"] = {
            k: max(0, bt_best - (by[k]["delivered"] or 0))
            for k in ("gpttrace (text → file)", "gpttrace --json (→ file)")}
        pump = {}
        for label, extra in (("text", []), ("--json", ["--json"])):
            res = []
            for _ in range(reps):
                with tempfile.NamedTemporaryFile(prefix="gptbench-pump-") as out:
                    r = subprocess.run([self.python, str(BENCH / "pump.py"), "--lines", str(count), *extra],
                                       stdout=out, stderr=subprocess.PIPE, text=True, cwd=str(ROOT), env=self.env)
                try:
                    res.append(json.loads(r.stderr.strip().splitlines()[-1]))
                except (ValueError, IndexError):
                    pass
            pump[label] = {"rate": median([x["rate"] for x in res]),
                           "cpu_us_per_line": median([x["cpu_us_per_line"] for x in res])}
        summary["pump"] = pump
        self.results["sections"]["stream"] = {"rows": rows, "summary": summary,
                                              "workload": f"dd if=/dev/zero of=/dev/null bs=1 count={count}",
                                              "program": program_text, "expected": count}

    # -- startup ------------------------------------------------------------------------------------------------
    def startup(self) -> None:
        n = 3 if self.args.quick else 10
        rows = []
        for label, argv in (("gpttrace --help", ["--help"]), ("gpttrace trace --help", ["trace", "--help"]),
                            ("gpttrace doctor", ["doctor"])):
            runs = [self.tool(*argv, timeout=60) for _ in range(n)]
            rows.append({"command": label, "median_s": median([r.wall for r in runs]),
                         "min_s": min(r.wall for r in runs), "rss_kb": median([r.rss_kb for r in runs]),
                         "rc": runs[-1].rc})
            log(f"startup {label}: {fmt_ms(rows[-1]['median_s'])} ms")
        imports = {}
        for label, args in (("--help", ["--help"]), ("trace --help", ["trace", "--help"])):
            r = subprocess.run([self.python, "-X", "importtime", "-m", "gpttrace_py", *args], capture_output=True,
                               text=True, cwd=str(ROOT), env=self.env)
            mods = _importtime(r.stderr)
            imports[label] = {
                "total_ms": sum(us for us, _ in mods.values()) / 1000,
                "heavy": sorted({m.split(".")[0] for m in mods if m.split(".")[0] in HEAVY_MODULES}),
                "top": sorted(((cum / 1000, m) for m, (_, cum) in mods.items() if "." not in m),
                              reverse=True)[:6],
                "modules": len(mods)}
        self.results["sections"]["startup"] = {"rows": rows, "imports": imports}

    # -- bcc --------------------------------------------------------------------------------------------------
    def bcc(self) -> None:
        if not (ROOT / "gpttrace_py" / "render" / "bcc" / "program.py").exists():
            self.results["sections"]["bcc"] = {"skipped": "gpttrace_py/render/bcc/ is not there yet"}
            return
        if not any(os.path.exists(p) and subprocess.run([p, "-c", "import bcc"], capture_output=True).returncode == 0
                   for p in (SYSTEM_PYTHON,)):
            self.results["sections"]["bcc"] = {"skipped": f"{SYSTEM_PYTHON} cannot import bcc"}
            return
        reps = 1 if self.args.quick else 3
        with open(self.args.cases) as fh:
            cases = {c["id"]: c for c in json.load(fh)}
        ids = BCC_CASES[:2] if self.args.quick else BCC_CASES
        rows = []
        for cid in ids:
            case = cases.get(cid)
            if case is None:
                continue
            argv = ["--yes", "--offline", "--backend", "bcc", "-c", "true", case["intent"]]
            cold_env = {**self.env, "GPTTRACE_BCC_CACHE": "0"}
            self.tool(*argv)  # fills the cache for this program
            cold, warm = [], []
            for _ in range(reps):
                cold.append(self.tool(*argv, env=cold_env, timeout=180))
                warm.append(self.tool(*argv, timeout=180))
            row = {"id": cid, "intent": case["intent"],
                   "cold_load_s": median([r.phases.get("load", 0) / 1000 or None for r in cold]),
                   "warm_load_s": median([r.phases.get("load", 0) / 1000 or None for r in warm]),
                   "cold_total_s": median([r.wall for r in cold]), "warm_total_s": median([r.wall for r in warm]),
                   "rc": [r.rc for r in cold + warm],
                   "error": next((r.stderr[-300:] for r in cold + warm if r.rc not in (0,)), None)}
            rows.append(row)
            log(f"bcc {cid}: load cold {fmt_s(row['cold_load_s'])} s, cached {fmt_s(row['warm_load_s'])} s")
        self.results["sections"]["bcc"] = {"rows": rows}

    # -- profile ----------------------------------------------------------------------------------------------
    def profile(self) -> None:
        outdir = BENCH / "profiles"
        outdir.mkdir(exist_ok=True)
        case = {"intent": "count syscalls by process name", "command": "dd if=/dev/zero of=/dev/null bs=1 count=3000"}
        reports = {}
        for name, argv in (
            ("trace", ["-m", "pyinstrument", "--show", "*gpttrace_py*", "-o", str(outdir / "trace.txt"),
                       "-m", "gpttrace_py", "--yes", "--offline", "-c", case["command"], case["intent"]]),
            ("cold-plan", ["-m", "pyinstrument", "-o", str(outdir / "cold-plan.txt"), str(BENCH / "inproc.py"),
                           "cold", case["intent"]]),
        ):
            r = subprocess.run([self.python, *argv], capture_output=True, text=True, cwd=str(ROOT), env=self.env)
            reports[name] = {"path": str((outdir / f"{name}.txt").relative_to(ROOT)), "rc": r.returncode,
                             "error": r.stderr[-300:] if r.returncode else None}
        self.results["sections"]["profile"] = {"reports": reports, "case": case}

    # -- report -----------------------------------------------------------------------------------------------
    def write(self) -> None:
        self.results["meta"]["loadavg_end"] = os.getloadavg()
        (Path(self.args.json)).write_text(json.dumps(self.results, indent=1, default=str))
        Path(self.args.out).write_text(render_markdown(self.results))
        log(f"wrote {self.args.out} and {self.args.json}")


# -- output parsing -------------------------------------------------------------------------------------------
def _eval_ok(case: dict, run: measure.Run) -> bool:
    """The development-set check (shared/eval/run_eval.py): the regexes on stdout and the exit status."""
    if run.timed_out:
        return False
    if any(not re.search(rx, run.stdout, re.M) for rx in case.get("expect_all", [])):
        return False
    if any(re.search(rx, run.stdout + run.stderr, re.M) for rx in case.get("expect_none", [])):
        return False
    return "expect_rc" not in case or run.rc == case["expect_rc"]


DD_LINE = re.compile(r"^\s*\d+\s+gptbench_dd\s", re.M)


def _count_dd_lines(path: Path) -> int:
    """Event lines of dd in an output file: plain text, bpftrace JSON records, or gpttrace --json events."""
    n = 0
    try:
        fh = path.open(errors="replace")
    except OSError:
        return 0
    with fh:
        for line in fh:
            if line.startswith("{"):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                text = rec.get("line") or rec.get("data") if isinstance(rec, dict) else None
                if isinstance(text, str):
                    n += len(DD_LINE.findall(text))
            elif DD_LINE.match(line):
                n += 1
    return n


def _compile_only(path: Path) -> float | None:
    """Seconds for bpftrace to parse and compile a program without loading it (``--emit-elf``)."""
    bt = shutil.which("bpftrace") or "/usr/bin/bpftrace"
    with tempfile.TemporaryDirectory(prefix="gptbench-elf-") as tmp:
        t = time.monotonic()
        r = subprocess.run([bt, "--emit-elf", os.path.join(tmp, "p.elf"), str(path)], capture_output=True,
                           env={**os.environ, "BPFTRACE_STRLEN": "128", "BPFTRACE_MAP_KEYS_MAX": "4096"}, timeout=120)
        return time.monotonic() - t if r.returncode == 0 else None


def _reported_lost(run: measure.Run) -> int:
    lost = run.timings.get("lost") if isinstance(run.timings.get("lost"), int) else 0
    for m in re.finditer(r"(\d+) events lost in all|\((\d+) in all\)|^(\d+) events lost", run.stderr, re.M):
        lost = max(lost, int(next(g for g in m.groups() if g)))
    return lost


def _importtime(stderr: str) -> dict[str, tuple[int, int]]:
    mods = {}
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m:
            mods[m.group(4)] = (int(m.group(1)), int(m.group(2)))
    return mods


# -- markdown -------------------------------------------------------------------------------------------------
def _within(x, limit) -> bool | None:
    return None if x is None else x <= limit


def _mark(ok: bool | None) -> str:
    return "–" if ok is None else ("✅" if ok else "❌")


def _where_time_goes(rows: list[dict], label: str) -> str:
    """The median case's extra time over the hand-written program, by cause."""
    parts: dict[str, list[float]] = {"Python start-up (interpreter, imports, CLI)": [],
                                     "planning, checks, rendering, showing": [],
                                     "loading gpttrace's program instead of the hand-written one": [],
                                     "running to the end (workload, linger, END; gpttrace cuts bpftrace's last "
                                     "100 ms wait) beyond bpftrace's": [],
                                     "interpreter teardown after the run": []}
    for r in rows:
        ph = r["phases_s"]
        if r["ratio"] is None or not ph.get("load"):
            continue
        keys = list(parts)
        parts[keys[0]].append((r["startup_s"] or 0) - 0.0)
        parts[keys[1]].append(sum(ph.get(k, 0) for k in ("preflight", "plan", "check", "render", "show")))
        if r["bt_attach_s"] is not None:
            parts[keys[2]].append(ph["load"] - r["bt_attach_s"])
        if r.get("bt_run_s") is not None:
            parts[keys[3]].append(ph.get("run", 0) - r["bt_run_s"])
        parts[keys[4]].append(r.get("teardown_s") or 0)
    extra = median([r["tool_s"] - r["bt_s"] for r in rows if r["ratio"] is not None])
    lines = [f"Where gpttrace's extra time goes, {label} (median over the compared cases; the median extra is "
             f"{fmt_ms(extra, 0)} ms; bpftrace's *load* includes driver.py's own ~20 ms start-up):", "",
             "| part | median ms |", "|---|---:|"]
    for name, xs in parts.items():
        lines.append(f"| {name} | {fmt_ms(median(xs), 0)} |")
    return "\n".join(lines) + "\n"


def render_markdown(res: dict) -> str:
    meta, sec = res["meta"], res["sections"]
    out = ["# gpttrace benchmarks", ""]
    la0, la1 = meta.get("loadavg_start", (0, 0, 0)), meta.get("loadavg_end", (0, 0, 0))
    out += [f"{meta.get('date')} · kernel {meta.get('kernel')} · {meta.get('cpus')} CPUs · {meta.get('bpftrace')} · "
            f"{meta.get('python')} · corpus {meta.get('corpus_entries')} entries · "
            f"{'quick pass' if meta.get('quick') else 'full pass'}, {meta.get('reps')} repetition(s) per side",
            "", f"Regenerate: `.venv/bin/python {meta.get('command')}` (from the repository root, as root).", ""]
    if max(la0[0], la1[0]) > 1.0:
        out += [f"> **Noisy machine:** load average {la0[0]:.2f} at the start and {la1[0]:.2f} at the end (2 CPUs). "
                "Absolute times and ratios below are not representative; rerun on a quiet machine.", ""]
    e2e = sec.get("e2e")
    if e2e:
        s = e2e["summary"]
        out += ["## End to end: gpttrace vs a hand-written bpftrace program", "",
                "Each case of the development set runs as the evaluation runs it (`gpttrace --yes --offline -c CMD "
                "INTENT`, output to a file), next to `bench/reference/<case>.bt` run by `bench/driver.py` the same way "
                f"(own session, wait for the BEGIN line, start CMD, SIGINT {LINGER:g} s after it exits). Runs are "
                "interleaved (A F B, B F A, ...); times are medians, wall clock from spawn to exit. *asked again* is "
                "the request run a second time, its program remembered (service/remember.py: no planning, no spec "
                "models, no templates); *first time* is the same with GPTTRACE_NO_CACHE=1 (planned and rendered, "
                "as the evaluation's single run meets it). *attach* is spawn → ready line (asked again). *eval* is "
                "the case's own check of gpttrace's output (both ways).", "",
                f"**Ratio gpttrace / bpftrace, asked again: median {fmt_ratio(s['ratio_median'])} "
                f"(target ≤ {TARGETS['ratio_median']}x {_mark(_within(s['ratio_median'], TARGETS['ratio_median']))}), "
                f"worst {fmt_ratio(s['ratio_worst'])} on {s['worst_case']} "
                f"(target ≤ {TARGETS['ratio_worst']}x {_mark(_within(s['ratio_worst'], TARGETS['ratio_worst']))}). "
                f"First time: median {fmt_ratio(s.get('first_ratio_median'))}, worst "
                f"{fmt_ratio(s.get('first_ratio_worst'))} on {s.get('first_worst_case')}.** "
                f"{s['eval_ok']}/{s['cases']} cases pass their eval check. bpftrace 0.17 misses a SIGINT that lands as "
                f"its 100 ms epoll_wait times out; the driver sends it again after a second, gpttrace after 0.3 s "
                f"(and times its first one clear of those timeouts): {s['bt_resent']} of {s['runs'][1]} "
                f"hand-written runs needed that; runs killed after 10 s: "
                f"{s['stuck'][0]} gpttrace, {s['stuck'][1]} bpftrace.", "",
                "*compile-only* is `bpftrace --emit-elf` of gpttrace's program and of the hand-written one (parse + "
                "codegen, no load): a heavier program than a person would write shows here.", "",
                "| case | asked again s | ratio | first time s | ratio | bpftrace s | gpttrace attach ms "
                "| bpftrace attach ms | compile-only ms gpttrace / hand | eval |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|:-:|"]
        for r in e2e["rows"]:
            note = " (timeouts)" if r["timeouts"] else ""
            if any(r.get("stuck", [0, 0])):
                note += f" (SIGINT missed: {r['stuck'][0]} gpttrace, {r['stuck'][1]} bpftrace)"
            first = r.get("first") or {}
            out.append(f"| {r['id']}{note} | {fmt_s(r['tool_s'])} | {fmt_ratio(r['ratio'])} | "
                       f"{fmt_s(first.get('tool_s'))} | {fmt_ratio(first.get('ratio'))} | {fmt_s(r['bt_s'])} | "
                       f"{fmt_ms(r['tool_attach_s'], 0)} | {fmt_ms(r['bt_attach_s'], 0)} | "
                       f"{fmt_ms(r.get('compile_tool_s'), 0)} / {fmt_ms(r.get('compile_bt_s'), 0)} | "
                       f"{_mark(r['eval_ok'])} |")
        out += ["", _where_time_goes(e2e["rows"], "asked again"),
                _where_time_goes([{**r, **r["first"]} for r in e2e["rows"] if r.get("first")], "first time")]
        out += ["", "### Time to attach, split (gpttrace, GPTTRACE_TIMINGS=1, ms, medians)", "",
                "*start-up*: spawn → the pipeline starts (interpreter, imports, CLI); *plan*: offline planning "
                "(the first plan of a process also loads the corpus and the kernel facts); *check*: fit to the "
                "kernel + catalog check; *render*: program text (Jinja); *load*: bpftrace started → ready line "
                "(parse, compile, verifier, attach); *run*: ready → tracer exited (workload, linger, END, maps); "
                "*exit*: the pipeline returned → the process is gone (interpreter teardown). The bpftrace columns "
                "are the same spans for the hand-written program through driver.py.", "",
                "| case | start-up | preflight | plan | check | render | show | load | to ready | run | exit "
                "| bpftrace to ready | bpftrace run |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        cols = ("preflight", "plan", "check", "render", "show", "load")
        small = ("preflight", "check", "show")
        for r in e2e["rows"]:
            ph = r["phases_s"]
            out.append(f"| {r['id']} | {fmt_ms(r['startup_s'], 0)} | " + " | ".join(
                fmt_ms(ph.get(c), 1 if c in small else 0) for c in cols)
                + f" | {fmt_ms(r['tool_attach_s'], 0)} | {fmt_ms(ph.get('run'), 0)} | {fmt_ms(r.get('teardown_s'), 0)}"
                f" | {fmt_ms(r['bt_attach_s'], 0)} | {fmt_ms(r.get('bt_run_s'), 0)} |")
        allr = e2e["rows"]
        out.append("| **median** | " + fmt_ms(median([r["startup_s"] for r in allr]), 0) + " | " + " | ".join(
            fmt_ms(median([r["phases_s"].get(c) for r in allr]), 1 if c in small else 0)
            for c in cols) + f" | {fmt_ms(median([r['tool_attach_s'] for r in allr]), 0)} | "
            f"{fmt_ms(median([r['phases_s'].get('run') for r in allr]), 0)} | "
            f"{fmt_ms(median([r.get('teardown_s') for r in allr]), 0)} | "
            f"{fmt_ms(median([r['bt_attach_s'] for r in allr]), 0)} | "
            f"{fmt_ms(median([r.get('bt_run_s') for r in allr]), 0)} |")
        out.append("")
    plan = sec.get("plan")
    if plan:
        w = plan["warm"]
        ok = w["median_ms"] is not None and w["median_ms"] < TARGETS["plan_ms"]
        out += ["## Offline planning", "",
                f"`OfflinePlanner().plan()` in-process after warm-up, every development intent repeated "
                f"({w['n']} plans, corpus of {w['corpus_entries']} entries): **median {fmt_s(w['median_ms'], 2)} ms** "
                f"(target < {TARGETS['plan_ms']:.0f} ms {_mark(ok)}), p90 {fmt_s(w['p90_ms'], 2)} ms, max "
                f"{fmt_s(w['max_ms'], 2)} ms; render after it: median {fmt_s(w['render_median_ms'], 2)} ms.", ""]
        if w.get("slowest"):
            out += ["Slowest intents (max ms): " + "; ".join(f"{i!r} {ms:.1f}" for ms, i in w["slowest"]), ""]
        out += [f"A fresh process (`bench/inproc.py cold`, intent {plan['intent']!r}, {plan['cold_n']} runs; "
                "median and "
                "min in ms; each step is the extra cost given the ones before it):", "",
                "| step | median ms | min ms |", "|---|---:|---:|"]
        for k, v in plan["cold_steps"].items():
            out.append(f"| {k} | {fmt_s(v['median'], 1)} | {fmt_s(v['min'], 1)} |")
        out += ["", "The first plan of a fresh process, taken apart (`bench/inproc.py cold-plan`):", "",
                "| step | median ms | min ms |", "|---|---:|---:|"]
        for k, v in plan["cold_plan_steps"].items():
            out.append(f"| {k} | {fmt_s(v['median'], 1)} | {fmt_s(v['min'], 1)} |")
        out.append("")
    att = sec.get("attach")
    if att:
        out += ["## The kernel's share: attaching tracepoints", "",
                "bpftrace programs with a BEGIN line and N syscall tracepoints (`@n = count()`), run by driver.py "
                "with `-c true`: spawn → ready and spawn → exit, ms (medians).", "",
                "| tracepoints | to ready | total |", "|---:|---:|---:|"]
        for r in att["rows"]:
            out.append(f"| {r['probes']} | {fmt_ms(r['to_ready_s'], 0)} | {fmt_ms(r['total_s'], 0)} |")
        out.append("")
    st = sec.get("stream")
    if st:
        if "error" in st:
            out += ["## Streaming", "", f"Not measured: {st['error']}", ""]
        else:
            s = st["summary"]
            ok = s["text_vs_bpftrace"] is not None and s["text_vs_bpftrace"] >= TARGETS["stream_ratio"]
            okj = s["json_vs_bpftrace"] is not None and s["json_vs_bpftrace"] >= TARGETS["stream_ratio"]
            short = s["lines_short_of_bpftrace"]
            out += ["## Streaming: one line per event", "",
                    f"Workload `{st['workload']}` (a copy of dd named {STREAM_COMM}). The tool side is gpttrace's "
                    "pipeline on a fixed spec (one line per "
                    "read() of dd; `bench/tool_stream.py`, planning left out so the program stays a streaming one) "
                    "with stdout to a file; the bpftrace side runs the very program gpttrace rendered from it, "
                    "writing straight to the output file. *lines* are dd's "
                    "event lines in the output (medians); *lost* is what the workload made and the output lacks; "
                    "*reported* is what the tracer reported lost; *lines/s* is lines ÷ (ready line → the output "
                    "file stopped growing, sampled every 10 ms); *RSS* is the "
                    "peak of the gpttrace (or driver) process, the tracer's apart.", "",
                    f"**Throughput: text {fmt_ratio(s['text_vs_bpftrace'])} of bpftrace's {_mark(ok)}, --json "
                    f"{fmt_ratio(s['json_vs_bpftrace'])} of bpftrace -f json's {_mark(okj)} (target ≥ "
                    f"{TARGETS['stream_ratio']}x); lines short of what bpftrace delivered: text "
                    f"{short['gpttrace (text → file)']}, "
                    f"--json {short['gpttrace --json (→ file)']} {_mark(not any(short.values()))}.**", "",
                    "| side | lines | lost | reported lost | lines/s | peak RSS MB | tracer RSS MB |",
                    "|---|---:|---:|---:|---:|---:|---:|"]
            for r in st["rows"]:
                out.append(f"| {r['side']} | {r['delivered']:.0f} | {r['lost_vs_workload']:.0f} | "
                           f"{(r['reported_lost'] or 0):.0f} | {(r['rate'] or 0):,.0f} | {r['rss_kb'] / 1024:.1f} | "
                           f"{r['tracer_rss_kb'] / 1024:.1f} |")
            pump = s.get("pump") or {}
            if pump:
                out += ["", "gpttrace's output path alone (`bench/pump.py`: `cat` of bpftrace JSON records instead of "
                        "the kernel, output to a file): " + "; ".join(
                            f"{k}: {(v['rate'] or 0):,.0f} lines/s, {(v['cpu_us_per_line'] or 0):.1f} µs of CPU a line"
                            for k, v in pump.items()) + ". Above this rate the pipe fills and the kernel drops events."]
            out += ["", "<details><summary>the streaming program</summary>", "", "```", st["program"].strip(), "```",
                    "", "</details>", ""]
    su = sec.get("startup")
    if su:
        out += ["## Start-up", "", "| command | median ms | min ms | peak RSS MB |", "|---|---:|---:|---:|"]
        for r in su["rows"]:
            out.append(f"| `{r['command']}` | {fmt_ms(r['median_s'], 0)} | {fmt_ms(r['min_s'], 0)} | "
                       f"{r['rss_kb'] / 1024:.1f} |")
        out.append("")
        for label, imp in su["imports"].items():
            heavy = ", ".join(imp["heavy"]) or "none"
            top = ", ".join(f"{m} {ms:.0f} ms" for ms, m in imp["top"])
            out.append(f"- `python -X importtime -m gpttrace_py {label}`: {imp['modules']} modules, "
                       f"{imp['total_ms']:.0f} ms of imports; heavy modules imported: **{heavy}**; largest: {top}.")
        out.append("")
    bc = sec.get("bcc")
    if bc:
        out += ["## BCC backend: compile and load", ""]
        if "skipped" in bc:
            out += [f"Skipped: {bc['skipped']}.", ""]
        else:
            out += ["`gpttrace --backend bcc -c true INTENT`: *load* is the BCC program started → ready line (clang "
                    "compile + verifier + attach); cold is `GPTTRACE_BCC_CACHE=0`, cached is a second run of the "
                    "same program with the bytecode cache (seconds, medians).", "",
                    "| case | load cold | load cached | speed-up | total cold | total cached |",
                    "|---|---:|---:|---:|---:|---:|"]
            for r in bc["rows"]:
                sp = r["cold_load_s"] / r["warm_load_s"] if r["cold_load_s"] and r["warm_load_s"] else None
                err = " ⚠" if r.get("error") else ""
                out.append(f"| {r['id']}{err} | {fmt_s(r['cold_load_s'])} | {fmt_s(r['warm_load_s'])} | "
                           f"{fmt_ratio(sp)} | {fmt_s(r['cold_total_s'])} | {fmt_s(r['warm_total_s'])} |")
            out.append("")
    pr = sec.get("profile")
    if pr:
        out += ["## Profiles", "", "pyinstrument reports (regenerated by the `profile` section): " + ", ".join(
            f"[{v['path']}]({Path(v['path']).relative_to('bench')})" for v in pr["reports"].values()
            if not v.get("error")) + ".", ""]
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one repetition, smaller workloads")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per side (default 5, quick 1)")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"sections to run, of {','.join(SECTIONS)}")
    ap.add_argument("--cases", default=str(DEFAULT_CASES), help="the development set (JSON)")
    ap.add_argument("--cases-only", default=None, help="comma-separated case ids")
    ap.add_argument("--cmd", default=str(ROOT / ".venv" / "bin" / "gpttrace"), help="how to start gpttrace")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds before one run is killed")
    ap.add_argument("--rb-pages", type=int, default=64,
                    help="streaming: also run the tool with BPFTRACE_PERF_RB_PAGES=N (default 64, bpftrace's own; "
                         "gpttrace's is larger; 0: skip)")
    ap.add_argument("--out", default=str(BENCH / "results.md"))
    ap.add_argument("--json", default=str(BENCH / "results.json"))
    args = ap.parse_args()
    if args.reps is None:
        args.reps = 1 if args.quick else 5
    if os.geteuid() != 0:
        sys.exit("bench/run.py loads BPF programs: run it as root")
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        sys.exit(f"unknown sections: {', '.join(sorted(unknown))}")
    bench = Bench(args)
    try:
        bench.setup()
        for name in SECTIONS:
            if name in wanted:
                log(f"section {name}")
                getattr(bench, name)()
                bench.write()  # after each section, so an interrupted run keeps what it measured
    finally:
        shutil.rmtree(bench.home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
