"""Facts about one probe on this machine: what fires it, how stable it is, whether this kernel has it,
the fields it offers (read from the live tracefs format), how often it fires, and what to use instead."""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from ..kernel import syscalls
from ..kernel.catalog import Catalog
from ..kernel.tracefs import TpField, Tracepoint
from ..spec import kinds
from .glossary import Glossary

if TYPE_CHECKING:
    from ..corpus import Example
    from ..spec.model import ProbeRef
from .model import KERNEL_FUNCTION_KINDS, PACKET_KINDS, SPECIAL_KINDS, Probe

RATE_ORDER = ["once", "rare", "low", "moderate", "depends", "high", "very high"]


@dataclass
class ProbeFacts:
    probe: Probe
    fires: str
    stability: str
    kind_text: str
    available: bool | None  # None: cannot tell (e.g. an interface named at run time)
    reason: str | None = None
    alternatives: list[str] = field(default_factory=list)
    alternative_note: str | None = None
    tracepoint: Tracepoint | None = None
    format_path: str | None = None
    matches: list[str] = field(default_factory=list)  # what a wildcard matches here
    rate: str = "depends"
    rate_note: str = ""
    missing_fields: list[str] = field(default_factory=list)
    resolved: str | None = None  # uprobe: the file the target resolves to


def facts(probe: Probe, catalog: Catalog, glossary: Glossary, fields_used: list[str] | None = None) -> ProbeFacts:
    kind = probe.kind
    entry = glossary.probe_kind(kind)
    stability = (entry.get("stability") if entry else None) or "unknown"
    f = ProbeFacts(
        probe,
        fires=_fires(probe, glossary),
        stability=stability,
        kind_text=entry.text if entry else f"a {kind} probe",
        available=True,
    )
    if kind == "tracepoint":
        _tracepoint(f, catalog, glossary, fields_used or [])
    elif kind == "rawtracepoint":
        f.available = catalog.tracepoints.available and bool(_tracepoints_named(catalog, probe.name or ""))
        if not f.available:
            f.reason = f"no tracepoint called {probe.name!r} on this kernel"
        f.rate = _tracepoint_rate(glossary, *(_tracepoints_named(catalog, probe.name or "") or [("", "")])[0])
    elif kind in KERNEL_FUNCTION_KINDS:
        _kernel_function(f, catalog)
    elif kind == "lsm":
        feats = catalog.features
        f.available = bool(feats.lsm)
        if not f.available:
            f.reason = "this kernel refuses BPF LSM programs (BPF is not in its LSM list, or fentry is off)"
        f.rate = "high"
    elif kind in kinds.USER_KINDS:
        _user(f, catalog)
    elif kind in ("profile",):
        rate = _int(probe.rate)
        cpus = os.cpu_count() or 1
        if probe.unit in ("hz", None) and rate:
            f.rate = "high" if rate * cpus > 2000 else "moderate"
            f.rate_note = f"{rate} samples per second on each of {cpus} CPUs = {rate * cpus}/s"
        else:
            f.rate = "moderate"
    elif kind == "interval":
        f.rate = "low"
        f.rate_note = "a timer on one CPU"
    elif kind in SPECIAL_KINDS:
        f.rate = "once"
    elif kind == "software":
        f.rate = "depends"
        f.rate_note = f"once every {probe.rate or 'N'} {probe.name} events"
    elif kind == "hardware":
        if not os.path.isdir("/sys/bus/event_source/devices/cpu"):
            f.available = False
            f.reason = "no hardware performance counters are exposed here (usually a VM without a PMU)"
            f.alternatives = ["profile:hz:99", "software:cpu-clock:1000000"]
        f.rate_note = f"once every {probe.rate or 'N'} {probe.name}"
    elif kind in PACKET_KINDS:
        target = probe.target
        if target and re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", target):
            f.available = os.path.exists(f"/sys/class/net/{target}")
            if not f.available:
                f.reason = f"no network interface {target!r} here (see `ip link`)"
        else:
            f.available = None
            f.reason = "the interface is chosen when the program runs"
        f.rate = "high"
        f.rate_note = "once per packet"
    elif kind == "perf_event":
        f.rate = "moderate"
    elif kind in kinds.of_family("memory", "iterator"):
        f.available = None
    return f


# -- what fires it ---------------------------------------------------------------------------------
def _fires(p: Probe, g: Glossary) -> str:
    """A phrase that completes "Fires ..."."""
    k = p.kind
    if k == "tracepoint":
        if p.wildcard:
            return f"at any tracepoint matching {p.category}:{p.name} (one attachment per match)"
        if p.category == "syscalls" and p.name:
            m = re.match(r"sys_(enter|exit)_(\w+)", p.name)
            if m:
                call = syscalls.canonical(m.group(2))
                if m.group(1) == "enter":
                    return (
                        f"when a thread enters the {call}() system call, before the kernel does the work: "
                        "its arguments are known, its result is not yet"
                    )
                return (
                    f"when the {call}() system call returns to the calling thread: args->ret is the result "
                    "(a negative errno on failure)"
                )
        if p.category == "raw_syscalls":
            return (
                "on every system call of every process ("
                + ("entry" if p.name == "sys_enter" else "return")
                + "), identified by number in args->id"
            )
        entry = g.tracepoint(p.category or "", p.name or "")
        if entry:
            return _after_fires(entry.text)
        cat = g.category(p.category or "")
        where = f" ({cat.text.rstrip('.')})" if cat else ""
        return f"at the kernel's {p.name} trace point in the {p.category} subsystem{where}"
    if k in ("kprobe", "kfunc"):
        return f"on entry to the kernel function {p.name}()" + (
            " (every function matching the pattern)" if p.wildcard else ""
        )
    if k in ("kretprobe", "kretfunc"):
        return f"when the kernel function {p.name}() returns (retval is its result)"
    if k == "uprobe":
        return f"when {p.name}() in {p.target} is called"
    if k == "uretprobe":
        return f"when {p.name}() in {p.target} returns (retval is its result)"
    if k == "usdt":
        return f"at the static probe {p.name} compiled into {p.target}"
    if k == "profile":
        if p.unit in ("hz", None):
            return f"{p.rate} times per second on every CPU (a timer interrupt), whatever runs there"
        return f"every {p.rate} {p.unit} on every CPU"
    if k == "interval":
        return f"every {p.rate} {p.unit or ''} on one CPU".replace("  ", " ")
    if k == "software":
        return f"on the software event {p.name}" + (f", once every {p.rate} occurrences" if p.rate else "")
    if k == "hardware":
        return f"on the hardware counter {p.name}" + (f", once every {p.rate} counts" if p.rate else "")
    if k == "BEGIN":
        return "once, at start, after every probe is attached"
    if k == "END":
        return "once, when tracing stops"
    if k == "rawtracepoint":
        return f"at the raw tracepoint {p.name} (raw kernel arguments, no formatted fields)"
    if k == "lsm":
        return f"at the security hook {p.name}, before the operation is allowed"
    if k == "xdp":
        return f"for every packet received on {p.target}, in the driver, before the network stack"
    if k == "tc":
        return f"for every packet {'entering' if p.name == 'ingress' else 'leaving'} {p.target} (tc {p.name})"
    if k == "perf_event":
        return (
            f"on perf event samples ({p.name}"
            + (f", {p.rate} {'per second' if p.unit == 'hz' else 'events apart'}" if p.rate else "")
            + ")"
        )
    if k == "socket_filter":
        return f"for every packet of a raw socket on {p.target}"
    return f"as the {k} probe {p.text}"


def _after_fires(text: str) -> str:
    text = " ".join(text.split()).rstrip(".")
    if text.startswith("Fires "):
        return text[len("Fires ") :]
    return "when: " + text


# -- tracepoints -----------------------------------------------------------------------------------
def _tracepoint(f: ProbeFacts, catalog: Catalog, g: Glossary, fields_used: list[str]) -> None:
    p = f.probe
    idx = catalog.tracepoints
    if not idx.available:
        f.available = False
        from ..kernel.tracefs import tracefs_missing

        f.reason = tracefs_missing()
        return
    if p.wildcard:
        pattern = f"{p.category}:{p.name}"
        f.matches = [f"{c}:{n}" for c, n in idx.all_names() if fnmatch.fnmatchcase(f"{c}:{n}", pattern)]
        f.available = bool(f.matches)
        if not f.available:
            f.reason = "no tracepoint on this kernel matches"
        rates = [_tracepoint_rate(g, *m.split(":", 1)) for m in f.matches[:400]]
        f.rate = max(rates, key=RATE_ORDER.index) if rates else "depends"
        return
    tp = catalog.tracepoint(f"tracepoint:{p.category}:{p.name}")
    if tp is None:
        f.available = False
        near = _near(catalog, p.name or "", 5)
        f.reason = "no such tracepoint on this kernel"
        f.alternatives = [f"tracepoint:{n}" for n in near]
        if f.alternatives:
            f.alternative_note = "tracepoints with similar names here"
        return
    f.tracepoint = tp
    f.format_path = str(idx.root / "events" / (p.category or "") / (p.name or "") / "format") if idx.root else None
    f.missing_fields = [name for name in fields_used if tp.field(name) is None]
    f.rate = _tracepoint_rate(g, p.category or "", p.name or "")


def _tracepoint_rate(g: Glossary, category: str, name: str) -> str:
    entry = g.tracepoint(category, name)
    if entry and entry.get("rate"):
        return entry.get("rate")
    if category == "syscalls":
        m = re.match(r"sys_(?:enter|exit)_(\w+)", name)
        if m and m.group(1) in g.words("busy_syscalls"):
            return "high"
        return "depends"
    cat = g.category(category)
    return cat.get("rate") if cat and cat.get("rate") else "depends"


def _tracepoints_named(catalog: Catalog, name: str) -> list[tuple[str, str]]:
    return [(c, n) for c, n in catalog.tracepoints.all_names() if n == name]


def field_hint(fld: TpField) -> str:
    """How to use a field of this type in a program."""
    k = fld.kind
    if k == "str":
        return "text stored in the event" + (" (read it with str())" if fld.data_loc else "; print it with %s")
    if k == "ptr_str":
        return "a pointer to a string in the process's memory: read it with str()"
    if k == "ip4":
        return "an IPv4 address (4 bytes): print it with ntop()"
    if k == "ip6":
        return "an IPv6 address (16 bytes): print it with ntop()"
    if k == "array":
        return f"an array of {fld.array or 'N'} elements"
    if k == "ptr":
        return "a pointer"
    return f"{'signed' if fld.signed else 'unsigned'} {fld.size * 8}-bit integer"


# -- kernel functions ------------------------------------------------------------------------------
def _kernel_function(f: ProbeFacts, catalog: Catalog) -> None:
    p = f.probe
    feats = catalog.features
    if kinds.KINDS[p.kind].needs == "kprobes":  # kprobe, kretprobe (not kfunc, kretfunc)
        if not feats.kprobes:
            f.available = False
            f.reason = "this kernel has no kprobes (CONFIG_KPROBES is off)"
        elif p.name and not p.wildcard:
            funcs = _traceable_functions(str(catalog.tracepoints.root or ""))
            if funcs and p.name not in funcs:
                f.available = False
                f.reason = f"the kernel function {p.name}() cannot be probed here (renamed, inlined or absent)"
    else:
        if feats.kfunc is False:
            f.available = False
            f.reason = "this kernel refuses fentry/fexit (kfunc) programs"
        elif feats.kfunc is None:
            f.available = None if feats.btf else False
            f.reason = None if feats.btf else "kfunc needs BTF (/sys/kernel/btf/vmlinux)"
    f.rate = "depends"
    hot = {
        "vfs_read",
        "vfs_write",
        "schedule",
        "__schedule",
        "finish_task_switch",
        "kmalloc",
        "__kmalloc",
        "kfree",
        "try_to_wake_up",
        "tcp_sendmsg",
        "tcp_recvmsg",
        "ip_rcv",
        "__netif_receive_skb",
        "dev_queue_xmit",
        "handle_mm_fault",
        "ksys_read",
        "ksys_write",
        "kmem_cache_alloc",
        "kmem_cache_free",
    }
    if p.name in hot or (p.name or "").startswith(("__x64_sys_read", "__x64_sys_write", "__x64_sys_futex")):
        f.rate = "high"


@lru_cache(maxsize=2)
def _traceable_functions(root: str) -> frozenset[str]:
    if not root:
        return frozenset()
    try:
        with open(os.path.join(root, "available_filter_functions")) as fh:
            return frozenset(line.split()[0] for line in fh if line.strip())
    except OSError:
        return frozenset()


# -- user space ------------------------------------------------------------------------------------
def resolve_user_target(catalog: Catalog, target: str | None) -> str | None:
    if not target:
        return None
    name = {"c": "libc", "pthread": "libpthread", "m": "libm", "dl": "libdl"}.get(target, target)
    return catalog.uprobe_path(name)


def _user(f: ProbeFacts, catalog: Catalog) -> None:
    from ..kernel.uprobes import function_symbols

    p = f.probe
    if not catalog.features.uprobes:
        f.available = False
        f.reason = "this kernel has no uprobes (CONFIG_UPROBE_EVENTS is off)"
        return
    if p.target is None or not re.fullmatch(r"[\w./+@-]+", p.target):
        f.available = None
        f.reason = "the binary is chosen when the program runs"
        return
    path = resolve_user_target(catalog, p.target)
    f.resolved = path
    if path is None:
        f.available = False
        from ..kernel.uprobes import TARGET_ERROR

        f.reason = TARGET_ERROR.format(target=p.target)  # one answer whatever the reason
        f.alternatives = []
        f.alternative_note = "install it, or give its full path (find it with `which NAME` or `ldd $(which PROGRAM)`)"
        return
    if p.kind == "usdt":
        f.available = None
        f.reason = (
            f"{path} exists; whether it was built with this probe is checked when the probe attaches; "
            f"list its probes with `bpftrace -l 'usdt:{path}:*'`"
        )
        return
    syms = function_symbols(path)
    if syms and p.name and not p.wildcard and p.name not in syms:
        f.available = False
        f.reason = f"{path} has no function {p.name!r} (stripped, renamed or inlined?)"
        near = [s for s in syms if p.name in s][:5]
        if near:
            f.alternatives = [f"{p.kind}:{path}:{s}" for s in near]
            f.alternative_note = "functions with a similar name in that file"
    if p.name in ("malloc", "free", "calloc", "realloc", "memcpy", "strlen", "pthread_mutex_lock"):
        f.rate = "very high"
        f.rate_note = f"{p.name}() runs very often in most programs; each call traps into the kernel"
    else:
        f.rate = "depends"
        f.rate_note = "each call traps into the kernel (about a microsecond)"


# -- what to use instead ---------------------------------------------------------------------------
def stable_alternatives(probe: Probe, catalog: Catalog, glossary: Glossary) -> tuple[list[str], str | None]:
    """Tracepoints that see the same thing as a kprobe/kfunc/lsm probe, that exist on this kernel."""
    name = probe.name or ""
    ret = probe.kind in kinds.RETURN_KINDS
    out: list[str] = []
    note: str | None = None
    # 1. The corpus: an entry whose original method used this probe has a working spec.
    try:
        from .. import corpus

        candidates = [
            e for e in corpus.load() if any(_same_function(p.kind, p.name, probe) for p in _original_probes(e))
        ]
        # the same kind of probe first (a kprobe program learns most from the kprobe lesson)
        candidates.sort(key=lambda e: (not any(p.kind == probe.kind for p in _original_probes(e)), e.id))
        if candidates:
            e = candidates[0]
            out += [p.text for p in e.spec.all_probes if p.kind not in SPECIAL_KINDS]
            note = f"as in the corpus example {e.id}" + (f" (lesson {e.lesson})" if e.lesson else "")
            if e.original and e.original.note:
                note += ": " + " ".join(e.original.note.split()).rstrip(".")
    except corpus.CorpusError:  # the corpus is optional help here
        pass
    # 2. The glossary's table of kernel functions and LSM hooks.
    entry = glossary.lsm_hook(name) if probe.kind == "lsm" else glossary.kernel_function(name)
    if entry is None and probe.kind != "lsm":
        entry = glossary.kernel_function(re.sub(r"\.(isra|constprop|part|cold)\.\d+$", "", name))
    if entry:
        for tp in entry.get("use", []):
            out.append("tracepoint:" + (_to_exit(tp) if ret else tp))
        if entry.get("note") and note is None:
            note = entry.get("note")
    # 3. A syscall implementation: __x64_sys_openat, do_sys_openat2, ksys_read ...
    m = re.match(r"^(?:__(?:x64|ia32|arm64|se|do)_sys_|__sys_|ksys_|sys_|do_sys_|do_)(\w+?)(?:2)?$", name)
    if m:
        for call in (m.group(1), m.group(1) + "2", m.group(1) + "at"):
            if catalog.tracepoints.exists("syscalls", f"sys_enter_{call}"):
                out.append(f"tracepoint:syscalls:sys_{'exit' if ret else 'enter'}_{call}")
                break
    # 4. A tracepoint with (nearly) the same name.
    if name and not out:
        for near in _near(catalog, name, 3):
            out.append(f"tracepoint:{near}")
    seen: set[str] = set()
    here = []
    for tp in out:
        if tp in seen:
            continue
        seen.add(tp)
        if tp.startswith("tracepoint:") and catalog.tracepoint(tp) is None:
            continue
        here.append(tp)
    return here[:4], note


def _original_probes(e: Example) -> list[ProbeRef]:
    """The probes of an entry's original method (what the classic tool attaches), if it has one."""
    return list(e.original.spec.all_probes) if e.original and e.original.spec else []


def _same_function(kind: str, name: str | None, probe: Probe) -> bool:
    # the same function seen by kprobe/kfunc (entry or return), an LSM hook, or a uprobe; usdt is no function
    mine, theirs = kinds.KINDS.get(kind), kinds.KINDS.get(probe.kind)
    if mine is None or theirs is None or "usdt" in (kind, probe.kind):
        return False
    if mine.family == theirs.family and mine.family in ("kernel-function", "security", "user-function"):
        return (name or "") == (probe.name or "")
    return False


def _to_exit(tp: str) -> str:
    return tp.replace(":sys_enter_", ":sys_exit_")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


_NEAR: dict[tuple[int, str, int], list[str]] = {}


def _near(catalog: Catalog, name: str, limit: int) -> list[str]:
    """Tracepoints with names close to ``name`` (difflib over ~2,000 names: cached, it is slow-ish)."""
    key = (id(catalog.tracepoints), name, limit)
    if key not in _NEAR:
        _NEAR[key] = catalog.near_tracepoints(name, limit=limit)
    return _NEAR[key]
