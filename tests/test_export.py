"""gpttrace export: real requests exported as libbpf projects, built with Debian's clang/bpftool/libbpf, run
with a workload, and checked on what they print and that nothing stays attached after they end."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import run_cli

pytestmark = pytest.mark.kernel

TOOLS = {"libbpf": ("clang", "bpftool", "make", "cc"), "go": ("clang", "bpftool", "make", "go", "gofmt")}
NEEDS = {"libbpf": "/usr/include/bpf/libbpf.h", "go": "/usr/share/gocode/src/github.com/cilium/ebpf/go.mod"}
BUILD_TIMES: dict[str, float] = {}


def _need_tools(lang: str) -> None:
    missing = [t for t in TOOLS[lang] if shutil.which(t) is None] + [p for p in [NEEDS[lang]] if not Path(p).exists()]
    if missing:
        pytest.fail(f"install.sh installs clang, libbpf-dev, bpftool, make, golang-go and "
                    f"golang-github-cilium-ebpf-dev; missing: {missing}")


@pytest.fixture(params=["libbpf", "go"])
def lang(request) -> str:
    return request.param


def export_and_build(tmp_path: Path, request: str | dict, name: str, lang: str = "libbpf",
                     vmlinux: Path | None = None) -> tuple[Path, float]:
    """Export REQUEST (or a spec) as a LANG project and build it with make (the Go one with no module proxy).
    ``vmlinux``: a vmlinux.h made already (bpftool's dump takes a second)."""
    _need_tools(lang)
    out = tmp_path / name
    if isinstance(request, dict):
        spec = tmp_path / f"{name}.json"
        spec.write_text(json.dumps(request))
        r = run_cli("export", lang, "--spec", str(spec), "-o", str(out), "-n", name)
    else:
        r = run_cli("export", lang, "--offline", request, "-o", str(out), "-n", name)
    assert r.returncode == 0, r.stderr
    if lang == "go":  # the Go source is laid out as gofmt lays it out
        fmt = subprocess.run(["gofmt", "-l", str(out / "main.go")], capture_output=True, text=True, timeout=30)
        assert fmt.returncode == 0 and not fmt.stdout.strip(), fmt.stdout + fmt.stderr
    if vmlinux is not None:
        os.symlink(vmlinux, out / ("bpf/vmlinux.h" if lang == "go" else "vmlinux.h"))
    t0 = time.monotonic()
    env = {**os.environ, "GOPROXY": "off"}
    b = subprocess.run(["make", "-C", str(out)], capture_output=True, text=True, timeout=300, env=env)
    took = time.monotonic() - t0
    assert b.returncode == 0, b.stdout + b.stderr
    print(f"build of {lang} {name}: {took:.2f} s")
    return out / name, took


def _prog_ids_of(pid: int) -> set[int]:
    """The BPF programs a process holds: its descriptors' fdinfo names them (prog_id: N)."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            text = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        ids |= {int(x) for x in re.findall(r"^prog_id:\s+(\d+)$", text, re.M)}
    return ids


def _all_prog_ids() -> set[int]:
    r = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, timeout=30)
    return {p["id"] for p in json.loads(r.stdout or "[]")}


def run_tool(binary: Path, workload: list[list[str]], seconds: float = 3, args: tuple[str, ...] = ()) -> str:
    """Run the built tool for SECONDS with the workload started once it is attached; return its stdout.
    Checks that the programs it loaded are gone after it ends."""
    proc = subprocess.Popen([str(binary), "-d", str(seconds), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    ready = proc.stderr.readline()
    assert "Hit Ctrl-C to end" in ready, ready + proc.stderr.read()
    ids = _prog_ids_of(proc.pid)
    assert ids, "the tool loaded no program"
    for cmd in workload:
        subprocess.run(cmd, check=True, timeout=30, capture_output=True)
    out, err = proc.communicate(timeout=seconds + 30)
    assert proc.returncode == 0, err
    # the kernel frees a detached program after an RCU grace period: give it a moment
    deadline = time.monotonic() + 5
    while ids & _all_prog_ids() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not ids & _all_prog_ids(), "programs stayed loaded after the tool ended"
    return out


def named_copy(tmp_path: Path, tool: str, name: str) -> str:
    """A copy of a system tool under a name no other process has (its comm)."""
    dst = tmp_path / name
    shutil.copy(shutil.which(tool) or tool, dst)
    return str(dst)


def gpttrace_header(request: str) -> str:
    """The column header gpttrace prints for this request (its BCC program's layout)."""
    from gpttrace_py.kernel.catalog import Catalog
    from gpttrace_py.planning.base import PlanContext
    from gpttrace_py.planning.offline import OfflinePlanner
    from gpttrace_py.planning.plan import make_plan
    from gpttrace_py.render.bcc.program import render

    catalog = Catalog()
    spec = make_plan(OfflinePlanner(), request, PlanContext(catalog=catalog)).spec
    header = render(spec, catalog).layout.header
    assert header
    return header


def table_value(out: str, key: str) -> int:
    m = re.search(rf"^{re.escape(key)}\s+(\d+)$", out, re.M)
    assert m, f"no row for {key} in:\n{out[-3000:]}"
    return int(m.group(1))


def test_events_with_strings(tmp_path, lang):
    binary, took = export_and_build(tmp_path, "trace files opened by cat", "opens", lang)
    target = tmp_path / "unique-target-file.txt"
    target.write_text("x")
    out = run_tool(binary, [["cat", str(target)]])
    lines = out.splitlines()
    assert lines[0] == gpttrace_header("trace files opened by cat")
    hit = [ln for ln in lines if ln.endswith(str(target))]
    assert hit and hit[0].split()[1] == "cat", out[-2000:]
    assert all(ln.split()[1] == "cat" for ln in lines[1:] if ln.strip()), "the comm filter let others through"
    assert took < 120


def test_count_by_key(tmp_path, lang):
    binary, _ = export_and_build(tmp_path, "count syscalls by process", "syscount", lang)
    dd = named_copy(tmp_path, "dd", "gtxcount")
    out = run_tool(binary, [[dd, "if=/dev/zero", "of=/dev/null", "bs=1", "count=2000"]])
    assert "\nCount by comm\n" in out
    assert re.search(r"^COMM\s+COUNT$", out, re.M), out[-2000:]
    assert table_value(out, "gtxcount") >= 4000  # a read and a write per byte


def test_sum_by_key(tmp_path, lang):
    binary, _ = export_and_build(tmp_path, "sum bytes read by process", "readbytes", lang)
    dd = named_copy(tmp_path, "dd", "gtxsum")
    out = run_tool(binary, [[dd, "if=/dev/zero", "of=/dev/null", "bs=4096", "count=100"]])
    total = table_value(out.split("Bytes read by process", 1)[1] if "Bytes read by process" in out else out, "gtxsum")
    assert total >= 100 * 4096, out[-2000:]


def test_latency_pair_log2_histogram(tmp_path, lang):
    binary, _ = export_and_build(tmp_path, "histogram of read latency", "readlat", lang)
    dd = named_copy(tmp_path, "dd", "gtxlat")
    out = run_tool(binary, [[dd, "if=/dev/zero", "of=/dev/null", "bs=1", "count=3000"]])
    assert "\nread() latency (us)\n" in out
    block = out.split("\nCOMM=gtxlat:\n", 1)  # gpttrace's key line
    assert len(block) == 2, out[-3000:]
    counts = []
    for ln in block[1].splitlines():
        m = re.match(r"(\(\.\.\., 0\)|\[\d+[KMG]?\]|\[\d+[KMG]?, \d+[KMG]?\)) +(\d+) \|@* *\|$", ln)
        if not m:
            break
        counts.append(int(m.group(2)))
    assert sum(counts) >= 3000, block[1][:2000]  # every read() of dd, in its buckets


def test_uprobe_events(tmp_path, lang):
    binary, _ = export_and_build(tmp_path, "trace malloc calls in libc by gtxmalloc", "mallocs", lang)
    dd = named_copy(tmp_path, "dd", "gtxmalloc")
    out = run_tool(binary, [[dd, "if=/dev/zero", "of=/dev/null", "bs=64k", "count=1"]])
    events, table = out.split("\nCount by comm\n", 1)
    rows = [ln.split() for ln in events.splitlines()[1:] if ln.strip()]
    assert all(r[1] == "gtxmalloc" for r in rows), "the comm filter let others through"
    assert len(rows) >= 3 and all(len(r) == 3 and r[0].isdigit() and r[2].isdigit() for r in rows), rows[:20]
    assert table_value(table, "gtxmalloc") == len(rows)  # the count by comm saw the same calls


def test_software_perf_event_count(tmp_path, lang):
    binary, _ = export_and_build(tmp_path, "count page faults by process", "faults", lang)
    dd = named_copy(tmp_path, "dd", "gtxfault")
    out = run_tool(binary, [[dd, "if=/dev/zero", "of=/dev/null", "bs=16M", "count=2"]])
    assert table_value(out, "gtxfault") >= 1000  # 16 MiB of buffer touched page by page


def test_unsupported_shape_exits_2(tmp_path):
    r = run_cli("export", "libbpf", "--offline", "profile kernel stacks", "-o", str(tmp_path / "p"))
    assert r.returncode == 2
    assert "not exported yet" in r.stderr
    assert not (tmp_path / "p").exists()


def test_write_files_replaces_a_planted_symlink(tmp_path):
    from gpttrace_py.project_files import write_files

    victim = tmp_path / "victim"
    victim.write_text("keep")
    out = tmp_path / "proj"
    out.mkdir(mode=0o755)
    os.symlink(victim, out / "Makefile")
    write_files(str(out), {"Makefile": "all:\n"})
    assert victim.read_text() == "keep"
    assert (out / "Makefile").read_text() == "all:\n" and not (out / "Makefile").is_symlink()
    os.chmod(out, 0o777)
    with pytest.raises(Exception, match="others can write"):
        write_files(str(out), {"x": "y"})


def test_explain_reads_the_exported_c(tmp_path):
    out = tmp_path / "lat"
    r = run_cli("export", "libbpf", "--offline", "histogram of read latency", "-o", str(out), "-n", "lat")
    assert r.returncode == 0, r.stderr
    r = run_cli("explain", "--no-listing", str(out / "lat.bpf.c"))
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert text.startswith("How this libbpf program")
    assert "attaches to 2 tracepoints" in text
    for probe in ("tracepoint:syscalls:sys_enter_read", "tracepoint:syscalls:sys_exit_read"):
        assert f"* {probe}: line" in text
    assert "* start: a start map for latency" in text and "keyed per thread" in text
    assert "* agg_hist: a hash map" in text
    assert "python3" not in text.split("Probes", 1)[0]  # not told to run it as a BCC program

    out = tmp_path / "mal"
    r = run_cli("export", "go", "--offline", "trace malloc calls in libc", "-o", str(out), "-n", "mal")
    assert r.returncode == 0, r.stderr
    r = run_cli("explain", "--no-listing", str(out / "bpf" / "mal.bpf.c"))
    assert r.returncode == 0, r.stderr
    assert re.search(r"\* uprobe:/\S+libc\S*:malloc: line", r.stdout), r.stdout[:3000]
    assert "* events: an event channel to user space (events): each record sent from the kernel is read by the " \
           "loader" in " ".join(r.stdout.split())


def test_joined_arguments(tmp_path, lang):
    binary, _ = export_and_build(tmp_path, "trace new processes with arguments", "execs", lang)
    echo = shutil.which("echo")
    assert echo is not None
    out = run_tool(binary, [[echo, "gtx-one", "gtx two"]])
    lines = out.splitlines()
    assert lines[0] == gpttrace_header("trace new processes with arguments")
    hit = [ln for ln in lines if ln.endswith(f"{echo} gtx-one gtx two")]
    assert hit and hit[0].split()[2] == echo, out[-2000:]


SIZES_SPEC = {
    "title": "Read sizes of gtxspec",
    "probes": ["tracepoint:syscalls:sys_exit_read"],
    "filter": {"comm": "gtxspec", "expr": "args.ret == 3000"},  # (dd reads its libraries too)
    "interval_s": 1,
    "aggregates": [
        {"func": "lhist", "value": "args.ret", "lhist": {"min": 0, "max": 5000, "step": 1000}, "name": "sizes",
         "title": "Read sizes"},
        {"func": "min", "value": "args.ret", "keys": [{"expr": "comm"}], "name": "smallest", "title": "Smallest"},
        {"func": "avg", "value": "args.ret", "keys": [{"expr": "comm"}], "name": "mean", "title": "Mean"},
        {"func": "max", "value": "args.ret", "name": "largest", "title": "Largest"},
        {"func": "count", "keys": [{"expr": "args.ret", "format": "hex"}], "name": "by_size", "title": "By size"},
        {"func": "stats", "value": "args.ret", "keys": [{"expr": "comm"}], "name": "st", "title": "Stats"},
    ],
}


def test_linear_histogram_min_avg_max_and_interval(tmp_path, lang):
    binary, _ = export_and_build(tmp_path, SIZES_SPEC, "sizes", lang)
    dd = named_copy(tmp_path, "dd", "gtxspec")
    out = run_tool(binary, [[dd, "if=/dev/zero", "of=/dev/null", "bs=3000", "count=50"]], seconds=3.5)
    assert re.search(r"^\d\d:\d\d:\d\d$", out, re.M), out  # printed every second, and cleared
    buckets = [int(m.group(1)) for m in re.finditer(r"^\[3000, 4000\) +(\d+) \|@+ *\|$", out, re.M)]
    assert sum(buckets) == 50, out
    assert re.findall(r"^gtxspec +(\d+)$", out, re.M).count("3000") >= 2  # min and avg
    assert "MAX: 3000" in out or re.search(r"^\w+: 3000$", out, re.M), out
    assert re.search(r"^0xbb8 +(\d+)$", out, re.M), out  # the count keyed by the size in hex
    stats = re.findall(r"^gtxspec +count=(\d+)  average=3000  total=(\d+)$", out, re.M)
    assert sum(int(c) for c, _ in stats) == 50 and sum(int(t) for _, t in stats) == 150000, out


CORPUS_SHAPES = ["accepts-by-process", "bashreadline", "bio-by-type", "bio-sizes", "biolatency-by-disk",
                 "biopattern", "chmodsnoop", "clone-calls", "disk-io-by-process", "dns-lookups", "execsnoop",
                 "icmp-sends", "memleak", "oncpu-by-process", "page-faults", "runqlat-by-process"]


@pytest.fixture(scope="module")
def vmlinux_h(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("btf") / "vmlinux.h"
    with open(path, "w") as fh:
        subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"], stdout=fh,
                       check=True, timeout=120)
    return path


def test_corpus_shapes_build_load_and_detach(tmp_path, vmlinux_h):
    """One corpus program per shape (probe kinds, aggregates, kinds of columns, pairs, intervals, filters): each
    exported as C builds, loads, attaches, runs a moment and leaves nothing loaded (the Go export of the same
    kernel side is run above for the six kinds)."""
    from gpttrace_py.corpus import by_id

    for ident in CORPUS_SHAPES:
        spec = json.loads(by_id(ident).spec.model_dump_json())
        binary, _ = export_and_build(tmp_path, spec, ident.replace("-", "_"), "libbpf", vmlinux_h)
        out = run_tool(binary, [["true"]], seconds=0.5)
        assert out is not None


def test_every_exportable_corpus_program_renders_or_is_refused_with_a_reason():
    from gpttrace_py.corpus import load
    from gpttrace_py.kernel.catalog import Catalog
    from gpttrace_py.render.export import ExportError
    from gpttrace_py.render.export_go import project as go_project
    from gpttrace_py.render.export_libbpf import project as c_project

    catalog = Catalog()
    done = refused = 0
    for e in load():
        for spec in [e.spec, *e.alternatives]:
            if catalog.check_spec(spec):
                continue
            try:
                c_project(spec, catalog, "t")
                go_project(spec, catalog, "t")
                done += 1
            except ExportError as exc:
                assert "not exported yet" in exc.message or "not " in exc.message, exc.message
                refused += 1
    assert done >= 100 and refused * 5 <= done, (done, refused)  # most of the corpus (192 entries, many with stacks)


DIFF_SPEC = {
    "title": "System calls of gtxdiff",
    "probes": ["tracepoint:raw_syscalls:sys_enter"],
    "filter": {"comm": "gtxdiff"},
    "aggregates": [
        {"func": "count", "keys": [{"expr": "comm"}, {"expr": "args.id", "label": "SYSCALL"}], "name": "calls",
         "title": "Calls"},
        {"func": "sum", "value": "args.args[2]", "keys": [{"expr": "args.id", "label": "SYSCALL"}], "name": "bytes",
         "title": "Third argument summed"},
    ],
}


def test_same_tables_as_gpttrace_bcc_program(tmp_path, lang):
    """The exported tool and gpttrace's own BCC program for the same spec, attached at the same time to the same
    workload, print the same rows (syscall numbers named from the same table)."""
    from gpttrace_py.kernel.catalog import Catalog
    from gpttrace_py.kernel.features import find_bcc_python
    from gpttrace_py.render.bcc.program import render
    from gpttrace_py.spec import ProgramSpec

    python = find_bcc_python()
    assert python, "install.sh installs python3-bpfcc"
    binary, _ = export_and_build(tmp_path, DIFF_SPEC, "diff", lang)
    program = tmp_path / "diff.py"
    program.write_text(render(ProgramSpec.model_validate(DIFF_SPEC), Catalog()).text)
    bcc = subprocess.Popen([python, str(program)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tool = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert bcc.stdout is not None and tool.stderr is not None
        assert "Hit Ctrl-C" in bcc.stdout.readline()
        assert "Hit Ctrl-C" in tool.stderr.readline()
        dd = named_copy(tmp_path, "dd", "gtxdiff")
        subprocess.run([dd, "if=/dev/zero", "of=/dev/null", "bs=777", "count=300"], check=True, capture_output=True)
        time.sleep(0.5)
    finally:
        for p in (bcc, tool):
            p.send_signal(2)
    theirs, _ = bcc.communicate(timeout=30)
    ours, _ = tool.communicate(timeout=30)
    assert bcc.returncode == 0 and tool.returncode == 0

    def rows(text: str, title: str) -> list[str]:
        part = text.split(f"\n{title}\n", 1)[1].split("\n\n", 1)[0]
        return sorted(part.splitlines())

    for title in ("Calls", "Third argument summed"):
        assert rows(ours, title) == rows(theirs, title), (ours, theirs)
    assert re.search(r"^gtxdiff +read +3\d\d$", ours, re.M), ours  # 300 reads named, not numbered
    assert re.search(r"^write +233\d{3}$", ours, re.M), ours  # 300 writes of 777 bytes (and a few more)


def test_usage_errors_exit_2(tmp_path):
    assert run_cli("export", "libbpf").returncode == 2  # nothing to export
    spec = tmp_path / "s.json"
    spec.write_text('{"title": "x"}')
    r = run_cli("export", "go", "--spec", str(spec))
    assert r.returncode == 2 and "is not a program spec" in r.stderr
    spec.write_text(json.dumps(SIZES_SPEC))
    assert run_cli("export", "go", "--spec", str(spec), "count syscalls").returncode == 2  # both
    r = run_cli("export", "libbpf", "--spec", str(spec), "-n", "Bad-Name", "-o", str(tmp_path / "b"))
    assert r.returncode == 2 and "not a project name" in r.stderr
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    r = run_cli("export", "libbpf", "--spec", str(spec), "-o", str(shared))
    assert r.returncode == 2 and "others can write" in r.stderr
    assert not list(shared.iterdir())
    spec.write_text(json.dumps({"title": "Ticks", "probes": ["interval:s:1"], "print": [{"expr": "nsecs"}]}))
    r = run_cli("export", "go", "--spec", str(spec), "-o", str(tmp_path / "i"))
    assert r.returncode == 2 and "not interval probes yet" in r.stderr, r.stderr
    assert not (tmp_path / "i").exists()
