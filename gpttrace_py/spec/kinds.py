"""Probe kinds: the one registry of what kinds exist, their short names, what each needs from the kernel and
which kind fires on the way back out of a function.

Everything that asks "is this a return probe?", "does this kernel support kprobes?", "what is `kr:`?" or "which
kinds may a spec use?" reads it from here: the spec grammar, the catalog and feature checks, the renderers,
the explainers and the planners.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

# The kinds a ProgramSpec may use (a pydantic Literal: the JSON schema and the validator read it).
ProbeKind = Literal[
    "tracepoint",
    "uprobe",
    "uretprobe",
    "usdt",
    "kprobe",
    "kretprobe",
    "kfunc",
    "kretfunc",
    "rawtracepoint",
    "profile",
    "interval",
    "software",
    "hardware",
    "BEGIN",
    "END",
    "xdp",
    "tc",
    "lsm",
]
SPEC_KINDS: tuple[str, ...] = get_args(ProbeKind)

Family = Literal["tracepoint", "kernel-function", "user-function", "timer", "perf", "packet", "security",
                 "special", "memory", "iterator"]
# The Features attribute a kind needs ("tracefs": the tracefs mount; None: nothing to detect).
Need = Literal["tracefs", "kprobes", "uprobes", "kfunc", "lsm", "hw_counters"]


@dataclass(frozen=True)
class Kind:
    name: str
    family: Family
    needs: Need | None = None
    aliases: tuple[str, ...] = ()
    returns: bool = False  # fires when a function returns (retval is known)
    return_kind: str | None = None  # the kind that fires on return from what this kind enters
    in_spec: bool = True  # a ProgramSpec may use it (others appear only in programs explained)


_ALL = (
    Kind("tracepoint", "tracepoint", "tracefs", ("t",)),
    Kind("rawtracepoint", "tracepoint", "tracefs", ("rawtp", "rt")),
    Kind("kprobe", "kernel-function", "kprobes", ("k",), return_kind="kretprobe"),
    Kind("kretprobe", "kernel-function", "kprobes", ("kr",), returns=True),
    Kind("kfunc", "kernel-function", "kfunc", ("f", "fentry"), return_kind="kretfunc"),
    Kind("kretfunc", "kernel-function", "kfunc", ("fr", "fexit"), returns=True),
    Kind("uprobe", "user-function", "uprobes", ("u",), return_kind="uretprobe"),
    Kind("uretprobe", "user-function", "uprobes", ("ur",), returns=True),
    Kind("usdt", "user-function", "uprobes", ("U",)),
    Kind("profile", "timer", None, ("p",)),
    Kind("interval", "timer", None, ("i",)),
    Kind("software", "perf", None, ("s",)),
    Kind("hardware", "perf", "hw_counters", ("h",)),
    Kind("BEGIN", "special", None, ("begin",)),
    Kind("END", "special", None, ("end",)),
    Kind("xdp", "packet"),
    Kind("tc", "packet"),
    Kind("lsm", "security", "lsm"),
    Kind("watchpoint", "memory", None, ("w",), in_spec=False),
    Kind("asyncwatchpoint", "memory", None, ("aw",), in_spec=False),
    Kind("iter", "iterator", None, ("it",), in_spec=False),
)
KINDS: dict[str, Kind] = {k.name: k for k in _ALL}
assert set(SPEC_KINDS) == {k.name for k in _ALL if k.in_spec}

# Short and other names for kinds in bpftrace's probe syntax, spec kinds only (``ALIASES``) or every kind.
ALL_ALIASES: dict[str, str] = {a: k.name for k in _ALL for a in k.aliases}
ALIASES: dict[str, str] = {a: k for a, k in ALL_ALIASES.items() if KINDS[k].in_spec}
RETURN_KIND: dict[str, str] = {k.name: k.return_kind for k in _ALL if k.return_kind}
RETURN_KINDS: frozenset[str] = frozenset(k.name for k in _ALL if k.returns)


def of_family(*families: Family) -> frozenset[str]:
    return frozenset(k.name for k in _ALL if k.family in families)


# The perf events software:NAME and hardware:NAME may count, each with the suffix of its PERF_COUNT_SW_*/HW_*
# constant (BCC's PerfSWConfig/PerfHWConfig names), in the order messages list them.
SOFTWARE_EVENTS: dict[str, str] = {
    "cpu-clock": "CPU_CLOCK",
    "task-clock": "TASK_CLOCK",
    "page-faults": "PAGE_FAULTS",
    "context-switches": "CONTEXT_SWITCHES",
    "cpu-migrations": "CPU_MIGRATIONS",
    "minor-faults": "PAGE_FAULTS_MIN",
    "major-faults": "PAGE_FAULTS_MAJ",
    "alignment-faults": "ALIGNMENT_FAULTS",
    "emulation-faults": "EMULATION_FAULTS",
    "faults": "PAGE_FAULTS",
    "cs": "CONTEXT_SWITCHES",
    "migrations": "CPU_MIGRATIONS",
}
HARDWARE_EVENTS: dict[str, str] = {
    "cpu-cycles": "CPU_CYCLES",
    "cycles": "CPU_CYCLES",
    "instructions": "INSTRUCTIONS",
    "cache-references": "CACHE_REFERENCES",
    "cache-misses": "CACHE_MISSES",
    "branch-instructions": "BRANCH_INSTRUCTIONS",
    "branches": "BRANCH_INSTRUCTIONS",
    "branch-misses": "BRANCH_MISSES",
    "bus-cycles": "BUS_CYCLES",
    "ref-cycles": "REF_CPU_CYCLES",
}


FUNCTION_KINDS = of_family("kernel-function", "user-function")
USER_KINDS = of_family("user-function")
PACKET_KINDS = of_family("packet")
