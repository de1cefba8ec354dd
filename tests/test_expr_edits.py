"""Edits work on the parse tree: an expression written back parses to the same tree, and no edit or transform
ever changes a string literal (a filter on "/tmp/args.txt" once became one on "/tmp/start.txt")."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpttrace_py.kernel.catalog import Catalog
from gpttrace_py.planning import edits
from gpttrace_py.planning import refine as R
from gpttrace_py.spec import ProgramSpec
from gpttrace_py.spec import expr as E

# text that looks like the language: names a regex edit would have rewritten, operators, quotes, escapes
TRAPS = ["args.", "start.", "args->", "delta", "delta / 1000", "arg0", "&&", "||", "(", ")", '"', "\\", "\n", "\t",
         "comm", "/tmp/", ".txt", " ", "x"]
literal = st.lists(st.sampled_from(TRAPS) | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=4),
                   max_size=6).map("".join)
FIELDS = ["filename", "fd", "ret", "flags", "args", "start", "delta"]
leaf = st.one_of(
    st.integers(0, 2**40).map(E.Num),
    literal.map(E.Str),
    st.sampled_from(["pid", "tid", "comm", "delta", "arg0", "arg1", "retval", "nsecs"]).map(E.Builtin),
    st.sampled_from(FIELDS).map(E.Field),
    st.sampled_from(FIELDS).map(E.Saved),
)


def _extend(children: st.SearchStrategy[E.Node]) -> st.SearchStrategy[E.Node]:
    return st.one_of(
        st.tuples(st.sampled_from(sorted(E.BINARY_PRECEDENCE)), children, children).map(lambda t: E.Binary(*t)),
        st.tuples(st.sampled_from(["!", "-", "~"]), children).map(lambda t: E.Unary(*t)),
        st.tuples(children, children, children).map(lambda t: E.Ternary(*t)),
        st.tuples(children, st.integers(0, 9)).map(lambda t: E.Index(*t)),
        children.map(lambda c: E.Call("str", (c,))),
    )


trees = st.recursive(leaf, _extend, max_leaves=12)


def _literals(node: E.Node) -> Counter[str]:
    return Counter(n.value for n in E.walk(node) if isinstance(n, E.Str))


@settings(max_examples=300, deadline=None)
@given(trees)
def test_unparse_parses_back_to_the_same_tree(tree: E.Node) -> None:
    text = E.unparse(tree)
    if len(text) <= E.MAX_EXPR_LEN:
        assert E.parse(text) == tree, text


@settings(max_examples=300, deadline=None)
@given(trees, st.sets(st.sampled_from(FIELDS)), st.dictionaries(st.sampled_from(FIELDS), trees, max_size=2))
def test_no_transform_changes_a_string_literal(tree: E.Node, names: set[str], values: dict[str, E.Node]) -> None:
    text = E.unparse(tree)
    if len(text) > E.MAX_EXPR_LEN or any(len(E.unparse(v)) > 60 for v in values.values()):
        return
    before = _literals(tree)
    moved = E.parse(E.fields_to_saved(text, names))
    assert _literals(moved) == before
    assert not any(isinstance(n, E.Field) and n.name in names for n in E.walk(moved))
    assert _literals(E.parse(E.builtins_to_saved(text, {"arg0", "comm"}))) == before
    substituted = E.substitute_saved(text, {k: E.unparse(v) for k, v in values.items()})
    added: Counter[str] = Counter()
    for n in E.walk(tree):
        if isinstance(n, E.Saved) and n.name in values:
            added += _literals(values[n.name])  # the literals of what replaced start.X, as they were
    assert _literals(E.parse(substituted)) == before + added


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    c = Catalog()
    if not c.tracepoints.available or c.syscall_tracepoint("openat") is None:
        pytest.skip("needs tracefs with syscall tracepoints")
    return c


def _opens(literal_text: str, catalog: Catalog) -> ProgramSpec:
    """File opens filtered on a path: what "who opens <path>" plans."""
    return ProgramSpec.model_validate({
        "title": "File opens",
        "probes": ["tracepoint:syscalls:sys_enter_openat"],
        "filter": {"expr": f"str(args.filename) == {E.unparse(E.Str(literal_text))} && args.flags >= 0"},
        "print": [{"expr": "pid"}, {"expr": "comm"}, {"expr": "args.filename", "label": "PATH"}],
    })


def _spec_literals(spec: ProgramSpec) -> Counter[str]:
    out: Counter[str] = Counter()
    for text in spec.expressions() + spec.start_expressions():
        out += Counter(E.literals(text))
    return out


def test_adding_the_return_value_keeps_the_path_filter(catalog: Catalog) -> None:
    """ "who opens /tmp/args.txt", then "add the return value": the filter moved to the exit still reads the
    path saved at the entry, and still compares it with /tmp/args.txt."""
    spec = R.refine("add the return value", _opens("/tmp/args.txt", catalog), catalog)
    assert spec.start is not None and spec.filter.expr is not None
    assert E.literals(spec.filter.expr) == ["/tmp/args.txt"], spec.filter.expr
    assert E.saved_used(spec.filter.expr) == {"filename", "flags"} and not E.fields_used(spec.filter.expr)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(literal)
def test_no_edit_changes_a_string_literal(catalog: Catalog, text: str) -> None:
    if len(E.unparse(E.Str(text))) > 200:
        return
    spec = _opens(text, catalog)
    before = _spec_literals(spec)
    paired = R.refine("add the return value", spec, catalog)
    assert _spec_literals(paired) == before
    steps = [
        edits.add_condition(paired, 'comm == "a&&b"'),
        edits.add_condition(paired, "args.ret < 0"),
        edits.set_unit(paired, "ms"),
        edits.set_process(paired, comm="cat"),
        edits.to_aggregate(paired, "count", [{"expr": "comm"}]),
        edits.to_histogram(paired, "args.ret"),
    ]
    for new in steps:
        extra = Counter(["a&&b"]) if 'comm == "a&&b"' in (new.filter.expr or "") else Counter()
        assert _spec_literals(new) == before + extra, new.filter
    back = edits.without_result(paired, keep_data=False)
    if back is not None:
        assert _spec_literals(back) == before
