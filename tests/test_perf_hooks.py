"""The small performance pieces: phase timings (GPTTRACE_TIMINGS), the corpus parse cache, the bpftrace
version cache, and the benchmark's output counting."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from gpttrace_py import corpus, timings
from gpttrace_py.kernel import features

ROOT = Path(__file__).resolve().parent.parent


# -- GPTTRACE_TIMINGS -------------------------------------------------------------------------------------
def test_timings_off_by_default(monkeypatch, capsys):
    monkeypatch.delenv("GPTTRACE_TIMINGS", raising=False)
    t = timings.begin()
    timings.mark("plan")
    timings.end(t)
    assert t is None
    assert capsys.readouterr().err == ""


def test_timings_report_phases_and_attach(monkeypatch, capsys):
    monkeypatch.setenv("GPTTRACE_TIMINGS", "1")
    t = timings.begin()
    timings.mark("plan")
    timings.mark("render")
    timings.ran(0.0)
    timings.end(t)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("gpttrace: timings (ms): plan ")
    data = json.loads(err[1].removeprefix("gpttrace: timings-json "))
    assert set(data["phases"]) == {"plan", "render", "load", "run"}
    assert data["attempts"] == 1
    assert data["start"] <= data["attached"] <= data["end"]


def test_timings_printed_when_planning_fails(monkeypatch, capsys):
    from gpttrace_py.errors import UnmappableIntent
    from gpttrace_py.service.options import TraceOptions
    from gpttrace_py.service.trace import trace
    from gpttrace_py.ui import UI

    class NoPlan:
        name = "none"

        def plan(self, intent, ctx):
            raise UnmappableIntent("no", [])

    monkeypatch.setenv("GPTTRACE_TIMINGS", "1")
    monkeypatch.setattr("gpttrace_py.safety.preflight", lambda backend: None)
    with pytest.raises(UnmappableIntent):
        trace("x", NoPlan(), TraceOptions(yes=True), UI())
    assert "gpttrace: timings-json " in capsys.readouterr().err


# -- the corpus parse cache -------------------------------------------------------------------------------
def test_corpus_parse_cache_is_used_and_gives_the_same_entries(isolated_home, speedups_on):
    corpus.load.cache_clear()
    first = corpus.load()
    cache = corpus._parse_cache_file()
    assert cache.is_file() and str(cache).startswith(str(isolated_home))
    assert cache.stat().st_mode & 0o077 == 0
    corpus.load.cache_clear()
    assert corpus.load() == first


def test_corpus_parse_cache_is_not_trusted_when_others_can_write_it(isolated_home, monkeypatch, speedups_on):
    corpus.load.cache_clear()
    corpus.load()
    root = corpus.corpus_dir()
    key = corpus._fingerprint(root, sorted(root.glob("*.yaml")))
    assert corpus._cached_parse(key) is not None
    os.chmod(corpus._parse_cache_file(), 0o666)
    assert corpus._cached_parse(key) is None


def test_corpus_parse_cache_misses_when_a_file_changes(isolated_home, tmp_path):
    corpus.load.cache_clear()
    corpus.load()
    root = corpus.corpus_dir()
    paths = sorted(root.glob("*.yaml"))
    key = corpus._fingerprint(root, paths)
    changed = (key[0], key[1], (*key[2][:-1], (key[2][-1][0], key[2][-1][1] + 1, *key[2][-1][2:])))
    assert corpus._cached_parse(changed) is None


def test_corpus_of_another_directory_is_not_cached(isolated_home, tmp_path):
    src = next(corpus.corpus_dir().glob("*.yaml"))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / src.name).write_text(src.read_text())
    corpus.load.cache_clear()
    assert len(corpus.load(str(tmp_path / "c"))) == 1
    assert not corpus._parse_cache_file().exists()


# -- the bpftrace version cache ---------------------------------------------------------------------------
def test_bpftrace_version_is_remembered_per_binary(isolated_home, tmp_path):
    calls = tmp_path / "calls"
    fake = tmp_path / "bpftrace"
    fake.write_text(f"#!/bin/sh\necho x >> {calls}\necho 'bpftrace v9.8.7'\n")
    fake.chmod(0o755)
    features.bpftrace_version.cache_clear()
    assert features.bpftrace_version(str(fake)) == "9.8.7"
    features.bpftrace_version.cache_clear()
    assert features.bpftrace_version(str(fake)) == "9.8.7"
    assert calls.read_text().count("x") == 1
    fake.write_text(f"#!/bin/sh\necho x >> {calls}\necho 'bpftrace v9.8.8 (rebuilt)'\n")  # a new binary
    features.bpftrace_version.cache_clear()
    assert features.bpftrace_version(str(fake)) == "9.8.8"
    features.bpftrace_version.cache_clear()


# -- the runner's reader ------------------------------------------------------------------------------------
class _Recorder:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def handle(self, record: dict) -> None:
        self.records.append(record)


def _pump_bytes(data: bytes, chunk: int = 1 << 16) -> list[dict]:
    """Feed ``data`` through the runner's reader (written into a pipe in pieces of ``chunk`` bytes)."""
    import threading

    from gpttrace_py.run.pump import PumpState, pump_output

    r, w = os.pipe()

    def writer() -> None:
        for i in range(0, len(data), chunk):
            os.write(w, data[i:i + chunk])
        os.close(w)

    class Proc:
        stdout = os.fdopen(r, "rb")

    t = threading.Thread(target=writer)
    t.start()
    rec = _Recorder()
    pump_output(Proc(), rec, PumpState())  # type: ignore[arg-type]
    t.join()
    Proc.stdout.close()
    return rec.records


def test_reader_gives_the_records_a_json_parse_gives():
    lines = [
        {"type": "attached_probes", "data": {"probes": 2}},
        {"type": "printf", "data": "Tracing... Hit Ctrl-C to end.\n"},
        {"type": "printf", "data": 'quotes " and \\ backslashes, tab\t, unicode é ✓, "}" inside\n'},
        {"type": "printf", "data": "no newline at the end"},
        {"data": "keys the other way round\n", "type": "printf"},
        {"type": "map", "data": {"@count": {"dd": 3}}},
        {"type": "lost_events", "data": {"events": 7}},
    ]
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    data += b"not json at all\n" + b"\n" + b'{"type": "printf", "data": "cut short\n'
    data += b'{"type": "printf", "data": "the last line has no newline"}'
    expected = [*lines, {"type": "printf", "data": "not json at all\n"},
                {"type": "printf", "data": '{"type": "printf", "data": "cut short\n'},
                {"type": "printf", "data": "the last line has no newline"}]
    for chunk in (1, 7, 64, 1 << 16):
        assert _pump_bytes(data, chunk) == expected


# -- bpftrace's perf buffers -------------------------------------------------------------------------------
def test_perf_buffer_pages_are_a_bounded_power_of_two():
    from gpttrace_py.run.bpftrace import PERF_RB_BYTES, perf_rb_pages

    for cpus in (1, 2, 3, 8, 12, 64, 1000):
        pages = perf_rb_pages(cpus)
        assert 64 <= pages <= 2048 and pages & (pages - 1) == 0
        assert pages == 64 or pages * 4096 * cpus <= PERF_RB_BYTES
    assert perf_rb_pages(2) == 2048


@pytest.mark.skipif(not os.path.exists("/sys/kernel/btf/vmlinux"), reason="needs BTF")
def test_bpftrace_is_spared_the_kernel_headers_when_btf_has_the_types():
    from gpttrace_py.run.bpftrace import without_kernel_headers

    program = "tracepoint:syscalls:sys_enter_openat { printf(\"%s\\n\", str(args->filename)); }"
    assert without_kernel_headers(program, {})
    assert not without_kernel_headers("#include <net/sock.h>\n" + program, {})  # the header is asked for
    assert not without_kernel_headers(program, {"BPFTRACE_KERNEL_SOURCE": "/usr/src/linux"})  # the user's


# -- the benchmark's counting -------------------------------------------------------------------------------
def test_bench_counts_event_lines_in_every_output_format(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import run as bench_run
    finally:
        sys.path.remove(str(ROOT / "bench"))
    out = tmp_path / "out"
    out.write_text("PID     COMM             FD      BYTES\n"
                   "12      gptbench_dd      0       1\n"
                   '{"type": "printf", "data": "13      gptbench_dd      0       1\\n"}\n'
                   '{"type": "event", "fields": {"PID": 14}, "line": "14      gptbench_dd      0       1"}\n'
                   "15      dd               0       1\n")
    assert bench_run._count_dd_lines(out) == 3
