"""Load every corpus entry on this kernel (a dry run: load, attach, detach) and say what happened.

Each entry ends up ``loaded`` (its spec, or one of its alternatives, loaded and attached), ``skipped``
(every spec needs something this machine lacks: kprobes, a library, a tracepoint, a field; the reason
says what), or ``failed`` (the kernel or the tracer refused a spec that should work here: a corpus bug).
Used by ``gpttrace examples --check``, the tests and CI.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from .corpus import Example, load, unmet_need
from .kernel.catalog import Catalog
from .spec import ProgramSpec

Status = Literal["loaded", "skipped", "failed"]


@dataclass
class CheckResult:
    id: str
    status: Status
    reason: str = ""  # what is missing (skipped) or the error (failed); which spec loaded (loaded)
    needs: str = ""  # the missing feature, for skipped entries: kprobes, fentry, lsm, uprobe target, tracepoint...
    seconds: float = 0.0

    def line(self) -> str:
        if self.status == "loaded":
            return f"{self.id}: loaded" + (f" ({self.reason})" if self.reason else "")
        if self.status == "skipped":
            return f"{self.id}: skipped (needs {self.needs}: {self.reason})"
        return f"{self.id}: failed ({self.reason})"


_NEEDS = {"kprobe": "kprobes", "kretprobe": "kprobes", "kfunc": "fentry", "kretfunc": "fentry", "lsm": "lsm",
          "uprobe": "uprobes", "uretprobe": "uprobes", "usdt": "usdt", "xdp": "xdp", "tc": "tc",
          "tracepoint": "tracepoint"}


def missing(spec: ProgramSpec, catalog: Catalog) -> tuple[str, str] | None:
    """(feature, reason) when this machine cannot run the spec at all, else None."""
    for probe in spec.all_probes:
        reason = catalog.check_probe(probe)
        if reason:
            need = _NEEDS.get(probe.kind, probe.kind)
            if probe.kind in ("uprobe", "uretprobe") and catalog.features.uprobes:
                need = probe.target or need
            return need, f"{probe.text}: {reason}"
    problems = catalog.check_spec(spec)
    if problems:
        return "a tracepoint field", "; ".join(str(p) for p in problems)
    return None


def _load(spec: ProgramSpec, catalog: Catalog, backend: str) -> str | None:
    """None when the spec loads and attaches, else the error."""
    from .run import LoadFailed, RunOptions, run_program

    if backend == "bcc":
        from .service.backends import render as render_backend

        program = render_backend(spec, "bcc", catalog)
    else:
        from .render.bpftrace import render

        program = render(spec, catalog)
    options = RunOptions(dry_run=True, attach_timeout=60.0)
    if hasattr(options, "stop_grace"):
        # bpftrace 0.17 sometimes misses a SIGINT that comes right after attach; a dry run has nothing to
        # print at the end, so do not wait long before the runner kills it.
        options.stop_grace = 2.0
    try:
        run_program(program, options, lambda s: None, lambda s: None)
    except LoadFailed as exc:
        return exc.failure.summary()
    return None


def check_entry(entry: Example, catalog: Catalog | None = None, backend: str = "bpftrace") -> CheckResult:
    catalog = catalog or Catalog()
    started = time.monotonic()
    if entry.need and (why := unmet_need(entry.need, catalog)):  # the original only: never loaded without it
        return CheckResult(entry.id, "skipped", why, needs=entry.need, seconds=time.monotonic() - started)
    specs = [("spec", entry.spec)] + [(f"alternative {i + 1}", s) for i, s in enumerate(entry.alternatives)]
    first_missing: tuple[str, str] | None = None
    for which, spec in specs:
        if backend == "bpftrace" and any(p.kind in ("xdp", "tc") for p in spec.all_probes):
            gap: tuple[str, str] | None = ("the bcc backend", "bpftrace cannot attach xdp/tc programs")
        else:
            gap = missing(spec, catalog)
        if gap:
            first_missing = first_missing or gap
            continue
        try:
            error = _load(spec, catalog, backend)
        except Exception as exc:  # a renderer bug is a failure of this entry, not of the whole check
            error = f"{type(exc).__name__}: {exc}"
        elapsed = time.monotonic() - started
        if error is None:
            return CheckResult(entry.id, "loaded", "" if which == "spec" else which, seconds=elapsed)
        return CheckResult(entry.id, "failed", f"{which}: {error}", seconds=elapsed)
    need, reason = first_missing or ("?", "no spec")
    return CheckResult(entry.id, "skipped", reason, needs=need, seconds=time.monotonic() - started)


def check_all(entries: Iterable[Example] | None = None, backend: str = "bpftrace", jobs: int = 4,
              progress: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    """Check entries (all of the corpus by default), ``jobs`` loads at a time; results in corpus order."""
    entries = list(load() if entries is None else entries)
    catalog = Catalog()
    _ = catalog.features  # detect once, before the threads start
    results: dict[str, CheckResult] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {e.id: pool.submit(check_entry, e, catalog, backend) for e in entries}
        for e in entries:
            r = futures[e.id].result()
            results[e.id] = r
            if progress:
                progress(r)
    return [results[e.id] for e in entries]


def summary(results: list[CheckResult]) -> str:
    n = {s: sum(1 for r in results if r.status == s) for s in ("loaded", "skipped", "failed")}
    return f"{n['loaded']} loaded, {n['skipped']} skipped, {n['failed']} failed"
