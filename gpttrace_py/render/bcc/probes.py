"""Probes: the C function of each probe (its head, context, return value) and the Python lines that attach it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...kernel.catalog import Catalog
from ...spec import ProbeRef, kinds
from ...spec import expr as E
from ...spec.units import NS
from ..common import probe_comment
from ..escape import ident, integer, string_literal
from .btf import btf_func_arg_count
from .ctext import RenderError

PERF_KINDS = kinds.of_family("timer", "perf")

@dataclass
class ProbeFn:
    probe: ProbeRef
    index: int  # position in PROBE_NAMES
    name: str  # the C function
    head: str  # the line that opens it
    ctx: str  # the variable holding the probe's context
    ret: str  # what it returns (XDP_PASS, TC_ACT_UNSPEC, 0)
    prog_type: str | None  # BPF.<TYPE> for load_func; None when BCC loads it itself (kfunc, lsm, usdt)
    user: bool  # pointers seen here point to user memory
    attach: list[str] = field(default_factory=list)  # Python lines that attach it
    comment: str = ""
    prologue: list[str] = field(default_factory=list)  # first lines of the body

    @property
    def kind(self) -> str:
        return self.probe.kind


def _args_used(exprs: list[str]) -> int:
    """How many argN the expressions reach (max N + 1)."""
    n = 0
    for text in exprs:
        for node in E.walk(E.parse(text)):
            if isinstance(node, E.Builtin) and node.name.startswith("arg") and node.name[3:].isdigit():
                n = max(n, int(node.name[3:]) + 1)
    return n


def make_probe_fn(probe: ProbeRef, index: int, name: str, catalog: Catalog, exprs: list[str],
                  declared: set[str] | None = None) -> ProbeFn:
    """The C function for one probe. ``declared`` collects the tracepoint argument structs already declared."""
    k = probe.kind
    fname = string_literal(name)
    cmt = probe_comment(probe, catalog)
    if k == "tracepoint":
        cat, ev = ident(probe.category or ""), ident(probe.name or "")
        struct = f"struct tracepoint__{cat}__{ev}"
        fn = ProbeFn(probe, index, name, f"int {name}({struct} *args)", "args", "0",
                     "BPF.TRACEPOINT", cat == "syscalls",
                     [f"b.attach_tracepoint(tp={string_literal(f'{cat}:{ev}')}, fn_name={fname})"], cmt)
        if declared is not None:
            if struct in declared:
                # BCC declares the struct (from the tracepoint's format file) before each function whose
                # parameter has its type; a second declaration would not compile, so take a plain pointer.
                fn.head = f"int {name}(void *ctx)"
                fn.prologue = [f"{struct} *args = ctx;  // the same arguments as above"]
            declared.add(struct)
        return fn
    if k == "rawtracepoint":
        return ProbeFn(probe, index, name, f"int {name}(struct bpf_raw_tracepoint_args *ctx)", "ctx", "0",
                       "BPF.RAW_TRACEPOINT", False,
                       [f"b.attach_raw_tracepoint(tp={string_literal(probe.name or '')}, fn_name={fname})"],
                       f"raw tracepoint {probe.name} (arguments as raw u64 values)")
    if k in ("kprobe", "kretprobe"):
        how = "attach_kretprobe" if k == "kretprobe" else "attach_kprobe"
        return ProbeFn(probe, index, name, f"int {name}(struct pt_regs *ctx)", "ctx", "0", "BPF.KPROBE", False,
                       [f"b.{how}(event={string_literal(probe.name or '')}, fn_name={fname})"], cmt)
    if k in ("uprobe", "uretprobe"):
        path = catalog.uprobe_path(probe.target or "") or probe.target or ""
        how = "attach_uretprobe" if k == "uretprobe" else "attach_uprobe"
        return ProbeFn(probe, index, name, f"int {name}(struct pt_regs *ctx)", "ctx", "0", "BPF.KPROBE", True,
                       [f"b.{how}(name={string_literal(path, 255)}, sym={string_literal(probe.name or '')}, "
                        f"fn_name={fname})"], cmt)
    if k == "usdt":
        path = catalog.uprobe_path(probe.target or "") or probe.target or ""
        return ProbeFn(probe, index, name, f"int {name}(struct pt_regs *ctx)", "ctx", "0", None, True,
                       [f"usdt_path={string_literal(path, 255)}, "
                        f"usdt_probe={string_literal(f'{probe.category}:{probe.name}')}"],
                       f"USDT probe {probe.category}:{probe.name} in {probe.target}")
    if k in ("kfunc", "kretfunc", "lsm"):
        func = ident(probe.name or "")
        nargs = _args_used(exprs)
        params = [f"u64 arg{i}" for i in range(nargs)]
        macro = {"kfunc": "KFUNC_PROBE", "kretfunc": "KRETFUNC_PROBE", "lsm": "LSM_PROBE"}[k]
        if k == "kretfunc":
            total = btf_func_arg_count(func)
            if total is None:
                raise RenderError(f"kretfunc:{func}: no function {func} in the kernel's BTF (/sys/kernel/btf/vmlinux)")
            if nargs > total:
                raise RenderError(f"kretfunc:{func}: {func}() has {total} arguments, arg{nargs - 1} does not exist")
            params = [f"u64 arg{i}" for i in range(total)] + ["s64 ret"]
        elif k == "kfunc":
            total = btf_func_arg_count(func)
            if total is not None and nargs > total:
                raise RenderError(f"kfunc:{func}: {func}() has {total} arguments, arg{nargs - 1} does not exist")
        head = f"{macro}({', '.join([func, *params])})"
        cname = {"kfunc": "kfunc__", "kretfunc": "kretfunc__", "lsm": "lsm__"}[k] + func
        note = ("BCC loads and attaches it while compiling (the kernel must permit "
                + ("BPF LSM programs)" if k == "lsm" else "fentry/fexit programs)"))
        what = f"BPF LSM hook {func} (runs at the security check; returning 0 allows it)" if k == "lsm" else cmt
        return ProbeFn(probe, index, cname, head, "ctx", "0", None, False, [], f"{what}; {note}")
    if k in PERF_KINDS:
        head = f"int {name}(struct bpf_perf_event_data *ctx)"
        if k == "profile":
            rate = int(probe.rate or 49)
            timing = (f"sample_freq={integer(rate)}" if probe.unit == "hz"
                      else f"sample_period={integer(rate * NS[probe.unit or 's'])}")
            attach = [f"b.attach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK, "
                      f"fn_name={fname}, {timing})"]
        elif k == "interval":
            period = int(probe.rate or 1) * NS[probe.unit or "s"]
            attach = [f"b.attach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK, "
                      f"fn_name={fname}, sample_period={integer(period)}, cpu=0)"]
            cmt = f"fires on CPU 0 every {probe.rate} {probe.unit} (a cpu-clock perf event)"
        elif k == "software":
            config = kinds.SOFTWARE_EVENTS[probe.name or ""]
            attach = [f"b.attach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.{config}, "
                      f"fn_name={fname}, sample_period={integer(int(probe.rate or 1))})"]
        else:
            config = kinds.HARDWARE_EVENTS[probe.name or ""]
            attach = [f"b.attach_perf_event(ev_type=PerfType.HARDWARE, ev_config=PerfHWConfig.{config}, "
                      f"fn_name={fname}, sample_period={integer(int(probe.rate or 1000000))})"]
            cmt = f"hardware perf event {probe.name} (every {probe.rate or 1000000} events)"
        return ProbeFn(probe, index, name, head, "ctx", "0", "BPF.PERF_EVENT", False, attach, cmt)
    if k == "xdp":
        dev = string_literal(probe.target or "", 15)
        return ProbeFn(probe, index, name, f"int {name}(struct xdp_md *ctx)", "ctx", "XDP_PASS", "BPF.XDP", False,
                       [f"attach_xdp(b, {fname}, {dev}, cleanups)"],
                       f"XDP: runs for every packet received on {probe.target}, before the network stack; "
                       "XDP_PASS lets it through")
    if k == "tc":
        dev = string_literal(probe.target or "", 15)
        direction = string_literal(probe.name or "ingress")
        return ProbeFn(probe, index, name, f"int {name}(struct __sk_buff *skb)", "skb", "TC_ACT_UNSPEC",
                       "BPF.SCHED_CLS", False, [f"attach_tc(b, {fname}, {dev}, {direction}, cleanups)"],
                       f"tc program on {probe.target} {probe.name} (a tcx link); "
                       "TC_ACT_UNSPEC lets the packet go on to the next program")
    raise RenderError(f"{probe.text}: BEGIN/END probes are bpftrace-only; use --backend bpftrace, or print from "
                      "an interval probe")


def enum_placeholders(catalog: Catalog, probes: list[ProbeRef]) -> list[str]:
    """Declarations of the enum types that tracepoint fields have (``enum skb_drop_reason reason``).

    BCC copies each field's type from the format file into the argument struct it declares; an enum there
    would need the kernel header that defines it. A placeholder enum of the same size is enough to read the
    field as a number (and the format file gives the names, see ``lower.value_names``)."""
    seen: dict[str, int] = {}
    for p in probes:
        tp = catalog.tracepoint(p)
        for f in tp.fields if tp else ():
            words = f.ctype.replace("const ", "").split()
            if len(words) == 2 and words[0] == "enum" and not f.array and "*" not in f.ctype:
                seen.setdefault(ident(words[1]), f.size)
    out = []
    for name, size in sorted(seen.items()):
        value, packed = {1: ("0", True), 2: ("0x100", True), 4: ("0", False), 8: ("0x100000000", False)}.get(
            size, ("0", False))
        out.append(f"enum {name} {{ gpttrace_{name}_placeholder = {value} }}"
                   f"{' __attribute__((packed))' if packed else ''};  // {size} bytes, as in the tracepoint")
    if out:
        out.insert(0, "// Enum types of tracepoint fields, declared so that BCC's argument structs compile.")
    return out
