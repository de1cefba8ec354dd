"""Every way a run can end leaves nothing attached, and prints the aggregates when it can.

Each test runs the real CLI in a subprocess with a fixed spec (so a planner change cannot change what is
tested), waits for "Tracing ..." on stderr, ends the run, and then checks the kernel:

* our programs: the ids of the BPF programs our bpftrace holds (read from /proc/PID/fdinfo while it runs)
  must all be gone afterwards;
* the count: programs not held by any other process (``bpftool prog show`` minus what other processes hold
  open) must be back to what it was before the run: a program left attached without an owner would stay.

Other processes on the machine load and unload programs meanwhile; only what can be attributed is counted,
and the "after" check is retried for a few seconds (the kernel frees programs a little after the process).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import GPTTRACE, ROOT

pytestmark = [pytest.mark.kernel, pytest.mark.slow]
BPFTOOL = shutil.which("bpftool")  # Debian package bpftool, installed by install.sh
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
ATTACH_TIMEOUT = 150.0  # loading can be slow on a busy machine

SPEC = {
    "title": "Syscalls by process", "rationale": "raw_syscalls:sys_enter fires on every system call",
    "probes": ["tracepoint:raw_syscalls:sys_enter"],
    "aggregates": [{"func": "count", "keys": [{"expr": "comm", "label": "COMM"}], "title": "Syscalls by process"}],
}
# The real CLI, with the planner replaced by the spec given as the first argument.
DRIVER = """
import json, sys
import gpttrace_py.planning.select as select
from gpttrace_py.service.trace import FixedPlanner
from gpttrace_py.spec import ProgramSpec
spec = ProgramSpec.model_validate(json.loads(sys.argv[1]))
select.get_planner = lambda offline=False, model=None, fallback=True: FixedPlanner(spec)
from gpttrace_py.cli import main
main(sys.argv[2:])
"""


# -- counting BPF programs -------------------------------------------------------------------------------------
def loaded_programs() -> set[int]:
    if BPFTOOL is None:
        pytest.fail("bpftool is not on PATH: ./install.sh installs it (Debian package bpftool)")
    out = subprocess.run([BPFTOOL, "prog", "show", "-j"], capture_output=True, text=True, timeout=60).stdout
    return {p["id"] for p in json.loads(out or "[]")}


def held_programs(pids: list[str] | None = None) -> dict[int, set[int]]:
    """pid -> ids of the BPF programs it holds open (prog fds, and links' programs)."""
    held: dict[int, set[int]] = {}
    for pid in pids if pids is not None else [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            fds = os.listdir(f"/proc/{pid}/fdinfo")
        except OSError:
            continue
        for fd in fds:
            try:
                text = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
            except OSError:
                continue
            m = re.search(r"^prog_id:\s*(\d+)", text, re.M)
            if m:
                held.setdefault(int(pid), set()).add(int(m.group(1)))
    return held


def unowned_programs() -> set[int]:
    """Programs in the kernel that no process holds: what a leak would look like."""
    before = loaded_programs()
    held = set().union(*held_programs().values())
    return (before & loaded_programs()) - held


def descendants(pid: int) -> dict[int, str]:
    """pid -> comm of every descendant of ``pid``."""
    parents: dict[int, tuple[int, str]] = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        parents[int(p)] = (ppid, comm)
    out: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        cur = frontier.pop()
        for child, (ppid, comm) in parents.items():
            if ppid == cur and child not in out:
                out[child] = comm
                frontier.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@dataclass
class Run:
    proc: subprocess.Popen[str]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    tracer: int | None = None
    ours: set[int] = field(default_factory=set)
    unowned_before: set[int] = field(default_factory=set)
    count_before: int = 0
    count_during: int = 0

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)


def _dispositions(ignore: tuple[int, ...]) -> None:
    """In the child: the signals a user's shell leaves at their defaults (a test run started in the background
    or under nohup would otherwise pass its ignored SIGINT/SIGHUP on), except those the test ignores."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN if sig in ignore else signal.SIG_DFL)


def start(args: list[str], env: dict[str, str] | None = None, cli: list[str] | None = None,
          spec: dict | None = None, stdout: int | None = None, ignore: tuple[int, ...] = ()) -> Run:
    unowned = unowned_programs()
    spec = spec or SPEC
    argv = [*cli, *args] if cli is not None else [PYTHON, "-c", DRIVER, json.dumps(spec), *args, spec["title"]]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE if stdout is None else stdout, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env={**os.environ, **(env or {})}, cwd=ROOT,
                            preexec_fn=lambda: _dispositions(ignore))
    run = Run(proc, unowned_before=unowned, count_before=len(unowned))

    def pump(stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)

    assert proc.stderr is not None
    if proc.stdout is not None:
        threading.Thread(target=pump, args=(proc.stdout, run.out), daemon=True).start()
    threading.Thread(target=pump, args=(proc.stderr, run.err), daemon=True).start()
    return run


def wait_attached(run: Run) -> None:
    deadline = time.monotonic() + ATTACH_TIMEOUT
    while not re.search(r"^Tracing .*Hit Ctrl-C to end\.$", run.stderr, re.M):  # the line, not the program
        if run.proc.poll() is not None or time.monotonic() > deadline:
            run.proc.kill()
            pytest.fail(f"never attached (rc={run.proc.poll()}):\n{run.stderr[-3000:]}")
        time.sleep(0.05)
    tracers = [p for p, comm in descendants(run.proc.pid).items() if comm == "bpftrace"]
    assert len(tracers) == 1, descendants(run.proc.pid)
    run.tracer = tracers[0]
    run.ours = set().union(*held_programs([str(run.tracer)]).values())
    assert run.ours, "the tracer holds no BPF programs"
    assert run.ours <= loaded_programs()
    run.count_during = len(unowned_programs() | run.ours)
    assert run.count_during >= run.count_before + len(run.ours) - 2  # (others may drop an unowned one)


def finish(run: Run, timeout: float = 90.0) -> int:
    try:
        rc = run.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.proc.kill()
        pytest.fail(f"gpttrace did not exit:\n{run.stderr[-3000:]}")
    time.sleep(0.2)  # let the reader threads drain
    return rc


def assert_nothing_left(run: Run) -> None:
    """Our programs are gone and the count of ownerless programs is back to where it was."""
    deadline = time.monotonic() + 20
    while True:
        left = run.ours & loaded_programs()
        unowned = unowned_programs()
        new_unowned = unowned - run.unowned_before
        count_after = len(unowned | left)
        if not left and not new_unowned and count_after <= run.count_before and (
                run.tracer is None or not alive(run.tracer)):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"still loaded after the run: ours={sorted(left)} new ownerless={sorted(new_unowned)} "
                        f"tracer alive={run.tracer is not None and alive(run.tracer)}; programs without another "
                        f"owner: before {run.count_before}, during {run.count_during}, after {count_after}")
        time.sleep(0.25)
    if run.ours:  # it was seen attached
        assert run.count_during > count_after


def assert_aggregates(run: Run) -> None:
    assert "Syscalls by process" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    assert re.search(r"^COMM\s+COUNT$", run.stdout, re.M), run.stdout[-2000:]


def assert_logged(home: Path) -> None:
    """The session log of the run has the aggregate, written as it arrived."""
    logs = sorted((home / "state" / "sessions").glob("*.jsonl"))
    assert logs, "no session log"
    kinds = [json.loads(line).get("kind") for line in logs[-1].read_text().splitlines() if line.strip()]
    assert "aggregate" in kinds and "run_start" in kinds, kinds


# -- the endings ---------------------------------------------------------------------------------------------------
def test_duration(isolated_home: Path) -> None:
    run = start(["-y", "-d", "2"])
    wait_attached(run)
    assert finish(run) == 0, run.stderr
    assert_aggregates(run)
    assert_nothing_left(run)
    assert_logged(isolated_home)


def test_command_exits(isolated_home: Path) -> None:
    run = start(["-y", "-c", "sleep 1"])
    wait_attached(run)
    assert finish(run) == 0, run.stderr
    assert_aggregates(run)
    assert_nothing_left(run)


def test_max_run_time_without_a_terminal(isolated_home: Path) -> None:
    run = start(["-y"], env={"GPTTRACE_MAX_SECONDS": "2"})
    wait_attached(run)
    assert finish(run) == 0, run.stderr
    assert "tracing stops after 2 s" in run.stderr
    assert_aggregates(run)
    assert_nothing_left(run)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_signal_to_gpttrace(sig: signal.Signals, isolated_home: Path) -> None:
    run = start(["-y", "-d", "60"])
    wait_attached(run)
    time.sleep(0.5)
    run.proc.send_signal(sig)
    assert finish(run) == 130, run.stderr
    assert_aggregates(run)
    assert "Traceback" not in run.stderr, run.stderr[-4000:]
    assert_nothing_left(run)
    assert_logged(isolated_home)


def test_second_ctrl_c_forces(isolated_home: Path) -> None:
    run = start(["-y", "-d", "60"])
    wait_attached(run)
    run.proc.send_signal(signal.SIGINT)
    run.proc.send_signal(signal.SIGINT)
    assert finish(run) == 130, run.stderr
    assert "Traceback" not in run.stderr, run.stderr[-4000:]
    assert_nothing_left(run)


def test_gpttrace_killed(isolated_home: Path) -> None:
    """SIGKILL of the tool: the kernel sends the tracer SIGINT (PR_SET_PDEATHSIG) and it detaches."""
    run = start(["-y", "-d", "60"])
    wait_attached(run)
    assert run.tracer is not None
    run.proc.kill()
    assert finish(run) == -signal.SIGKILL
    assert_nothing_left(run)


def test_tracer_killed(isolated_home: Path) -> None:
    """kill -9 of bpftrace: gpttrace says so and exits 1."""
    run = start(["-y", "-d", "60"])
    wait_attached(run)
    assert run.tracer is not None
    os.kill(run.tracer, signal.SIGKILL)
    assert finish(run) == 1, run.stderr
    assert "bpftrace was killed by SIGKILL" in run.stderr and "Traceback" not in run.stderr
    assert_nothing_left(run)


def test_real_cli_ctrl_c(isolated_home: Path) -> None:
    """The command the issue names, as a user runs it."""
    run = start(["-y", "--offline", "-d", "30", "count syscalls by process"], cli=[GPTTRACE])
    wait_attached(run)
    time.sleep(0.5)
    run.proc.send_signal(signal.SIGINT)
    assert finish(run) == 130, run.stderr
    assert run.stdout.strip(), "no aggregates printed"
    assert_nothing_left(run)


EVENTS = {"title": "Syscalls", "probes": ["tracepoint:raw_syscalls:sys_enter"],
          "print": [{"expr": "pid", "label": "PID"}, {"expr": "comm", "label": "COMM"}]}


def test_stdout_closed(isolated_home: Path) -> None:
    """gpttrace ... | head -3: the tracer is stopped, the exit is quiet."""
    r, w = os.pipe()
    run = start(["-y", "-d", "60"], spec=EVENTS, stdout=w)
    os.close(w)
    wait_attached(run)
    got = b""
    while got.count(b"\n") < 3:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        got += chunk
    os.close(r)
    assert finish(run, timeout=30) == 0, run.stderr
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr, run.stderr
    assert_nothing_left(run)


def test_stdout_on_a_full_disk(isolated_home: Path) -> None:
    with open("/dev/full", "w") as full:
        run = start(["-y", "-d", "60"], spec=EVENTS, stdout=full.fileno())
    assert finish(run, timeout=ATTACH_TIMEOUT) == 1, run.stderr
    assert "gpttrace: cannot write the output: No space left on device" in run.stderr
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr, run.stderr
    assert_nothing_left(run)


def test_interrupted_while_loading(isolated_home: Path) -> None:
    run = start(["-y", "-d", "60"])
    deadline = time.monotonic() + ATTACH_TIMEOUT
    while "(planned from" not in run.stderr:  # the program is shown; loading starts now
        assert run.proc.poll() is None and time.monotonic() < deadline, run.stderr
        time.sleep(0.01)
    run.proc.send_signal(signal.SIGINT)
    assert finish(run) == 130, run.stderr
    assert "Traceback" not in run.stderr, run.stderr[-4000:]
    assert_nothing_left(run)


def test_nohup_keeps_running_on_sighup(isolated_home: Path) -> None:
    """Under nohup (SIGHUP ignored), a hangup does not stop the trace; Ctrl-C still does."""
    run = start(["-y", "-d", "60"], ignore=(signal.SIGHUP,))
    wait_attached(run)
    run.proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    assert run.proc.poll() is None and run.tracer is not None and alive(run.tracer)
    run.proc.send_signal(signal.SIGINT)
    assert finish(run) == 130, run.stderr
    assert_aggregates(run)
    assert_nothing_left(run)
