"""The bpftrace dialect: chosen from the detected version, read by the renderer and the runner."""

from __future__ import annotations

import os

import pytest

from gpttrace_py.kernel.catalog import Catalog
from gpttrace_py.render.dialect import dialect_for, installed, parse_version
from gpttrace_py.spec import ProgramSpec

needs_tracefs = pytest.mark.skipif(not os.path.isdir("/sys/kernel/tracing/events"), reason="needs tracefs")

OPENS = {
    "title": "opens by cat",
    "probes": ["tracepoint:syscalls:sys_enter_openat"],
    "filter": {"comm": "cat"},
    "print": [{"expr": "pid"}, {"expr": "args.filename", "label": "PATH"}],
}


def test_versions_are_parsed() -> None:
    assert parse_version("0.17.0") == (0, 17, 0)
    assert parse_version("v0.21.2") == (0, 21, 2)
    assert parse_version("0.20") == (0, 20, 0)
    assert parse_version(None) is None and parse_version("bpftrace") is None


def test_the_dialects_differ_as_documented() -> None:
    old, args_record, big_strings = dialect_for("0.17.0"), dialect_for("0.19.0"), dialect_for("0.21.2")
    assert old.tracepoint_args == "args->" and dialect_for("0.18.1").tracepoint_args == "args->"
    assert args_record.tracepoint_args == "args." and big_strings.tracepoint_args == "args."  # bpftrace #2578
    assert old.string_arg_max == 64 == args_record.string_arg_max
    assert big_strings.string_arg_max > old.string_arg_max  # strings off the BPF stack: bpftrace #3228
    assert old.end_wait_cut and not args_record.end_wait_cut  # measured on 0.17 only
    assert {"%s", "%ld"} <= old.printf_conversions
    assert dialect_for(None) == old  # unknown: the oldest gpttrace writes for


@needs_tracefs
def test_a_newer_bpftrace_reads_tracepoint_fields_with_a_dot() -> None:
    from gpttrace_py.render.bpftrace import render

    spec = ProgramSpec.model_validate(OPENS)
    catalog = Catalog()
    old = render(spec, catalog, dialect_for("0.17.0")).text
    new = render(spec, catalog, dialect_for("0.19.0")).text
    assert "str(args->filename)" in old and "args." not in old
    assert "str(args.filename)" in new and "args->" not in new
    assert new == old.replace("args->", "args.")  # nothing else changes


@needs_tracefs
def test_the_installed_bpftrace_is_the_default() -> None:
    from gpttrace_py.render.bpftrace import render

    spec = ProgramSpec.model_validate(OPENS)
    catalog = Catalog()
    assert render(spec, catalog).text == render(spec, catalog, installed()).text


def test_the_runner_marks_the_end_only_where_the_wait_is_cut() -> None:
    from gpttrace_py.run.bpftrace import END_MARKER_PREFIX, marked_program

    program = 'BEGIN { printf("x\\n"); }\n'
    text, marker = marked_program(program, dialect_for("0.17.0"))
    assert marker is not None and marker.startswith(END_MARKER_PREFIX) and marker in text
    assert marked_program(program, dialect_for("0.19.0")) == (program, None)
