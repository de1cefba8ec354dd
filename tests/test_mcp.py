"""``gpttrace mcp`` driven by the MCP SDK's own client, over stdio and over streamable HTTP on 127.0.0.1.

The server is the real command in a subprocess; the client is mcp.ClientSession. Runs load real programs
while a workload opens a file with a name made for the test, and the events must show it. A cancelled run,
and a client that goes away, must leave no BPF program behind: the ids of the programs the server's
bpftrace held (read from /proc/PID/fdinfo while it ran) must all be gone from the kernel afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import GPTTRACE, ROOT

from gpttrace_py.agent.bounds import AGGREGATE_ENTRIES, Collector, clean
from gpttrace_py.agent.client_program import prepare, with_ready_line
from gpttrace_py.agent.server import parse_http
from gpttrace_py.errors import GpttraceError, UsageError

mcp = pytest.importorskip("mcp", reason="the MCP SDK is installed by install.sh (pip install -e '.[mcp]')")
from mcp import ClientSession, StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

TOOLS = {"plan", "run", "explain", "probes", "examples", "doctor"}
OPENS_BY_CAT = 'tracepoint:syscalls:sys_enter_openat /comm == "cat"/ { @opens[str(args->filename)] = count(); }'


# -- pieces that need no server ---------------------------------------------------------------------------------
def test_clean_escapes_control_and_bidi_characters() -> None:
    assert clean("a\x1b[31mb\nc\u202ed") == "a\\x1b[31mb\\x0ac\\u202ed"
    assert clean("a\tb\nc\rd", multiline=True) == "a\tb\nc\\x0dd"


def test_collector_bounds_events_and_keeps_aggregates() -> None:
    c = Collector(max_lines=3)
    for i in range(10):
        c.line(json.dumps({"type": "event", "line": f"open \x1b]0;x\x07 {i}", "fields": {"PATH": f"/t/\x1b{i}"}}))
    c.line(json.dumps({"type": "aggregate", "name": "n", "func": "count", "keys": ["K"],
                       "data": {f"k{i}": i for i in range(AGGREGATE_ENTRIES + 50)}}))
    assert [e.line for e in c.events] == [f"open \\x1b]0;x\\x07 {i}" for i in range(3)]
    assert c.events[0].fields == {"PATH": "/t/\\x1b0"}
    assert c.events_seen == 10 and c.events_truncated
    (agg,) = c.aggregates
    assert agg.entries == AGGREGATE_ENTRIES + 50 and agg.truncated and len(agg.data) == AGGREGATE_ENTRIES
    assert f"k{AGGREGATE_ENTRIES + 49}" in agg.data and "k0" not in agg.data  # the largest are kept


def test_ready_line_goes_last_in_begin_or_in_a_begin_of_its_own() -> None:
    text = 'BEGIN { printf("}{ BEGIN\\n"); /* } */ } tracepoint:sched:sched_switch { @[comm] = count(); }'
    marked = with_ready_line(text, "READY")
    assert marked.index('printf("READY\\n")') < marked.index("tracepoint:sched")
    assert marked.count("BEGIN") == 2  # the block and the string: no second BEGIN block
    plain = with_ready_line("tracepoint:sched:sched_switch { @ = count(); }", "READY")
    assert plain.rstrip().endswith('BEGIN\n{\n\tprintf("READY\\n");\n}')
    with pytest.raises(UsageError):
        with_ready_line("BEGIN, END { printf(\"x\\n\"); }", "READY")


@pytest.mark.parametrize("program, why", [
    ("from bcc import BPF\nBPF(text='int x(void *c) { return 0; }')\n", "only bpftrace"),
    ('tracepoint:syscalls:sys_enter_openat { printf("%s\\n", str(args->filename)); ', "missing"),
    ('tracepoint:syscalls:sys_enter_kill { signal("SIGKILL"); }', "changes the system"),
    ('#define S sys##tem\ntracepoint:syscalls:sys_enter_openat { S("id"); }', "changes the system"),
    ('BEGIN { cat("/etc/shadow"); exit(); }', "reads any file"),
    ('#include "/etc/shadow"\nBEGIN { exit(); }', "includes a file"),
    ('#include </etc/shadow>\nBEGIN { exit(); }', "includes a file"),
    ('#include <../../../etc/shadow.h>\nBEGIN { exit(); }', "includes a file"),
])
def test_client_programs_that_are_refused(program: str, why: str) -> None:
    with pytest.raises(GpttraceError, match=why):
        prepare(program, allow_unsafe=False)


def test_client_program_may_include_system_headers() -> None:
    planned = prepare("#include <linux/sched.h>\ntracepoint:sched:sched_switch { @[comm] = count(); }", False)
    assert planned.program.text.startswith("#include <linux/sched.h>")
    assert prepare('BEGIN { cat("/etc/hostname"); exit(); }', allow_unsafe=True).program.layout.ready


def test_http_serves_only_loopback() -> None:
    assert parse_http("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert parse_http("[::1]:9") == ("::1", 9)
    for bad in ("0.0.0.0:8765", "192.168.1.5:80", "example.com:80", "127.0.0.1", "127.0.0.1:99999"):
        with pytest.raises(UsageError):
            parse_http(bad)


def test_help_does_not_import_the_sdk() -> None:
    code = ("import io, sys, contextlib\nfrom gpttrace_py.cli import _run\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    _run(['--help'])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'mcp_types', 'uvicorn', 'anyio')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stderr


# -- sessions with the real server ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def stdio_session(*extra: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=GPTTRACE, args=["mcp", *extra], env=dict(os.environ))
    async with stdio_client(params, errlog=sys.stderr) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@contextlib.contextmanager
def http_server(*extra: str) -> Any:
    port = _free_port()
    proc = subprocess.Popen([GPTTRACE, "mcp", "--http", f"127.0.0.1:{port}", *extra], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the HTTP server did not start listening"
            time.sleep(0.1)
        yield proc, f"http://127.0.0.1:{port}/mcp"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


@contextlib.asynccontextmanager
async def http_session(url: str) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@contextlib.contextmanager
def opening(path: Path, every: float = 0.05) -> Any:
    """A workload: `cat PATH` over and over, until the block ends."""
    path.write_text("x\n")
    done = threading.Event()

    def loop() -> None:
        while not done.is_set():
            subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            done.wait(every)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join(timeout=10)


async def call(session: ClientSession, tool: str, args: dict[str, Any], log: list[str] | None = None
               ) -> dict[str, Any]:
    result = await session.call_tool(tool, args)
    assert not result.is_error, result.content
    data = result.structured_content
    assert isinstance(data, dict)
    if log is not None:
        log.append(f"> {tool} {json.dumps(args)[:160]}")
        log.append(f"< {json.dumps(data)[:400]}")
    return data


async def scenario(session: ClientSession, tmp_path: Path) -> list[str]:
    """What every transport must do: list, plan, run a request and a client's program with a workload, refuse
    an unsafe program, read a resource."""
    log: list[str] = []
    tools = (await session.list_tools()).tools
    assert {t.name for t in tools} == TOOLS
    assert all(t.output_schema and t.description for t in tools)
    log.append(f"> list_tools\n< {sorted(t.name for t in tools)}")

    plan = await call(session, "plan", {"request": "trace files opened by cat"}, log)
    assert plan["outcome"] == "ok" and plan["loads"] is True, plan
    assert "process = cat" in plan["understood"] and "sys_enter_openat" in plan["program"]

    killing = await call(session, "plan", {"request": "kill any process that opens /etc/shadow"}, log)
    assert killing["outcome"] == "refused" and "changes the system" in killing["reason"] and not killing["program"]

    unmapped = await call(session, "plan", {"request": "make me a sandwich"}, log)
    assert unmapped["outcome"] == "refused" and unmapped["reason"] and unmapped["program"] is None

    target = tmp_path / "mcp-target-file"
    with opening(target):
        ran = await call(session, "run", {"request": "trace files opened by cat", "seconds": 2, "max_lines": 5000},
                         log)
    assert ran["outcome"] == "ok", ran
    mine = [e for e in ran["events"] if e["fields"] and e["fields"].get("PATH") == str(target)]
    assert len(mine) >= 5, ran["events"][:20]
    assert all(e["fields"]["COMM"] == "cat" for e in ran["events"])
    assert ran["ended"] == "stopped after 2 s, as asked" and ran["events_total"] >= len(ran["events"])

    with opening(target):
        counted = await call(session, "run", {"program": OPENS_BY_CAT, "seconds": 2, "max_lines": 10}, log)
    assert counted["outcome"] == "ok", counted
    (opens,) = [a for a in counted["aggregates"] if a["name"] == "opens"]
    assert opens["data"].get(str(target), 0) >= 5, opens
    assert counted["program"] == OPENS_BY_CAT  # as the client wrote it

    unsafe = await call(session, "run", {"program": 'tracepoint:syscalls:sys_enter_kill { system("id"); }',
                                         "seconds": 2}, log)
    assert unsafe["outcome"] == "refused" and "system()" in unsafe["reason"] and not unsafe["events"]
    assert "gpttrace mcp --unsafe" in unsafe["hint"]

    too_long = await call(session, "run", {"request": "trace files opened by cat", "seconds": 3600}, log)
    assert too_long["outcome"] == "refused" and "at most 60" in too_long["reason"]

    resources = (await session.list_resources()).resources
    uris = {str(r.uri) for r in resources}
    assert "gpttrace://lessons/4" in uris and "gpttrace://examples/opensnoop" in uris
    lesson = (await session.read_resource("gpttrace://lessons/4")).contents[0]
    assert "opensnoop" in lesson.text and "sys_enter_openat" in lesson.text
    log.append(f"> read_resource gpttrace://lessons/4\n< {lesson.text[:120]!r}")
    return log




@pytest.mark.kernel
@pytest.mark.slow
def test_stdio_session(tmp_path: Path) -> None:
    async def main() -> list[str]:
        async with stdio_session() as session:
            return await scenario(session, tmp_path)

    log = anyio.run(main)
    print("\n".join(log))


@pytest.mark.kernel
@pytest.mark.slow
def test_http_session(tmp_path: Path) -> None:
    with http_server() as (proc, url):
        async def main() -> list[str]:
            async with http_session(url) as session:
                return await scenario(session, tmp_path)

        log = anyio.run(main)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) in (0, 130, -signal.SIGTERM)
    print("\n".join(log))


@pytest.mark.kernel
@pytest.mark.slow
def test_other_tools(tmp_path: Path) -> None:
    async def main() -> None:
        async with stdio_session() as session:
            found = await call(session, "probes", {"pattern": "syscalls:sys_enter_openat*"})
            (openat,) = [p for p in found["probes"] if p["probe"] == "tracepoint:syscalls:sys_enter_openat"]
            assert {f["name"] for f in openat["fields"]} >= {"dfd", "filename", "flags", "mode"}
            bad = await call(session, "probes", {"pattern": "a;b"})
            assert bad["outcome"] == "refused"
            ex = await call(session, "examples", {"query": "files opened", "limit": 3})
            assert any(e["id"].startswith("opensnoop") for e in ex["examples"])
            assert ex["examples"][0]["resource"].startswith("gpttrace://examples/")
            text = await call(session, "explain", {"program": OPENS_BY_CAT})
            assert text["backend"] == "bpftrace" and "sys_enter_openat" in text["explanation"]
            doc = await call(session, "doctor", {})
            assert doc["ready"] is True and doc["max_seconds"] == 60 and doc["unsafe_allowed"] is False
            assert {c["name"] for c in doc["checks"]} >= {"root", "bpftrace", "tracefs", "kprobes"}

    anyio.run(main)


# -- nothing left attached ----------------------------------------------------------------------------------
def _bpftrace_programs(timeout: float = 60) -> tuple[int, set[int]]:
    """The pid of the bpftrace a server started for this test, and the BPF programs it holds, once attached."""
    from test_endings import descendants, held_programs

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid, comm in descendants(os.getpid()).items():
            if comm == "bpftrace":
                progs = held_programs([str(pid)]).get(pid, set())
                if progs:
                    return pid, progs
        time.sleep(0.1)
    raise AssertionError("no bpftrace with programs attached appeared")


def _unowned() -> set[int]:
    from test_endings import unowned_programs

    return unowned_programs()


def _gone(pid: int, progs: set[int], unowned_before: set[int], timeout: float = 20) -> None:
    """The tracer has exited, every program it held is gone from the kernel, and no program is left that no
    process holds (what a leak would look like) beyond those there before the run."""
    from test_endings import loaded_programs

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() and not progs & loaded_programs() and not _unowned() - unowned_before:
            return
        time.sleep(0.2)
    raise AssertionError(f"bpftrace {pid} alive: {Path(f'/proc/{pid}').exists()}; "
                         f"programs still loaded: {progs & loaded_programs()}; "
                         f"new programs without an owner: {_unowned() - unowned_before}")


async def _cancel_long_run(session: ClientSession) -> tuple[float, set[int]]:
    """Start a 50 s run, cancel the call once its programs are attached; seconds from cancel to detached."""
    found: dict[str, Any] = {"unowned": await anyio.to_thread.run_sync(_unowned)}
    async with anyio.create_task_group() as tg:
        async def long_run() -> None:
            await session.call_tool("run", {"request": "count syscalls by process", "seconds": 50})
            found["finished"] = True  # must not happen: the call is cancelled

        tg.start_soon(long_run)
        found["pid"], found["progs"] = await anyio.to_thread.run_sync(_bpftrace_programs)
        tg.cancel_scope.cancel()
    started = time.monotonic()
    await anyio.to_thread.run_sync(_gone, found["pid"], found["progs"], found["unowned"])
    assert "finished" not in found
    # the session still works after a cancelled call
    doc = await session.call_tool("doctor", {})
    assert not doc.is_error
    return time.monotonic() - started, found["progs"]


@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_cancelled_run_leaves_nothing_attached(transport: str) -> None:
    if transport == "stdio":
        async def main() -> tuple[float, set[int]]:
            async with stdio_session() as session:
                return await _cancel_long_run(session)

        took, progs = anyio.run(main)
    else:
        with http_server() as (_, url):
            async def main() -> tuple[float, set[int]]:
                async with http_session(url) as session:
                    return await _cancel_long_run(session)

            took, progs = anyio.run(main)
    assert progs and took < 15
    print(f"{transport}: {len(progs)} programs detached {took:.2f} s after the cancel")


# A client that is killed mid-run: it says nothing more, its pipes or its connection just close.
KILLED_CLIENT = """
import sys, anyio
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

async def main():
    if sys.argv[1] == "stdio":
        transport = stdio_client(StdioServerParameters(command=sys.argv[2], args=["mcp"]))
    else:
        transport = streamable_http_client(sys.argv[2])
    async with transport as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.call_tool("run", {"program": sys.argv[3], "seconds": 50})

anyio.run(main)
"""


@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_client_that_goes_away_leaves_nothing_attached(transport: str) -> None:
    """The client is killed mid-run. Over stdio the server's stdin closes: it stops the run and ends. Over HTTP
    the connection drops: the run is stopped, and the server goes on serving."""
    with contextlib.ExitStack() as stack:
        if transport == "stdio":
            where, proc = GPTTRACE, None
        else:
            proc, where = stack.enter_context(http_server())
        before = _unowned()
        client = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, transport, where, OPENS_BY_CAT],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            pid, progs = _bpftrace_programs()
        finally:
            client.kill()
            client.wait()
        _gone(pid, progs, before)
        if proc is not None:
            assert proc.poll() is None  # the server itself goes on serving


@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_server_stopped_mid_run_leaves_nothing_attached(transport: str) -> None:
    """SIGTERM to the server mid-run: it stops the run, the tracer detaches, the server exits."""
    from test_endings import descendants

    with contextlib.ExitStack() as stack:
        if transport == "stdio":
            where, proc = GPTTRACE, None
        else:
            proc, where = stack.enter_context(http_server())
        before = _unowned()
        client = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, transport, where, OPENS_BY_CAT],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            pid, progs = _bpftrace_programs()
            if proc is not None:
                server = proc.pid
            else:
                (server,) = [p for p, comm in descendants(client.pid).items() if comm == "gpttrace"]
            os.kill(server, signal.SIGTERM)
            _gone(pid, progs, before)
            deadline = time.monotonic() + 20
            while Path(f"/proc/{server}").exists() and time.monotonic() < deadline:
                if proc is not None and proc.poll() is not None:
                    break
                time.sleep(0.1)
            assert proc.poll() is not None if proc is not None else not _alive(server)
        finally:
            client.kill()
            client.wait()


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.kernel
@pytest.mark.slow
def test_unsafe_program_runs_only_when_the_server_allows_it(tmp_path: Path) -> None:
    program = 'tracepoint:syscalls:sys_enter_openat /comm == "cat"/ { system("true"); @n = count(); }'

    async def main() -> dict[str, Any]:
        async with stdio_session("--unsafe") as session:
            doc = await call(session, "doctor", {})
            assert doc["unsafe_allowed"] is True
            with opening(tmp_path / "target"):
                return await call(session, "run", {"program": program, "seconds": 2})

    ran = anyio.run(main)
    assert ran["outcome"] == "ok", ran
    (n,) = [a for a in ran["aggregates"] if a["name"] == "n"]
    assert n["data"] >= 5


@pytest.mark.kernel
@pytest.mark.slow
def test_run_time_is_capped_by_the_server() -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        async with stdio_session("--max-seconds", "3", "--default-seconds", "1") as session:
            said = await call(session, "run", {"request": "count syscalls by process for 30 seconds"})
            default = await call(session, "run", {"request": "count syscalls by process"})
            return said, default

    said, default = anyio.run(main)
    assert said["outcome"] == "ok" and said["ended"] == "stopped at this server's cap of 3 s", said
    assert said["seconds"] < 10 and said["aggregates"] and said["aggregates"][0]["entries"] > 0
    assert default["ended"] == "stopped after this server's default of 1 s" and default["seconds"] < 3
