"""A scanner for BCC programs: the C text handed to ``BPF(text=...)`` (read by bcc_c) and the Python around it
(read by bcc_python), put together into one ProgramModel with the probes each attach call makes."""

from __future__ import annotations

import re

from .bcc_c import CScanner
from .bcc_python import ATTACH_KINDS, Fragment, PythonReader, PythonScan, looks_like_c
from .glossary import Glossary
from .glossary import load as load_glossary
from .model import Probe, ProgramModel, PythonSide
from .source import scan

AUTO_PREFIXES = (
    ("kprobe__", "kprobe"),
    ("kretprobe__", "kretprobe"),
    ("tracepoint__", "tracepoint"),
    ("raw_tracepoint__", "rawtracepoint"),
    ("kfunc__", "kfunc"),
    ("kretfunc__", "kretfunc"),
    ("lsm__", "lsm"),
)


def looks_like_bcc(text: str) -> bool:
    """BCC's Python or C, or the C of a libbpf program (SEC() sections, vmlinux.h or bpf/bpf_helpers.h)."""
    return bool(
        re.search(r"(?m)^\s*(from\s+bcc\s+import|import\s+bcc\b)|\bBPF\s*\(\s*(text|src_file)\s*=", text)
        or looks_like_libbpf(text)
        or re.search(
            r"\b(TRACEPOINT_PROBE|BPF_HASH|BPF_PERF_OUTPUT|BPF_RINGBUF_OUTPUT|BPF_HISTOGRAM|"
            r"BPF_ARRAY|BPF_STACK_TRACE)\s*\(",
            text,
        )
        or re.search(r"(?m)^#!.*python", text)
    )


def looks_like_libbpf(text: str) -> bool:
    return bool(re.search(r'(?m)^\s*#\s*include\s*[<"](vmlinux\.h|bpf/bpf_helpers\.h)[>"]|^\s*SEC\s*\(\s*"', text))

# -- putting it together ---------------------------------------------------------------------------
def analyze(text: str, glossary: Glossary | None = None) -> ProgramModel:
    g = glossary or load_glossary()
    model = ProgramModel("bcc", text)
    py: PythonScan | None = None
    try:
        py = PythonReader(text, g).run()
    except SyntaxError:
        py = None
    if py is not None and (py.fragments or py.attaches or py.api):
        model.python = py.side
        fragments = py.fragments
    else:
        # C only (or Python we cannot parse): the C text is the file, or its triple-quoted strings.
        quoted = [
            (mm.group(2), text.count("\n", 0, mm.start(2)) + 1)
            for mm in re.finditer(r"(\"\"\"|\'\'\')(.*?)\1", text, re.S)
            if looks_like_c(mm.group(2))
        ]
        fragments = [Fragment(t, ln) for t, ln in quoted] or [Fragment(text, 1)]
        if quoted:
            model.python = PythonSide()
            model.notes.append("The Python part could not be parsed (Python 2?); only its C text is explained.")
    joined, line_map = _join(fragments)
    src = scan(joined)
    src.line_map = line_map
    if len(fragments) > 1:
        notes = sorted({f.note for f in fragments if f.note})
        if notes:
            model.notes.append("Part of the C text is put in by the Python code (" + "; ".join(notes) + ").")
    CScanner(src, model, g).run()
    model.c_line_offset = fragments[0].line - 1 if fragments else 0
    model.title = _title(text)
    if py is not None and model.python is not None:
        _python_probes(model, py, g)
        side = model.python
        side.table_reads = [
            (ln, tb, meth)
            for ln, tb, meth in side.table_reads
            if tb in model.maps or ("[" in tb and (ln, tb, meth) not in py.maybe_tables)
        ]
        for cb, tb in list(side.callbacks.items()):
            if tb not in model.maps and len(model.maps) and tb == "?":
                subs = [mp for mp in model.maps.values() if mp.map_type in ("ringbuf", "perf_event_array")]
                if len(subs) == 1:
                    side.callbacks[cb] = subs[0].name
        for name, line, _kind in py.api:
            model.use(name, "python", line)
        for name, line in py.unknown_api:
            model.use(name, "unknown", line, note="called on the BPF object or a map from Python")
    model.libbpf = model.python is None and looks_like_libbpf(text)
    if model.libbpf:
        for b in model.blocks:
            if b.function == "__outside__":
                b.label = "C code outside the functions"
    else:
        _auto_attached(model)
    return model


def _join(fragments: list[Fragment]) -> tuple[str, list[int]]:
    parts: list[str] = []
    line_map: list[int] = []
    for f in fragments:
        lines = f.text.split("\n")
        parts.append(f.text)
        line_map.extend(range(f.line, f.line + len(lines)))
    return "\n".join(parts), line_map


def _title(text: str) -> str | None:
    for line in text.splitlines()[:15]:
        s = line.strip()
        if s.startswith("#!") or not s or "lint" in s:
            continue
        mm = re.match(r"#\s*(.+)$", s)
        if mm and len(mm.group(1)) > 3 and not mm.group(1).lower().startswith(("copyright", "licensed", "usage")):
            return mm.group(1)
        if not s.startswith("#"):
            break
    return None


def _python_probes(model: ProgramModel, py: PythonScan, g: Glossary) -> None:
    by_function = {b.function: i for i, b in enumerate(model.blocks) if b.function}
    for a in py.attaches:
        kind = ATTACH_KINDS.get(a.method, "usdt")
        kw = a.kw
        handler = kw.get("fn_name") or (a.pos[1] if a.method == "attach_xdp" and len(a.pos) > 1 else None)
        if a.method in ("attach_kfunc", "attach_kretfunc", "attach_lsm"):
            # the function was declared with KFUNC_PROBE/LSM_PROBE and is already a probe
            continue
        p = Probe(a.source, kind, a.line, via=a.method + "()", handler=handler)
        if kind in ("kprobe", "kretprobe"):
            p.name = kw.get("event") or kw.get("event_re") or (a.pos[0] if a.pos else "?")
            p.wildcard = "event_re" in kw
            p.text = f"{kind}:{p.name}"
        elif kind in ("tracepoint", "rawtracepoint"):
            tp = kw.get("tp") or kw.get("tp_re") or (a.pos[0] if a.pos else "?")
            p.wildcard = "tp_re" in kw or "*" in tp
            if kind == "tracepoint" and ":" in tp:
                p.category, p.name = tp.split(":", 1)
            else:
                p.name = tp
            p.text = f"{kind}:{tp}"
        elif kind in ("uprobe", "uretprobe"):
            target = kw.get("name") or (a.pos[0] if a.pos else "?")
            sym = kw.get("sym") or kw.get("sym_re") or kw.get("addr") or (a.pos[1] if len(a.pos) > 1 else "?")
            p.target, p.name = target, sym
            p.wildcard = "sym_re" in kw
            p.text = f"{kind}:{target}:{sym}"
        elif kind == "perf_event":
            ev_type = kw.get("ev_type", a.pos[0] if a.pos else "?")
            ev_config = kw.get("ev_config", a.pos[1] if len(a.pos) > 1 else "?")
            p.name = f"{ev_type.split('.')[-1]} {ev_config.split('.')[-1]}".strip()
            if "sample_freq" in kw:
                p.unit, p.rate = "hz", kw["sample_freq"]
            elif "sample_period" in kw:
                p.unit, p.rate = "period", kw["sample_period"]
            p.text = f"perf_event:{ev_type.split('.')[-1]}:{ev_config.split('.')[-1]}" + (
                f":{p.rate}" if p.rate else ""
            )
        elif kind == "xdp":
            p.target = kw.get("dev") or (a.pos[0] if a.pos else "?")
            p.text = f"xdp:{p.target}"
        elif kind == "socket_filter":
            p.target = kw.get("dev") or (a.pos[1] if len(a.pos) > 1 else "?")
            p.text = f"socket_filter:{p.target}"
        else:  # usdt enable_probe
            p.kind = "usdt"
            p.name = kw.get("probe") or (a.pos[0] if a.pos else "?")
            p.target = kw.get("_target")
            p.text = f"usdt:{p.target}:{p.name}"
            p.via = "USDT.enable_probe()"
        if handler in by_function:
            p.block = by_function[handler]
            model.blocks[p.block].probes.append(len(model.probes))
        model.probes.append(p)
    for line, direction, dev, fname in py.tc:
        p = Probe(
            f"tc:{dev}:{direction}", "tc", line, target=dev, name=direction, via="pyroute2 tc add-filter", handler=fname
        )
        if fname in by_function:
            p.block = by_function[fname]
            model.blocks[p.block].probes.append(len(model.probes))
        model.probes.append(p)


def _auto_attached(model: ProgramModel) -> None:
    """Functions BCC attaches by their name prefix (kprobe__do_sys_open, tracepoint__sched__sched_switch)."""
    for i, b in enumerate(model.blocks):
        name = b.function or ""
        for prefix, kind in AUTO_PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                rest = name[len(prefix) :]
                p = Probe(
                    f"{kind}:{rest}",
                    kind,
                    b.start_line,
                    via=f"the {prefix} name prefix (BCC attaches it itself)",
                    handler=name,
                    block=i,
                )
                if kind == "tracepoint" and "__" in rest:
                    p.category, p.name = rest.split("__", 1)
                    p.text = f"tracepoint:{p.category}:{p.name}"
                else:
                    p.name = rest
                b.probes.append(len(model.probes))
                model.probes.append(p)
                break
