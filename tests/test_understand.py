"""The plan checked against the request, as a user sees it: the understood line, refusals with their reasons
(actions, what this machine lacks, words nothing places, languages not read), not honoured modifiers, a duration
asked in words, alternatives and exclusions of processes, and Chinese requests."""

from __future__ import annotations

import json
import time

import pytest

from gpttrace_py.kernel.catalog import Catalog

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


def dry(cli, request: str, *extra: str):
    return cli("--offline", "--dry-run", *extra, request)


def test_the_understood_line_comes_before_the_program(cli):
    r = dry(cli, "trace files opened by cat")
    assert r.returncode == 0, r.stderr
    assert "understood: " in r.stderr and "process = cat" in r.stderr
    assert r.stderr.index("understood: ") < r.stderr.index("#!/usr/bin/env bpftrace")


@pytest.mark.parametrize("request_text,words", [
    ("kill processes that execute binaries from /tmp", ["kill", "--unsafe"]),
    ("trace execs and kill them", ["kill", "--unsafe"]),
    ("block all outgoing connections to port 23", ["block", "enforcement"]),
    ("drop packets from 10.0.0.1", ["drop", "not a tracing program"]),
    ("throttle disk writes from dd", ["throttle"]),
])
def test_actions_are_refused_not_traced(cli, request_text, words):
    r = dry(cli, request_text)
    assert r.returncode == 2, r.stderr
    assert "#!/usr/bin/env bpftrace" not in r.stderr  # no program is shown
    for w in words:
        assert w in r.stderr


def test_an_action_stays_refused_with_unsafe_when_the_planner_only_traces(cli):
    r = dry(cli, "kill processes that execute binaries from /tmp", "--unsafe")
    assert r.returncode == 2 and "tracing programs only" in r.stderr and "bpftrace" not in r.stdout


def test_what_this_machine_lacks_is_said(cli, catalog):
    r = dry(cli, "count L1 data cache load misses per process")
    if catalog.features.hw_counters:
        pytest.skip("this machine has a CPU PMU")
    assert r.returncode == 2 and "hardware performance counters" in r.stderr


def test_kernel_functions_need_kprobes(cli, catalog):
    if catalog.features.kprobes:
        pytest.skip("this kernel has kprobes")
    r = dry(cli, "count calls to the kernel function do_sys_openat2")
    assert r.returncode == 2 and "kprobes" in r.stderr


@pytest.mark.parametrize("word,what,categories", [("nvme", "NVMe", {"nvme"}),
                                                  ("nfs", "NFS", {"nfs", "nfs4", "sunrpc"})])
def test_a_subsystem_without_tracepoints_is_said(cli, catalog, word, what, categories):
    if categories & set(catalog.tracepoints.categories()):
        pytest.skip(f"this kernel has {what} tracepoints")
    r = dry(cli, f"trace {word} requests with their latency")
    assert r.returncode == 2 and f"no {what} tracepoints" in r.stderr


def test_words_nothing_places_are_refused_with_suggestions(cli):
    r = dry(cli, "show flux capacitor readings per process")
    assert r.returncode == 2
    assert "flux" in r.stderr and "capacitor" in r.stderr
    assert "#!/usr/bin/env bpftrace" not in r.stderr


def test_a_word_the_program_leaves_out_is_said(cli):
    r = dry(cli, "trace block device requests larger than 64 KB")
    assert r.returncode == 0 or r.returncode == 2
    if r.returncode == 0:  # the program has no byte size to compare: it must say so
        assert "not honoured" in r.stderr or "65536" in r.stderr


def test_alternatives_and_exclusions_of_processes(cli):
    r = dry(cli, "trace files opened by cat or head")
    assert r.returncode == 0 and 'comm == "cat"' in r.stderr and 'comm == "head"' in r.stderr
    r = dry(cli, "trace file opens but not by systemd")
    assert r.returncode == 0 and 'comm != "systemd"' in r.stderr and 'comm == "systemd"' not in r.stderr


def test_alternatives_filter_real_events(cli, tmp_path):
    target = tmp_path / "alt.txt"
    target.write_text("x")
    r = cli("--offline", "-y", "-c", f"sh -c 'cat {target}; head -c1 {target}; tail -c1 {target}'",
            "trace files opened by cat or head")
    assert r.returncode == 0, r.stderr
    comms = {line.split()[1] for line in r.stdout.splitlines() if str(target) in line}
    assert comms == {"cat", "head"}, r.stdout


def test_a_duration_in_words_stops_the_trace(cli):
    started = time.monotonic()
    r = cli("--offline", "-y", "count syscalls by process for 1 second", timeout=60)
    took = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    assert "for 1 s" in r.stderr
    assert took < 20  # not the 600 s cap of a run without a terminal


def test_the_plan_is_the_first_json_record(cli):
    r = cli("--offline", "-y", "--json", "-c", "cat /etc/hostname", "trace files opened by cat")
    assert r.returncode == 0, r.stderr
    first = json.loads(r.stdout.splitlines()[0])
    assert first["type"] == "plan" and "process = cat" in first["understood"]


def test_octal_is_shown_as_asked(cli, tmp_path):
    f = tmp_path / "m"
    f.write_text("")
    r = cli("--offline", "-y", "-c", f"chmod 640 {f}", "show chmod calls with the new mode in octal")
    assert r.returncode == 0, r.stderr
    assert any(" 0640 " in line and str(f) in line for line in r.stdout.splitlines()), r.stdout


def test_a_chinese_request_is_planned_and_told_in_chinese(cli):
    r = cli("--offline", "-y", "-c", "ls /etc", "跟踪 ls 打开的文件")
    assert r.returncode == 0, r.stderr
    assert "理解为:" in r.stderr and "进程 = ls" in r.stderr
    assert any(line.split()[1:2] == ["ls"] and "/etc" in line for line in r.stdout.splitlines()), r.stdout


def test_a_chinese_action_is_refused_in_chinese(cli):
    r = dry(cli, "杀死所有打开 /etc/shadow 的进程")
    assert r.returncode == 2 and "--unsafe" in r.stderr and "杀死进程" in r.stderr


def test_chinese_words_the_lexicon_does_not_know_are_not_dropped(cli):
    r = dry(cli, "监控量子纠缠的文件")
    assert r.returncode == 2 and "量子纠缠" in r.stderr


def test_a_language_the_planner_does_not_read_is_said(cli):
    r = dry(cli, "tracer les fichiers ouverts par nginx")
    assert r.returncode == 2 and "French" in r.stderr and "LLM planner" in r.stderr


@pytest.mark.parametrize("request_text,probe,field", [
    ("count TLB flushes by reason", "tlb:tlb_flush", "reason"),
    ("histogram of page allocation orders", "kmem:mm_page_alloc", "order"),
    ("count kswapd wakeups per NUMA node", "vmscan:mm_vmscan_wakeup_kswapd", "nid"),
])
def test_words_are_grounded_in_this_kernel_catalog(cli, catalog, request_text, probe, field):
    category, name = probe.split(":")
    if not catalog.tracepoints.exists(category, name):
        pytest.skip(f"this kernel has no {probe}")
    r = dry(cli, request_text)
    assert r.returncode == 0, r.stderr
    assert probe in r.stderr and f"args->{field}" in r.stderr


@pytest.mark.parametrize("backend", ["bpftrace", "bcc"])
def test_a_time_bound_keeps_only_the_slow_calls(cli, backend):
    r = cli("--offline", "-y", "--backend", backend, "-c", "sh -c 'sleep 0.3; sleep 0.01'",
            "trace clock_nanosleep calls slower than 100 ms", timeout=90)
    assert r.returncode == 0, r.stderr
    assert "delta > 100000000" in r.stderr
    rows = [line.split() for line in r.stdout.splitlines() if " sleep " in f" {line} "]
    assert rows and all(int(row[-1]) >= 100 for row in rows), r.stdout  # the 10 ms sleep is not shown


def test_number_words_and_time_bounds_are_slots():
    from gpttrace_py.planning.intent import parse

    it = parse("list the ten processes doing the most disk io")
    assert it.top == 10
    it = parse("what are the slowest fsyncs, over 10 ms")
    assert it.latency_bound == (">", 10_000_000) and "latency" in it.actions


def test_a_program_for_a_missing_feature_is_shown_and_saved_not_loaded(cli, catalog, tmp_path):
    if catalog.features.kprobes:
        pytest.skip("this kernel has kprobes")
    out = tmp_path / "kfunc.bt"
    r = cli("--offline", "--dry-run", "-o", str(out), "count calls to the kernel function do_sys_openat2")
    assert r.returncode == 2 and "kprobes" in r.stderr and "not loaded here" in r.stderr
    assert "kprobe:do_sys_openat2" in out.read_text() and "count()" in out.read_text()


def test_chat_takes_chinese_refinements(cli):
    r = cli("chat", "--offline", input="统计 dd 读取的字节数\n改成直方图\n换成 BCC\n只看 pid 42\n/quit\n", timeout=120)
    assert "理解为:" in r.stderr + r.stdout
    out = r.stderr + r.stdout
    assert "Changed: histogram" in out and "Changed: backend bcc" in out and "Changed: only pid 42" in out, out[-3000:]
