"""Programs remembered by request: the second identical one-shot runs the first one's program without planning."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from gpttrace_py.render.program import AggregateLayout, ProgramLayout, RenderedProgram
from gpttrace_py.service import remember as program_cache
from gpttrace_py.service.options import PlannedProgram

kernel = pytest.mark.kernel


def _planned() -> PlannedProgram:
    layout = ProgramLayout(ready="Tracing x... Hit Ctrl-C to end.", header="PID COMM", columns=["PID", "COMM"],
                           titles={"Signals"},
                           aggregates={"sig": AggregateLayout(name="sig", func="count", title="Signals",
                                                              key_labels=["SIG"], value_label="COUNT",
                                                              key_names=[{9: "SIGKILL", 15: "SIGTERM"}, None])})
    program = RenderedProgram(backend="bpftrace", text="BEGIN { printf(\"x\\n\"); }\n", layout=layout)
    return PlannedProgram(program=program, spec={"title": "X", "rationale": "why", "probes": ["BEGIN"]},
                          source="offline", overload_hint="count instead", pid=None)


def test_an_entry_comes_back_as_it_was_stored(tmp_path: Path) -> None:
    cache = program_cache.ProgramCache(tmp_path / "programs")
    key = cache.key("count signals", "auto")
    cache.put(key, _planned())
    got = cache.get(key)
    assert got is not None
    assert got.program == _planned().program  # the layout too, with its integer keys for names
    assert got.spec == _planned().spec and got.overload_hint == "count instead"
    assert got.source == "offline, remembered"
    assert cache.get(cache.key("count signals", "bcc")) is None  # another backend asked: another entry
    assert cache.get(cache.key("count signals!", "auto")) is None
    cache.forget(key)
    assert cache.get(key) is None


def test_an_entry_others_could_have_written_is_not_used(tmp_path: Path) -> None:
    cache = program_cache.ProgramCache(tmp_path / "programs")
    key = cache.key("count signals", "auto")
    cache.put(key, _planned())
    (entry,) = (tmp_path / "programs").glob("*.json")
    entry.chmod(0o666)
    assert cache.get(key) is None
    entry.chmod(0o600)
    (tmp_path / "programs").chmod(0o777)
    assert cache.get(key) is None
    (tmp_path / "programs").chmod(0o700)
    assert cache.get(key) is not None
    entry.write_text("{not json")
    assert cache.get(key) is None


def test_the_key_follows_the_code_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = program_cache.ProgramCache()
    before = cache.key("trace opens", "auto")
    monkeypatch.setenv("GPTTRACE_BPFTRACE", "/opt/other/bpftrace")
    assert cache.key("trace opens", "auto") != before
    monkeypatch.delenv("GPTTRACE_BPFTRACE")
    assert cache.key("trace opens", "auto") == before
    files = {row[0] for row in before["code"][1:]}
    assert {"service/trace.py", "bpftrace/_base.bt.j2", "opensnoop.yaml"} <= files


def _opens_of(path: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli("-y", "--offline", *extra, "-c", f"cat {path}", "trace files opened by cat", env=env)


@kernel
def test_the_same_request_again_runs_without_planning(tmp_path: Path) -> None:
    target = tmp_path / f"cached-{uuid.uuid4().hex[:8]}.txt"
    target.write_text("hello\n")
    first = _opens_of(target)
    assert first.returncode == 0, first.stderr
    assert str(target) in first.stdout and "(planned from offline; backend bpftrace)" in first.stderr
    second = subprocess.run([sys.executable, "-X", "importtime", "-m", "gpttrace_py", "-y", "--offline", "-c",
                             f"cat {target}", "trace files opened by cat"], capture_output=True, text=True,
                            timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert second.returncode == 0, second.stderr
    assert str(target) in second.stdout
    assert "(planned from offline, remembered; backend bpftrace)" in second.stderr
    imported = {ln.rsplit("|", 1)[-1].strip() for ln in second.stderr.splitlines() if ln.startswith("import time:")}
    assert not {"pydantic", "jinja2", "yaml", "gpttrace_py.planning.offline"} & imported, "planned again"
    # the program and the spec shown are the first run's
    assert first.stderr.split("#!/usr/bin/env bpftrace", 1)[1].split("(planned from")[0] in second.stderr


@kernel
def test_a_remembered_program_that_no_longer_loads_is_planned_again(tmp_path: Path) -> None:
    target = tmp_path / "again.txt"
    target.write_text("x\n")
    assert _opens_of(target).returncode == 0
    (entry,) = Path(os.environ["GPTTRACE_HOME"], "cache", "programs").glob("*.json")
    data = json.loads(entry.read_text())
    data["program"]["text"] = data["program"]["text"].replace("sys_enter_openat", "sys_enter_nosuchcall")
    entry.write_text(json.dumps(data))
    r = _opens_of(target)
    assert r.returncode == 0, r.stderr
    assert "does not load any more" in r.stderr and "planning it again" in r.stderr
    assert str(target) in r.stdout
    assert "sys_enter_nosuchcall" not in entry.read_text()  # replaced by the program that loaded


@kernel
def test_no_cache_when_asked(tmp_path: Path) -> None:
    target = tmp_path / "nocache.txt"
    target.write_text("x\n")
    env = {"GPTTRACE_NO_CACHE": "1"}
    assert _opens_of(target, env=env).returncode == 0
    r = _opens_of(target, env=env)
    assert r.returncode == 0 and "remembered" not in r.stderr
    assert not list(Path(os.environ["GPTTRACE_HOME"], "cache").glob("programs/*.json"))


def test_every_corpus_layout_survives_a_round_trip(tmp_path: Path) -> None:
    """Each corpus entry rendered for each backend that takes it comes back from the cache field for field:
    the layout is stored by its dataclass fields, so a field added later (column_names was one) is not lost."""
    from gpttrace_py import corpus
    from gpttrace_py.errors import GpttraceError
    from gpttrace_py.kernel.catalog import Catalog
    from gpttrace_py.render.layout_data import from_data, to_data
    from gpttrace_py.service import backends as pipeline

    catalog = Catalog()
    cache = program_cache.ProgramCache(tmp_path / "programs")
    rendered = named = 0
    for entry in corpus.load():
        for backend in ("bpftrace", "bcc"):
            try:
                program = pipeline.render(entry.spec, pipeline.choose_backend(entry.spec, backend, catalog), catalog)
            except (GpttraceError, ValueError):
                continue
            rendered += 1
            named += bool(program.layout.column_names)
            again = from_data(RenderedProgram, json.loads(json.dumps(to_data(program))))
            assert again == program, f"{entry.id} ({backend})"
            key = cache.key(entry.id, backend)
            cache.put(key, PlannedProgram(program=program, spec={}, source="offline", overload_hint=""))
            got = cache.get(key)
            assert got is not None and got.program == program, f"{entry.id} ({backend}): not as stored"
    assert rendered >= 116 and named >= 1  # the strace-like entry names its syscalls through column_names


@kernel
def test_a_remembered_strace_still_names_its_syscalls() -> None:
    """`strace ls` asked a second time printed ^^59^^ where the first run printed execve: the remembered layout
    had lost the syscall names table (column_names)."""
    runs = [run_cli("-y", "--offline", "-c", "ls /", "strace ls", timeout=90) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr[-1500:]
        assert re.search(r"\bexecve\b", r.stdout) and "\x1e" not in r.stdout, r.stdout[-1500:]
    assert "remembered" in runs[1].stderr and "remembered" not in runs[0].stderr
