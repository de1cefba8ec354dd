"""The examples corpus: every entry is valid, every lesson is covered, retrieval finds entries for phrasings
that are not in them (and fast), and every entry loads on this kernel or says what it needs."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from gpttrace_py import corpus
from gpttrace_py.corpus import Example
from gpttrace_py.spec import ProgramSpec

LESSONS = [str(n) for n in (*range(1, 18), 19, 20, 21)]
UNAVAILABLE_HERE = {"kprobes": ("kprobe", "kretprobe"), "fentry": ("kfunc", "kretfunc"), "lsm": ("lsm",),
                    "xdp": ("xdp",), "tc": ("tc",)}


@pytest.fixture(scope="module")
def entries() -> tuple[Example, ...]:
    corpus.load.cache_clear()
    return corpus.load()


def test_every_entry_validates_and_is_complete(entries: tuple[Example, ...]) -> None:
    assert len(entries) >= 80
    for e in entries:
        assert e.path and Path(e.path).stem == e.id
        assert e.title and len(e.explanation.split()) >= 30, f"{e.id}: explanation too short"
        assert 4 <= len(e.paraphrases) <= 6, f"{e.id}: {len(e.paraphrases)} paraphrases"
        assert len(set(p.lower() for p in e.paraphrases)) == len(e.paraphrases), f"{e.id}: repeated paraphrase"
        assert e.tags, f"{e.id}: no tags"
        assert e.program, f"{e.id}: no program (run `gpttrace examples --refresh`)"
        if e.lesson:
            assert e.spec.lesson == e.lesson, f"{e.id}: spec.lesson differs from lesson"
        # a spec survives a round trip through its JSON form (what planners and logs exchange)
        again = ProgramSpec.model_validate_json(e.spec.model_dump_json())
        assert again.model_dump() == e.spec.model_dump()
        assert all(isinstance(a, ProgramSpec) for a in e.alternatives)


def test_a_bad_spec_names_its_file_when_used(tmp_path: Path) -> None:
    from gpttrace_py.corpus import CorpusError, load

    (tmp_path / "broken.yaml").write_text(
        "id: broken\ntitle: Broken\nparaphrases: [a]\nspec: {title: t, probes: ['nosuch:x'], print: [{expr: pid}]}\n"
    )
    (entry,) = load(str(tmp_path))
    with pytest.raises(CorpusError, match=r"(?s)broken\.yaml: spec: .*unknown probe kind"):
        _ = entry.spec


def test_ids_are_unique(entries: tuple[Example, ...]) -> None:
    ids = [e.id for e in entries]
    assert len(ids) == len(set(ids))


def test_every_lesson_is_covered(entries: tuple[Example, ...]) -> None:
    have = {e.lesson for e in entries if e.lesson}
    assert set(LESSONS) <= have, f"missing lessons: {sorted(set(LESSONS) - have, key=int)}"


def test_original_methods_say_what_they_need(entries: tuple[Example, ...]) -> None:
    originals = {e.lesson: e for e in entries if e.original}
    for lesson, need in (("2", "kprobes"), ("3", "fentry"), ("13", "kprobes"), ("15", "kprobes"), ("19", "lsm"),
                         ("20", "tc"), ("21", "xdp")):
        e = originals.get(lesson)
        assert e is not None, f"lesson {lesson} has no entry with its original method"
        assert e.original is not None and e.original.needs == need and e.original.note
        assert e.original.spec is not None
        kinds = {p.kind for p in e.original.spec.all_probes}
        assert kinds & set(UNAVAILABLE_HERE[need]), f"{e.id}: original spec does not use {need}"
        # the working spec uses none of what is missing here
        assert not {p.kind for p in e.spec.all_probes} & {k for ks in UNAVAILABLE_HERE.values() for k in ks}


def test_programs_are_current(entries: tuple[Example, ...]) -> None:
    """program: is the spec rendered by this version of the renderer (`gpttrace examples --refresh`)."""
    from gpttrace_py.kernel.catalog import Catalog
    from gpttrace_py.render.bpftrace import render

    catalog = Catalog()
    if not catalog.tracepoints.available:
        pytest.skip("rendering depends on the tracepoint formats of a real tracefs")
    stale = [e.id for e in entries if (e.program or "").rstrip("\n") != render(e.spec, catalog).text.rstrip("\n")]
    assert not stale, f"stale program: fields (run `gpttrace examples --refresh`): {stale}"


def test_refresh_rewrites_only_the_program_block(tmp_path: Path) -> None:
    from gpttrace_py.cli.examples import replace_program

    text = "id: x\ntitle: T\nspec:\n  title: t\nprogram: |\n  old\n\n  text\n"
    assert replace_program(text, "new\n\tline\n") == "id: x\ntitle: T\nspec:\n  title: t\nprogram: |\n  new\n  \tline\n"
    assert replace_program("id: x\n", "p\n") == "id: x\nprogram: |\n  p\n"
    middle = "id: x\nprogram: |\n  old\nspec:\n  title: t\n"
    assert replace_program(middle, "p\n") == "id: x\nprogram: |\n  p\nspec:\n  title: t\n"


# Phrasings written for this test: none of them is a paraphrase in the corpus.
HELD_OUT = [
    ("print a message whenever a new process execs", "hello-exec"),
    ("show me which files get removed and by which program", "unlinksnoop"),
    ("files opened by process id 4242", "opensnoop-pid"),
    ("what is the user typing into the shell", "bashreadline"),
    ("which process sent SIGKILL to my daemon", "sigsnoop"),
    ("list new processes with their command line arguments", "execsnoop"),
    ("exit status of finished processes", "exitsnoop"),
    ("how long are runnable tasks waiting for a cpu", "runqlat"),
    ("time spent handling hardware interrupts", "hardirqs"),
    ("how long did each process run before exiting", "bootstrap"),
    ("latency of establishing tcp connections", "tcpconnlat"),
    ("detect memory leaks in a process", "memleak"),
    ("are disk accesses sequential or random", "biopattern"),
    ("deny outbound connections to a host using bpf lsm", "lsm-connect"),
    ("most frequent system calls", "syscount"),
    ("system calls returning errors", "syscall-errors"),
    ("total bytes read by each process", "read-bytes-by-process"),
    ("files that could not be opened", "open-failures"),
    ("who runs chmod on files", "chmodsnoop"),
    ("new threads being spawned", "threadsnoop"),
    ("oom killer victims", "oomkill"),
    ("time threads spend off cpu blocked", "offcputime"),
    ("disk latency histogram", "biolatency"),
    ("tcp retransmissions", "tcp-retransmits"),
    ("packets dropped by the kernel and why", "packet-drops"),
    ("dns resolution latency", "dns-lookups"),
    ("io_uring opcodes", "io-uring-ops"),
    ("who loads bpf programs", "bpf-syscalls"),
]


def test_held_out_phrasings_are_not_paraphrases(entries: tuple[Example, ...]) -> None:
    known = {p.lower() for e in entries for p in e.paraphrases}
    assert not [q for q, _ in HELD_OUT if q.lower() in known]


@pytest.mark.parametrize(("query", "expected"), HELD_OUT)
def test_retrieval_ranks_the_right_entry_first(query: str, expected: str) -> None:
    from gpttrace_py.planning.retrieval import index

    hits = index().search(query, limit=3)
    assert hits, query
    assert hits[0].example.id == expected, f"{query!r}: got {[h.example.id for h in hits]}"


def test_retrieval_is_fast() -> None:
    from gpttrace_py.planning.retrieval import index

    idx = index()
    assert len(idx.examples) >= 80
    times = []
    for _ in range(5):
        for q, _ in HELD_OUT:
            t = time.perf_counter()
            idx.search(q)
            times.append(time.perf_counter() - t)
    assert statistics.median(times) < 0.020
    assert max(times) < 0.020 * 5  # a GC pause may happen, but not a slow search


def test_cli_lists_and_ranks(entries: tuple[Example, ...]) -> None:
    from click.testing import CliRunner

    from gpttrace_py.cli.examples import examples

    runner = CliRunner()
    out = runner.invoke(examples, [])
    assert out.exit_code == 0, out.output
    assert all(e.id in out.output for e in entries)
    out = runner.invoke(examples, ["wait", "for", "a", "cpu", "on", "the", "run", "queue"])
    assert out.exit_code == 0, out.output
    first = out.output.splitlines()[1].split()
    assert first[1] == "runqlat"
    out = runner.invoke(examples, ["show", "tcpconnlat"])
    assert out.exit_code == 0, out.output
    assert "kprobe" in out.output and "inet_sock_set_state" in out.output


@pytest.mark.kernel
@pytest.mark.slow
def test_every_entry_loads_or_says_what_it_needs(entries: tuple[Example, ...]) -> None:
    from gpttrace_py.corpus_check import check_all, summary

    results = check_all(entries, jobs=6)
    failed = [r.line() for r in results if r.status == "failed"]
    loaded = [r for r in results if r.status == "loaded"]
    assert not failed, "\n".join(failed)
    assert len(loaded) >= 60, summary(results)
    for r in results:
        if r.status == "skipped":
            assert r.needs and r.reason, r


def test_check_skips_specs_this_kernel_cannot_run(entries: tuple[Example, ...]) -> None:
    """An entry whose only spec needs a missing feature is skipped with the reason, never loaded."""
    from gpttrace_py.corpus_check import check_entry
    from gpttrace_py.kernel.catalog import Catalog

    catalog = Catalog()
    by_id = {e.id: e for e in entries}
    kprobe_only = by_id["unlinksnoop"].model_copy(update={"spec": by_id["unlinksnoop"].original.spec})
    if not catalog.features.kprobes:
        r = check_entry(kprobe_only, catalog)
        assert (r.status, r.needs) == ("skipped", "kprobes"), r
        assert "kprobe:do_unlinkat" in r.reason
    xdp_only = by_id["xdp-packets"].model_copy(update={"spec": by_id["xdp-packets"].original.spec})
    r = check_entry(xdp_only, catalog, backend="bpftrace")
    assert r.status == "skipped" and "bcc" in r.needs, r


def test_check_command_prints_each_entry_and_fails_on_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from gpttrace_py import corpus_check
    from gpttrace_py.cli.examples import examples

    fake = [corpus_check.CheckResult("a", "loaded"),
            corpus_check.CheckResult("b", "skipped", "kprobe:x: none", "kprobes"),
            corpus_check.CheckResult("c", "failed", "spec: bpftrace semantic error")]

    def check_all(entries=None, backend="bpftrace", jobs=4, progress=None):
        for r in fake:
            progress(r)
        return fake

    monkeypatch.setattr(corpus_check, "check_all", check_all)
    out = CliRunner().invoke(examples, ["--check"])
    assert out.exit_code == 1
    assert out.output.splitlines() == ["a: loaded", "b: skipped (needs kprobes: kprobe:x: none)",
                                       "c: failed (spec: bpftrace semantic error)", "1 loaded, 1 skipped, 1 failed"]
