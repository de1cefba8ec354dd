"""The Go project: main.go on cilium/ebpf (bpf2go embeds NAME.bpf.c's object), go.mod, a Makefile and a
README, around the shared kernel side of ``export.kernel_side``. It prints what the libbpf loader prints."""

from __future__ import annotations

from ..kernel.catalog import Catalog
from ..spec import ProgramSpec
from .bcc.slots import Slot
from .escape import Code, environment, ident, integer, string_literal
from .export import StructLayout, kernel_side
from .export_libbpf import loader_view, perf_attr

CILIUM_EBPF = "v0.9.1"  # the version Debian packages (golang-github-cilium-ebpf-dev)
_PERF_CONFIG = {  # PERF_COUNT_SW_* numbers (linux/perf_event.h), as unix.PERF_COUNT_SW_* names
    "CPU_CLOCK": "unix.PERF_COUNT_SW_CPU_CLOCK", "TASK_CLOCK": "unix.PERF_COUNT_SW_TASK_CLOCK",
    "PAGE_FAULTS": "unix.PERF_COUNT_SW_PAGE_FAULTS", "CONTEXT_SWITCHES": "unix.PERF_COUNT_SW_CONTEXT_SWITCHES",
    "CPU_MIGRATIONS": "unix.PERF_COUNT_SW_CPU_MIGRATIONS", "PAGE_FAULTS_MIN": "unix.PERF_COUNT_SW_PAGE_FAULTS_MIN",
    "PAGE_FAULTS_MAJ": "unix.PERF_COUNT_SW_PAGE_FAULTS_MAJ", "ALIGNMENT_FAULTS": "unix.PERF_COUNT_SW_ALIGNMENT_FAULTS",
    "EMULATION_FAULTS": "unix.PERF_COUNT_SW_EMULATION_FAULTS",
}


def go_cell(slot: Slot, layout: StructLayout, buf: str) -> Code:
    """A Go expression: the text of one member of the struct whose bytes are in ``buf``."""
    m = layout.member(slot.member)
    at = integer(m.offset)
    end = integer(m.offset + m.size)
    k = slot.kind
    if k == "int":
        if slot.signed:
            return Code(f"strconv.FormatInt(int64(le.Uint64({buf}[{at}:])), 10)")
        return Code(f"strconv.FormatUint(le.Uint64({buf}[{at}:]), 10)")
    if k in ("hex", "oct"):
        return Code(f'fmt.Sprintf("{"0x%x" if k == "hex" else "%04o"}", le.Uint64({buf}[{at}:]))')
    if k == "names":
        return Code(f"nameOf(names{integer(slot.names or 0)}, int64(le.Uint64({buf}[{at}:])))")
    if k == "str":
        return Code(f"cString({buf}[{at}:{end}])")
    if k in ("ip4", "ip6", "ip4int"):
        return Code(f"net.IP({buf}[{at}:{end}]).String()")
    if k in ("probe", "func"):
        return Code(f"{k}Names[le.Uint32({buf}[{at}:])]")
    if k == "join":
        return Code(f"joinArgs({buf}[{at}:{end}])")
    raise AssertionError(k)


def gofmt(text: str) -> str:
    """The Go text as gofmt lays it out, when gofmt is here (it only changes spacing); else as rendered."""
    import shutil
    import subprocess

    tool = shutil.which("gofmt") or shutil.which("gofmt", path="/usr/lib/go/bin")
    if tool is None:
        return text
    r = subprocess.run([tool], input=text, capture_output=True, text=True, timeout=30)
    return r.stdout if r.returncode == 0 and r.stdout else text


def project(spec: ProgramSpec, catalog: Catalog, name: str) -> dict[str, str]:
    """The files of the Go project, by name."""
    p = kernel_side(spec, catalog, name)
    view = loader_view(p)
    for col in view["columns"]:
        assert p.events is not None
        col["cell"] = go_cell(col["slot"], p.events, "b")
    for agg, v in zip(view["aggs"], p.aggs, strict=True):
        agg["cells"] = [go_cell(s, v.key, "k") for s in v.slots] if v.key else []
        agg["slot_at"] = integer(v.key.member("slot").offset) if v.key and v.hist else integer(0)
    perf = []
    for fn, sec in p.fns:
        if sec == "perf_event":
            config, field, value = perf_attr(fn)
            perf.append({"prog": string_literal(fn.name),
                         "config": Code(_PERF_CONFIG[config.removeprefix("PERF_COUNT_SW_")]),
                         "freq": field == "sample_freq", "sample": value, "what": string_literal(fn.probe.text)})
    attach = []
    for fn, _ in p.fns:
        if fn.kind == "tracepoint":
            attach.append({"kind": "tracepoint", "prog": string_literal(fn.name),
                           "group": string_literal(fn.probe.category or ""),
                           "event": string_literal(fn.probe.name or "")})
        elif fn.kind in ("uprobe", "uretprobe"):
            attach.append({"kind": fn.kind, "prog": string_literal(fn.name),
                           "path": string_literal(fn.attach[0], 300), "symbol": string_literal(fn.probe.name or "")})
    env = environment("export")
    go_view = {**view, "perf": perf, "attach": attach, "events": bool(p.event_slots),
               "uses_net": any(s.kind in ("ip4", "ip6", "ip4int") for s in p.event_slots)
               or any(s.kind in ("ip4", "ip6", "ip4int") for v in p.aggs for s in v.slots),
               "uses_strconv": any(s.kind == "int" for s in p.event_slots)
               or any(s.kind == "int" for v in p.aggs for s in v.slots)}
    return {
        f"bpf/{name}.bpf.c": p.bpf_c,  # (go refuses C files in a package directory without cgo)
        f"bpf/{name}.h": p.header,
        "main.go": gofmt(env.get_template("main.go.j2").render(**go_view)),
        "go.mod": env.get_template("go.mod.j2").render(name=ident(name), version=Code(CILIUM_EBPF)),
        "Makefile": env.get_template("Makefile.go.j2").render(name=ident(name)),
        "README.md": env.get_template("README.go.md.j2").render(
            **view, perf=bool(perf), uprobes=any(a["kind"] != "tracepoint" for a in attach),
            pair=spec.start is not None, events=bool(p.event_slots), hist=any(a.hist for a in p.aggs),
            maps=bool(p.aggs)),
        ".gitignore": "/bpf/vmlinux.h\n/bpf_*.o\n/bpf_*.go\n/go.debian.*\n/" + name + "\n",
    }
