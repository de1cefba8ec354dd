"""Offline refinement on real specs: each plain-language modifier changes the current spec as it says."""

from __future__ import annotations

import pytest

from gpttrace_py.kernel.catalog import Catalog
from gpttrace_py.planning import adapt, catalog_programs, offline
from gpttrace_py.planning import intent as intent_mod
from gpttrace_py.planning import refine as R
from gpttrace_py.planning.base import PlanContext
from gpttrace_py.render import bpftrace as bt
from gpttrace_py.spec import ProgramSpec


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    c = Catalog()
    if not c.tracepoints.available or c.syscall_tracepoint("openat") is None:
        pytest.skip("needs tracefs with syscall tracepoints")
    return c


def opensnoop(catalog: Catalog, question: str = "trace files opened by cat, with the result") -> ProgramSpec:
    """The corpus's opensnoop adapted to a question the way the offline planner adapts it: an entry/exit pair
    that prints each open and its result, with the process filter of the question."""
    from gpttrace_py.corpus import by_id

    example = by_id("opensnoop")
    if example is None:
        pytest.skip("no opensnoop example in the corpus")
    return adapt.adapt(example.spec, intent_mod.parse(question), catalog)


@pytest.fixture(scope="module")
def opens(catalog: Catalog) -> ProgramSpec:
    spec = opensnoop(catalog)
    assert spec.start is not None and spec.print and spec.filter.comm == "cat"
    return spec


def syscall(catalog: Catalog, names: list[str], text: str) -> ProgramSpec:
    return catalog_programs.syscall_spec(names, intent_mod.parse(text), catalog)


@pytest.fixture(scope="module")
def openat_calls(catalog: Catalog) -> ProgramSpec:
    spec = syscall(catalog, ["openat"], "trace openat calls")
    assert spec.start is None and spec.print and all(p.is_syscall_enter for p in spec.probes)
    return spec


@pytest.fixture(scope="module")
def read_latency(catalog: Catalog) -> ProgramSpec:
    spec = syscall(catalog, ["read"], "read() latency")
    assert spec.aggregates[0].func == "hist" and spec.aggregates[0].unit == "us"
    return spec


@pytest.fixture(scope="module")
def counts(catalog: Catalog) -> ProgramSpec:
    spec = syscall(catalog, ["openat"], "count openat() calls by process")
    assert spec.aggregates[0].func == "count" and not spec.print
    return spec


@pytest.fixture(scope="module")
def profile() -> ProgramSpec:
    from gpttrace_py.corpus import by_id

    example = by_id("profile")
    if example is not None and any(p.kind == "profile" for p in example.spec.probes):
        return example.spec
    return ProgramSpec.model_validate({"title": "On-CPU kernel stacks sampled at 49 Hz", "probes": ["profile:hz:49"],
                                       "filter": {"expr": "pid != 0"},
                                       "aggregates": [{"func": "count", "keys": [{"expr": "kstack"}]}]})


def refined(request: str, spec: ProgramSpec, catalog: Catalog) -> ProgramSpec:
    assert R.is_refinement(request, spec, catalog), f"{request!r} should refine, not plan anew"
    new = R.refine(request, spec, catalog)
    bt.render(new, catalog)  # every refined spec still renders
    return new


def same_except(a: ProgramSpec, b: ProgramSpec, *fields: str) -> None:
    da, db = a.model_dump(), b.model_dump()
    for f in fields:
        da.pop(f, None)
        db.pop(f, None)
    assert da == db


# -- the phrases of the issue -----------------------------------------------------------------------------
def test_only_for_pid(opens, catalog):
    new = refined("only for pid 1234", opens, catalog)
    assert new.filter.pid == 1234 and new.filter.comm == "cat"
    same_except(opens, new, "filter")
    assert "pid == 1234" in bt.render(new, catalog).text


def test_just_a_process(openat_calls, catalog):
    new = refined("just nginx", openat_calls, catalog)
    assert new.filter.comm == "nginx"
    same_except(openat_calls, new, "filter")
    assert refined("only the redis-server processes", openat_calls, catalog).filter.comm == "redis-server"


def test_make_it_a_histogram(opens, catalog):
    new = refined("make it a histogram", opens, catalog)
    assert not new.print
    (agg,) = new.aggregates
    assert agg.func == "hist" and agg.value == "delta / 1000" and agg.unit == "us"
    assert new.start is not None and not new.start.save  # the saved path is no longer read
    assert new.filter.comm == "cat"


def test_histogram_of_a_size(catalog):
    reads = syscall(catalog, ["read"], "trace the read syscall")
    new = refined("as a histogram", reads, catalog)
    assert new.aggregates[0].func == "hist" and new.aggregates[0].value == "args.count"


def test_in_milliseconds(read_latency, catalog):
    new = refined("in milliseconds", read_latency, catalog)
    assert new.aggregates[0].value == "delta / 1000000" and new.aggregates[0].unit == "ms"
    assert "/ 1000000" in bt.render(new, catalog).text


def test_unit_without_a_time_is_refused(opens, catalog):
    with pytest.raises(R.RefineError, match="measures no time"):
        R.refine("in milliseconds", opens, catalog)


def test_add_the_return_value(openat_calls, catalog):
    new = refined("add the return value", openat_calls, catalog)
    assert [p.text for p in new.probes] == ["tracepoint:syscalls:sys_exit_openat"]
    assert new.start is not None and [p.text for p in new.start.probes] == ["tracepoint:syscalls:sys_enter_openat"]
    exprs = [f.expr for f in new.print]
    assert "args.ret" in exprs and "start.filename" in exprs and "args.filename" not in exprs
    assert {s.name for s in new.start.save} >= {"filename"}
    text = bt.render(new, catalog).text
    assert "args->ret" in text and "sys_exit_openat" in text


def test_return_value_already_shown(opens, catalog):
    result = R.apply("add the return value", opens, catalog)
    assert result.understood and not result.changes and result.spec == opens


def test_use_bcc_instead(opens, catalog):
    new = refined("use BCC instead", opens, catalog)
    assert new.backend == "bcc"
    same_except(opens, new, "backend")
    assert refined("switch back to bpftrace", new, catalog).backend == "bpftrace"


def test_run_it_for_5_seconds(opens, catalog):
    assert R.run_request("run it for 5 seconds") == (5.0, True, "")
    assert R.run_request("for 2 minutes") == (120.0, False, "")
    result = R.apply("run it for 5 seconds", opens, catalog)
    assert result.duration == 5.0 and result.run and result.spec == opens
    assert R.refine("run it for 5 seconds", opens, catalog) == opens
    assert R.is_refinement("run it for 5 seconds", opens, catalog)


def test_count_by_process_instead(opens, catalog):
    new = refined("count them by process instead", opens, catalog)
    assert not new.print
    (agg,) = new.aggregates
    assert agg.func == "count" and [k.expr for k in agg.keys] == ["comm"]
    assert new.filter.comm is None  # counting by name under a one-name filter would give one row
    assert new.start is not None and not new.start.save
    assert "count()" in bt.render(new, catalog).text


def test_count_by_pid_keeps_the_process_filter(opens, catalog):
    new = refined("count by pid", opens, catalog)
    assert [k.expr for k in new.aggregates[0].keys] == ["pid", "comm"] and new.filter.comm == "cat"


def test_regroup_an_aggregate(counts, catalog):
    new = refined("by cpu instead", counts, catalog)
    assert new.aggregates[0].func == "count" and [k.expr for k in new.aggregates[0].keys] == ["cpu"]


def test_every_2_seconds(counts, catalog):
    new = refined("every 2 seconds", counts, catalog)
    assert new.interval_s == 2
    same_except(counts, new, "interval_s")
    assert "interval:s:2" in bt.render(new, catalog).text


def test_interval_needs_an_aggregate(opens, catalog):
    with pytest.raises(R.RefineError, match="aggregates"):
        R.refine("every 2 seconds", opens, catalog)


def test_at_99_hz(profile, catalog):
    new = refined("at 99 Hz", profile, catalog)
    assert [p.text for p in new.probes if p.kind == "profile"] == ["profile:hz:99"]
    assert "49 Hz" not in new.title


def test_rate_needs_a_profile(opens, catalog):
    with pytest.raises(R.RefineError, match="profile"):
        R.refine("at 99 Hz", opens, catalog)


def test_top_5(counts, catalog):
    new = refined("top 5", counts, catalog)
    assert new.aggregates[0].top == 5
    same_except(counts, new, "aggregates")


def test_top_needs_a_count(opens, catalog):
    with pytest.raises(R.RefineError, match="top N"):
        R.refine("top 5", opens, catalog)


# -- combinations, errors and the new-or-refine decision ------------------------------------------------------
def test_several_modifiers_at_once(counts, catalog):
    result = R.apply("count by cpu, every 2 seconds, top 3", counts, catalog)
    s = result.spec
    assert [k.expr for k in s.aggregates[0].keys] == ["cpu"] and s.interval_s == 2 and s.aggregates[0].top == 3
    assert len(result.changes) == 3


def test_only_failures(openat_calls, catalog):
    new = refined("only the failed ones", openat_calls, catalog)
    assert new.filter.expr == "args.ret < 0" and new.probes[0].name == "sys_exit_openat"


def test_all_processes_drops_the_filter(opens, catalog):
    new = refined("for all processes", opens, catalog)
    assert new.filter.comm is None and new.filter.pid is None


def test_nothing_understood(opens, catalog):
    with pytest.raises(R.RefineError):
        R.refine("the weather in Paris", opens, catalog)


@pytest.mark.parametrize("message", ["trace files opened by cat", "trace reads instead", "show tcp connections",
                                     "count syscalls by process", "profile the CPU at 99 Hz"])
def test_a_new_topic_plans_anew(message, opens, catalog):
    assert not R.is_refinement(message, opens, catalog)


@pytest.mark.parametrize("message", ["only for pid 1234", "just nginx", "make it a histogram", "in milliseconds",
                                     "add the return value", "use BCC instead", "run it for 5 seconds",
                                     "count by process instead", "every 2 seconds", "at 99 Hz", "top 5",
                                     "count them by process instead", "only errors please"])
def test_modifiers_refine(message, opens, catalog):
    assert R.is_refinement(message, opens, catalog)


def test_without_a_program_everything_is_new(catalog):
    assert not R.is_refinement("only for pid 1234", None, catalog)


def test_describe_changes(opens, catalog):
    new = R.refine("count by process instead", opens, catalog)
    words = R.describe_changes(opens, new)
    assert any("count by comm" in w for w in words) and any("columns" in w for w in words)


def test_offline_planner_refine_uses_this_module(opens, catalog):
    planner = offline.OfflinePlanner()
    new = planner.refine("only for pid 42", opens, PlanContext(catalog))
    assert new.filter.pid == 42
