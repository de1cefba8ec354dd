"""Rendering specs to bpftrace text: structure, escaping, and the template guard."""

from __future__ import annotations

import os
import re

import pytest

from gpttrace_py.kernel.catalog import Catalog
from gpttrace_py.render import escape
from gpttrace_py.render.bpftrace import render
from gpttrace_py.spec import ProgramSpec

pytestmark = pytest.mark.skipif(not os.path.isdir("/sys/kernel/tracing/events"), reason="needs tracefs")


@pytest.fixture(scope="module")
def catalog():
    return Catalog()


def test_events_program_shape(catalog):
    spec = ProgramSpec.model_validate(
        {
            "title": "opens by cat",
            "probes": ["tracepoint:syscalls:sys_enter_openat"],
            "filter": {"comm": "cat"},
            "print": [{"expr": "pid"}, {"expr": "comm"}, {"expr": "args.filename", "label": "PATH"}],
        }
    )
    prog = render(spec, catalog)
    assert 'tracepoint:syscalls:sys_enter_openat\n/comm == "cat"/' in prog.text
    assert "str(args->filename)" in prog.text  # a char* field is read as a string
    assert prog.layout.columns == ["PID", "COMM", "PATH"]
    assert prog.layout.ready.startswith("Tracing opens by cat")
    assert "END" not in prog.text  # nothing to print or clear at the end: no END probe to attach


def test_pair_program_uses_start_map(catalog):
    spec = ProgramSpec.model_validate(
        {
            "title": "read latency",
            "start": {"probes": ["tracepoint:syscalls:sys_enter_read"]},
            "probes": ["tracepoint:syscalls:sys_exit_read"],
            "aggregates": [{"func": "hist", "value": "delta / 1000", "unit": "us"}],
        }
    )
    text = render(spec, catalog).text
    assert "@start_ts[tid] = nsecs;" in text
    assert "$delta = nsecs - @start_ts[tid];" in text
    assert "@hist = hist($delta / 1000);" in text
    assert "clear(@start_ts);" in text


def test_symbolic_names_from_format(catalog):
    spec = ProgramSpec.model_validate(
        {
            "title": "tcp states",
            "probes": ["tracepoint:sock:inet_sock_set_state"],
            "print": [{"expr": "args.newstate", "label": "NEW"}, {"expr": "args.daddr"}],
        }
    )
    text = render(spec, catalog).text
    assert '"TCP_ESTABLISHED"' in text
    assert "ntop(args->daddr)" in text


def test_data_loc_strings_use_str(catalog):
    spec = ProgramSpec.model_validate(
        {
            "title": "irqs",
            "probes": ["tracepoint:irq:irq_handler_entry"],
            "aggregates": [{"func": "count", "keys": [{"expr": "args.name"}]}],
        }
    )
    assert "@count[str(args->name)] = count();" in render(spec, catalog).text


def test_hostile_text_is_escaped(catalog):
    evil = 'x"); system("id"); printf("'
    spec = ProgramSpec.model_validate(
        {
            "title": evil + " */ // ",
            "rationale": "#!/bin/sh",
            "probes": ["tracepoint:syscalls:sys_enter_openat"],
            "filter": {"comm": 'a"b\\c'},
            "print": [{"expr": '"' + 'q\\"uote' + '"', "label": evil[:40]}],
        }
    )
    text = render(spec, catalog).text
    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)  # drop string literals
    code = re.sub(r"//[^\n]*", "", code)
    assert "system(" not in code
    assert 'comm == "a\\"b\\\\c"' in text


def test_template_refuses_raw_strings():
    env = escape.environment("bpftrace")
    tpl = env.from_string("{{ value }}")
    with pytest.raises(escape.RawTextInTemplate):
        tpl.render(value="raw; system()")
    assert tpl.render(value=escape.string_literal('a"b')) == '"a\\"b"'


def test_string_literal_escapes():
    assert escape.string_literal('a"\\\n\t\x00é') == '"a\\"\\\\\\n\\t??"'


def test_integers_print_as_64_bit_and_big_name_tables_are_named_by_the_runner():
    """bpftrace 0.17's %d prints the low 32 bits of a value (5000000000 as 705032704): integer columns use %ld.
    raw_syscalls' id has ~450 names, too many to load into the program: the runner puts them in."""
    from gpttrace_py.kernel.catalog import Catalog
    from gpttrace_py.render.bpftrace import render
    from gpttrace_py.spec import ProgramSpec

    spec = ProgramSpec.model_validate({
        "title": "t", "probes": ["tracepoint:raw_syscalls:sys_exit"],
        "print": [{"expr": "pid"}, {"expr": "args.id", "label": "SYSCALL"}, {"expr": "args.ret", "label": "RET"}],
    })
    program = render(spec, Catalog())
    # columns separated by \x1f (the runner splits on it and pads each column to its width)
    assert 'printf("%ld\\x1f\\x1e%ld\\x1e\\x1f%ld\\n", pid, args->id, args->ret);' in program.text
    table, _ = program.layout.column_names[0]
    assert table[0] == "read" and program.layout.widths == [7, 16, 0] and program.layout.named_at == [1]
    assert program.layout.text("42\x1f\x1e0\x1e\x1f5") == "42      read             5"
    assert program.layout.text("42\x1f\x1e99999\x1e\x1f5") == "42      99999            5"  # no name: the number
    assert program.layout.parse_event("42\x1f\x1e0\x1e\x1f5")["fields"] == {"PID": 42, "SYSCALL": "read", "RET": 5}


def test_no_program_keeps_a_start_value_it_never_reads(catalog):
    """A failed exec counted by process read its path at the start and copied it into $s_path for nothing:
    every variable a rendered program assigns is read, and a start value is saved only when the end uses it."""
    from gpttrace_py import corpus
    from gpttrace_py.planning import edits
    from gpttrace_py.render.bcc import program as bcc
    from gpttrace_py.render.bcc.ctext import c_text_of
    from gpttrace_py.spec import expr as E

    checked = 0
    for entry in corpus.load():
        if not entry.spec.start or not entry.spec.start.save:
            continue
        for spec in (entry.spec, edits.to_aggregate(entry.spec, "count", [{"expr": "comm"}])):
            text = render(spec, catalog).text
            for var in set(re.findall(r"(\$\w+) = ", text)):
                assert len(re.findall(re.escape(var) + r"\b", text)) > 1, f"{entry.id}: {var} is never read"
            read = set().union(*(E.saved_used(x) for x in spec.expressions()))
            for s in spec.start.save:
                assert (f"@start_{s.name}[" in text) == (s.name in read), f"{entry.id}: start.{s.name}"
            checked += 1
    assert checked >= 10
    failed_exec = next(e for e in corpus.load() if e.id == "exec-failures")
    text = render(failed_exec.spec, catalog).text
    assert "str($s_path)" in text.split("sys_exit_execve", 2)[2]  # the listing prints the path it saved
    counted = edits.to_aggregate(failed_exec.spec, "count", [{"expr": "comm"}])
    assert "path" not in c_text_of(bcc.render(counted, catalog).text)  # nor does BCC copy it
