"""`gpttrace chat`: the session logic with captured streams, and the real REPL in a real terminal (tmux)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from conftest import GPTTRACE, run_cli

from gpttrace_py.chat import ChatSession, ChatUI
from gpttrace_py.chat.repl import ChatCompleter
from gpttrace_py.kernel.catalog import Catalog
from gpttrace_py.planning.offline import OfflinePlanner
from gpttrace_py.sessionlog import SessionLog, find, sessions


class OpensPlanner(OfflinePlanner):
    """The offline planner, except that a question about opened files always gets the corpus's opensnoop
    (adapted to the question), so these tests of the chat do not depend on retrieval ranking."""

    def plan(self, intent, ctx):
        from gpttrace_py.corpus import by_id
        from gpttrace_py.planning import intent as intent_mod
        from gpttrace_py.planning.adapt import adapt

        example = by_id("opensnoop")
        if "opened" in intent and example is not None:
            return adapt(example.spec, intent_mod.parse(intent), ctx.catalog)
        return super().plan(intent, ctx)


def make_session(yes: bool = False) -> tuple[ChatSession, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    log = SessionLog(mode="chat", planner="offline")
    ui = ChatUI(stdout=out, stderr=err, stdin=io.StringIO(), log=log)
    session = ChatSession(OpensPlanner(), ui, yes=yes, log=log, confirm=lambda q: False)
    return session, out, err


def needs_tracefs() -> None:
    c = Catalog()
    if not c.tracepoints.available or c.syscall_tracepoint("openat") is None:
        pytest.skip("needs tracefs")


# -- the session, without a terminal ---------------------------------------------------------------------------
def test_a_message_shows_a_program_without_running_it():
    needs_tracefs()
    s, out, err = make_session()
    s.handle("trace files opened by cat")
    text = err.getvalue()
    assert "#!/usr/bin/env bpftrace" in text and "/run" in text
    assert "# Files opened" in text  # the title with its rationale
    assert not s.running and out.getvalue() == ""
    assert s.spec is not None and s.spec.filter.comm == "cat"


def test_refinements_edit_the_current_program():
    needs_tracefs()
    s, _, err = make_session()
    s.handle("trace files opened by cat")
    first = s.spec
    s.handle("only for pid 1234")
    assert s.spec is not None and s.spec.filter.pid == 1234 and s.spec.probes == first.probes
    s.handle("count them by process instead")
    assert s.spec.aggregates and s.spec.aggregates[0].func == "count" and not s.spec.print
    assert "Changed: count by comm" in err.getvalue()
    s.handle("top 5")
    assert s.spec.aggregates[0].top == 5
    s.handle("run it for 5 seconds")  # no -y and no confirmation: not run, but the duration is kept
    assert s.duration == 5.0 and not s.running and "Not run." in err.getvalue()
    s.handle("trace files opened by cat")  # a topic again: a new program
    assert s.spec.print and not s.spec.aggregates


def test_refusals_keep_the_program():
    needs_tracefs()
    s, _, err = make_session()
    s.handle("trace files opened by cat")
    before = s.spec
    s.handle("at 99 Hz")
    assert s.spec == before and "error: this program does not sample" in err.getvalue()
    s.handle("/backend bcc")  # not in this build (or not installed): reported, the program stays
    assert s.spec is not None


def test_slash_commands(tmp_path):
    needs_tracefs()
    s, _, err = make_session()
    s.handle("/run")
    assert "Nothing to run yet" in err.getvalue()
    s.handle("trace files opened by cat")
    s.handle("/spec")
    assert '"comm": "cat"' in err.getvalue()
    s.handle(f"/save {tmp_path / 'opens.bt'}")
    s.handle(f"/save {tmp_path / 'opens.json'}")
    assert (tmp_path / "opens.bt").read_text().startswith("#!/usr/bin/env bpftrace")
    assert json.loads((tmp_path / "opens.json").read_text())["filter"]["comm"] == "cat"
    s.handle("/explain")
    assert "sys_enter_openat" in err.getvalue()
    s.handle("/examples exec")
    assert "execsnoop" in err.getvalue() or "exec" in err.getvalue()
    s.handle("/help")
    assert "/lesson N" in err.getvalue()
    s.handle("/nosuch")
    assert "unknown command /nosuch" in err.getvalue()
    s.handle("/stop")
    assert "Nothing is running" in err.getvalue()
    s.handle("/new")
    assert s.spec is None
    assert s.handle("/quit") is False and s.done


def test_lesson_loads_an_example():
    needs_tracefs()
    from gpttrace_py.corpus import load

    lessons = sorted({e.lesson for e in load() if e.lesson}, key=int)
    if not lessons:
        pytest.skip("no lesson examples")
    s, _, err = make_session()
    s.handle(f"/lesson {lessons[0]}")
    assert f"Lesson {lessons[0]}" in err.getvalue()
    assert s.spec is not None


def test_the_session_is_logged(isolated_home):
    needs_tracefs()
    s, _, _ = make_session()
    s.handle("trace files opened by cat")
    s.handle("only for pid 1234")
    s.handle("/quit")
    path = s.log.path
    assert path is not None and path.parent == isolated_home / "state" / "sessions"
    kinds = [json.loads(line)["kind"] for line in path.read_text().splitlines()]
    assert kinds[0] == "session" and kinds.count("intent") == 2 and "spec" in kinds and "program" in kinds
    (summary,) = sessions()
    assert summary.turns == 2 and summary.first_intent == "trace files opened by cat"
    assert find("last") is not None and find(summary.id[:8]) is not None

    r = run_cli("log")
    assert r.returncode == 0 and "trace files opened by cat" in r.stdout and summary.id in r.stdout
    r = run_cli("log", "show", summary.id)
    assert r.returncode == 0 and "> only for pid 1234" in r.stdout and "#!/usr/bin/env bpftrace" in r.stdout
    r = run_cli("log", "show", "nosuch")
    assert r.returncode != 0 and "no session" in r.stderr


def test_log_output_is_capped_but_keeps_the_tail(isolated_home):
    from gpttrace_py import sessionlog

    log = SessionLog(mode="trace")
    log.run_start(title="x")
    for i in range(sessionlog.OUTPUT_LINES_PER_RUN + 50):
        log.output(f"line {i}")
    log.run_end(events=1)
    records = sessionlog.read(log.path)
    assert sum(r["kind"] == "output" for r in records) == sessionlog.OUTPUT_LINES_PER_RUN
    end = records[-1]
    assert end["kind"] == "run_end" and end["tail"][-1] == f"line {sessionlog.OUTPUT_LINES_PER_RUN + 49}"


def test_logging_ui_for_the_one_shot_cli(isolated_home):
    from gpttrace_py.run.failure import LoadFailure
    from gpttrace_py.sessionlog import LoggingUI, read

    log = SessionLog(mode="trace")
    log.intent("trace files opened by cat")
    ui = LoggingUI(stdout=io.StringIO(), stderr=io.StringIO(), log=log)
    ui.attempt_failed(1, 2, LoadFailure(backend="bpftrace", stage="semantic", message="no field 'bogus'"))
    ui.out("123 cat 3 /etc/passwd")
    kinds = [(r["kind"], r.get("stage") or r.get("line")) for r in read(log.path)]
    assert kinds[1:] == [("intent", None), ("error", "semantic"), ("output", "123 cat 3 /etc/passwd")]
    assert ui.stdout.getvalue() == "123 cat 3 /etc/passwd\n"


def test_completion():
    c = ChatCompleter(lambda: ["sched:sched_switch", "sched:sched_wakeup", "syscalls:sys_enter_openat"],
                      lambda: ["4", "12"])
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    def complete(text: str) -> list[str]:
        return [x.text for x in c.get_completions(Document(text, len(text)), CompleteEvent())]

    assert "/run" in complete("/ru")
    assert complete("/backend b") == ["bpftrace", "bcc"]
    assert complete("/lesson 1") == ["12"]
    assert complete("count sched:sched_sw") == ["sched:sched_switch"]
    assert complete("count sys_enter_op") == ["syscalls:sys_enter_openat"]
    assert complete("trace tracepoint:sched:sched_w") == ["tracepoint:sched:sched_wakeup"]
    assert complete("trace files opened") == []


# -- the REPL in a real terminal ---------------------------------------------------------------------------------
TMUX = shutil.which("tmux")
READY = re.compile(r"^Tracing .*Hit Ctrl-C to end\.$", re.M)


class Pane:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert TMUX is not None
        return subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True, text=True, check=check,
                              timeout=20)

    def text(self) -> str:
        r = self.tmux("capture-pane", "-p", "-J", "-t", "chat", "-S", "-", check=False)
        return r.stdout

    def send(self, line: str) -> None:
        self.tmux("send-keys", "-t", "chat", "-l", line)
        time.sleep(0.1)
        self.tmux("send-keys", "-t", "chat", "Enter")

    def wait(self, check, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if check(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the pane shows:\n{text[-3000:]}")
            time.sleep(0.25)

    def alive(self) -> bool:
        return self.tmux("has-session", "-t", "chat", check=False).returncode == 0


def after(text: str, marker: str) -> str:
    i = text.rfind(marker)
    return text[i:] if i >= 0 else ""


@pytest.mark.kernel
@pytest.mark.skipif(TMUX is None, reason="needs tmux")
def test_chat_in_a_real_terminal(isolated_home):
    work = Path(tempfile.mkdtemp(prefix="gptchat-"))
    target = work / f"chat-{uuid.uuid4().hex[:10]}.txt"
    target.write_text("hello from the chat test\n")
    conf = work / "tmux.conf"
    conf.write_text("set -g history-limit 200000\nset -g status off\n")
    exit_file = work / "exit"
    socket = f"gptchat-{uuid.uuid4().hex[:8]}"
    pane = Pane(socket)
    env = f"GPTTRACE_HOME={isolated_home} TERM=xterm-256color"
    command = f"env {env} {GPTTRACE} chat --offline -y; echo $? > {exit_file}"
    subprocess.run([TMUX, "-L", socket, "-f", str(conf), "new-session", "-d", "-s", "chat", "-x", "220", "-y", "50",
                    command], check=True, timeout=20, env={**os.environ, "TMUX": ""})
    try:
        pane.wait(lambda t: "gpttrace>" in t, 20, "the prompt")

        # 1. a question: the program is shown, not run
        pane.send("trace files opened by cat")
        text = pane.wait(lambda t: "/run runs it" in t, 30, "the planned program")
        assert "#!/usr/bin/env bpftrace" in text and not READY.search(text)

        # 2. /run: events stream above the prompt while a workload runs in another process
        pane.send("/run")
        pane.wait(lambda t: len(READY.findall(t)) >= 1, 45, "the program to attach")

        def saw_file(t: str) -> bool:
            return str(target) in t

        deadline = time.monotonic() + 20
        while not saw_file(pane.text()):
            assert time.monotonic() < deadline, f"no event for {target}:\n{pane.text()[-3000:]}"
            subprocess.run(["cat", str(target)], stdout=subprocess.DEVNULL, check=True)
            time.sleep(0.7)
        line = next(ln for ln in pane.text().splitlines() if str(target) in ln)
        assert "cat" in line

        pane.send("/stop")
        pane.wait(lambda t: "(trace stopped after" in t, 30, "the trace to stop")

        # 3. refine: count them by process instead, run, see the counts
        pane.send("count them by process instead")
        pane.wait(lambda t: "Changed: count by comm" in t, 20, "the refined program")
        pane.send("/run")
        pane.wait(lambda t: len(READY.findall(t)) >= 2, 45, "the refined program to attach")
        for _ in range(3):
            subprocess.run(["cat", str(target)], stdout=subprocess.DEVNULL, check=True)
            time.sleep(0.2)
        time.sleep(0.5)
        pane.send("/stop")
        text = pane.wait(lambda t: t.count("(trace stopped after") >= 2, 30, "the second trace to stop")
        counts = after(text, "/stop")
        assert re.search(r"^cat\s+\d+\s*$", counts, re.M), counts

        # 4. /explain, then /quit
        pane.send("/explain")
        text = pane.wait(lambda t: len(after(t, "/explain").strip().splitlines()) > 3, 20, "the explanation")
        assert "count" in after(text, "/explain").lower()
        pane.send("/quit")
        deadline = time.monotonic() + 20
        while not exit_file.exists():
            assert time.monotonic() < deadline, f"chat did not exit:\n{pane.text()[-2000:]}"
            time.sleep(0.2)
        time.sleep(0.2)
        assert exit_file.read_text().strip() == "0"
    finally:
        pane.tmux("kill-server", check=False)
        shutil.rmtree(work, ignore_errors=True)

    logs = list((isolated_home / "state" / "sessions").glob("*.jsonl"))
    assert len(logs) == 1
    records = [json.loads(line) for line in logs[0].read_text().splitlines()]
    intents = [r["text"] for r in records if r["kind"] == "intent"]
    assert intents == ["trace files opened by cat", "count them by process instead"]
    kinds = {r["kind"] for r in records}
    assert {"session", "spec", "program", "run_start", "output", "run_end", "explain", "quit"} <= kinds
    assert any(str(target) in r.get("line", "") for r in records if r["kind"] == "output")


def test_refinements_compose_on_the_current_program():
    """ "count syscalls by process", "only for dd", "as a histogram of latency in us": the third message is a
    refinement of the second program (its dd filter and grouping stay), not a new program about latency."""
    needs_tracefs()
    s, _, err = make_session()
    s.handle("count syscalls by process")
    assert s.spec is not None and s.spec.aggregates and s.spec.aggregates[0].func == "count"
    s.handle("only for dd")
    assert s.spec.filter.comm == "dd"
    probes_before = [p.text for p in s.spec.probes]
    s.handle("as a histogram of latency in us")
    spec = s.spec
    assert spec.filter.comm == "dd", spec.filter
    assert spec.start is not None and [p.text for p in spec.start.probes] == probes_before
    (agg,) = spec.aggregates
    assert agg.func == "hist" and agg.value == "delta / 1000" and agg.unit == "us"
    assert [k.expr for k in agg.keys] == ["comm"]
    assert s.program is not None and 'comm == "dd"' in s.program.text
    assert "planned from" not in err.getvalue().rsplit("Changed:", 1)[-1]  # an edit, not a new plan
