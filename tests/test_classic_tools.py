"""The classic tools in the corpus: the schema (tools, substitute, needs_only, original.needs), needs decided on
the live machine, `gpttrace examples` and --check, requests that name a tool, the refusal of a tool whose need
is missing (exit 2, and --dry-run -o still saves it), and the README table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from gpttrace_py import classic_tools, corpus
from gpttrace_py.corpus import CorpusError, Example, load, unmet_need
from gpttrace_py.kernel.catalog import Catalog

SPEC = "spec: {title: t, probes: ['tracepoint:sched:sched_process_exec'], print: [{expr: pid}]}\n"


def _entry(tmp_path: Path, body: str, name: str = "tool-x") -> Example:
    (tmp_path / f"{name}.yaml").write_text(f"id: {name}\ntitle: T\n{body}{SPEC}")
    load.cache_clear()
    try:
        (entry,) = load(str(tmp_path))
    finally:
        load.cache_clear()
    return entry


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


# -- the schema -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, error", [
    ("needs_only: true\ntools: [x]\n", "needs_only needs `original`"),
    ("tools: [x]\nsubstitute: s\nneeds_only: true\noriginal: {method: m, needs: kprobes}\n", "contradict"),
    ("substitute: closer than nothing\n", "name it in `tools`"),
    ("tools: [x]\noriginal: {method: m, needs: kprobe}\n", "String should match pattern"),
    ("tools: [x]\noriginal: {method: m, needs: 'uprobe:a b'}\n", "String should match pattern"),
    ("tools: [Bio Snoop]\n", "String should match pattern"),
    ("tools: [x]\nneeds_only: true\noriginal: {method: m, needs: kprobes}\nalternatives: [{title: a, probes: "
     "['tracepoint:sched:sched_process_exit'], print: [{expr: pid}]}]\n", "no alternatives"),
])
def test_schema_refuses_what_does_not_fit(tmp_path: Path, body: str, error: str) -> None:
    with pytest.raises(CorpusError, match=re.escape(error)):
        _entry(tmp_path, body)


def test_schema_reads_every_need_kind(tmp_path: Path) -> None:
    for need in ("kprobes", "kretprobes", "fentry", "lsm", "hw_counters", "usdt:/usr/sbin/mysqld",
                 "tracepoint:nfs", "uprobe:libssl"):
        e = _entry(tmp_path, f"tools: [x, x.bt]\nneeds_only: true\noriginal: {{method: m, needs: '{need}'}}\n")
        assert e.need == need and e.tool_names == ["x"]
    e = _entry(tmp_path, "tools: [x]\nsubstitute: how it differs\noriginal: {method: m, needs: kprobes}\n")
    assert e.need is None and e.substitute == "how it differs"  # a substitute runs; its original is not the need


def test_needs_are_decided_on_this_machine(catalog: Catalog) -> None:
    have = sorted(catalog.tracepoints.categories())[0]
    assert unmet_need(f"tracepoint:{have}", catalog) is None
    assert "no nosuchsubsystem tracepoints" in unmet_need("tracepoint:nosuchsubsystem", catalog)
    assert (unmet_need("kprobes", catalog) is None) == bool(catalog.features.kprobes)
    assert (unmet_need("hw_counters", catalog) is None) == bool(catalog.features.hw_counters)
    if catalog.features.uprobes:
        assert unmet_need("uprobe:sh", catalog) is None
        assert "not installed" in unmet_need("uprobe:/nonexistent/gptt-binary", catalog)
        assert "not installed" in unmet_need("usdt:gptt-no-such-server", catalog)


# -- --check and the list -----------------------------------------------------------------------------------
@pytest.mark.kernel
def test_check_loads_a_needs_only_entry_whose_need_is_met_and_skips_one_whose_need_is_not(
        tmp_path: Path, catalog: Catalog) -> None:
    from gpttrace_py.corpus_check import check_entry

    met = _entry(tmp_path, "tools: [x]\nneeds_only: true\noriginal: {method: m, needs: 'tracepoint:sched'}\n")
    assert check_entry(met, catalog).status == "loaded"
    # the same program, declared to need what this machine lacks: never loaded, skipped naming the need
    unmet = _entry(tmp_path, "tools: [x]\nneeds_only: true\noriginal: {method: m, needs: 'tracepoint:gpttnone'}\n")
    r = check_entry(unmet, catalog)
    assert (r.status, r.needs) == ("skipped", "tracepoint:gpttnone") and "no gpttnone tracepoints" in r.reason
    assert r.seconds < 1.0  # nothing was loaded


def test_examples_list_and_show_say_what_a_tool_needs(catalog: Catalog) -> None:
    if catalog.features.kprobes:
        pytest.skip("this kernel has kprobes: every kprobe entry runs here")
    r = run_cli("examples")
    row = next(line for line in r.stdout.splitlines() if line.startswith("ext4slower "))
    assert re.search(r"\bkprobes\s+no\b", row), row
    r = run_cli("examples", "show", "ext4slower")
    assert "Classic tools: ext4slower" in r.stdout
    assert "Runnable here: no (needs kprobes: this kernel has no kprobes" in r.stdout
    assert "kprobe:ext4_file_read_iter" in r.stdout  # the original, shown
    r = run_cli("examples", "show", "cpudist")
    assert "Substitute for cpudist: cpudist uses a kprobe on finish_task_switch" in r.stdout
    r = run_cli("examples", "run", "ext4slower", "--dry-run")
    assert r.returncode == 2 and "needs kprobes" in r.stderr


# -- planning -------------------------------------------------------------------------------------------------
def _plan_source(request: str, catalog: Catalog) -> str:
    from gpttrace_py.planning.base import Conversation, PlanContext
    from gpttrace_py.planning.offline import OfflinePlanner
    from gpttrace_py.planning.plan import NeedMissing, make_plan

    ctx = PlanContext(catalog=catalog, conversation=Conversation())
    try:
        return make_plan(OfflinePlanner(), request, ctx).source
    except NeedMissing:
        return "refused:" + ctx.source


def test_every_tool_named_reaches_its_entry(catalog: Catalog) -> None:
    corpus.load.cache_clear()
    covering: dict[str, set[str]] = {}
    for e in corpus.load():
        for tool in e.tools:
            covering.setdefault(tool, set()).add(f"corpus:{e.id}")
    wrong = []
    for tool, wanted in covering.items():
        for request in (f"run {tool}", f"like {tool.removesuffix('.bt')}"):
            got = _plan_source(request, catalog)
            if got.removeprefix("refused:") not in wanted:
                wrong.append(f"{request!r} -> {got} (wanted {' or '.join(sorted(wanted))})")
    assert not wrong, "\n".join(wrong)


def test_a_tool_whose_name_is_a_word_is_named_only_as_a_tool() -> None:
    """profile and trace are BCC tools and English words: "trace files opened by profile" is no request for
    either tool. (writeback stands in for such a word here.)"""
    from gpttrace_py.corpus import named_tools

    def word(w: str) -> bool:
        return w == "writeback"

    for text in ("run writeback", "writeback", "writeback.bt", "like writeback", "the writeback tool",
                 "run writeback for 5 seconds"):
        assert [e.id for e in named_tools(text, word)] == ["writeback"], text
    for text in ("trace writeback of dirty pages", "trace files opened by writeback"):
        assert named_tools(text, word) == [], text
    assert [e.id for e in named_tools("trace writeback of dirty pages")] == ["writeback"]  # not a word: named


def test_a_tool_word_written_as_a_syscall_names_the_syscall(catalog: Catalog) -> None:
    if catalog.syscall_tracepoint("cachestat") is None:
        pytest.skip("this kernel has no cachestat syscall (Linux 6.5+)")
    assert _plan_source("trace the cachestat syscall", catalog) == "syscall:cachestat"
    assert _plan_source("run cachestat", catalog) in ("refused:corpus:cachestat", "corpus:cachestat")


def test_an_example_that_cannot_run_here_yields_to_one_that_can(catalog: Catalog) -> None:
    """A request a program of this kernel answers as well is not refused for an example's missing need."""
    if catalog.features.kprobes or "ext4" not in catalog.tracepoints.categories():
        pytest.skip("needs a kernel with ext4 tracepoints and without kprobes")
    assert _plan_source("trace ext4 fsyncs with the inode number", catalog) == "tracepoint:ext4:ext4_sync_file_enter"
    assert _plan_source("show me slow ext4 operations", catalog) == "refused:corpus:ext4slower"


@pytest.mark.kernel
def test_a_tool_whose_need_is_missing_ends_with_exit_2_naming_it(tmp_path: Path, catalog: Catalog) -> None:
    out = tmp_path / "ext4slower.bt"
    r = run_cli("--offline", "--dry-run", "-o", str(out), "show me which ext4 reads and writes are slow")
    if catalog.features.kprobes:
        assert r.returncode == 0, r.stderr
        return
    assert r.returncode == 2, r.stderr
    assert "ext4slower" in r.stderr and "needs kprobes" in r.stderr and "no substitute" in r.stderr
    text = out.read_text()  # shown and saved for a machine that has kprobes, never loaded here
    assert "kprobe:ext4_file_read_iter" in text and "kretprobe:ext4_file_write_iter" in text
    assert "program saved to" in r.stderr and "loads and attaches" not in r.stderr


def test_save_does_not_follow_a_symlink(tmp_path: Path) -> None:
    from gpttrace_py.safefs import UnsafePath, write_output

    victim = tmp_path / "victim"
    victim.write_text("keep")
    link = tmp_path / "out.bt"
    link.symlink_to(victim)
    write_output(link, "program")
    assert victim.read_text() == "keep" and not link.is_symlink() and link.read_text() == "program"
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(UnsafePath):
        write_output(shared / "x.bt", "program")


@pytest.mark.kernel
def test_a_substitute_is_labelled(catalog: Catalog) -> None:
    r = run_cli("--offline", "--dry-run", "like cpudist")
    assert r.returncode == 0, r.stderr
    assert "note: a substitute for cpudist: cpudist uses a kprobe on finish_task_switch" in r.stderr
    # an entry with a purpose of its own is labelled only when the tool is asked for
    r = run_cli("--offline", "--dry-run", "trace file deletions")
    assert "substitute for filegone" not in r.stderr
    r = run_cli("--offline", "--dry-run", "run filegone")
    assert "note: a substitute for filegone" in r.stderr


# -- the table -----------------------------------------------------------------------------------------------
def test_every_tool_is_covered_or_has_a_reason() -> None:
    corpus.load.cache_clear()
    rows = classic_tools.rows()
    missing = [f"{r.suite}:{r.tool}" for r in rows if not r.entry and not r.how]
    assert not missing, f"{len(missing)} tools neither covered nor listed with a reason: {missing}"
    names = {t for e in corpus.load() for t in e.tools}
    assert names <= {r.tool for r in rows}, "an entry's tool is missing from the table"
    data = classic_tools.lists()
    assert not set(data["not_covered"]) & names, "a tool both covered and listed with a reason"
    assert len(data["bcc"]) == len(set(data["bcc"])) and len(data["bpftrace"]) == len(set(data["bpftrace"]))


def test_readme_table_is_current() -> None:
    readme = (ROOT / "examples_corpus" / "README.md").read_text()
    assert classic_tools.table() in readme, "regenerate it: gpttrace examples --tools"
