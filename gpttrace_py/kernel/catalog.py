"""The probe catalog of the live kernel: what exists here, with its fields, and checks of a spec against it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

from ..spec import ProbeRef, ProgramSpec
from ..spec import expr as E
from ..spec.kinds import KINDS
from . import syscalls
from .features import Features, detect
from .tracefs import TpField, Tracepoint, TracepointIndex, tracefs_root
from .uprobes import TARGET_ERROR, function_symbols, resolve_target

# Why a probe cannot be used, by what its kind needs (kinds.Kind.needs) that this kernel lacks.
_MISSING = {
    "kprobes": "this kernel has no kprobes (CONFIG_KPROBES is off); use a tracepoint",
    "lsm": "this kernel refuses BPF LSM programs",
    "uprobes": "this kernel has no uprobes",
    "hw_counters": "this machine has no hardware performance counters (no CPU PMU)",
}


@dataclass
class ProbeProblem:
    probe: str
    message: str

    def __str__(self) -> str:
        return f"{self.probe}: {self.message}"


class Catalog:
    """One view of this machine's probes. Cheap to build; everything slow is read lazily and cached."""

    def __init__(self, features: Features | None = None) -> None:
        self._features = features
        self.tracepoints = TracepointIndex(tracefs_root())

    @cached_property
    def features(self) -> Features:
        return self._features or detect()

    # -- lookups -------------------------------------------------------------------------------------
    def tracepoint(self, probe: ProbeRef | str) -> Tracepoint | None:
        if isinstance(probe, str):
            cat, _, name = probe.removeprefix("tracepoint:").partition(":")
            return self.tracepoints.get(cat, name)
        if probe.kind != "tracepoint" or not probe.category or not probe.name:
            return None
        return self.tracepoints.get(probe.category, probe.name)

    def field(self, probe: ProbeRef, name: str) -> TpField | None:
        tp = self.tracepoint(probe)
        return tp.field(name) if tp else None

    def symbols(self, probe: ProbeRef, name: str) -> dict[int, str] | None:
        tp = self.tracepoint(probe)
        return tp.symbols.get(name) if tp else None

    def syscalls(self) -> list[str]:
        return syscalls.traceable(self.tracepoints)

    def syscall_tracepoint(self, syscall: str, phase: str = "enter") -> ProbeRef | None:
        name = syscalls.tracepoint_name(self.tracepoints, syscall)
        if name is None:
            return None
        probe = ProbeRef.model_validate(f"tracepoint:syscalls:sys_{phase}_{name}")
        return probe if self.tracepoint(probe) else None

    def uprobe_path(self, target: str) -> str | None:
        return resolve_target(target)

    # -- checks --------------------------------------------------------------------------------------
    def check_probe(self, probe: ProbeRef) -> str | None:
        """None when the probe exists here, else the reason it cannot be used."""
        f = self.features
        k = probe.kind
        if not self.tracepoints.available and os.geteuid() != 0:  # not "no uprobes": tracefs is root's
            from .tracefs import tracefs_missing

            return tracefs_missing()
        if k == "tracepoint":
            if not self.tracepoints.available:
                from .tracefs import tracefs_missing

                return tracefs_missing()
            if not self.tracepoints.exists(probe.category or "", probe.name or ""):
                near = self.near_tracepoints(probe.name or "")
                return "no such tracepoint on this kernel" + (f"; nearby: {', '.join(near)}" if near else "")
            return None
        need = KINDS[k].needs
        if need == "kfunc":
            if f.kfunc is False:
                return "this kernel refuses fentry/fexit (kfunc) programs; use a tracepoint"
            return None if f.btf else "kfunc needs BTF (/sys/kernel/btf/vmlinux)"
        if k == "usdt":
            if not f.uprobes:
                return "this kernel has no uprobes (USDT probes are uprobes)"
            if resolve_target(probe.target or "") is None:
                return f"cannot find a library or program called {probe.target!r} (is it installed?)"
            return None
        if need in _MISSING and not f.supports_probe_kind(k):
            return _MISSING[need]
        if need == "uprobes":  # uprobe, uretprobe: the function must be in the file
            path = resolve_target(probe.target or "")
            if path is None:  # one answer for every reason (missing, root-only, not ELF, too large, a FIFO)
                return TARGET_ERROR.format(target=probe.target or "")
            syms = function_symbols(path)
            if syms and probe.name not in syms:
                return f"{path} has no function {probe.name!r}"
            return None
        if KINDS[k].family == "packet":
            if not os.path.exists(f"/sys/class/net/{probe.target}"):
                return f"no network interface {probe.target!r}"
            return None
        return None

    def near_tracepoints(self, name: str, limit: int = 5) -> list[str]:
        import difflib

        names = [f"{c}:{n}" for c, n in self.tracepoints.all_names()]
        short = {n.split(":")[1]: n for n in names}
        return [short[m] for m in difflib.get_close_matches(name, list(short), n=limit, cutoff=0.6)]

    def check_spec(self, spec: ProgramSpec) -> list[ProbeProblem]:
        """Problems of a spec on this kernel: missing probes, fields a probe does not have."""
        problems: list[ProbeProblem] = []
        for probe in spec.all_probes:
            reason = self.check_probe(probe)
            if reason:
                problems.append(ProbeProblem(probe.text, reason))
        if problems:
            return problems
        groups = [(spec.probes, spec.expressions())]
        if spec.start:
            groups.append((spec.start.probes, spec.start_expressions()))
        for probes, exprs in groups:
            used = set().union(*(E.fields_used(x) for x in exprs)) if exprs else set()
            for probe in probes:
                if used and probe.kind != "tracepoint":
                    problems.append(ProbeProblem(probe.text, "only tracepoints have args.FIELD; use arg0.. or retval"))
                    continue
                tp = self.tracepoint(probe)
                if tp is None:
                    continue
                for name in sorted(used):
                    if tp.field(name) is None:
                        have = ", ".join(f.name for f in tp.user_fields)
                        problems.append(ProbeProblem(probe.text, f"has no field {name!r}; fields: {have}"))
        return problems
