"""`gpttrace explain`: every probe, builtin/helper and map of a program is explained.

The coverage tests find those items with their own regexes (not the explainer's scanner) and check each one
is mentioned in the right section of the plain-text explanation, for every program of the examples corpus
and for handwritten bpftrace and BCC programs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gpttrace_py import corpus
from gpttrace_py.cli import cli
from gpttrace_py.explain import analyze, detect_backend, explain_program
from gpttrace_py.explain.glossary import load as load_glossary
from gpttrace_py.kernel.catalog import Catalog
from gpttrace_py.kernel.features import Features

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


def no_kprobes_catalog() -> Catalog:
    """A catalog of this machine's tracepoints, on a kernel without kprobes/kfunc/LSM (like the CI VM)."""
    feats = Features(
        root=True,
        tracefs="/sys/kernel/tracing",
        btf=True,
        kprobes=False,
        uprobes=True,
        bpftrace="/usr/bin/bpftrace",
        bpftrace_version="0.17.0",
        bcc_python="/usr/bin/python3",
        kernel=os.uname().release,
        ringbuf=True,
        kfunc=False,
        lsm=False,
    )
    return Catalog(feats)


# -- independent extraction -------------------------------------------------------------------------
BT_BUILTINS = {
    "pid",
    "tid",
    "uid",
    "gid",
    "username",
    "comm",
    "nsecs",
    "elapsed",
    "cpu",
    "numaid",
    "cgroup",
    "kstack",
    "ustack",
    "args",
    "retval",
    "func",
    "probe",
    "curtask",
    "rand",
    "cpid",
    "jiffies",
}
BT_NOT_CALLS = {"if", "while", "unroll", "sizeof", "offsetof", "for", "return"}
BT_PROBE = re.compile(
    r"(?:^|(?<=[\s,]))((?:tracepoint|kprobe|kretprobe|uprobe|uretprobe|kfunc|kretfunc|fentry|fexit|"
    r"profile|interval|software|hardware|usdt|rawtracepoint|lsm|watchpoint|t|k|kr|u|ur|f|fr|p|i|s|h|"
    r"U):[^\s,{]+|BEGIN|END)(?=[\s,{/]|$)"
)


def _strip_bt(text: str) -> str:
    text = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return "\n".join("" if ln.lstrip().startswith("#") else ln for ln in text.splitlines())


def _top_level(code: str) -> str:
    out, depth = [], 0
    for ch in code:
        if ch == "{":
            depth += 1
            out.append(" ")
        elif ch == "}":
            depth -= 1
            out.append(" ")
        else:
            out.append(ch if depth == 0 else " ")
    return "".join(out)


def bpftrace_items(text: str) -> dict[str, set[str]]:
    code = _strip_bt(text)
    top = _top_level(code)
    probes = set()
    for m in BT_PROBE.finditer(top):
        # a predicate /.../ follows a probe after whitespace; a uprobe path's '/' follows a ':'
        probes.add(re.split(r"\s/", m.group(1))[0])
    body = code
    builtins = {b for b in BT_BUILTINS if re.search(rf"(?<![\w@$.>]){b}(?!\w)", body)}
    builtins |= set(re.findall(r"(?<![\w@$.>])(s?arg\d+)(?!\w)", body))
    calls = {c for c in re.findall(r"(?<![\w@$.>])([A-Za-z_]\w*)\s*\(", body) if c not in BT_NOT_CALLS}
    calls -= {p.split(":")[0] for p in probes}
    maps = set(re.findall(r"@\w*", body))
    variables = set(re.findall(r"\$[A-Za-z_]\w*", body))
    return {"probes": probes, "names": builtins | calls, "maps": maps, "variables": variables}


C_MACROS = re.compile(
    r"\b(BPF_[A-Z0-9_]+|TRACEPOINT_PROBE|RAW_TRACEPOINT_PROBE|KFUNC_PROBE|KRETFUNC_PROBE|LSM_PROBE|"
    r"PT_REGS_\w+)\s*\("
)
C_MAP_DECL = re.compile(
    r"\bBPF_(?:HASH|LRU_HASH|PERCPU_HASH|ARRAY|PERCPU_ARRAY|HISTOGRAM|PERF_OUTPUT|RINGBUF_OUTPUT|"
    r"STACK_TRACE|QUEUE|STACK|DEVMAP|CPUMAP|PROG_ARRAY|LPM_TRIE|TASK_STORAGE|SK_STORAGE)\s*\(\s*(\w+)"
)
C_METHODS = re.compile(
    r"\w\s*\.\s*(increment|atomic_increment|lookup|lookup_or_init|lookup_or_try_init|update|insert|"
    r"delete|perf_submit|ringbuf_output|ringbuf_reserve|ringbuf_submit|ringbuf_discard|get_stackid|"
    r"push|pop|peek|redirect_map)\s*\("
)
PY_API = re.compile(
    r"\.\s*(attach_\w+|open_perf_buffer|open_ring_buffer|perf_buffer_poll|ring_buffer_poll|"
    r"ring_buffer_consume|trace_print|trace_fields|print_log2_hist|print_linear_hist|get_syscall_fnname|"
    r"enable_probe|load_func|remove_xdp)\s*\("
)


def _c_text(text: str) -> str:
    """The C parts of a BCC program: its triple-quoted strings that look like C (or the whole text)."""
    parts = [
        m.group(2)
        for m in re.finditer(r'("""|\'\'\')(.*?)\1', text, re.S)
        if re.search(r"#include|BPF_[A-Z_]+\s*\(|bpf_\w+\s*\(|TRACEPOINT_PROBE", m.group(2))
    ]
    if not parts and re.search(r"\bsrc_file\s*=", text):
        return ""  # the C text is in another file
    c = "\n".join(parts) if parts else text
    c = re.sub(r"/\*.*?\*/", " ", c, flags=re.S)
    c = re.sub(r"//[^\n]*", "", c)
    return re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', c)


def bcc_items(text: str) -> dict[str, set[str]]:
    c = _c_text(text)
    defined = set(re.findall(r"\b(?:int|void|u32|u64|long)\s+(\w+)\s*\([^;{]*\)\s*\{", c))
    names = (set(re.findall(r"\b(bpf_\w+)\s*\(", c)) - defined) | set(C_MACROS.findall(c)) | set(C_METHODS.findall(c))
    names |= set(PY_API.findall(text))
    maps = set(C_MAP_DECL.findall(c))
    maps |= {m.group(1) for m in re.finditer(r"\bBPF_TABLE\s*\(\s*\"\w+\"\s*,[^,]+,[^,]+,\s*(\w+)", c)}
    probes = {f"{a}:{b}" for a, b in re.findall(r"TRACEPOINT_PROBE\s*\(\s*(\w+)\s*,\s*(\w+)\s*\)", c)}
    probes |= set(re.findall(r"\b(?:int|void)\s+k(?:ret)?probe__(\w+)\s*\(", c))
    for call in re.finditer(
        r"attach_(?:kprobe|kretprobe|tracepoint|raw_tracepoint|uprobe|uretprobe)\s*\(([^)]*)\)", text
    ):
        for key in ("event", "tp", "sym"):
            lit = re.search(rf"\b{key}\s*=\s*[\"']([^\"']+)[\"']", call.group(1))
            if lit:
                probes.add(lit.group(1))
    return {"probes": probes, "names": names, "maps": maps, "variables": set()}


def sections(explanation: str) -> dict[str, str]:
    """Plain-text explanation → {section title: body}. A title is a line underlined with dashes."""
    lines = explanation.splitlines()
    out: dict[str, str] = {}
    current, body = "intro", []
    for i, ln in enumerate(lines):
        if i + 1 < len(lines) and lines[i + 1] and set(lines[i + 1]) == {"-"} and len(lines[i + 1]) == len(ln):
            out[current] = "\n".join(body)
            current, body = ln, []
            continue
        body.append(ln)
    out[current] = "\n".join(body)
    return out


def _mentioned(item: str, text: str) -> bool:
    if item == "@":
        return re.search(r"(?<![\w@])@(?![\w@])", text) is not None
    return re.search(rf"(?<![\w@$]){re.escape(item)}(?![\w])", text) is not None


def assert_covers(text: str, backend: str, explanation: str) -> None:
    items = bpftrace_items(text) if backend == "bpftrace" else bcc_items(text)
    secs = sections(explanation)
    names_title = "Builtins and functions" if backend == "bpftrace" else "Builtins, functions and helpers"
    missing = []
    for kind, section in (("probes", "Probes"), ("names", names_title), ("maps", "Maps")):
        body = secs.get(section, "")
        for item in sorted(items[kind]):
            if not _mentioned(item, body):
                missing.append(f"{kind}: {item} (not in section {section!r})")
    for var in sorted(items["variables"]):
        if not _mentioned(var, explanation):
            missing.append(f"variable: {var}")
    assert not missing, "\n".join(missing) + "\n\n" + explanation


def _have_bcc_renderer() -> bool:
    from importlib.util import find_spec

    return find_spec("gpttrace_py.render.bcc") is not None


HAVE_BCC_RENDERER = _have_bcc_renderer()


# -- the corpus -------------------------------------------------------------------------------------
def _corpus_programs() -> list:
    params = []
    try:
        entries = corpus.load()
    except corpus.CorpusError as exc:  # an entry being written right now
        return [pytest.param(None, None, None, id="corpus-unreadable", marks=pytest.mark.skip(reason=str(exc)))]
    for e in entries:
        params.append(pytest.param(e.id, "bpftrace", "program", id=f"{e.id}-bpftrace"))
        if e.bcc_program:
            params.append(pytest.param(e.id, "bcc", "bcc_program", id=f"{e.id}-bcc"))
        elif HAVE_BCC_RENDERER:
            params.append(pytest.param(e.id, "bcc", "bcc_rendered", id=f"{e.id}-bcc-rendered"))
        if e.original and (e.original.spec or e.original.bcc_program):
            params.append(
                pytest.param(e.id, "bpftrace" if e.original.spec else "bcc", "original", id=f"{e.id}-original")
            )
    return params


def _program_of(entry_id: str, backend: str, which: str, catalog: Catalog) -> str | None:
    e = corpus.by_id(entry_id)
    assert e is not None
    if which == "program":
        if e.program:
            return e.program
        from gpttrace_py.render import bpftrace as render_bt

        try:
            return render_bt.render(e.spec, catalog).text
        except (ValueError, TypeError) as exc:
            pytest.skip(f"the spec does not render for bpftrace: {exc}")
    if which == "bcc_program":
        return e.bcc_program
    if which == "bcc_rendered":
        from gpttrace_py.render.bcc import program as render_bcc

        try:
            return render_bcc.render(e.spec, catalog).text
        except (ValueError, TypeError) as exc:
            pytest.skip(f"the spec does not render for BCC: {exc}")
    assert e.original is not None
    if e.original.bcc_program:
        return e.original.bcc_program
    from gpttrace_py.render import bpftrace as render_bt

    try:
        return render_bt.render(e.original.spec, catalog).text
    except (ValueError, TypeError) as exc:
        if not HAVE_BCC_RENDERER:
            pytest.skip(f"the original method does not render for bpftrace: {exc}")
    from gpttrace_py.render.bcc import program as render_bcc

    try:
        return render_bcc.render(e.original.spec, catalog).text
    except (ValueError, TypeError) as exc:
        pytest.skip(f"the original method renders neither for bpftrace nor for BCC: {exc}")
    return None


@pytest.mark.parametrize(("entry_id", "backend", "which"), _corpus_programs())
def test_corpus_program_fully_explained(entry_id, backend, which, catalog):
    text = _program_of(entry_id, backend, which, catalog)
    assert text
    if which == "original":
        backend = detect_backend(text)
    out = explain_program(text, backend, catalog, color=False)
    assert not ANSI.search(out)
    assert_covers(text, backend, out)
    secs = sections(out)
    for needed in ("Probes", "Walkthrough", "Filters", "Maps", "Output", "Overhead", "Read next"):
        assert needed in secs, f"missing section {needed}"


def test_corpus_is_not_empty():
    assert len(corpus.load()) >= 1


# -- handwritten programs ------------------------------------------------------------------------------
ONE_LINER = 'tracepoint:syscalls:sys_enter_openat /comm == "cat"/ { printf("%s %s\\n", comm, str(args->filename)); }\n'

LATENCY_BT = r"""#!/usr/bin/env bpftrace
// read() latency per process, as a histogram
t:syscalls:sys_enter_read
{
	@start[tid] = nsecs;
}

tracepoint:syscalls:sys_exit_read
/@start[tid]/
{
	$us = (nsecs - @start[tid]) / 1000;
	@lat[comm] = hist($us);
	@bytes = sum(args->ret);
	if (args->ret < 0) { @errors[comm, args->ret] = count(); }
	delete(@start[tid]);
}

interval:s:5
{
	time("%H:%M:%S\n");
	print(@lat);
	clear(@lat);
}

END
{
	clear(@start);
}
"""

STACKS_BT = r"""profile:hz:49 /pid != 0/ { @[kstack, ustack, comm] = count(); }
uprobe:/bin/bash:readline { printf("%d %s\n", uid, usym(reg("ip"))); }
uretprobe:/bin/bash:readline { @lines[pid] = count(); printf("%s\n", str(retval)); }
software:page-faults:100 { @faults[comm] = count(); }
interval:s:10 { exit(); }
"""

KPROBE_BT = r"""#!/usr/bin/env bpftrace
kprobe:do_unlinkat
{
	printf("%-6d %-16s unlink\n", pid, comm);
}

kretprobe:do_unlinkat
{
	@ret[retval] = count();
}
"""

BCC_OPENSNOOP = r'''#!/usr/bin/python3
# opensnoop: files opened, with the process (BCC)
from bcc import BPF

prog = """
#include <uapi/linux/ptrace.h>
#include <linux/sched.h>

struct data_t {
    u32 pid;
    char comm[TASK_COMM_LEN];
    char fname[256];
    int ret;
};

BPF_HASH(infotmp, u64, struct data_t);
BPF_PERF_OUTPUT(events);

TRACEPOINT_PROBE(syscalls, sys_enter_openat)
{
    u64 id = bpf_get_current_pid_tgid();
    struct data_t data = {};
    data.pid = id >> 32;
    if (data.pid == 1)
        return 0;
    bpf_get_current_comm(&data.comm, sizeof(data.comm));
    bpf_probe_read_user_str(&data.fname, sizeof(data.fname), args->filename);
    infotmp.update(&id, &data);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_openat)
{
    u64 id = bpf_get_current_pid_tgid();
    struct data_t *valp = infotmp.lookup(&id);
    if (valp == 0)
        return 0;
    valp->ret = args->ret;
    events.perf_submit(args, valp, sizeof(*valp));
    infotmp.delete(&id);
    return 0;
}
"""

b = BPF(text=prog)
print("%-7s %-16s %-4s %s" % ("PID", "COMM", "FD", "PATH"))


def print_event(cpu, data, size):
    event = b["events"].event(data)
    print("%-7d %-16s %-4d %s" % (event.pid, event.comm.decode(), event.ret, event.fname.decode()))


b["events"].open_perf_buffer(print_event)
while True:
    try:
        b.perf_buffer_poll()
    except KeyboardInterrupt:
        exit()
'''

BCC_KPROBE_HIST = r'''from bcc import BPF
from time import sleep

b = BPF(text="""
#include <uapi/linux/ptrace.h>
BPF_HASH(start, u32, u64);
BPF_HISTOGRAM(dist);
BPF_HASH(counts, u32, u64, 1024);
BPF_STACK_TRACE(stack_traces, 1024);

int trace_start(struct pt_regs *ctx) {
    u32 tid = bpf_get_current_pid_tgid();
    u64 ts = bpf_ktime_get_ns();
    start.update(&tid, &ts);
    int stack_id = stack_traces.get_stackid(ctx, 0);
    counts.increment(stack_id);
    return 0;
}

int trace_done(struct pt_regs *ctx) {
    u32 tid = bpf_get_current_pid_tgid();
    u64 *tsp = start.lookup(&tid);
    if (tsp == 0) {
        return 0;
    }
    u64 delta = bpf_ktime_get_ns() - *tsp;
    dist.increment(bpf_log2l(delta / 1000));
    start.delete(&tid);
    bpf_trace_printk("done after %llu ns\\n", delta);
    return 0;
}
""")
b.attach_kprobe(event="vfs_read", fn_name="trace_start")
b.attach_kretprobe(event="vfs_read", fn_name="trace_done")
b.attach_uprobe(name="c", sym="malloc", fn_name="trace_start")
try:
    sleep(10)
except KeyboardInterrupt:
    pass
b["dist"].print_log2_hist("usecs")
for k, v in sorted(b["counts"].items(), key=lambda kv: kv[1].value):
    print(k.value, v.value)
'''

BCC_RINGBUF_XDP = r'''from bcc import BPF
import time

device = "lo"
b = BPF(text=r"""
#include <uapi/linux/bpf.h>
struct event { u32 pid; char comm[16]; };
BPF_RINGBUF_OUTPUT(events, 8);
BPF_ARRAY(packets, u64, 1);

int xdp_count(struct xdp_md *ctx) {
    int zero = 0;
    u64 *v = packets.lookup(&zero);
    if (v) __sync_fetch_and_add(v, 1);
    return XDP_PASS;
}

RAW_TRACEPOINT_PROBE(sched_process_exec)
{
    struct event *e = events.ringbuf_reserve(sizeof(struct event));
    if (!e) return 0;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    events.ringbuf_submit(e, 0);
    return 0;
}
""")
fn = b.load_func("xdp_count", BPF.XDP)
b.attach_xdp(device, fn, 0)


def handle(ctx, data, size):
    e = b["events"].event(data)
    print(e.pid, e.comm)


b["events"].open_ring_buffer(handle)
try:
    while True:
        b.ring_buffer_poll()
except KeyboardInterrupt:
    pass
b.remove_xdp(device, 0)
'''

HANDWRITTEN = [
    pytest.param(ONE_LINER, "bpftrace", id="one-liner"),
    pytest.param(LATENCY_BT, "bpftrace", id="latency"),
    pytest.param(STACKS_BT, "bpftrace", id="stacks-uprobes"),
    pytest.param(KPROBE_BT, "bpftrace", id="kprobe"),
    pytest.param(BCC_OPENSNOOP, "bcc", id="bcc-opensnoop"),
    pytest.param(BCC_KPROBE_HIST, "bcc", id="bcc-kprobe-hist"),
    pytest.param(BCC_RINGBUF_XDP, "bcc", id="bcc-ringbuf-xdp"),
]


@pytest.mark.parametrize(("text", "backend"), HANDWRITTEN)
def test_handwritten_program_fully_explained(text, backend, catalog):
    assert detect_backend(text) == backend
    out = explain_program(text, "auto", catalog)
    assert_covers(text, backend, out)


def test_installed_tools_fully_explained(catalog):
    """The bpftrace and BCC tools installed on this machine (found on PATH), when there are any: real-world
    programs."""
    dirs = dict.fromkeys(Path(d).resolve() for d in os.environ.get("PATH", "").split(os.pathsep) if d)
    bcc_tools = [f for d in dirs for f in sorted(d.glob("*-bpfcc")) if "python" in _first_line(f)]
    files = [f for d in dirs for f in sorted(d.glob("*.bt"))] + bcc_tools
    if not files:
        pytest.skip("no bpftrace/BCC tools installed")
    failures = []
    for f in files:
        text = f.read_text(errors="replace")
        backend = detect_backend(text)
        assert backend == ("bpftrace" if f.suffix == ".bt" else "bcc"), f
        out = explain_program(text, backend, catalog)
        try:
            assert_covers(text, backend, out)
        except AssertionError as exc:
            failures.append(f"{f.name}: {str(exc).split(chr(10) * 2)[0]}")
    # BCC tools put their C text together from many pieces, some in ways no scanner follows (deadlock's
    # Python has its own .pop()/.update() calls the independent regexes take for map methods).
    assert len(failures) <= max(2, len(files) // 50), "\n".join(failures)


def _first_line(path: Path) -> str:
    with open(path, errors="replace") as fh:
        return fh.readline()


# -- what the explanation says -----------------------------------------------------------------------
def test_fields_come_from_the_live_format(catalog):
    tp = catalog.tracepoint("tracepoint:syscalls:sys_enter_openat")
    if tp is None:
        pytest.skip("no syscalls tracepoints here")
    out = explain_program(ONE_LINER, "bpftrace", catalog)
    probes = sections(out)["Probes"]
    for f in tp.user_fields:
        assert re.search(rf"\*?{f.name}\s+{re.escape(f.ctype)}", probes), f.name
    assert "*filename" in probes  # marked as used
    assert "str()" in probes  # a user pointer: how to read it
    assert "stable" in probes


def test_filters_output_overhead_and_maps_are_explained(catalog):
    out = explain_program(LATENCY_BT, "bpftrace", catalog)
    secs = sections(out)
    assert "@start has an entry for tid" in secs["Filters"]
    assert "is negative (the call failed)" in secs["Filters"] or "negative" in secs["Filters"]
    assert "start map keyed by tid" in secs["Maps"]
    assert "same thread" in secs["Maps"]
    assert "power-of-two histogram" in secs["Maps"]
    assert "Periodically" in secs["Output"]
    assert "At exit, automatically" in secs["Output"]
    assert "Expected overhead" in secs["Overhead"]
    assert "t:syscalls:sys_enter_read (= tracepoint:syscalls:sys_enter_read)" in secs["Probes"]


def test_high_frequency_per_event_printing_is_flagged(catalog):
    text = 'tracepoint:sched:sched_switch { printf("%s -> %s\\n", args->prev_comm, args->next_comm); }'
    out = explain_program(text, "bpftrace", catalog)
    over = sections(out)["Overhead"]
    assert "Expected overhead: high" in over
    assert "very often" in over


def test_unknown_identifiers_are_reported(catalog):
    text = 'tracepoint:syscalls:sys_enter_read { @x[comm] = frobnicate(pid); printf("%d\\n", MY_LIMIT); }'
    out = explain_program(text, "bpftrace", catalog)
    names = sections(out)["Builtins and functions"]
    assert "frobnicate" in names and "MY_LIMIT" in names
    assert names.count("not in the glossary") >= 2


def test_unavailable_kprobe_says_what_to_use_instead():
    out = explain_program(KPROBE_BT, "bpftrace", no_kprobes_catalog())
    probes = sections(out)["Probes"]
    assert "NOT AVAILABLE on this kernel" in probes
    assert "CONFIG_KPROBES" in probes
    assert "Use instead" in probes
    if Catalog().tracepoint("tracepoint:syscalls:sys_enter_unlinkat"):
        assert "tracepoint:syscalls:sys_enter_unlinkat" in probes
        assert "tracepoint:syscalls:sys_exit_unlinkat" in probes  # for the kretprobe
    assert "unstable" in probes
    assert "NOT AVAILABLE" in sections(out)["intro"]


def test_bcc_program_explained(catalog):
    out = explain_program(BCC_KPROBE_HIST, "bcc", no_kprobes_catalog())
    secs = sections(out)
    assert "kprobe:vfs_read" in secs["Probes"] and "kretprobe:vfs_read" in secs["Probes"]
    assert "trace_start" in secs["Probes"]
    assert "uprobe:c:malloc" in secs["Probes"]
    assert "histogram" in secs["Maps"] and "start map" in secs["Maps"]
    assert "print_log2_hist" in secs["Output"]
    assert "trace pipe" in secs["Output"]
    assert "early" in secs["Filters"] or "tsp" in secs["Filters"]
    assert "compiles the C text" in secs["Overhead"]


def test_bcc_event_channel(catalog):
    out = explain_program(BCC_OPENSNOOP, "bcc", catalog)
    secs = sections(out)
    assert "tracepoint:syscalls:sys_enter_openat" in secs["Probes"]
    assert "event channel" in secs["Maps"] and "print_event" in secs["Maps"]
    assert "Per event, through events" in secs["Output"]
    assert "struct data_t" in secs["Walkthrough"]


def test_color_output_is_rich_and_plain_is_not(catalog):
    colored = explain_program(ONE_LINER, "bpftrace", catalog, color=True)
    plain = explain_program(ONE_LINER, "bpftrace", catalog, color=False)
    assert ANSI.search(colored)
    assert not ANSI.search(plain)


def test_detect_backend():
    assert detect_backend(LATENCY_BT) == "bpftrace"
    assert detect_backend(BCC_OPENSNOOP) == "bcc"
    assert detect_backend('BEGIN { printf("hi\\n"); exit(); }') == "bpftrace"
    assert detect_backend("sudo bpftrace -e 'kprobe:vfs_read { @[comm] = count(); }'") == "bpftrace"
    assert detect_backend("BPF_HASH(counts, u32);\nint kprobe__vfs_read(void *ctx) { return 0; }") == "bcc"


def test_bpftrace_command_line_is_unwrapped(catalog):
    out = explain_program(
        "sudo bpftrace -e 'tracepoint:sched:sched_process_exec { @[comm] = count(); }'", "auto", catalog
    )
    assert "tracepoint:sched:sched_process_exec" in sections(out)["Probes"]
    assert_covers("tracepoint:sched:sched_process_exec { @[comm] = count(); }", "bpftrace", out)


def test_corpus_program_is_recognized_and_lessons_suggested(catalog):
    entries = [e for e in corpus.load() if e.program]
    if not entries:
        pytest.skip("no rendered programs in the corpus yet")
    e = entries[0]
    out = explain_program(e.program, "bpftrace", catalog)
    assert f"corpus example {e.id}" in sections(out)["intro"]


def test_read_next_lists_lessons(catalog):
    out = explain_program(LATENCY_BT, "bpftrace", catalog)
    nxt = sections(out)["Read next"]
    if any(e.lesson for e in corpus.load()):
        assert re.search(r"lesson \d+: ", nxt), nxt


def test_glossary_is_complete_for_the_language():
    g = load_glossary()
    for b in BT_BUILTINS:
        assert g.bt_builtin(b), b
    for f in (
        "printf",
        "str",
        "join",
        "ntop",
        "ksym",
        "usym",
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "hist",
        "lhist",
        "stats",
        "print",
        "clear",
        "delete",
        "time",
        "exit",
        "kstack",
        "ustack",
        "system",
        "cat",
        "signal",
    ):
        assert g.bt_function(f), f
    for h in (
        "bpf_get_current_pid_tgid",
        "bpf_ktime_get_ns",
        "bpf_get_current_comm",
        "bpf_probe_read_user_str",
        "bpf_probe_read_kernel",
        "bpf_ringbuf_output",
        "bpf_ringbuf_submit",
        "bpf_ringbuf_reserve",
        "bpf_log2l",
        "bpf_trace_printk",
        "bpf_get_stackid",
    ):
        assert g.bcc(h), h
    for mac in (
        "TRACEPOINT_PROBE",
        "BPF_HASH",
        "BPF_HISTOGRAM",
        "BPF_RINGBUF_OUTPUT",
        "BPF_PERF_OUTPUT",
        "BPF_STACK_TRACE",
        "BPF_ARRAY",
        "PT_REGS_PARM1",
        "PT_REGS_RC",
    ):
        assert g.bcc(mac), mac
    for meth in ("increment", "lookup", "update", "delete", "perf_submit", "get_stackid", "ringbuf_output"):
        assert g.map_method(meth), meth
    for api in (
        "attach_kprobe",
        "attach_tracepoint",
        "attach_uprobe",
        "attach_perf_event",
        "attach_xdp",
        "open_perf_buffer",
        "perf_buffer_poll",
        "print_log2_hist",
        "trace_print",
        "ring_buffer_poll",
    ):
        assert g.python_api(api), api
    for section, entries in g.data.items():
        if isinstance(entries, dict) and section not in ("kernel_functions", "lsm_hooks"):
            for name, e in entries.items():
                assert isinstance(name, str), (section, name)
                assert isinstance(e, dict) and str(e.get("text", "")).strip(), (section, name)


def test_analyze_finds_the_structure():
    m = analyze(LATENCY_BT)
    assert m.backend == "bpftrace"
    assert [p.kind for p in m.probes] == ["tracepoint", "tracepoint", "interval", "END"]
    assert m.blocks[1].predicate == "@start[tid]"
    assert "ret" in m.blocks[1].fields_used
    assert set(m.maps) == {"@start", "@lat", "@bytes", "@errors"}
    b = analyze(BCC_KPROBE_HIST)
    assert b.backend == "bcc"
    assert {m.macro for m in b.maps.values()} == {"BPF_HASH", "BPF_HISTOGRAM", "BPF_STACK_TRACE"}
    assert {p.handler for p in b.probes} == {"trace_start", "trace_done"}


# -- the CLI ----------------------------------------------------------------------------------------
def _run(args: list[str], input: str | None = None):
    return CliRunner().invoke(cli, args, input=input, catch_exceptions=False)


def test_cli_explain_file(tmp_path):
    f = tmp_path / "latency.bt"
    f.write_text(LATENCY_BT)
    r = _run(["explain", str(f)])
    assert r.exit_code == 0, r.output
    assert "How this bpftrace script works" in r.output
    assert "Program" in sections(r.output)
    assert_covers(LATENCY_BT, "bpftrace", r.output)


def test_cli_explain_stdin():
    r = _run(["explain", "-"], input=ONE_LINER)
    assert r.exit_code == 0, r.output
    assert "tracepoint:syscalls:sys_enter_openat" in sections(r.output)["Probes"]
    assert_covers(ONE_LINER, "bpftrace", r.output)


def test_cli_plain_when_piped(tmp_path):
    f = tmp_path / "one.bt"
    f.write_text(ONE_LINER)
    proc = subprocess.run(
        [sys.executable, "-m", "gpttrace_py", "explain", str(f)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert not ANSI.search(proc.stdout)
    assert "Probes\n------" in proc.stdout
    forced = _run(["explain", "--color", str(f)])
    assert ANSI.search(forced.output)


def test_cli_bcc_program(tmp_path):
    f = tmp_path / "opensnoop.py"
    f.write_text(BCC_OPENSNOOP)
    r = _run(["explain", str(f)])
    assert r.exit_code == 0, r.output
    assert "How this BCC program" in r.output
    assert_covers(BCC_OPENSNOOP, "bcc", r.output)


def test_cli_handwritten_one_liner(tmp_path):
    f = tmp_path / "oneliner.bt"
    f.write_text(ONE_LINER)
    r = _run(["explain", "--no-listing", str(f)])
    assert r.exit_code == 0, r.output
    secs = sections(r.output)
    assert "Program" not in secs
    assert 'comm (process name) is "cat"' in secs["Filters"]
    r2 = _run(["explain", "-e", ONE_LINER.strip()])
    assert r2.exit_code == 0 and "sys_enter_openat" in r2.output


def test_cli_kprobe_not_available(tmp_path, monkeypatch):
    import gpttrace_py.kernel.catalog as catalog_module

    monkeypatch.setattr(catalog_module, "detect", lambda: no_kprobes_catalog().features)
    f = tmp_path / "unlink.bt"
    f.write_text(KPROBE_BT)
    r = _run(["explain", str(f)])
    assert r.exit_code == 0, r.output
    probes = sections(r.output)["Probes"]
    assert "NOT AVAILABLE on this kernel" in probes
    assert "Use instead" in probes and "tracepoint:" in probes.split("Use instead", 1)[1]


def test_cli_errors(tmp_path):
    from gpttrace_py.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["explain", str(tmp_path / "missing.bt")])
    assert exc.value.code == 2
    empty = tmp_path / "empty.bt"
    empty.write_text("  \n")
    with pytest.raises(SystemExit) as exc:
        main(["explain", str(empty)])
    assert exc.value.code == 2


def test_backend_forced(tmp_path):
    f = tmp_path / "prog.txt"
    f.write_text(ONE_LINER)
    r = _run(["explain", "--backend", "bpftrace", "--no-listing", str(f)])
    assert r.exit_code == 0
    assert "bpftrace script" in r.output
