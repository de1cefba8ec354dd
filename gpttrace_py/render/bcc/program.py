"""Render a ProgramSpec as a standalone BCC program (see the package's description): the entry point."""

from __future__ import annotations

from ...kernel.catalog import Catalog
from ...spec import ProgramSpec
from ..common import ready_title
from ..escape import Code, comment, environment, integer, string_literal
from ..lower import Context, read_saves_only
from ..program import RenderedProgram
from . import packets
from .builder import Builder
from .cgen import CGen
from .ctext import (
    MAP_ENTRIES,
    PERF_PAGES,
    RINGBUF_PAGES,
    STACK_ENTRIES,
    RenderError,
    c_comment,
    c_text_of,
    indent,
)
from .probes import PERF_KINDS, ProbeFn, enum_placeholders
from .slots import struct_lines


def render(spec: ProgramSpec, catalog: Catalog) -> RenderedProgram:
    spec = read_saves_only(spec)
    b = Builder(spec, catalog)
    b.make_fns()
    if spec.start:
        key_slots, saved = b.start_plan()
    else:
        key_slots, saved = [], []
    ev_slots, ev_values, ev_format, header = b.event_plan()
    plans = b.agg_plans()

    def body(gen: CGen) -> list[str]:
        lines: list[str] = []
        if ev_slots:
            lines += b.emit_lines(gen, ev_slots)
        for p in plans:
            lines += b.agg_lines(gen, p)
        return lines

    functions: list[dict[str, object]] = []
    start_functions: list[dict[str, object]] = []
    for fn in b.start_fns:
        start_functions.append(_fn_view(fn, b.start_function(fn, key_slots, saved)))
    for fn in b.fns:
        if spec.start:
            lines = b.end_function(fn, body)
        else:
            gen = CGen(b, fn, Context(catalog, [fn.probe]))
            filt = b.filter_lines(gen, spec.filter.comm, spec.filter.pid, spec.filter.expr)
            main = body(gen)
            lines = gen.top_lines() + filt + main + [f"return {fn.ret};"]
        functions.append(_fn_view(fn, lines))

    # C declarations
    decls: list[str] = []
    event_fields: list[tuple[str, str]] = []
    if ev_slots:
        lines, event_fields = struct_lines("event", ev_slots)
        decls += ["// One printed event, filled in the kernel and read by Python (class Event below).", *lines]
        if b.ringbuf:
            decls += [f"BPF_RINGBUF_OUTPUT(events, {RINGBUF_PAGES});  // {RINGBUF_PAGES} pages shared by all CPUs",
                      "BPF_ARRAY(lost, u64, 1);  // events dropped because the ring buffer was full", "",
                      "static __always_inline void count_lost(void)", "{", "    int zero = 0;",
                      "    u64 *n = lost.lookup(&zero);", "    if (n)", "        __sync_fetch_and_add(n, 1);", "}"]
        else:
            decls += ["BPF_PERF_OUTPUT(events);  // this kernel has no BPF ring buffer (before 5.8)",
                      "BPF_PERCPU_ARRAY(event_buf, struct event, 1);"]
    start_decls: list[str] = []
    if spec.start:
        kl, _ = struct_lines("start_key_t", key_slots)
        sl, _ = struct_lines("start_t", saved, lead=[(8, "u64 ts;", "ct.c_uint64")])
        start_decls = [f"// Start: {c_comment(spec.start.probes[0].text)}"
                       f"{' (and others)' if len(spec.start.probes) > 1 else ''} saves the time"
                       f"{' and values needed later' if saved else ''}, keyed by "
                       f"{c_comment(', '.join(spec.start.key))}.", *kl, *sl,
                       f"BPF_HASH(start, struct start_key_t, struct start_t, {MAP_ENTRIES});",
                       "BPF_PERCPU_ARRAY(start_buf, struct start_t, 1);  // scratch space, larger than the BPF stack"]
    agg_decls = b.agg_decls(plans)
    if b.stacks:
        agg_decls += ["", f"BPF_STACK_TRACE(stacks, {STACK_ENTRIES});  // stack ids → return addresses"]
    # Kernel headers are parsed by clang on every compile (a large one such as linux/sched.h costs most of a
    # second), so include only what the functions use.
    kinds = {fn.kind for fn in b.fns + b.start_fns}
    includes = []
    if kinds & {"kprobe", "kretprobe", "uprobe", "uretprobe", "usdt"}:
        includes.append("#include <uapi/linux/ptrace.h>")
    # (perf event functions only pass their struct bpf_perf_event_data pointer on, so it needs no header)
    if b.packet:
        includes += packets.HEADERS
    if "tc" in kinds:
        includes += ["#define TC_ACT_UNSPEC (-1)  // from linux/pkt_cls.h (TCX_NEXT): let the packet continue"]
    helpers: list[str] = []
    for lines in b.helpers.values():
        helpers += ["", *lines]
    includes += enum_placeholders(catalog, [fn.probe for fn in b.start_fns + b.fns])

    c_parts = {
        "includes": includes,
        "decls": decls,
        "start_decls": start_decls,
        "agg_decls": agg_decls,
        "helpers": helpers,
    }
    c_text_lines = [ln for part in c_parts.values() for ln in part]
    for f in start_functions + functions:
        c_text_lines += [str(f["probe"]), str(f["comment"]), str(f["head"]), *(str(x) for x in f["body"])]  # type: ignore[attr-defined]

    b.layout.ready = f"Tracing {ready_title(spec.title)}... Hit Ctrl-C to end."
    all_fns = b.start_fns + b.fns
    loads = [(string_literal(fn.name), fn.prog_type) for fn in all_fns if fn.prog_type]
    perf = any(fn.kind in PERF_KINDS for fn in all_fns)
    imports = ["BPF"] + (["PerfType", "PerfSWConfig", "PerfHWConfig"] if perf else []) + (["USDT"] if b.usdt else [])
    usdt = [(string_literal(fn.name), fn.attach[0]) for fn in b.usdt]
    view: dict[str, object] = {
        "title": comment(spec.title),
        "rationale": comment(spec.rationale) if spec.rationale else None,
        "lesson": comment(spec.lesson) if spec.lesson else None,
        "imports": Code(", ".join(imports)),
        "c": {k: [Code(ln) for ln in v] for k, v in c_parts.items()},
        "functions": functions,
        "start_functions": start_functions,
        "start_comment": c_comment(f"Start: remember when this happened, keyed by {', '.join(spec.start.key)}")
        if spec.start else None,
        "loads": [(Code(n), Code(t)) for n, t in loads],
        "autoloaded": [string_literal(fn.name) for fn in all_fns if fn.prog_type is None and fn.kind != "usdt"],
        "usdt": [(Code(n), Code(a)) for n, a in usdt],
        "attach": [Code(line) for fn in all_fns for line in (fn.attach if fn.kind != "usdt" else [])],
        "probe_names": [string_literal(fn.probe.text, 300) for fn in all_fns],
        "func_names": [string_literal(b.probe_label(fn, "func"), 300) for fn in all_fns],
        "names": [(integer(i), [(integer(k), string_literal(v, 40)) for k, v in sorted(t.items())])
                  for i, t in enumerate(b.names)],
        "title_literal": string_literal(spec.title, 400),
        "ready": string_literal(b.layout.ready),
        "header": string_literal(header, 400) if header else None,
        "event_fields": [(string_literal(n), Code(t)) for n, t in event_fields],
        "event_format": string_literal(ev_format, 400, marks=True) if ev_format else None,
        "event_widths": [integer(w) for w in b.layout.widths],
        "event_values": Code("".join(f"{v}, " for v in ev_values)),
        "ringbuf": b.ringbuf,
        "ringbuf_pages": integer(RINGBUF_PAGES),
        "perf_pages": integer(PERF_PAGES),
        "aggregates": [Code(ln) for ln in b.agg_python(plans)],
        "interval": integer(spec.interval_s) if spec.interval_s else integer(0),
        "tc": any(fn.kind == "tc" for fn in all_fns),
        "xdp": any(fn.kind == "xdp" for fn in all_fns),
    }
    template = "pair.py.j2" if spec.start else "events.py.j2"
    text = environment("bcc").get_template(template).render(**view)
    _check_c_text(text, c_text_lines)
    return RenderedProgram("bcc", text, b.layout)


def _fn_view(fn: ProbeFn, lines: list[str]) -> dict[str, object]:
    return {
        "probe": c_comment(fn.probe.text),
        "comment": c_comment(fn.comment, 300),
        "head": Code(fn.head),
        "body": [Code(ln) for ln in indent(fn.prologue + lines)],
    }


def _check_c_text(program_text: str, c_lines: list[str]) -> None:
    """The C text must be exactly what was built: nothing in it may end the Python string early."""
    for ln in c_lines:
        if '"""' in ln or ln.rstrip().endswith("\\"):
            raise RenderError("internal error: a line of the C text would break the program's quoting")
    c = c_text_of(program_text)
    if any(ln not in c for ln in c_lines if ln.strip()):
        raise RenderError("internal error: the C text was cut short")
