"""The libbpf project: NAME.c (a loader on bpftool's skeleton), a Makefile and a README, around the shared
kernel side of ``export.kernel_side``."""

from __future__ import annotations

from typing import TypedDict

from ..kernel.catalog import Catalog
from ..spec import ProgramSpec
from ..spec.kinds import SOFTWARE_EVENTS
from ..spec.units import NS
from .bcc.probes import ProbeFn
from .bcc.slots import Slot
from .escape import Code, comment, environment, ident, integer, string_literal
from .export import Project, StructLayout, kernel_side


class ColumnView(TypedDict, total=False):
    """An event column, for a loader template (``cell``: the statement that writes its text, per language)."""

    label: Code
    fmt: Code
    slot: Slot
    cell: Code


class AggregateView(TypedDict, total=False):
    """An aggregate, for a loader template (``cells``/``slot_at``: added per language)."""

    index: Code
    name: Code
    map: Code
    func: Code
    title: Code
    labels: list[Code]
    nkeys: Code
    value_label: Code
    unit: Code
    top: Code
    hist: Code
    lo: Code
    hi: Code
    step: Code
    nslots: Code
    key: StructLayout | None
    slots: list[Slot]
    avg: bool
    is_hist: bool
    cells: list[Code]
    slot_at: Code


class LoaderView(TypedDict):
    """What the C and Go loaders have in common, in escaped pieces."""

    use: dict[str, bool]
    name: Code
    title: Code
    title_literal: Code
    rationale: Code | None
    ready: Code
    header: Code | None
    columns: list[ColumnView]
    aggs: list[AggregateView]
    names: list[tuple[Code, list[tuple[Code, Code]]]]
    probe_names: list[Code]
    func_names: list[Code]
    interval: Code
    lesson: Code | None


def c_cell(slot: Slot, obj: str) -> Code:
    """A statement writing the text of one member of ``obj`` into ``cell`` (a char array)."""
    m = f"{obj}->{ident(slot.member)}"
    k = slot.kind
    if k == "int":
        return Code(f'snprintf(cell, sizeof(cell), "{"%lld" if slot.signed else "%llu"}", '
                    f'({"long long" if slot.signed else "unsigned long long"}){m});')
    if k in ("hex", "oct"):
        conv = "0x%llx" if k == "hex" else "%04llo"
        return Code(f'snprintf(cell, sizeof(cell), "{conv}", (unsigned long long){m});')
    if k == "names":
        return Code(f"name_of(cell, sizeof(cell), names_{integer(slot.names or 0)}, "
                    f"ARRAY_SIZE(names_{integer(slot.names or 0)}), (long long){m});")
    if k == "str":
        return Code(f'snprintf(cell, sizeof(cell), "%.*s", (int)sizeof({m}), {m});')
    if k in ("ip4", "ip6"):
        return Code(f"inet_ntop({'AF_INET' if k == 'ip4' else 'AF_INET6'}, {m}, cell, sizeof(cell));")
    if k == "ip4int":
        return Code(f"inet_ntop(AF_INET, &{m}, cell, sizeof(cell));")
    if k in ("probe", "func"):
        return Code(f'snprintf(cell, sizeof(cell), "%s", {k}_names[{m}]);')
    if k == "join":
        return Code(f"join_args(cell, sizeof(cell), {m});")
    raise AssertionError(k)


def perf_attr(fn: ProbeFn) -> tuple[Code, Code, Code]:
    """(config, sample field, value) of the perf event a perf_event program is attached to."""
    p = fn.probe
    if p.kind == "software":
        return Code(f"PERF_COUNT_SW_{SOFTWARE_EVENTS[p.name or '']}"), Code("sample_period"), integer(int(p.rate or 1))
    if p.unit == "hz":
        return Code("PERF_COUNT_SW_CPU_CLOCK"), Code("sample_freq"), integer(int(p.rate or 49))
    return Code("PERF_COUNT_SW_CPU_CLOCK"), Code("sample_period"), integer(int(p.rate or 1) * NS[p.unit or "s"])


def loader_view(p: Project) -> LoaderView:
    """What the C and Go loaders have in common: events, tables, aggregates, in escaped pieces."""
    spec: ProgramSpec = p.spec
    columns: list[ColumnView] = [
        {"label": string_literal(label, 40), "fmt": string_literal(fmt), "slot": s}
        for (label, fmt), s in zip(p.columns, p.event_slots)
    ]
    aggs: list[AggregateView] = []
    for i, v in enumerate(p.aggs):
        aggs.append({
            "index": integer(i),
            "name": string_literal(v.name),
            "map": ident(v.map),
            "func": string_literal(v.func),
            "title": string_literal(v.title, 200),
            "labels": [string_literal(lab, 40) for lab in v.labels],
            "nkeys": integer(len(v.labels)),
            "value_label": string_literal(v.value_label, 40),
            "unit": string_literal(v.unit, 40),
            "top": integer(v.top),
            "hist": integer(v.hist),
            "lo": integer(v.buckets[0]),
            "hi": integer(v.buckets[1]),
            "step": integer(v.buckets[2]),
            "nslots": integer(v.nslots),
            "key": v.key,
            "slots": v.slots,
            "avg": v.func == "avg",
            "is_hist": bool(v.hist),
        })
    kinds = {s.kind for s in p.event_slots} | {s.kind for v in p.aggs for s in v.slots}
    use = {"names": "names" in kinds, "join": "join" in kinds, "probe": "probe" in kinds, "func": "func" in kinds,
           "table": any(not v.hist and v.key for v in p.aggs), "hist": any(v.hist for v in p.aggs)}
    return {
        "use": use,
        "name": ident(p.name),
        "title": comment(spec.title),
        "title_literal": string_literal(spec.title, 400),
        "rationale": comment(spec.rationale) if spec.rationale else None,
        "ready": string_literal(p.ready, 400),
        "header": string_literal(p.header_line, 400) if p.header_line else None,
        "columns": columns,
        "aggs": aggs,
        "names": [(integer(i), [(integer(k), string_literal(v, 40)) for k, v in sorted(t.items())])
                  for i, t in enumerate(p.names)],
        "probe_names": [string_literal(fn.probe.text, 300) for fn, _ in p.fns],
        "func_names": [string_literal(fn.probe.name or fn.probe.text, 300) for fn, _ in p.fns],
        "interval": integer(spec.interval_s or 0),
        "lesson": comment(spec.lesson) if spec.lesson else None,
    }


def project(spec: ProgramSpec, catalog: Catalog, name: str) -> dict[str, str]:
    """The files of the libbpf project, by name."""
    p = kernel_side(spec, catalog, name)
    view = loader_view(p)
    for col in view["columns"]:
        col["cell"] = c_cell(col["slot"], "e")
    for agg in view["aggs"]:
        agg["cells"] = [c_cell(s, "k") for s in agg["slots"]]
    perf = [{"prog": ident(fn.name), "attr": perf_attr(fn), "what": comment(fn.probe.text)}
            for fn, sec in p.fns if sec == "perf_event"]
    uprobes = any(fn.kind in ("uprobe", "uretprobe") for fn, _ in p.fns)
    env = environment("export")
    files = {
        f"{name}.bpf.c": p.bpf_c,
        f"{name}.h": p.header,
        f"{name}.c": env.get_template("loader.c.j2").render(**view, perf=perf),
        "Makefile": env.get_template("Makefile.libbpf.j2").render(name=ident(name)),
        "README.md": env.get_template("README.libbpf.md.j2").render(
            **view, perf=bool(perf), uprobes=uprobes, pair=spec.start is not None, events=bool(p.event_slots),
            hist=any(a.hist for a in p.aggs), maps=bool(p.aggs)),
        ".gitignore": "/vmlinux.h\n/*.o\n/*.skel.h\n/" + name + "\n",
    }
    return files
