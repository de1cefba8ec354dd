"""The spec grammar: what it accepts, what it refuses, and how it round-trips."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gpttrace_py.spec import ProbeRef, ProgramSpec
from gpttrace_py.spec import expr as E


def spec(**kw):
    base = {"title": "t", "probes": ["tracepoint:syscalls:sys_enter_openat"], "print": [{"expr": "comm"}]}
    base.update(kw)
    return ProgramSpec.model_validate(base)


@pytest.mark.parametrize(
    "text",
    [
        "tracepoint:syscalls:sys_enter_openat",
        "t:sched:sched_switch",
        "uprobe:libc:malloc",
        "uretprobe:/usr/bin/bash:readline",
        "profile:hz:49",
        "interval:s:1",
        "software:page-faults:1",
        "kprobe:do_unlinkat",
        "kfunc:vfs_read",
        "BEGIN",
        "END",
        "xdp:lo",
        "tc:lo:ingress",
        "lsm:socket_connect",
    ],
)
def test_probe_forms_round_trip(text):
    p = ProbeRef.model_validate(text)
    assert ProbeRef.model_validate(p.text) == p
    assert p.kind in text or text.startswith("t:")


@pytest.mark.parametrize(
    "text",
    [
        "tracepoint:syscalls:sys_enter_openat;",
        'tracepoint:a:b { system("x") }',
        "uprobe:malloc",
        "profile:hz:100000",
        "software:fork-bomb:1",
        "nonsense:x",
        "tracepoint:a:b\nEND",
        "",
        "kprobe:a b",
    ],
)
def test_bad_probes_refused(text):
    with pytest.raises(ValidationError):
        spec(probes=[text])


@pytest.mark.parametrize(
    "text",
    [
        "args.filename",
        "args->filename",
        "str(args.filename)",
        'pid == 42 && comm == "nginx"',
        "delta / 1000",
        "args.ret < 0 ? 1 : 0",
        "ntop(args.daddr)",
        "args.argv[1]",
        "kstack",
        "ustack(5)",
        "(args.count + 1) * 2",
    ],
)
def test_expressions_accepted(text):
    E.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        'comm; system("id")',
        "args.x }",
        'system("x")',
        "@map",
        "$x",
        "str(",
        "a b",
        '"unterminated',
        "x" * 500,
        "args.",
        "ustack(comm)",
        '"a" "b"',
        "foo(1)",
        "args.f\n}",
    ],
)
def test_expressions_refused(text):
    with pytest.raises(E.ExprError):
        E.parse(text)


def test_spec_json_round_trip():
    s = spec(filter={"comm": "head"}, aggregates=[{"func": "hist", "value": "args.flags"}])
    again = ProgramSpec.model_validate_json(s.model_dump_json())
    assert again == s
    assert s.aggregates[0].name == "hist"


def test_pair_rules():
    with pytest.raises(ValidationError, match="delta"):
        spec(print=[{"expr": "delta"}])
    with pytest.raises(ValidationError, match=r"start\.path"):
        spec(start={"probes": ["tracepoint:syscalls:sys_enter_openat"]}, print=[{"expr": "start.path"}])
    ok = spec(
        start={"probes": ["tracepoint:syscalls:sys_enter_openat"], "save": [{"name": "path", "expr": "args.filename"}]},
        probes=["tracepoint:syscalls:sys_exit_openat"],
        print=[{"expr": "start.path"}, {"expr": "delta"}],
    )
    assert ok.start is not None


@pytest.mark.parametrize(
    "bad",
    [
        {"filter": {"comm": "x" * 16}},
        {"filter": {"comm": "a\nb"}},
        {"filter": {"pid": 0}},
        {"print": []},
        {"aggregates": [{"func": "sum"}]},
        {"aggregates": [{"func": "lhist", "value": "pid"}]},
        {"title": "a\x00b"},
        {"print": [{"expr": "comm", "label": "x\ny"}]},
    ],
)
def test_bad_specs_refused(bad):
    with pytest.raises(ValidationError):
        spec(**bad)


def test_strncmp_is_a_prefix_test_of_text_with_a_literal():
    from gpttrace_py.spec import expr as E

    node = E.parse('strncmp(str(args.filename), "/tmp/", 5) == 0')
    assert isinstance(node, E.Binary) and isinstance(node.left, E.Call) and node.left.fn == "strncmp"
    for bad in ('strncmp(args.filename, args.pathname, 5)', 'strncmp(args.filename, "/tmp/", pid)',
                'strncmp(args.filename, "/tmp/", 0)', 'strncmp(args.filename, "/tmp/", 65)',
                'strncmp(3, "/tmp/", 2)', 'strncmp(args.filename, "/tmp/")'):
        with pytest.raises(E.ExprError):
            E.parse(bad)
