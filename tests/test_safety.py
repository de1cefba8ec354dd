"""Safety: unsafe capabilities are refused on the rendered program, the program is shown and confirmed,
privileges and the environment are checked up front, and runs are bounded (time, maps, output rate)."""

from __future__ import annotations

import errno
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import GPTTRACE, kernel_ready, run_cli

from gpttrace_py import safety
from gpttrace_py.errors import ExitCode, GpttraceError, UsageError
from gpttrace_py.render.program import AggregateLayout, ProgramLayout, RenderedProgram
from gpttrace_py.run import RunOutcome
from gpttrace_py.run.records import Printer
from gpttrace_py.service import backends
from gpttrace_py.service import options as trace_options
from gpttrace_py.service import trace as service
from gpttrace_py.service.options import TraceOptions
from gpttrace_py.service.trace import FixedPlanner
from gpttrace_py.spec import ProgramSpec
from gpttrace_py.ui import UI

kernel = pytest.mark.kernel
SPEC = ProgramSpec.model_validate({
    "title": "Syscalls by process", "probes": ["tracepoint:raw_syscalls:sys_enter"],
    "aggregates": [{"func": "count", "keys": [{"expr": "comm", "label": "COMM"}], "title": "Syscalls by process"}],
})


# -- finding unsafe calls in program text ------------------------------------------------------------------
@pytest.mark.parametrize("text,found", [
    ('BEGIN { system("id"); }', ["system"]),
    ("tracepoint:a:b { signal(9); }", ["signal"]),
    ("kprobe:f { override(-1); }", ["override"]),
    ('BEGIN { system ("id"); signal (\n"KILL"); }', ["system", "signal"]),
    ("#!/usr/bin/env -S bpftrace --unsafe\nBEGIN { }", ["--unsafe"]),
    ("#define RUN system\nBEGIN { RUN(\"id\"); }", ["#define"]),
    ('BEGIN { printf("system(\\"id\\") signal(9)"); } // system("id")\n/* override(1) */', []),
    ("BEGIN { @system = count(); $signal = 1; }", []),
    ("uprobe:/lib/libc.so.6:system { @[comm] = count(); }", []),
    ('#!/usr/bin/env bpftrace\n#include <linux/sched.h>\nBEGIN { printf("x\\n"); }', []),
])
def test_bpftrace_unsafe_calls_found_outside_strings_and_comments(text: str, found: list[str]) -> None:
    assert [name for name, _ in safety.unsafe_uses(text, "bpftrace")] == found


@pytest.mark.parametrize("text,found", [
    ("int f(struct pt_regs *ctx) { bpf_override_return(ctx, -1); return 0; }", "bpf_override_return"),
    ("int f(void *ctx) { bpf_send_signal(9); return 0; }", "bpf_send_signal"),
    ("int f(void *ctx) { bpf_probe_write_user(p, b, 4); return 0; }", "bpf_probe_write_user"),
    ("int f(struct xdp_md *ctx) { return XDP_DROP; }", "XDP_DROP"),
    ('BPF_TEXT = r"""\n#define H bpf_send_sig##nal\n"""', "##"),
    ('BPF_TEXT = r"""\n#define H(x) \\\n   x##_signal\n"""', "##"),
    ("import os\nos.system('id')", "os.system"),
    ("import subprocess\nsubprocess.run(['id'])", "subprocess"),
])
def test_bcc_unsafe_helpers_found(text: str, found: str) -> None:
    assert found in [name for name, _ in safety.unsafe_uses(text, "bcc")]


def test_bcc_safe_names_are_not_flagged() -> None:
    text = ('XDP_FLAGS_UPDATE_IF_NOEXIST = 1\nBPF_TEXT = r"""\nint f(struct xdp_md *ctx) { return XDP_PASS; }\n'
            '// and ## here\n#define NET16(x) __builtin_bswap16(x)\n"""\n'
            "b.attach_xdp(dev, fn, 0)\n"
            "# a title with ## in it\n")
    assert safety.unsafe_uses(text, "bcc") == []


def test_check_refuses_without_unsafe_and_names_the_risk() -> None:
    with pytest.raises(GpttraceError) as info:
        safety.check('BEGIN { system("id"); }', "bpftrace", allow_unsafe=False)
    assert info.value.code == ExitCode.USAGE
    assert "system() runs a shell command" in info.value.message and "--unsafe" in (info.value.hint or "")
    assert safety.check('BEGIN { system("id"); }', "bpftrace", allow_unsafe=True)[0][0] == "system"


# -- the pipeline: checked on the rendered text, shown, confirmed ---------------------------------------------
class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class RecordingUI(UI):
    """A UI at a terminal that records what is shown and asked, and answers with ``answer``."""

    def __init__(self, answer: bool = False) -> None:
        super().__init__(stdout=io.StringIO(), stderr=FakeTTY(), stdin=FakeTTY())
        self.answer = answer
        self.log: list[tuple[str, str]] = []

    @property
    def color(self) -> bool:
        return False

    def show_program(self, program: RenderedProgram, spec: ProgramSpec, source: str = "") -> None:
        self.log.append(("shown", program.text))
        super().show_program(program, spec, source)

    def confirm(self, question: str) -> bool:
        self.log.append(("asked", question))
        return self.answer


@pytest.fixture
def no_preflight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safety, "preflight", lambda backend="auto": None)


@pytest.fixture
def fake_run(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Replace loading with a recorder: the calls' (program, options)."""
    calls: list[Any] = []

    def run_program(program: RenderedProgram, options: Any, write: Any, warn: Any) -> RunOutcome:
        calls.append((program, options))
        return RunOutcome(attached=True, events=0, lost=0, returncode=0)

    monkeypatch.setattr("gpttrace_py.run.run_program", run_program)
    return calls


@pytest.fixture
def unsafe_render(monkeypatch: pytest.MonkeyPatch) -> str:
    """The renderer produces a program that calls system(): as if a template or a model slipped it in."""
    real = backends.render

    def render(spec: ProgramSpec, backend: str, catalog: Any) -> RenderedProgram:
        program = real(spec, backend, catalog)
        text = program.text.replace("END\n{\n", 'END\n{\n\tsystem("touch /tmp/gpttrace-pwned");\n', 1)
        assert "system(" in text
        return RenderedProgram(program.backend, text, program.layout)

    monkeypatch.setattr(backends, "render", render)
    return "system"


def _trace(ui: UI, **options: Any) -> trace_options.TraceResult:
    opts = TraceOptions(retries=0, duration=1, **options)
    return service.trace(SPEC.title, FixedPlanner(SPEC), opts, ui, spec=SPEC)


@pytest.mark.usefixtures("no_preflight")
def test_unsafe_program_is_refused_even_with_yes(unsafe_render: str, fake_run: list[Any]) -> None:
    ui = RecordingUI(answer=True)
    with pytest.raises(GpttraceError) as info:
        _trace(ui, yes=True)
    assert info.value.code == ExitCode.USAGE and "system()" in info.value.message
    assert fake_run == [] and not any(kind == "asked" for kind, _ in ui.log)


@pytest.mark.usefixtures("no_preflight")
def test_unsafe_confirmation_names_the_risk_and_defaults_to_no(unsafe_render: str, fake_run: list[Any]) -> None:
    ui = RecordingUI(answer=False)
    result = _trace(ui, unsafe=True)
    assert result.code == ExitCode.OK and fake_run == []
    kinds = [k for k, _ in ui.log]
    assert kinds == ["shown", "asked"]  # shown before it is asked about
    question = ui.log[1][1]
    assert "CHANGES THE SYSTEM" in question and "runs a shell command" in question
    assert "Not run." in ui.stderr.getvalue()


@pytest.mark.usefixtures("no_preflight")
def test_unsafe_with_yes_warns_and_passes_unsafe_to_the_runner(unsafe_render: str, fake_run: list[Any]) -> None:
    ui = RecordingUI()
    _trace(ui, unsafe=True, yes=True)
    assert len(fake_run) == 1 and fake_run[0][1].unsafe is True
    assert "CHANGES THE SYSTEM" in ui.stderr.getvalue() and "runs a shell command" in ui.stderr.getvalue()


@pytest.mark.usefixtures("no_preflight")
def test_safe_program_is_shown_and_needs_a_yes(fake_run: list[Any]) -> None:
    ui = RecordingUI(answer=False)
    _trace(ui)
    assert [k for k, _ in ui.log] == ["shown", "asked"] and fake_run == []
    assert "tracepoint:raw_syscalls:sys_enter" in ui.stderr.getvalue()
    ui = RecordingUI(answer=True)
    _trace(ui)
    assert len(fake_run) == 1 and fake_run[0][1].unsafe is False


@pytest.mark.usefixtures("no_preflight")
def test_yes_still_shows_the_program_first(monkeypatch: pytest.MonkeyPatch) -> None:
    ui = RecordingUI()
    seen: list[list[str]] = []

    def run_program(program: RenderedProgram, options: Any, write: Any, warn: Any) -> RunOutcome:
        seen.append([k for k, _ in ui.log])
        return RunOutcome(attached=True, events=0, lost=0, returncode=0)

    monkeypatch.setattr("gpttrace_py.run.run_program", run_program)
    _trace(ui, yes=True)
    assert seen == [["shown"]]  # shown, not asked, then run


@pytest.mark.usefixtures("no_preflight")
def test_confirmation_default_is_no(fake_run: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))  # the user just presses Enter
    ui = UI(stdout=io.StringIO(), stderr=FakeTTY(), stdin=FakeTTY())
    _trace(ui)
    assert fake_run == [] and "Not run." in ui.stderr.getvalue()


@pytest.mark.usefixtures("no_preflight")
def test_no_terminal_and_no_yes_is_a_usage_error(fake_run: list[Any]) -> None:
    ui = UI(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO())
    with pytest.raises(UsageError):
        _trace(ui)
    assert fake_run == [] and "raw_syscalls" in ui.stderr.getvalue()  # still shown


def test_bpftrace_runner_passes_unsafe_and_bounds_maps(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpttrace_py.run import RunOptions
    from gpttrace_py.run import bpftrace as run_bt

    seen: dict[str, Any] = {}

    def fake_tracer(argv: list[str], printer: Any, options: Any, parse: Any, warn: Any, env: Any = None,
                    end_marker: str | None = None) -> Any:
        seen.update(argv=argv, env=env, end_marker=end_marker)
        return RunOutcome(attached=True, events=0, lost=0, returncode=0)

    monkeypatch.setattr(run_bt, "run_tracer", fake_tracer)
    monkeypatch.setattr(run_bt, "find_bpftrace", lambda: "/usr/bin/bpftrace")
    monkeypatch.delenv("BPFTRACE_MAP_KEYS_MAX", raising=False)
    program = RenderedProgram("bpftrace", "BEGIN { exit(); }", ProgramLayout())
    run_bt.run(program, RunOptions(), print, print)
    assert "--unsafe" not in seen["argv"] and seen["env"]["BPFTRACE_MAP_KEYS_MAX"] == "4096"
    assert seen["end_marker"].startswith(run_bt.END_MARKER_PREFIX)  # the program it runs prints it in END
    run_bt.run(program, RunOptions(unsafe=True), print, print)
    assert "--unsafe" in seen["argv"]
    monkeypatch.setenv("BPFTRACE_MAP_KEYS_MAX", "100")
    run_bt.run(program, RunOptions(), print, print)
    assert seen["env"]["BPFTRACE_MAP_KEYS_MAX"] == "100"


# -- privileges ----------------------------------------------------------------------------------------------
def test_capabilities_are_read_from_proc_status() -> None:
    assert safety.effective_capabilities("Name:\tx\nCapEff:\t000001ffffffffff\n") == 0x1FFFFFFFFFF
    assert safety.effective_capabilities("Name:\tx\n") is None
    assert safety.privilege_problem(euid=1000, caps=0)[0].startswith("loading eBPF programs needs root")
    assert "CAP_SYS_ADMIN" in safety.privilege_problem(euid=0, caps=0)[0]
    assert safety.privilege_problem(euid=0, caps=1 << safety.CAP_SYS_ADMIN) is None
    assert safety.privilege_problem(euid=0, caps=1 << safety.CAP_BPF | 1 << safety.CAP_PERFMON) is None
    assert safety.privilege_problem(euid=0, caps=1 << safety.CAP_BPF) is not None


def _no_traceback(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert 1 <= len(lines) <= 3 and lines[0].startswith("gpttrace: "), r.stderr


needs_setpriv = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                   reason="needs root and setpriv")


@needs_setpriv
def test_root_without_capabilities_is_refused_up_front() -> None:
    r = subprocess.run(["setpriv", "--bounding-set", "-all", "--inh-caps", "-all", "--reuid", "0", GPTTRACE, "-y",
                        "--offline", "count syscalls by process"], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    _no_traceback(r)
    assert "without the capabilities" in r.stderr and "CAP_SYS_ADMIN" in r.stderr


@needs_setpriv
def test_not_root_is_refused_up_front(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    env = {**os.environ, "GPTTRACE_HOME": str(tmp_path)}
    r = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", GPTTRACE, "-y",
                        "--offline", "count syscalls by process"], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL, env=env, cwd=tmp_path)
    if "Permission denied" in r.stderr and "gpttrace:" not in r.stderr:
        pytest.skip("the venv is not readable by nobody here")
    assert r.returncode == 2, r.stderr
    _no_traceback(r)
    assert "needs root" in r.stderr and "sudo" in r.stderr


# -- bad environments: one line, a fix, an exit code, no traceback ----------------------------------------------
@pytest.mark.skipif(os.geteuid() != 0, reason="the privilege check comes first")
@pytest.mark.parametrize("env,args,expect", [
    ({"GPTTRACE_BPFTRACE": "/nonexistent"}, ["--backend", "bpftrace"],
     "GPTTRACE_BPFTRACE=/nonexistent is not an executable file"),
    ({"GPTTRACE_BPFTRACE": "/nonexistent", "GPTTRACE_BCC_PYTHON": "/nonexistent"}, [],
     "neither bpftrace nor BCC can be used here"),
    ({"GPTTRACE_BCC_PYTHON": "/nonexistent"}, ["--backend", "bcc"], "GPTTRACE_BCC_PYTHON=/nonexistent does not exist"),
    ({"GPTTRACE_TRACEFS": "/nonexistent"}, [], "GPTTRACE_TRACEFS=/nonexistent is not a tracefs mount"),
    ({"GPTTRACE_MAX_SECONDS": "soon"}, [], "GPTTRACE_MAX_SECONDS=soon is not a number"),
])
def test_bad_environment_messages(env: dict[str, str], args: list[str], expect: str) -> None:
    if "GPTTRACE_MAX_SECONDS" in env and kernel_ready():
        pytest.skip(kernel_ready())
    r = run_cli("-y", "--offline", *args, "count sched:sched_switch by cpu", env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    _no_traceback(r)
    assert expect in r.stderr


@kernel
def test_probe_gone_between_planning_and_loading(no_preflight: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalog saw the tracepoint when planning; the kernel does not have it when loading."""
    spec = ProgramSpec.model_validate({
        "title": "gone", "probes": ["tracepoint:syscalls:sys_enter_gpttrace_gone"],
        "aggregates": [{"func": "count", "keys": [{"expr": "comm"}]}]})
    monkeypatch.setattr(service, "_catalog_failure", lambda spec, catalog, backend: None)
    ui = UI(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO())
    with pytest.raises(GpttraceError) as info:
        service.trace("gone", FixedPlanner(spec), TraceOptions(yes=True, retries=0, duration=1), ui, spec=spec)
    assert info.value.code == ExitCode.TRACE_FAILED
    assert "sys_enter_gpttrace_gone" in info.value.message and "not in this kernel" in (info.value.hint or "")


def test_btf_absent_says_so(no_preflight: None) -> None:
    import dataclasses

    from gpttrace_py.kernel.catalog import Catalog
    from gpttrace_py.kernel.features import detect

    catalog = Catalog(dataclasses.replace(detect(), btf=False, kfunc=None))
    spec = ProgramSpec.model_validate({"title": "reads", "probes": ["kfunc:vfs_read"],
                                       "aggregates": [{"func": "count", "keys": [{"expr": "comm"}]}]})
    ui = UI(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO())
    with pytest.raises(GpttraceError) as info:
        service.trace("reads", FixedPlanner(spec), TraceOptions(yes=True, retries=0), ui, catalog, spec=spec)
    assert info.value.code == ExitCode.TRACE_FAILED
    assert "BTF" in info.value.message and "CONFIG_DEBUG_INFO_BTF" in (info.value.hint or "")


# -- run time ------------------------------------------------------------------------------------------------
def test_max_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    term = UI(stdout=io.StringIO(), stderr=FakeTTY(), stdin=FakeTTY())
    pipe = UI(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO())
    monkeypatch.delenv("GPTTRACE_MAX_SECONDS", raising=False)
    assert trace_options.max_seconds(TraceOptions(), pipe) == trace_options.DEFAULT_NONINTERACTIVE_SECONDS
    assert trace_options.max_seconds(TraceOptions(), term) is None
    assert trace_options.max_seconds(TraceOptions(max_seconds=3), term) == 3
    assert trace_options.max_seconds(TraceOptions(max_seconds=0), pipe) is None
    monkeypatch.setenv("GPTTRACE_MAX_SECONDS", "7.5")
    assert trace_options.max_seconds(TraceOptions(), pipe) == 7.5
    assert trace_options.max_seconds(TraceOptions(max_seconds=2), pipe) == 2
    monkeypatch.setenv("GPTTRACE_MAX_SECONDS", "0")
    assert trace_options.max_seconds(TraceOptions(), pipe) is None
    monkeypatch.setenv("GPTTRACE_MAX_SECONDS", "x")
    with pytest.raises(UsageError):
        trace_options.max_seconds(TraceOptions(), pipe)


# -- output rate, lost events, the session log (the Printer, with a fake clock) --------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _printer(tty: bool) -> tuple[Printer, list[str], list[str], Clock]:
    out: list[str] = []
    err: list[str] = []
    clock = Clock()
    p = Printer(ProgramLayout(ready="ready"), out.append, warn=err.append, max_rate=100, drop_over_rate=tty,
                overload_hint='aggregate, e.g. gpttrace "count read() calls by process"', clock=clock)
    return p, out, err, clock


def _flood(p: Printer, clock: Clock, seconds: int, per_second: int) -> None:
    for s in range(seconds):
        for i in range(per_second):
            clock.now = s + i / per_second
            p.handle({"type": "printf", "data": f"event {s} {i}\n"})


def test_flood_on_a_terminal_is_capped_warned_once_and_counted() -> None:
    p, out, err, clock = _printer(tty=True)
    _flood(p, clock, seconds=6, per_second=1000)
    p.finish()
    assert p.events == 6000
    assert [w for w in err if "events/s" in w] == [err[0]]  # once
    assert "more than a terminal can show" in err[0] and "count read() calls by process" in err[1]
    # a burst shows at most 10 x 100 a second; after two seconds it is a flood: at most 100 a second
    assert len(out) <= 2 * 1000 + 1000 + 4 * 100 and len(out) + p.dropped == 6000
    assert p.dropped > 3000 and any(f"{p.dropped} of 6000 events were not shown" in w for w in err)


def test_flood_to_a_file_keeps_every_line() -> None:
    p, out, err, clock = _printer(tty=False)
    _flood(p, clock, seconds=5, per_second=1000)
    p.finish()
    assert len(out) == 5000 and p.dropped == 0
    assert len([w for w in err if "events/s" in w]) == 1 and "every one is written" in err[0]


def test_bursts_below_the_sustained_rate_are_not_dropped() -> None:
    p, out, err, clock = _printer(tty=True)
    for s in range(0, 10, 2):  # 500 events in one second, then a quiet second
        for i in range(500):
            clock.now = s + i / 500
            p.handle({"type": "printf", "data": "x\n"})
    assert len(out) == 2500 and not err


def test_lost_events_are_coalesced_and_totalled() -> None:
    p, _, err, clock = _printer(tty=True)
    for i in range(100):  # bpftrace reports losses many times a second
        clock.now = i / 10
        p.handle({"type": "lost_events", "data": {"events": 10}})
    p.finish()
    assert p.lost == 1000
    assert 2 <= len(err) <= 4 and "events lost" in err[0] and "1000 events lost in all" in err[-1]


def test_session_log_receives_events_aggregates_and_losses() -> None:
    logged: list[tuple[str, Any]] = []
    layout = ProgramLayout(ready="ready", titles={"Syscalls"}, aggregates={
        "c": AggregateLayout("c", "count", "Syscalls", ["COMM"], "COUNT")})
    p = Printer(layout, lambda s: None, log_line=lambda line: logged.append(("line", line)),
                log_record=lambda kind, **d: logged.append((kind, d)))
    p.handle({"type": "printf", "data": "ready\n"})
    p.handle({"type": "printf", "data": "event one\n"})  # one printf record is one line
    p.handle({"type": "lost_events", "data": {"events": 3}})
    p.handle({"type": "map", "data": {"@c": {"bash": 3}}})
    assert ("line", "event one") in logged and ("lost_events", {"events": 3}) in logged
    agg = next(d for k, d in logged if k == "aggregate")
    assert agg["name"] == "c" and agg["data"] == {"bash": 3} and agg["keys"] == ["COMM"]


def test_broken_session_log_warns_once_and_tracing_goes_on() -> None:
    from gpttrace_py.run.session import SessionLogSink

    class FullDisk:
        path = "/full/session.jsonl"

        def event(self, kind: str, **data: Any) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    warnings: list[str] = []
    sink = SessionLogSink(FullDisk(), warnings.append)
    for _ in range(5):
        sink.call("event", "x", a=1)
        sink.call("output", "line")
    assert len(warnings) == 2 and "cannot write the session log (/full/session.jsonl)" in warnings[0]


def test_real_session_log_on_a_full_disk(tmp_path: Path) -> None:
    try:
        from gpttrace_py.sessionlog import SessionLog
    except ImportError:
        pytest.skip("no session log module")
    from gpttrace_py.run.session import SessionLogSink

    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    log = SessionLog(mode="trace", directory=tmp_path)
    log.event("x")  # creates the file
    assert log.path is not None
    full = os.open("/dev/full", os.O_WRONLY)  # the log is held by descriptor: make that descriptor /dev/full
    os.dup2(full, log._fd)
    os.close(full)  # every append now fails with ENOSPC
    warnings: list[str] = []
    sink = SessionLogSink(log, warnings.append)
    sink.call("event", "aggregate", name="c", data={})
    sink.call("output", "line")
    assert len(warnings) == 2 and "cannot write the session log" in warnings[0]
