"""Text from a user or a model never changes a program's structure (property tests, fixed seed).

Every string slot of a spec (title, rationale, labels, value names, filter.comm, expressions, aggregate
titles and units, probes, saved names) and every intent is fed hostile text: quotes, backslashes, newlines,
braces, comment markers, ``#``, ``"; system("id")``, printf conversions, NUL, lone surrogates (what
undecodable bytes become) and random Unicode. Each example is either refused with a clear message (a
pydantic ValidationError, a UsageError) or renders to a program with the same outline as the clean spec:
the same probes, blocks, statements and nested blocks, well-formed string literals only, the same
directives, and no unsafe call outside string literals.

The renderer tests use a small fake tracefs (so they need neither root nor a kernel); the planner tests
use the live catalog and are skipped without tracefs. ``derandomize=True`` makes every run (and CI) try
the same examples.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gpttrace_py import safety
from gpttrace_py.errors import GpttraceError
from gpttrace_py.kernel.catalog import Catalog
from gpttrace_py.kernel.features import Features
from gpttrace_py.kernel.tracefs import TracepointIndex
from gpttrace_py.lang.bpftrace_lexer import Outline, OutlineBlock, bpftrace_outline, bpftrace_tokens
from gpttrace_py.render import escape
from gpttrace_py.render.bpftrace import render
from gpttrace_py.spec import ProgramSpec

SETTINGS = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.function_scoped_fixture])

# -- a fake tracefs with a few real format files ---------------------------------------------------------
_HEADER = """\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;
"""
FORMATS = {
    ("syscalls", "sys_enter_openat"): """\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;

print fmt: "dfd: 0x%08lx, filename: 0x%08lx", ((unsigned long)(REC->dfd)), ((unsigned long)(REC->filename))
""",
    ("syscalls", "sys_exit_openat"): """\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;

print fmt: "0x%lx", REC->ret
""",
    ("sched", "sched_switch"): """\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;
\tfield:int prev_prio;\toffset:28;\tsize:4;\tsigned:1;
\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;
\tfield:char next_comm[16];\toffset:40;\tsize:16;\tsigned:0;
\tfield:pid_t next_pid;\toffset:56;\tsize:4;\tsigned:1;
\tfield:int next_prio;\toffset:60;\tsize:4;\tsigned:1;

print fmt: "prev_comm=%s prev_pid=%d", REC->prev_comm, REC->prev_pid
""",
    ("sock", "inet_sock_set_state"): """\tfield:const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:int oldstate;\toffset:16;\tsize:4;\tsigned:1;
\tfield:int newstate;\toffset:20;\tsize:4;\tsigned:1;
\tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;
\tfield:__u16 dport;\toffset:26;\tsize:2;\tsigned:0;
\tfield:__u8 saddr[4];\toffset:32;\tsize:4;\tsigned:0;

print fmt: "sport=%hu newstate=%s", REC->sport, \
__print_symbolic(REC->newstate, { 1, "TCP_ESTABLISHED" }, { 2, "TCP_SYN_SENT" }, { 7, "TCP_CLOSE" })
""",
    ("irq", "irq_handler_entry"): """\tfield:int irq;\toffset:8;\tsize:4;\tsigned:1;
\tfield:__data_loc char[] name;\toffset:12;\tsize:4;\tsigned:0;

print fmt: "irq=%d name=%s", REC->irq, __get_str(name)
""",
}


@pytest.fixture(scope="module")
def fake_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    root = tmp_path_factory.mktemp("tracefs")
    for (cat, name), body in FORMATS.items():
        d = root / "events" / cat / name
        d.mkdir(parents=True)
        (d / "format").write_text(f"name: {name}\nID: 1\nformat:\n{_HEADER}\n{body}")
    features = Features(root=True, tracefs=str(root), btf=True, kprobes=False, uprobes=True, bpftrace=None,
                        bpftrace_version=None, bcc_python=None, kernel="test", ringbuf=True, kfunc=False, lsm=False)
    catalog = Catalog(features)
    catalog.tracepoints = TracepointIndex(Path(root))
    return catalog


# -- hostile text ----------------------------------------------------------------------------------------
NASTY = [
    '"', "\\", "\\\\", '\\"', "\n", "\r", "\t", "{", "}", "{}", "*/", "/*", "//", "#", "#define x", "#include <x>",
    '"; system("id"); "', '"); system("rm -rf /"); printf("', "system(", "signal(9)", "override(0)", "}\nEND {",
    "%s", "%d%n", "%%", "\x00", "\x1b[31m", "\x7f", "\ud800", "\udcff", "\udfff", "$(id)", "`id`", "'", ";", "@x",
    "$x", "é", "\u2028", "\ufeff", "🙂", "args->filename", "BEGIN", "/pid == 1/", "?:", "\\x41", "\\101", " ",
]
nasty_text = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=4)), min_size=1, max_size=8).map("".join)
nasty_short = nasty_text.map(lambda s: s[:40])


def _literal_body(text: str) -> str:
    """Text as the body of a spec expression string literal (escaped, printable ASCII)."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")


EXPR_ALPHABET = ' ()"\\+-*/%<>=!&|^~?:,.[]#@${};abcdefgilmnoprstuxy_0123456789' + "\n\x00é"
hostile_exprs = st.one_of(
    nasty_text,
    st.text(alphabet=EXPR_ALPHABET, min_size=1, max_size=40),
    nasty_text.map(lambda s: f'comm == "{_literal_body(s)}"'),
    nasty_text.map(lambda s: f'str(args.filename) != "{_literal_body(s)}" && pid > 1'),
    nasty_text.map(lambda s: f'"{_literal_body(s)}"'),
    nasty_text.map(lambda s: f'pid == 1 ? "{_literal_body(s)}" : comm'),
    st.sampled_from(['pid; system("id")', 'system("id")', 'signal(9)', "override(1)", "pid } END { x", "pid /* */",
                     "pid // c", 'comm == "a" ) { system("x"); } if (1', "args.filename\n#define X", "nsecs)",
                     "@x", "$x", "pid == 1 /* */", "str(args.filename, 300)", "kstack(5)"]),
)

# -- clean specs, one per template shape, and their string slots ---------------------------------------------
EVENTS = {
    "title": "Files opened", "rationale": "openat sees every open",
    "probes": ["tracepoint:syscalls:sys_enter_openat"],
    "filter": {"comm": "cat", "expr": "args.flags != 0"},
    "print": [{"expr": "pid", "label": "PID"}, {"expr": "comm", "label": "COMM"},
              {"expr": "args.flags", "label": "FLAGS", "names": {0: "RDONLY", 1: "WRONLY"}},
              {"expr": "str(args.filename)", "label": "PATH"}],
}
AGGS = {
    "title": "TCP states", "rationale": "state changes",
    "probes": ["tracepoint:sock:inet_sock_set_state"],
    "aggregates": [
        {"func": "count", "keys": [{"expr": "args.newstate", "label": "STATE"}, {"expr": "comm", "label": "COMM"}],
         "title": "Changes by state", "unit": "changes", "name": "states"},
        {"func": "hist", "value": "args.sport", "title": "Ports", "unit": "port", "filter": 'comm != "sshd"'},
        {"func": "sum", "value": "args.dport", "keys": [{"expr": "args.dport", "names": {22: "ssh", 80: "http"}}],
         "unit": "bytes", "top": 5},
    ],
    "interval_s": 5,
}
PAIR = {
    "title": "open latency", "rationale": "enter to exit",
    "probes": ["tracepoint:syscalls:sys_exit_openat"],
    "start": {"probes": ["tracepoint:syscalls:sys_enter_openat"], "key": ["tid"],
              "save": [{"name": "path", "expr": "args.filename"}], "filter": {"comm": "cat", "expr": "pid > 1"}},
    "filter": {"expr": "args.ret >= 0"},
    "print": [{"expr": "start.path", "label": "PATH"}, {"expr": "args.ret", "label": "RET"},
              {"expr": "delta / 1000", "label": "LAT_US"}],
    "aggregates": [{"func": "avg", "value": "delta", "keys": [{"expr": "comm"}], "title": "Average", "unit": "ns"}],
}
BASES = {"events": EVENTS, "aggs": AGGS, "pair": PAIR}

TEXT_SLOTS = [  # (base, path) of every free-text slot
    ("events", ("title",)), ("events", ("rationale",)), ("events", ("filter", "comm")),
    ("events", ("print", 0, "label")), ("events", ("print", 3, "label")), ("events", ("print", 2, "names", 0)),
    ("events", ("print", 2, "names", 1)),
    ("aggs", ("title",)), ("aggs", ("aggregates", 0, "title")), ("aggs", ("aggregates", 0, "unit")),
    ("aggs", ("aggregates", 0, "keys", 0, "label")), ("aggs", ("aggregates", 1, "title")),
    ("aggs", ("aggregates", 1, "unit")), ("aggs", ("aggregates", 2, "keys", 0, "names", 22)),
    ("aggs", ("aggregates", 2, "unit")),
    ("pair", ("title",)), ("pair", ("start", "filter", "comm")), ("pair", ("print", 0, "label")),
    ("pair", ("aggregates", 0, "title")), ("pair", ("aggregates", 0, "unit")),
]
EXPR_SLOTS = [
    ("events", ("filter", "expr")), ("events", ("print", 0, "expr")), ("events", ("print", 3, "expr")),
    ("aggs", ("aggregates", 0, "keys", 1, "expr")), ("aggs", ("aggregates", 1, "value")),
    ("aggs", ("aggregates", 1, "filter")),
    ("pair", ("start", "key", 0)), ("pair", ("start", "save", 0, "expr")), ("pair", ("start", "filter", "expr")),
    ("pair", ("filter", "expr")), ("pair", ("print", 1, "expr")),
]
NAME_SLOTS = [("pair", ("start", "save", 0, "name")), ("aggs", ("aggregates", 0, "name"))]
PROBE_SLOTS = [("events", ("probes", 0)), ("pair", ("start", "probes", 0)), ("aggs", ("probes", 0))]


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


_clean_cache: dict[str, Outline] = {}


def clean_outline(base: str, catalog: Catalog) -> Outline:
    if base not in _clean_cache:
        text = render(ProgramSpec.model_validate(BASES[base]), catalog).text
        outline = bpftrace_outline(text)
        assert outline.ok, outline.errors
        assert not safety.unsafe_uses(text, "bpftrace")
        _clean_cache[base] = outline
    return _clean_cache[base]


def assert_same_structure(text: str, clean: Outline, probes_may_change: bool = False) -> Outline:
    outline = bpftrace_outline(text)
    assert outline.ok, (outline.errors, text)
    if probes_may_change:
        # Another probe may have other value names (fewer BEGIN/END statements); the probe blocks are the same.
        assert len(outline.blocks) == len(clean.blocks), text
        for got, want in zip(outline.blocks, clean.blocks, strict=True):
            if want.probes in (("BEGIN",), ("END",)):
                assert got.probes == want.probes and got.statements <= want.statements and got.nested == 0, text
            else:
                assert (got.statements, got.nested) == (want.statements, want.nested), text
    else:
        assert outline.shape == clean.shape, text
    assert outline.directives == clean.directives, text
    for lit in outline.strings:
        # what string_literal produces (\x1e and \x1f: the renderer's own column marks in printf formats)
        assert re.fullmatch(r'"(?:[ !#-\[\]-~]|\\[nt"\\]|\\x1[ef])*"', lit), lit
    assert not safety.unsafe_uses(text, "bpftrace"), text
    assert not {"system", "signal", "override"} & set(outline.calls), text
    code = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)
    code = re.sub(r"//[^\n]*", "", code)
    assert "system(" not in code
    return outline


def _render_or_refuse(data: dict[str, Any], catalog: Catalog) -> str | None:
    """The program text, or None when the spec was refused with a clear message."""
    try:
        spec = ProgramSpec.model_validate(data)
    except ValidationError as exc:
        assert exc.errors() and all(e.get("msg") for e in exc.errors())
        event("refused by the spec")
        return None
    try:
        text = render(spec, catalog).text
    except ValueError as exc:  # e.g. a probe bpftrace cannot attach: refused with a reason
        assert str(exc)
        event("refused by the renderer")
        return None
    event("rendered")
    return text


# -- the properties ----------------------------------------------------------------------------------------
@settings(max_examples=1500, **SETTINGS)
@given(slot=st.sampled_from(TEXT_SLOTS), text=nasty_text)
def test_text_slots_cannot_inject(fake_catalog: Catalog, slot: tuple[str, tuple[Any, ...]], text: str) -> None:
    base, path = slot
    if path[-1] in ("label", "unit", "comm") or isinstance(path[-1], int):
        text = text[:40]
    program = _render_or_refuse(_set(BASES[base], path, text), fake_catalog)
    if program is None:
        return
    assert_same_structure(program, clean_outline(base, fake_catalog))
    if path[-1] == "comm":  # the filter compares with exactly the escaped value
        assert f"comm == {escape.string_literal(text, 16)}" in program


@settings(max_examples=900, **SETTINGS)
@given(slot=st.sampled_from(EXPR_SLOTS), text=hostile_exprs)
def test_expression_slots_cannot_inject(fake_catalog: Catalog, slot: tuple[str, tuple[Any, ...]], text: str) -> None:
    base, path = slot
    program = _render_or_refuse(_set(BASES[base], path, text), fake_catalog)
    if program is None:
        return
    assert_same_structure(program, clean_outline(base, fake_catalog))


@settings(max_examples=300, **SETTINGS)
@given(slot=st.sampled_from(NAME_SLOTS),
       text=st.one_of(nasty_text, st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)))
def test_name_slots_cannot_inject(fake_catalog: Catalog, slot: tuple[str, tuple[Any, ...]], text: str) -> None:
    base, path = slot
    data = _set(BASES[base], path, text)
    if path[0] == "start":  # the printed column reads the saved value by its (new) name
        data = _set(data, ("print", 0, "expr"), f"start.{text}")
    program = _render_or_refuse(data, fake_catalog)
    if program is None:
        return
    assert_same_structure(program, clean_outline(base, fake_catalog))


VALID_PROBES = st.sampled_from([
    "tracepoint:sched:sched_switch", "tracepoint:irq:irq_handler_entry", "profile:hz:99", "interval:s:1",
    "software:page-faults:1", "uprobe:/bin/true:main", "uretprobe:libc:malloc", "usdt:/bin/true:p:q",
    "kfunc:vfs_read", "rawtracepoint:sched_switch", "hardware:cycles:100000", "xdp:eth0", "tc:lo:ingress",
])


@settings(max_examples=500, **SETTINGS)
@given(slot=st.sampled_from(PROBE_SLOTS),
       text=st.one_of(VALID_PROBES, st.from_regex(r"tracepoint:[a-z_]{1,12}:[a-z0-9_]{1,24}", fullmatch=True),
                      st.from_regex(r"u(ret)?probe:[A-Za-z0-9_./+@-]{1,30}:[A-Za-z_]\w{0,12}", fullmatch=True),
                      st.tuples(VALID_PROBES, nasty_text).map("".join), nasty_text.map("tracepoint:syscalls:".__add__),
                      nasty_text))
def test_probe_slots_cannot_inject(fake_catalog: Catalog, slot: tuple[str, tuple[Any, ...]], text: str) -> None:
    base, path = slot
    data = _set(BASES[base], path, text)
    program = _render_or_refuse(data, fake_catalog)
    if program is None:
        return
    spec = ProgramSpec.model_validate(data)
    outline = assert_same_structure(program, clean_outline(base, fake_catalog), probes_may_change=True)
    from gpttrace_py.render.bpftrace import probe_text

    special = {"BEGIN", "END", "interval:s:5"}
    expected = [probe_text(p, fake_catalog) for p in spec.all_probes]  # start probes come first
    assert [p for p in outline.probes if p not in special] == [p for p in expected if p not in special]


# -- intents through the planner (live catalog) -----------------------------------------------------------------
live = pytest.mark.skipif(not os.path.isdir("/sys/kernel/tracing/events"), reason="needs tracefs")

INTENT_FORMS = [
    "{}", "trace files opened by {}", "count syscalls by process {}", "trace openat by {}", "show exec of {}",
    "count openat() calls by process {} every 5 seconds", "histogram of read sizes for {}", "{} latency of openat",
    "trace files opened by pid 1 {}", 'trace files opened by "{}"',
]


@pytest.fixture(scope="module")
def live_planner():
    from gpttrace_py.planning.base import PlanContext
    from gpttrace_py.planning.offline import OfflinePlanner

    return OfflinePlanner(), PlanContext(Catalog())


@live
@settings(max_examples=400, **SETTINGS)
@given(form=st.sampled_from(INTENT_FORMS), text=nasty_text)
def test_intents_cannot_inject(live_planner: Any, form: str, text: str) -> None:
    from gpttrace_py.service.backends import choose_backend
    from gpttrace_py.service.backends import render as render_any

    planner, ctx = live_planner
    intent = form.format(text)
    try:
        spec = planner.plan(intent, ctx)
    except GpttraceError as exc:  # unmappable or unusable: refused with a message and exit 2
        assert exc.message and int(exc.code) == 2
        event("refused by the planner")
        return
    event("planned")
    try:
        backend = choose_backend(spec, "auto", ctx.catalog)
        program = render_any(spec, backend, ctx.catalog)
    except (GpttraceError, ValueError):
        return
    if program.backend != "bpftrace":
        assert not safety.unsafe_uses(program.text, program.backend)
        return
    outline = bpftrace_outline(program.text)
    assert outline.ok, (outline.errors, intent, program.text)
    assert not safety.unsafe_uses(program.text, "bpftrace"), intent
    from gpttrace_py.render.bpftrace import probe_text

    assert {probe_text(p, ctx.catalog) for p in spec.all_probes} <= set(outline.probes)
    assert set(outline.probes) - {probe_text(p, ctx.catalog) for p in spec.all_probes} <= {"BEGIN", "END"} | {
        f"interval:s:{spec.interval_s}"}
    if spec.filter.comm:
        assert f"comm == {escape.string_literal(spec.filter.comm, 16)}" in program.text


# -- the outline parser itself -----------------------------------------------------------------------------------
def test_outline_sees_injections():
    clean = bpftrace_outline('BEGIN { printf("a\\"b"); }\n'
                                    'tracepoint:a:b\n/comm == "x"/\n{ @c[comm] = count(); }')
    assert clean.ok and clean.shape == [(("BEGIN",), 1, 0), (("tracepoint:a:b",), 1, 0)]
    dirty = bpftrace_outline('BEGIN { printf("a"); system("id"); printf("b"); }')
    assert dirty.shape == [(("BEGIN",), 3, 0)] and "system" in dirty.calls
    broken = bpftrace_outline('BEGIN { printf("a\nb"); }')
    assert not broken.ok
    assert not bpftrace_outline('BEGIN { printf("\\q"); }').ok
    outline = bpftrace_outline("#!/usr/bin/env bpftrace\n#define S system\nBEGIN { }")
    assert outline.directives[1] == "#define S system"


@pytest.mark.kernel
def test_outline_agrees_with_bpftrace_parser(fake_catalog: Catalog):
    """bpftrace's own parser (-d prints its AST) sees the probes and string literals the outline sees."""
    bpftrace = shutil.which("bpftrace")
    if bpftrace is None:
        pytest.skip("needs bpftrace")
    evil = '"); system("id"); printf("{ } */ #x \\'
    data = _set(_set(EVENTS, ("title",), evil), ("print", 2, "names", 0), evil[:40])
    data = _set(data, ("filter", "comm"), 'a"b\\c')
    text = render(ProgramSpec.model_validate(data), fake_catalog).text
    text = text.replace("tracepoint:syscalls:sys_enter_openat\n", "BEGIN\n")  # parse only: no kernel lookups
    text = text.replace("args->filename", "0").replace("args->flags", "0")
    outline = bpftrace_outline(text)
    assert outline.ok
    proc = subprocess.run([bpftrace, "-d", "-"], input=text, capture_output=True, text=True, timeout=120)
    ast = proc.stdout.split("AST after: parser", 1)[1].split("AST after:", 1)[0]
    top = [ln.strip() for ln in ast.splitlines() if re.match(r"^ \S", ln)]
    assert top == outline.probes
    assert sum(1 for ln in ast.splitlines() if ln.strip().startswith("string: ")) == len(outline.strings)
    assert "system" not in " ".join(ln for ln in ast.splitlines() if "call:" in ln)


# -- the BCC renderer: Python around C ---------------------------------------------------------------------------
def _bcc_render():
    try:
        from gpttrace_py.render.bcc import program as bcc
    except ImportError:
        return None
    return bcc.render


def _bcc_parts(text: str) -> tuple[list[str], Outline]:
    """The kinds of the Python program's top-level statements, and the C text's tokens seen by the lexer."""
    import ast

    module = ast.parse(text)  # the Python around the C is still valid Python
    kinds = [type(node).__name__ for node in module.body]
    c_text = next((node.value.value for node in module.body if isinstance(node, ast.Assign)
                   and any(getattr(t, "id", "") == "BPF_TEXT" for t in node.targets)
                   and isinstance(node.value, ast.Constant)), "")
    tokens = bpftrace_tokens(c_text)  # C's comments, strings and punctuation lex the same way
    outline = Outline(strings=[t.text for t in tokens if t.kind in ("str", "char")],
                             errors=[t.text for t in tokens if t.kind in ("badstr", "badcomment")],
                             directives=[t.text for t in tokens if t.kind == "directive"])
    outline.blocks = [OutlineBlock((), None, sum(t.text == ";" for t in tokens if t.kind == "punct"),
                                   sum(t.text == "{" for t in tokens if t.kind == "punct"), ())]
    return kinds, outline


_bcc_clean: dict[str, tuple[list[str], Outline]] = {}


@pytest.mark.skipif(_bcc_render() is None, reason="no BCC renderer in this build")
@settings(max_examples=500, **SETTINGS)
@given(slot=st.sampled_from(TEXT_SLOTS + EXPR_SLOTS), text=st.one_of(nasty_text, hostile_exprs))
def test_bcc_program_cannot_be_injected(fake_catalog: Catalog, slot: tuple[str, tuple[Any, ...]], text: str) -> None:
    render_bcc = _bcc_render()
    assert render_bcc is not None
    base, path = slot
    if path[-1] in ("label", "unit", "comm") or isinstance(path[-1], int):
        text = text[:40]
    try:
        spec = ProgramSpec.model_validate(_set(BASES[base], path, text))
        program = render_bcc(spec, fake_catalog).text
    except (ValidationError, ValueError) as exc:
        assert str(exc)
        event("refused")
        return
    event("rendered")
    if base not in _bcc_clean:
        _bcc_clean[base] = _bcc_parts(render_bcc(ProgramSpec.model_validate(BASES[base]), fake_catalog).text)
    clean_kinds, clean_c = _bcc_clean[base]
    kinds, c = _bcc_parts(program)
    assert kinds == clean_kinds
    assert not c.errors and c.directives == clean_c.directives
    for lit in c.strings:
        assert re.fullmatch(r'"(?:[ !#-\[\]-~]|\\[nt"\\]|\\x1[ef])*"' + r"|'(?:[ -&(-\[\]-~]|\\[nt0'\\])'", lit), lit
    if (base, path) in TEXT_SLOTS:  # free text never adds C statements or blocks
        assert c.shape == clean_c.shape
    assert not safety.unsafe_uses(program, "bcc")
