"""The BCC backend: rendering, loading (the verifier check), real events, errors, the compile cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpttrace_py.errors import GpttraceError
from gpttrace_py.kernel.catalog import Catalog
from gpttrace_py.kernel.features import find_bcc_python
from gpttrace_py.render.bcc import program as bcc
from gpttrace_py.render.bcc.ctext import RenderError, c_text_of
from gpttrace_py.render.bpftrace import render as render_bpftrace
from gpttrace_py.render.program import RenderedProgram
from gpttrace_py.run import LoadFailed, RunOptions, run_program
from gpttrace_py.run.bcc import parse_bcc_error
from gpttrace_py.spec import ProgramSpec

BCC_PYTHON = find_bcc_python()
needs_bcc = pytest.mark.skipif(BCC_PYTHON is None, reason="no Python interpreter here can import bcc "
                               "(apt-get install -y python3-bpfcc)")

UDP_SEND = ("import socket, sys\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "for _ in range(5):\n"
            "    s.sendto(b'x' * 100, ('127.0.0.1', int(sys.argv[1])))\n")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


def spec(**fields) -> ProgramSpec:
    fields.setdefault("title", "test")
    return ProgramSpec.model_validate(fields)


def run(program: RenderedProgram, command: list[str] | None = None, duration: float | None = None,
        json_mode: bool = True) -> tuple[object, list[dict], list[str]]:
    out: list[str] = []
    warns: list[str] = []
    outcome = run_program(program, RunOptions(command=command, duration=duration, json=json_mode), out.append,
                          warns.append)
    records = [json.loads(line) for line in out] if json_mode else [{"line": line} for line in out]
    return outcome, records, warns


def events(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("type") == "event"]


def aggregate(records: list[dict], name: str) -> dict:
    found = [r for r in records if r.get("type") == "aggregate" and r.get("name") == name]
    assert found, f"no aggregate {name!r} in {records!r}"
    return found[-1]


# -- rendering (no kernel) ----------------------------------------------------------------------------


def opens(**extra) -> ProgramSpec:
    return spec(title="Files opened", probes=["tracepoint:syscalls:sys_enter_openat"], filter={"comm": "cat"},
                print=[{"expr": "pid"}, {"expr": "comm"}, {"expr": "str(args.filename)", "label": "FILE"}], **extra)


def test_render_events_program_is_readable_python(catalog: Catalog) -> None:
    program = bcc.render(opens(), catalog)
    assert program.backend == "bcc" and program.suffix == ".py"
    compile(program.text, "program.py", "exec")  # valid Python
    c = c_text_of(program.text)
    assert "int probe_0(struct tracepoint__syscalls__sys_enter_openat *args)" in c
    assert "BPF_RINGBUF_OUTPUT(events" in c and "struct event {" in c
    assert "bpf_probe_read_user_str(&e->file, 128, (void *)args->filename);" in c
    # the comm filter is an unrolled byte compare
    assert "t1[0] == 'c' && t1[1] == 'a' && t1[2] == 't' && t1[3] == 0" in c
    assert program.layout.ready == "Tracing Files opened... Hit Ctrl-C to end."
    assert program.layout.columns == ["PID", "COMM", "FILE"]
    assert '("probe_0", BPF.TRACEPOINT)' in program.text


def test_render_aggregates_and_perf_buffer_fallback(catalog: Catalog) -> None:
    catalog = Catalog(catalog.features.__class__(**{**catalog.features.__dict__, "ringbuf": False}))
    s = spec(probes=["tracepoint:syscalls:sys_enter_read"], print=[{"expr": "pid"}],
             aggregates=[{"func": "hist", "value": "args.count", "keys": [{"expr": "comm"}]},
                         {"func": "lhist", "value": "args.count", "lhist": {"min": 0, "max": 1000, "step": 100}},
                         {"func": "max", "value": "args.count"}, {"func": "stats", "value": "args.count"}])
    c = c_text_of(bcc.render(s, catalog).text)
    assert "BPF_PERF_OUTPUT(events);" in c and "events.perf_submit(args, e, sizeof(*e));" in c
    assert "BPF_HISTOGRAM(agg_hist, struct agg_hist_key_t, 10240);" in c and "bpf_log2l" in c
    assert "BPF_HISTOGRAM(agg_lhist, int, 12);" in c and "lhist_slot(args->count, 0, 1000, 100)" in c
    assert "else if (val > *v)" in c


def test_render_kfunc_and_lsm(catalog: Catalog) -> None:
    c = c_text_of(bcc.render(spec(probes=["kretfunc:do_unlinkat"], print=[{"expr": "retval"}]), catalog).text)
    assert "KRETFUNC_PROBE(do_unlinkat, u64 arg0, u64 arg1, s64 ret)" in c  # the argument count is from BTF
    c = c_text_of(bcc.render(spec(probes=["lsm:socket_connect"], print=[{"expr": "pid"}, {"expr": "arg2"}]),
                                 catalog).text)
    assert "LSM_PROBE(socket_connect, u64 arg0, u64 arg1, u64 arg2)" in c


def test_render_same_tracepoint_twice_and_enum_fields(catalog: Catalog) -> None:
    # start and end on one tracepoint: BCC declares its argument struct once, the second function casts
    s = spec(start={"probes": ["tracepoint:sock:inet_sock_set_state"], "key": ["args.skaddr"],
                    "filter": {"expr": "args.newstate == 2"}},
             probes=["tracepoint:sock:inet_sock_set_state"], filter={"expr": "args.oldstate == 2"},
             print=[{"expr": "delta"}])
    c = c_text_of(bcc.render(s, catalog).text)
    assert "int start_0(struct tracepoint__sock__inet_sock_set_state *args)" in c
    assert "int probe_0(void *ctx)" in c and "struct tracepoint__sock__inet_sock_set_state *args = ctx;" in c
    if catalog.tracepoint("tracepoint:skb:kfree_skb") is None:
        return
    c = c_text_of(bcc.render(spec(probes=["tracepoint:skb:kfree_skb"],
                                      aggregates=[{"func": "count", "keys": [{"expr": "args.reason"}]}]), catalog).text)
    assert "enum skb_drop_reason { gpttrace_skb_drop_reason_placeholder = 0 };" in c


def test_bad_field_is_a_readable_error(catalog: Catalog) -> None:
    with pytest.raises(RenderError, match=r"has no field 'nosuchfield'; fields: .*filename"):
        bcc.render(spec(probes=["tracepoint:syscalls:sys_enter_openat"], print=[{"expr": "args.nosuchfield"}]),
                   catalog)
    with pytest.raises(RenderError, match="xdp/tc programs run for packets"):
        bcc.render(spec(probes=["xdp:lo"], print=[{"expr": "comm"}]), catalog)
    with pytest.raises(RenderError, match="only at xdp:IFACE"):
        bcc.render(spec(probes=["tracepoint:syscalls:sys_enter_openat"], print=[{"expr": "pkt_len"}]), catalog)
    with pytest.raises(RenderError, match="retval is only set at return probes"):
        bcc.render(spec(probes=["tracepoint:syscalls:sys_exit_openat"], print=[{"expr": "retval"}]), catalog)


def test_bpftrace_rejects_packet_builtins(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match=r"pkt_len is a packet value .* use --backend bcc"):
        render_bpftrace(spec(probes=["tracepoint:syscalls:sys_enter_openat"], print=[{"expr": "pkt_len"}]), catalog)


def test_parse_bcc_error_compile_and_verifier() -> None:
    compile_err = ("/virtual/main.c:12:9: error: use of undeclared identifier 'nope'\n"
                   "        e->x = nope;\n               ^\n1 error generated.\n"
                   "load failed (compile): the C program did not compile (clang's errors are above)\n")
    f = parse_bcc_error(compile_err, 1, c_line_offset=20)
    assert (f.stage, f.line, f.column) == ("compile", 32, 9)
    assert f.message == "use of undeclared identifier 'nope'"
    verifier = ("bpf: Failed to load program: Permission denied\n0: R1=ctx() R10=fp0\n"
                "7: (79) r1 = *(u64 *)(r0 +0)\nR0 invalid mem access 'map_value_or_null'\n"
                "processed 7 insns (limit 1000000) max_states_per_insn 0\n\nHINT: check for NULL\n"
                "load failed (verifier): probe_0: Failed to load BPF program b'probe_0': Permission denied\n")
    f = parse_bcc_error(verifier, 1)
    assert f.stage == "verifier" and f.message.startswith("R0 invalid mem access 'map_value_or_null'")
    assert "processed 7 insns" in f.log
    f = parse_bcc_error("load failed (attach): Failed to attach BPF to device b'nope0': No such device\n", 1)
    assert f.stage == "attach" and "nope0" in f.message


def test_missing_bcc_interpreter_says_how_to_install(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPTTRACE_BCC_PYTHON", "/nonexistent/python3")
    with pytest.raises(GpttraceError) as err:
        run_program(bcc.render(opens(), catalog), RunOptions(dry_run=True), lambda s: None, lambda s: None)
    assert "apt-get install -y python3-bpfcc" in (err.value.hint or "")


# -- real programs ------------------------------------------------------------------------------------


@pytest.mark.kernel
@pytest.mark.bcc
@needs_bcc
def test_opens_by_cat_through_the_ring_buffer(catalog: Catalog, tmp_path: Path) -> None:
    target = tmp_path / "hello-bcc.txt"
    target.write_text("hi\n")
    program = bcc.render(opens(), catalog)
    outcome, records, warns = run(program, ["cat", str(target)])
    assert outcome.attached and outcome.returncode == 0, warns
    files = [e["fields"].get("FILE") for e in events(records)]
    assert str(target) in files
    assert all(e["fields"]["COMM"] == "cat" for e in events(records))


@pytest.mark.kernel
@pytest.mark.bcc
@needs_bcc
def test_perf_buffer_fallback_delivers_events(catalog: Catalog, tmp_path: Path) -> None:
    """Kernels before 5.8 have no BPF ring buffer: the program then sends events through a perf buffer."""
    old = Catalog(catalog.features.__class__(**{**catalog.features.__dict__, "ringbuf": False}))
    target = tmp_path / "perf-buffer.txt"
    target.write_text("hi\n")
    program = bcc.render(opens(), old)
    assert "BPF_PERF_OUTPUT(events);" in program.text
    outcome, records, warns = run(program, ["cat", str(target)])
    assert outcome.attached, warns
    assert str(target) in [e["fields"].get("FILE") for e in events(records)]


@pytest.mark.kernel
@pytest.mark.bcc
@needs_bcc
def test_count_and_histogram(catalog: Catalog) -> None:
    s = spec(probes=["tracepoint:syscalls:sys_enter_read"], filter={"comm": "dd"},
             aggregates=[{"func": "count", "keys": [{"expr": "comm"}]},
                         {"func": "hist", "value": "args.count", "unit": "bytes"},
                         {"func": "sum", "value": "args.count", "name": "bytes"}])
    outcome, records, warns = run(bcc.render(s, catalog),
                                  ["dd", "if=/dev/zero", "of=/dev/null", "bs=4096", "count=20", "status=none"])
    assert outcome.attached, warns
    assert aggregate(records, "count")["data"]["dd"] >= 20
    buckets = aggregate(records, "hist")["data"]
    page = [b for b in buckets if b.get("min") == 4096 and b.get("max") == 8191]
    assert page and page[0]["count"] >= 20, buckets
    assert aggregate(records, "bytes")["data"] >= 20 * 4096


@pytest.mark.kernel
@pytest.mark.bcc
@needs_bcc
def test_latency_pair_with_saved_path(catalog: Catalog, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    s = spec(title="Deletions",
             start={"probes": ["tracepoint:syscalls:sys_enter_unlinkat"], "key": ["tid"],
                    "save": [{"name": "path", "expr": "args.pathname"}]},
             probes=["tracepoint:syscalls:sys_exit_unlinkat"],
             print=[{"expr": "comm"}, {"expr": "args.ret", "label": "RET"}, {"expr": "delta / 1000", "label": "LAT_US"},
                    {"expr": "start.path", "label": "PATH"}],
             aggregates=[{"func": "avg", "value": "delta", "keys": [{"expr": "comm"}]}])
    workload = f"touch {a} {b}; rm -f {a} {b} {tmp_path}/missing; rm {tmp_path}/missing"
    outcome, records, warns = run(bcc.render(s, catalog), ["sh", "-c", workload])
    assert outcome.attached, warns
    rows = {e["fields"]["PATH"]: e["fields"] for e in events(records)}
    assert rows[str(a)]["RET"] == 0 and rows[str(b)]["RET"] == 0
    assert rows[f"{tmp_path}/missing"]["RET"] == -2  # ENOENT
    assert all(isinstance(r["LAT_US"], int) and r["LAT_US"] >= 0 for r in rows.values())
    assert aggregate(records, "avg")["data"]["rm"] > 0


@pytest.mark.kernel
@pytest.mark.bcc
@needs_bcc
def test_uprobe_counts_malloc_in_python(catalog: Catalog) -> None:
    s = spec(title="malloc calls", probes=["uprobe:libc:malloc"], filter={"comm": "python3"},
             aggregates=[{"func": "count", "keys": [{"expr": "comm"}]}])
    program = bcc.render(s, catalog)
    assert "b.attach_uprobe(name=\"/" in program.text  # the library's short name was resolved to its path
    python3 = shutil.which("python3") or "python3"  # from PATH: its comm is python3 (the venv's would be python)
    outcome, records, warns = run(program, [python3, "-c", "x = [bytearray(1000) for _ in range(2000)]"])
    assert outcome.attached, warns
    assert aggregate(records, "count")["data"]["python3"] >= 1000


def _udp(port: int) -> list[str]:
    return [sys.executable, "-c", UDP_SEND, str(port)]


@pytest.mark.kernel
@pytest.mark.bcc
@needs_bcc
def test_xdp_counts_packets_on_lo(catalog: Catalog) -> None:
    port = 40000 + os.getpid() % 20000
    s = spec(title="UDP on lo (XDP)", probes=["xdp:lo"], filter={"expr": f"ip_proto == 17 && dst_port == {port}"},
             print=[{"expr": "pkt_len"}, {"expr": "ip_src"}, {"expr": "dst_port"}],
             aggregates=[{"func": "count", "keys": [{"expr": "ip_proto"}]}])
    outcome, records, warns = run(bcc.render(s, catalog), _udp(port))
    assert outcome.attached, warns
    assert aggregate(records, "count")["data"] == {"17": 5}
    ev = events(records)
    assert len(ev) == 5 and ev[0]["fields"] == {"PKT_LEN": 14 + 20 + 8 + 100, "IP_SRC": "127.0.0.1", "DST_PORT": port}
    assert "xdp" not in subprocess.run(["ip", "link", "show", "lo"], capture_output=True, text=True).stdout


@pytest.mark.kernel
@pytest.mark.bcc
@needs_bcc
def test_tc_ingress_counts_packets_on_lo(catalog: Catalog) -> None:
    check = subprocess.run([BCC_PYTHON, "-c", "import pyroute2"], capture_output=True)
    if check.returncode != 0:
        pytest.skip("the BCC interpreter has no pyroute2 (apt-get install -y python3-pyroute2)")
    port = 40000 + (os.getpid() + 7) % 20000
    s = spec(title="UDP into lo (tc)", probes=["tc:lo:ingress"],
             filter={"expr": f"ip_proto == 17 && dst_port == {port}"},
             aggregates=[{"func": "count", "keys": [{"expr": "dst_port"}]}, {"func": "sum", "value": "pkt_len"}])
    before = subprocess.run(["tc", "filter", "show", "dev", "lo", "ingress"], capture_output=True, text=True).stdout
    outcome, records, warns = run(bcc.render(s, catalog), _udp(port))
    assert outcome.attached, warns
    assert aggregate(records, "count")["data"] == {str(port): 5}
    assert aggregate(records, "sum")["data"] == 5 * (14 + 20 + 8 + 100)
    after = subprocess.run(["tc", "filter", "show", "dev", "lo", "ingress"], capture_output=True, text=True).stdout
    assert after == before  # our filter (and the clsact qdisc, if we made it) is gone


@pytest.mark.kernel
@pytest.mark.bcc
@needs_bcc
def test_enum_field_names_from_the_format_file(catalog: Catalog) -> None:
    """skb:kfree_skb's reason is an enum: it compiles (placeholder enum) and prints with the format's names."""
    if catalog.tracepoint("tracepoint:skb:kfree_skb") is None:
        pytest.skip("no skb:kfree_skb tracepoint")
    port = 40000 + (os.getpid() + 13) % 20000
    s = spec(probes=["tracepoint:skb:kfree_skb"], aggregates=[{"func": "count", "keys": [{"expr": "args.reason"}]}])
    outcome, records, warns = run(bcc.render(s, catalog), _udp(port))  # UDP to a closed port: dropped
    assert outcome.attached, warns
    assert aggregate(records, "count")["data"].get("NO_SOCKET", 0) >= 5


@pytest.mark.kernel
@pytest.mark.bcc
@needs_bcc
def test_human_output_without_records(catalog: Catalog, tmp_path: Path) -> None:
    """Run as a standalone tool: text like the classic BCC tools, stopped by SIGTERM, aggregates printed."""
    s = spec(title="Reads by dd", probes=["tracepoint:syscalls:sys_enter_read"], filter={"comm": "dd"},
             aggregates=[{"func": "count", "keys": [{"expr": "comm"}]},
                         {"func": "hist", "value": "args.count", "unit": "bytes"}])
    path = tmp_path / "tool.py"
    path.write_text(bcc.render(s, catalog).text)
    proc = subprocess.Popen([BCC_PYTHON, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "Tracing Reads by dd... Hit Ctrl-C to end."
    subprocess.run(["dd", "if=/dev/zero", "of=/dev/null", "bs=512", "count=7", "status=none"], check=True)
    time.sleep(0.3)
    proc.send_signal(15)  # SIGTERM is caught like Ctrl-C: print, detach, exit 0
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Count by comm" in out and "dd" in out
    assert "512 -> 1023" in out and "distribution" in out


@pytest.mark.kernel
@pytest.mark.bcc
@needs_bcc
def test_interval_prints_and_resets(catalog: Catalog) -> None:
    s = spec(title="Opens per second", probes=["tracepoint:syscalls:sys_enter_openat"],
             aggregates=[{"func": "count"}], interval_s=1)
    outcome, records, _ = run(bcc.render(s, catalog), duration=2.5)
    assert outcome.attached
    assert sum(1 for r in records if r.get("type") == "time") >= 2


# -- refusals -----------------------------------------------------------------------------------------


def _compile_only(c_text: str) -> subprocess.CompletedProcess[str]:
    """Compile C text with BCC (clang) without loading anything into the kernel."""
    code = ("import ctypes as ct, sys\n"
            "from bcc.libbcc import lib\n"
            "text = sys.stdin.read().encode()\n"
            "mod = lib.bpf_module_create_c_from_string(text, 0, (ct.c_char_p * 0)(), 0, True, None)\n"
            "print('compiled' if mod else 'failed')\n")
    return subprocess.run([BCC_PYTHON, "-c", code], input=c_text, capture_output=True, text=True, timeout=120)


@pytest.mark.kernel
@pytest.mark.bcc
@needs_bcc
@pytest.mark.parametrize("probe, fields", [
    ("kfunc:do_unlinkat", ["pid", "comm", "arg0"]),
    ("kretfunc:do_unlinkat", ["pid", "retval"]),
    ("lsm:socket_connect", ["pid", "comm", "arg2"]),
])
def test_fentry_and_lsm_compile_but_are_refused_readably(catalog: Catalog, probe: str, fields: list[str]) -> None:
    program = bcc.render(spec(probes=[probe], print=[{"expr": f} for f in fields]), catalog)
    result = _compile_only(c_text_of(program.text))
    assert result.stdout.strip() == "compiled", result.stderr[-2000:]
    allowed = catalog.features.lsm if probe.startswith("lsm") else catalog.features.kfunc
    if allowed:
        pytest.skip("this kernel loads these programs")
    with pytest.raises(LoadFailed) as err:
        run_program(program, RunOptions(dry_run=True), lambda s: None, lambda s: None)
    f = err.value.failure
    assert f.backend == "bcc" and f.stage == "verifier"
    assert "the kernel refused to load" in f.message and "Operation not permitted" in f.message


@pytest.mark.kernel
@pytest.mark.bcc
@needs_bcc
def test_verifier_rejection_is_a_load_failure_with_the_log(catalog: Catalog) -> None:
    good = bcc.render(opens(), catalog)
    # drop the NULL check of the ring buffer reservation: the verifier must refuse the write through it
    text = good.text.replace("    if (e) {\n", "    if (1) {\n", 1)
    assert text != good.text
    with pytest.raises(LoadFailed) as err:
        run_program(RenderedProgram("bcc", text, good.layout), RunOptions(dry_run=True), lambda s: None,
                    lambda s: None)
    f = err.value.failure
    assert f.stage == "verifier", f
    assert "ringbuf_mem_or_null" in f.message or "invalid mem access" in f.message, f.message
    assert "processed" in f.log or "R0" in f.log


@pytest.mark.kernel
@pytest.mark.bcc
@needs_bcc
def test_compile_error_points_at_the_program_line(catalog: Catalog) -> None:
    good = bcc.render(opens(), catalog)
    lines = good.text.splitlines(keepends=True)
    at = next(i for i, ln in enumerate(lines) if "events.ringbuf_submit(e, 0);" in ln)
    lines.insert(at, "        e->pid = no_such_thing;\n")
    with pytest.raises(LoadFailed) as err:
        run_program(RenderedProgram("bcc", "".join(lines), good.layout), RunOptions(dry_run=True), lambda s: None,
                    lambda s: None)
    f = err.value.failure
    assert f.stage == "compile" and "no_such_thing" in f.message
    assert f.line == at + 1 and f.column == 18


@pytest.mark.kernel
@pytest.mark.bcc
@needs_bcc
def test_attach_failure_is_reported_before_ready(catalog: Catalog) -> None:
    program = bcc.render(spec(probes=["xdp:lo"], aggregates=[{"func": "count"}]), catalog)
    text = program.text.replace('"lo"', '"nosuchdev0"')
    with pytest.raises(LoadFailed) as err:
        run_program(RenderedProgram("bcc", text, program.layout), RunOptions(dry_run=True), lambda s: None,
                    lambda s: None)
    assert err.value.failure.stage == "attach" and "nosuchdev0" in err.value.failure.message


# -- the compile cache --------------------------------------------------------------------------------


@pytest.mark.kernel
@pytest.mark.bcc
@needs_bcc
def test_compile_cache_makes_a_repeated_program_start_faster(catalog: Catalog, isolated_home: Path,
                                                             tmp_path: Path, speedups_on: None) -> None:
    target = tmp_path / "cached.txt"
    target.write_text("x\n")
    program = bcc.render(opens().model_copy(update={"title": f"Cache test {os.getpid()}"}), catalog)
    cold, _records, _warns = run(program, ["cat", str(target)])
    cache = isolated_home / "cache" / "bcc"
    assert len(list(cache.glob("*.json"))) == 1
    warm, records2, _ = run(program, ["cat", str(target)])
    assert str(target) in [e["fields"].get("FILE") for e in events(records2)]  # same events from the cached object
    print(f"\nBCC start to ready: cold {cold.seconds_to_attach:.2f} s, cached {warm.seconds_to_attach:.2f} s")
    assert warm.seconds_to_attach < cold.seconds_to_attach


@pytest.mark.kernel
@pytest.mark.bcc
@needs_bcc
def test_cached_object_still_goes_through_the_verifier(catalog: Catalog, isolated_home: Path,
                                                       speedups_on: None) -> None:
    """A cache entry whose instructions were damaged is refused by the kernel, not trusted."""
    program = bcc.render(spec(title=f"Verifier cache {os.getpid()}", probes=["tracepoint:syscalls:sys_enter_openat"],
                              aggregates=[{"func": "count"}]), catalog)
    run_program(program, RunOptions(dry_run=True), lambda s: None, lambda s: None)
    [entry_path] = (isolated_home / "cache" / "bcc").glob("*.json")
    entry = json.loads(entry_path.read_text())
    import base64

    fn = entry["functions"]["probe_0"]
    insns = bytearray(base64.b64decode(fn["insns"]))
    insns[-8:] = bytes([0xBF, 0x10, 0, 0, 0, 0, 0, 0])  # replace the final `exit` with `r0 = r1`: falls off the end
    fn["insns"] = base64.b64encode(bytes(insns)).decode()
    entry_path.write_text(json.dumps(entry))
    with pytest.raises(LoadFailed) as err:
        run_program(program, RunOptions(dry_run=True), lambda s: None, lambda s: None)
    assert err.value.failure.stage == "verifier"


@needs_bcc
def test_user_stacks_of_a_gone_process_show_addresses() -> None:
    """The stacks print when the run ends, after the sampled process exited: frames that cannot be named any more
    are shown as addresses (as bpftrace does), not as [unknown]."""
    from conftest import run_cli

    r = run_cli("-y", "--offline", "--backend", "bcc", "-c", "timeout 1 python3 -c 'while 1: pass'",
                "sample user-space stacks of running processes", timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    frames = [ln.strip() for ln in r.stdout.splitlines() if ln.startswith("    ") and "count:" not in ln]
    assert frames, r.stdout[-2000:]
    assert "[unknown]" not in frames
