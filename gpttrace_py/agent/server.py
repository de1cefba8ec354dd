"""The MCP server: gpttrace's tools and resources over stdio or streamable HTTP, with the official ``mcp`` SDK.

Runs always detach. A run works in a thread of its own; when its call is cancelled (the client sends
notifications/cancelled, or goes away and the transport closes) or the server stops, the run is told to
stop (the tracer gets SIGINT, as on Ctrl-C) and the call waits, shielded from the cancellation, until the
tracer has exited. A server killed outright still leaves nothing: the tracer gets SIGINT when the thread
that started it dies (run/session.py, PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from ..errors import ExitCode, UsageError
from . import library
from .tools import (
    AgentTools,
    Backend,
    DoctorResult,
    ExamplesResult,
    ExplainResult,
    PlanResult,
    ProbesResult,
    RunResult,
    Stop,
)

T = TypeVar("T")
STOP_WAIT = 30.0  # seconds a stopped run gets to end (the tracer's own grace is 10 s, then SIGKILL)
DISCONNECT_POLL = 0.5  # seconds between looks at whether an HTTP client is still connected

INSTRUCTIONS = """\
gpttrace traces this Linux machine with eBPF. Say what to trace in plain words (plan, run): gpttrace writes a
bpftrace or BCC program from worked examples and this kernel's probe catalog, checks that it loads, and
says what it understood. Check 'understood' and 'not_honoured' against the question before trusting the
events. A request it cannot map is refused with suggestions, not guessed. You can also run a bpftrace program
you wrote (run with program=...); it passes the same checks. Programs that change the system (signals,
system(), ...) are refused unless the server was started with --unsafe. Runs last 'seconds' (default and cap:
see doctor) and return bounded events and the aggregates printed at the end."""

ReadOnly = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
Tracing = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)

Request = Annotated[str, Field(description="What to trace, in plain words, e.g. 'trace files opened by cat' or "
                                           "'count syscalls by process for 5 seconds'")]
BackendArg = Annotated[Backend, Field(description="bpftrace script, BCC program, or auto (bpftrace unless only BCC "
                                                  "can do it)")]
ProgramArg = Annotated[str, Field(description="A bpftrace program (or a BCC Python program, for explain)")]


def build(tools: AgentTools) -> MCPServer:
    """The server with its tools and resources."""
    from .. import __version__

    server: MCPServer = MCPServer("gpttrace", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool(annotations=ReadOnly)
    async def plan(request: Request, backend: BackendArg = "auto") -> PlanResult:
        """Plan a tracing program for a request, without running it: what was understood (and what of the request
        it leaves out), the program text, a short explanation, and whether it loads on this kernel (it is loaded
        and attached once, then detached). A request that cannot be mapped, or that asks for something unsafe,
        is refused with the reason and nearby requests that work."""
        return await _in_thread(functools.partial(tools.plan, request, backend))

    @server.tool(annotations=Tracing)
    async def run(
        request: Annotated[str | None, Field(description="What to trace, in plain words (or give program)")] = None,
        program: Annotated[str | None, Field(description="A bpftrace program you wrote (or give request)")] = None,
        seconds: Annotated[float | None, Field(description="How long to trace; default: a duration said in the "
                                                           "request, else the server's default (doctor)")] = None,
        max_lines: Annotated[int, Field(description="The most event lines to return (1-5000)")] = 200,
        backend: BackendArg = "auto",
        ctx: Context | None = None,
    ) -> RunResult:
        """Trace for a few seconds and return what was seen: the events (bounded; events_total and
        events_truncated say how many came), the aggregates printed at the end, lost events, and how it ended.
        Give a request in words (planned as plan does) or a bpftrace program of your own; either passes the
        unsafe check and the kernel's load check. Cancelling the call stops the trace and detaches it."""
        stop = Stop()
        call = functools.partial(tools.run, request, program, seconds, max_lines, backend, stop)
        return await _until_done(call, stop, _disconnected(ctx))

    @server.tool(annotations=ReadOnly)
    async def explain(program: ProgramArg, backend: BackendArg = "auto") -> ExplainResult:
        """Explain a bpftrace script or BCC program: each probe and what fires it, the fields it offers on this
        kernel (and what to use when this kernel lacks it), each builtin, helper and map, filters, output,
        overhead, and lessons to read next. Nothing is loaded."""
        return await _in_thread(functools.partial(tools.explain, program, backend))

    @server.tool(annotations=ReadOnly)
    async def probes(
        pattern: Annotated[str, Field(description="Part of a tracepoint's name, or a glob: 'openat', 'sched:*', "
                                                  "'*:*_exit'")],
        limit: Annotated[int, Field(description="The most probes to return (1-500)")] = 50,
    ) -> ProbesResult:
        """This kernel's tracepoints matching a pattern, each with its fields (read in bpftrace as args->NAME).
        This kernel may lack kprobes and fentry: doctor says; tracepoints and uprobes work."""
        return await _in_thread(functools.partial(tools.probes, pattern, limit))

    @server.tool(annotations=ReadOnly)
    async def examples(
        query: Annotated[str, Field(description="What to look for, e.g. 'tcp connect latency'; empty: all")] = "",
        limit: Annotated[int, Field(description="The most examples to return (1-200)")] = 10,
    ) -> ExamplesResult:
        """The worked examples gpttrace plans from, ranked for a query: title, tutorial lesson, requests that plan
        it, whether it runs on this kernel, and its resource (explanation and program)."""
        return await _in_thread(functools.partial(tools.examples, query, limit))

    @server.tool(annotations=ReadOnly)
    async def doctor() -> DoctorResult:
        """What this machine offers for tracing (root, bpftrace, BCC, tracefs, BTF, kprobes, uprobes, fentry,
        LSM) with the fix for each missing piece, and this server's limits (run time, unsafe programs)."""
        return await _in_thread(tools.doctor)

    _add_resources(server)
    return server


def _add_resources(server: MCPServer) -> None:
    for e in library.examples():
        server.resource(library.EXAMPLE_URI.format(id=e.id), name=f"example {e.id}", title=e.title,
                        description=f"Worked example: {e.title}", mime_type="text/markdown")(
            _reader(library.example_text, e))
    for n, entries in library.lessons().items():
        titles = "; ".join(e.title for e in entries)
        server.resource(library.LESSON_URI.format(n=n), name=f"lesson {n}", title=f"Tutorial lesson {n}",
                        description=f"Tutorial lesson {n}: {titles}", mime_type="text/markdown")(
            _reader(library.lesson_text, n, entries))


def _reader(fn: Callable[..., str], *args: Any) -> Callable[[], str]:
    def read() -> str:
        return fn(*args)

    return read


async def _in_thread(fn: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(fn)


async def _until_done(fn: Callable[[], T], stop: Stop, gone: Callable[[], Awaitable[bool]] | None = None) -> T:
    """``fn()`` in a worker thread. If the call is cancelled (or the server stops) first, the run is stopped
    and waited for before the cancellation goes on: nothing stays attached behind a call that has ended.
    ``gone`` says whether the client has disconnected (HTTP): then the run is stopped too, since nobody is
    left to read its result."""
    finished = threading.Event()

    def body() -> T:
        try:
            return fn()
        finally:
            finished.set()

    async def watch() -> None:
        assert gone is not None
        while not finished.is_set():
            await anyio.sleep(DISCONNECT_POLL)
            if await gone():
                stop("the client went away")
                return

    try:
        async with anyio.create_task_group() as tg:
            if gone is not None:
                tg.start_soon(watch)
            result = await anyio.to_thread.run_sync(body, abandon_on_cancel=True)
            tg.cancel_scope.cancel()
        return result
    finally:
        if not finished.is_set():
            stop("cancelled by the client")
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(finished.wait, STOP_WAIT)


def _disconnected(ctx: Context | None) -> Callable[[], Awaitable[bool]] | None:
    """Whether the HTTP request that carries this call has lost its client (None over stdio, where the server
    ends when its input does)."""
    try:
        request = ctx.request_context.request if ctx is not None else None
    except ValueError:  # no request: a call from inside the server
        return None
    check = getattr(request, "is_disconnected", None)
    return check if callable(check) else None


# -- serving ------------------------------------------------------------------------------------------------
def parse_http(address: str) -> tuple[str, int]:
    """HOST:PORT (or [::1]:PORT) of a loopback address: a tracing server run as root is for this machine."""
    host, sep, port_text = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"--http {address}: expected HOST:PORT, e.g. 127.0.0.1:8765")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise UsageError(f"--http {address}: gpttrace serves only this machine (127.0.0.1, ::1 or localhost): "
                             "it loads programs into the kernel as root, and the HTTP transport has no login",
                             "use 127.0.0.1:PORT, and reach it from elsewhere through an SSH tunnel")
    return host, int(port_text)


def serve(tools: AgentTools, http: tuple[str, int] | None) -> None:
    """Serve until the client goes away (stdio) or SIGINT/SIGTERM; every run left is stopped before the end."""
    server = build(tools)
    try:
        if http is None:
            _stop_on_signals(tools)
            anyio.run(server.run_stdio_async)
        else:
            anyio.run(functools.partial(_serve_http, server, *http))  # uvicorn stops on SIGINT/SIGTERM
    finally:
        tools.stop_all("the server stopped")


def _stop_on_signals(tools: AgentTools) -> None:
    """On SIGINT or SIGTERM: stop every run, wait until its tracer has exited, and exit (130). The stdio
    transport cannot be cancelled while it waits for the client's next line, so the server ends here rather
    than through it."""

    def finish() -> None:
        tools.stop_all("the server stopped")
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(ExitCode.INTERRUPTED)

    def handler(signum: int, frame: object) -> None:
        threading.Thread(target=finish, name="gpttrace-mcp-stop").start()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


async def _serve_http(server: MCPServer, host: str, port: int) -> None:
    import uvicorn

    app = server.streamable_http_app(host=host)
    # a short graceful shutdown: calls still running are cancelled (and their runs stopped) after 3 s
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)
    await uvicorn.Server(config).serve()
