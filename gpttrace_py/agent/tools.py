"""The MCP tools as plain functions with typed results; server.py only wires them to the protocol.

Everything goes through the same pieces as the command line: planning.plan.make_plan (through the trace
service, service/trace.py: refusals, the understood record, retries after a load failure), safety.check on the program
text that will run, the runner (run/), explain, the kernel catalog, the corpus and doctor's checks. What
comes back is bounded and cleaned (bounds.py). Nothing here imports the MCP SDK.
"""

from __future__ import annotations

import fnmatch
import io
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from ..errors import ExitCode, GpttraceError, UnmappableIntent
from ..ui import UI
from .bounds import MESSAGES, Aggregate, Collector, Event, clean, clip
from .client_program import MAX_PROGRAM_BYTES, READY_PREFIX, prepare

if TYPE_CHECKING:
    from ..run import RunOutcome
    from ..service.options import TraceResult

Backend = Literal["auto", "bpftrace", "bcc"]
MAX_REQUEST_CHARS = 2000
MAX_LINES = 5000  # the most event lines one run returns
RETRIES = 3  # corrected programs tried after a load failure, as the command line does


# -- results ------------------------------------------------------------------------------------------------
class Refusal(BaseModel):
    outcome: Literal["ok", "refused", "failed"] = Field(
        default="ok", description="ok; refused: the request or program is not acceptable here (reason says why, "
                                  "hint what to do); failed: it was tried and did not work")
    reason: str | None = Field(default=None, description="Why it was refused or failed")
    hint: str | None = Field(default=None, description="What to do instead")
    suggestions: list[str] = Field(default_factory=list, description="Requests gpttrace can map, near this one")


class PlanFacts(Refusal):
    understood: str | None = Field(default=None, description="What the program does, in words: check it against "
                                                             "what was asked")
    not_honoured: list[str] = Field(default_factory=list, description="Parts of the request the program leaves out")
    notes: list[str] = Field(default_factory=list)
    source: str | None = Field(default=None, description="What the program was made from (a worked example, a "
                                                         "syscall, a tracepoint...)")
    backend: str | None = Field(default=None, description="bpftrace or bcc")
    program: str | None = Field(default=None, description="The program text")
    attempts: list[str] = Field(default_factory=list, description="Programs that did not load before this one")


class PlanResult(PlanFacts):
    explanation: str | None = Field(default=None, description="What the program traces and why these probes; "
                                                              "the explain tool walks it line by line")
    loads: bool | None = Field(default=None, description="Whether it loaded and attached on this kernel (a dry run)")


class RunResult(PlanFacts):
    events: list[Event] = Field(default_factory=list)
    events_total: int = Field(default=0, description="Events the program printed")
    events_truncated: bool = Field(default=False, description="More events came than were returned (max_lines or "
                                                              "the byte limit)")
    aggregates: list[Aggregate] = Field(default_factory=list, description="The maps printed at the end")
    aggregates_truncated: bool = False
    lost: int = Field(default=0, description="Events the kernel dropped (its buffer was full)")
    ended: str | None = Field(default=None, description="How the run ended")
    seconds: float = Field(default=0.0, description="Wall time of the call")
    messages: list[str] = Field(default_factory=list, description="What the tracer and gpttrace said (the last "
                                                                  "lines)")


class ExplainResult(Refusal):
    backend: str | None = None
    explanation: str = ""
    truncated: bool = False


class ProbeField(BaseModel):
    name: str
    type: str = Field(description="The C type from the tracepoint's format")
    kind: str = Field(description="int, str (read as text), ptr_str (a pointer to text: str(args->NAME)), ip4, "
                                  "ip6, array, ptr")


class Probe(BaseModel):
    probe: str = Field(description="As bpftrace attaches it: tracepoint:CATEGORY:NAME")
    fields: list[ProbeField] = Field(description="Read in bpftrace as args->NAME")


class ProbesResult(Refusal):
    probes: list[Probe] = Field(default_factory=list)
    matched: int = 0
    truncated: bool = False


class ExampleInfo(BaseModel):
    id: str
    title: str
    lesson: str | None = Field(default=None, description="The tutorial lesson it teaches")
    tags: list[str] = Field(default_factory=list)
    ask: list[str] = Field(default_factory=list, description="Requests that plan it")
    runnable_here: bool
    why_not: str | None = None
    resource: str = Field(description="Its resource: the explanation and the program")


class ExamplesResult(Refusal):
    examples: list[ExampleInfo] = Field(default_factory=list)


class Check(BaseModel):
    name: str
    ok: bool
    value: str
    fix: str | None = None


class DoctorResult(BaseModel):
    ready: bool = Field(description="Whether programs can be loaded here")
    checks: list[Check]
    unsafe_allowed: bool = Field(description="Whether the server runs programs that change the system")
    default_seconds: float
    max_seconds: float
    max_runs: int = Field(description="Runs at once")


# -- the service ------------------------------------------------------------------------------------------
class AgentUI(UI):
    """The runner's and the pipeline's output, kept for the client: event lines into a Collector, messages
    (bounded) for the result, the program listing nowhere (it is returned as text)."""

    def __init__(self, collector: Collector | None = None) -> None:
        super().__init__(stdout=io.StringIO(), stderr=io.StringIO(), stdin=io.StringIO())
        self.collector = collector
        self.messages: deque[str] = deque(maxlen=MESSAGES)

    def out(self, line: str) -> None:
        if self.collector is not None:
            self.collector.line(line)

    def talk(self, message: str) -> None:
        for line in message.splitlines():
            if line.strip() and not line.startswith(READY_PREFIX):
                self.messages.append(clean(line))

    warn = talk

    def show_program(self, program: Any, spec: Any, source: str = "") -> None:
        pass

    def show_spec(self, spec: Any) -> None:
        pass

    def confirm(self, question: str) -> bool:
        return False


@dataclass
class Stop:
    """Stops a run: the time cap, a cancelled call, the server going away. The first reason given wins."""

    event: threading.Event = field(default_factory=threading.Event)
    why: str | None = None

    def __call__(self, why: str) -> None:
        if self.why is None:
            self.why = why
        self.event.set()


@dataclass
class AgentTools:
    unsafe: bool = False  # the person who started the server allowed programs that change the system
    default_seconds: float = 10.0
    max_seconds: float = 60.0
    max_runs: int = 4
    _slots: threading.BoundedSemaphore = field(init=False)
    _stops: dict[int, Stop] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_runs)

    # -- plan ---------------------------------------------------------------------------------------------
    def plan(self, request: str, backend: Backend = "auto") -> PlanResult:
        try:
            request = _request(request)
            from ..planning.select import get_planner
            from ..service.options import TraceOptions
            from ..service.trace import TraceService

            ui = AgentUI()
            options = TraceOptions(backend=backend, retries=RETRIES, yes=True, dry_run=True, unsafe=self.unsafe)
            self._take_slot()  # the dry run loads the program
            try:
                result = TraceService(get_planner(offline=True), options, ui).trace(request)
            finally:
                self._slots.release()
        except GpttraceError as exc:
            return PlanResult(**_refused(exc), loads=False if exc.code == ExitCode.TRACE_FAILED else None)
        facts = _facts(result)
        spec = result.spec
        explanation = clean(f"{spec.title}: {spec.rationale}".rstrip(": ")) if spec is not None else None
        return PlanResult(**facts, explanation=explanation, loads=True)

    # -- run ----------------------------------------------------------------------------------------------
    def run(self, request: str | None, program: str | None, seconds: float | None, max_lines: int,
            backend: Backend, stop: Stop) -> RunResult:
        started = time.monotonic()
        try:
            if (request is None) == (program is None):
                raise GpttraceError("give either a request or a program", "request: what to trace, in words; "
                                    "program: a bpftrace program", ExitCode.USAGE)
            if seconds is not None and not 0 < seconds <= self.max_seconds:
                raise GpttraceError(f"seconds must be more than 0 and at most {self.max_seconds:g} (this server's "
                                    "cap)", f"ask for {self.max_seconds:g} s or less", ExitCode.USAGE)
            if not 1 <= max_lines <= MAX_LINES:
                raise GpttraceError(f"max_lines must be from 1 to {MAX_LINES}", None, ExitCode.USAGE)
            self._take_slot()
        except GpttraceError as exc:
            return RunResult(**_refused(exc), seconds=round(time.monotonic() - started, 3))
        key = id(stop)
        with self._lock:
            self._stops[key] = stop
        cap = threading.Timer(self.max_seconds, stop, args=(f"stopped at this server's cap of {self.max_seconds:g} s",))
        cap.daemon = True
        cap.start()
        collector = Collector(max_lines)
        ui = AgentUI(collector)
        try:
            if program is not None:
                result = self._run_program(program, seconds, stop, ui)
            else:
                result = self._run_request(_request(request or ""), seconds, backend, stop, ui)
        except GpttraceError as exc:
            failure = getattr(exc, "failure", None)
            out = RunResult(**_refused(exc), messages=list(ui.messages))
            if failure is not None and failure.log:
                out.messages += [clean(ln) for ln in failure.log.splitlines() if ln.strip()][:20]
            out.seconds = round(time.monotonic() - started, 3)
            return out
        finally:
            cap.cancel()
            with self._lock:
                self._stops.pop(key, None)
            self._slots.release()
        outcome = result.outcome
        crashed = outcome.crashed if outcome is not None else None
        facts = _facts(result)
        if program is not None:  # the client's text, without the line that tells when it is attached
            facts["program"] = clip(program)[0]
        return RunResult(
            **facts, outcome="failed" if crashed else "ok", reason=crashed,
            events=collector.events, events_total=result.events, events_truncated=collector.events_truncated,
            aggregates=collector.aggregates, aggregates_truncated=collector.aggregates_truncated,
            lost=outcome.lost if outcome is not None else 0, ended=self._ended(outcome, stop, seconds, result),
            seconds=round(time.monotonic() - started, 3), messages=list(ui.messages))

    def _take_slot(self) -> None:
        """One of the ``max_runs`` programs that may be loaded at once, or a refusal."""
        if not self._slots.acquire(blocking=False):
            raise GpttraceError(f"{self.max_runs} programs are already loaded by this server's calls",
                                "wait for a run to end", ExitCode.USAGE)

    def _run_request(self, request: str, seconds: float | None, backend: Backend, stop: Stop,
                     ui: AgentUI) -> TraceResult:
        from ..planning.select import get_planner
        from ..service.options import TraceOptions
        from ..service.trace import TraceService

        options = TraceOptions(backend=backend, retries=RETRIES, yes=True, duration=seconds, json_out=True,
                               unsafe=self.unsafe, max_seconds=self.default_seconds, stop_event=stop.event)
        return TraceService(get_planner(offline=True), options, ui).trace(request)

    def _run_program(self, text: str, seconds: float | None, stop: Stop, ui: AgentUI) -> TraceResult:
        from ..service.options import TraceOptions
        from ..service.trace import TraceService

        planned = prepare(text, self.unsafe)
        options = TraceOptions(backend="bpftrace", retries=0, yes=True, duration=seconds, json_out=True,
                               unsafe=self.unsafe, max_seconds=self.default_seconds, stop_event=stop.event)
        return TraceService(None, options, ui).run_given(planned)

    def _ended(self, outcome: RunOutcome | None, stop: Stop, seconds: float | None, result: TraceResult) -> str:
        """How a run ended, in words."""
        if outcome is None:
            return "not run"
        if outcome.crashed:
            return clean(outcome.crashed)
        reason = outcome.stop_reason
        if reason == "stop requested":
            return stop.why or "stopped"
        if reason == "duration":
            said = ((result.planned.plan if result.planned is not None else None) or {}).get("duration_s")
            if seconds is not None:
                return f"stopped after {seconds:g} s, as asked"
            if said:
                return f"stopped after {said:g} s, as the request said"
            return f"stopped after this server's default of {self.default_seconds:g} s"
        if reason is None:
            return "the program ended by itself"
        return clean(reason)

    def stop_all(self, why: str, wait: float = 15.0) -> bool:
        """Stop every run in progress; True once all have ended (within ``wait`` s)."""
        with self._lock:
            stops = list(self._stops.values())
        for stop in stops:
            stop(why)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with self._lock:
                if not self._stops:
                    return True
            time.sleep(0.05)
        return False

    # -- explain, probes, examples, doctor --------------------------------------------------------------------
    def explain(self, program: str, backend: Backend = "auto") -> ExplainResult:
        from ..explain import detect_backend, explain_program
        from ..kernel.catalog import Catalog

        if not program.strip():
            return ExplainResult(outcome="refused", reason="the program is empty")
        if len(program.encode("utf-8", "replace")) > MAX_PROGRAM_BYTES:
            return ExplainResult(outcome="refused", reason=f"the program is longer than {MAX_PROGRAM_BYTES} bytes")
        which = detect_backend(program) if backend == "auto" else backend
        text = explain_program(program, which, Catalog(), color=False, listing=False)
        text, cut = clip(text)
        return ExplainResult(backend=which, explanation=text, truncated=cut)

    def probes(self, pattern: str, limit: int = 50) -> ProbesResult:
        from ..kernel.tracefs import TracepointIndex, tracefs_root

        pat = pattern.strip().removeprefix("tracepoint:")
        if not re.fullmatch(r"[A-Za-z0-9_:*?.\-\[\]]{1,200}", pat):
            return ProbesResult(outcome="refused", reason="a pattern is letters, digits, _ : . - and the wildcards "
                                "* ? [...] (1-200 characters)", hint="e.g. sched:*, *openat*, block_rq")
        if not 1 <= limit <= 500:
            return ProbesResult(outcome="refused", reason="limit must be from 1 to 500")
        index = TracepointIndex(tracefs_root())
        if not index.available:
            return ProbesResult(outcome="failed", reason="tracefs is not mounted",
                                hint="mount -t tracefs nodev /sys/kernel/tracing")
        glob = any(c in pat for c in "*?[")
        names = []
        for cat, name in sorted(index.all_names()):
            full = f"{cat}:{name}"
            if glob:
                hit = fnmatch.fnmatchcase(full, pat) or (":" not in pat and fnmatch.fnmatchcase(name, pat))
            else:
                hit = pat.lower() in full.lower()
            if hit:
                names.append((cat, name))
        found: list[Probe] = []
        for cat, name in names[:limit]:
            tp = index.get(cat, name)
            fields = [ProbeField(name=f.name, type=clean(f.ctype), kind=f.kind) for f in tp.user_fields] if tp else []
            found.append(Probe(probe=f"tracepoint:{cat}:{name}", fields=fields))
        return ProbesResult(probes=found, matched=len(names), truncated=len(names) > limit)

    def examples(self, query: str = "", limit: int = 10) -> ExamplesResult:
        from ..cli.examples import runnable_here
        from ..kernel.catalog import Catalog
        from .library import EXAMPLE_URI, examples

        if len(query) > MAX_REQUEST_CHARS or not 1 <= limit <= 200:
            return ExamplesResult(outcome="refused", reason=f"a query is at most {MAX_REQUEST_CHARS} characters, "
                                  "and limit from 1 to 200")
        if query.strip():
            from ..planning.retrieval import index

            entries = [h.example for h in index().search(query, limit=limit)]
        else:
            entries = list(examples())[:limit]
        catalog = Catalog()
        out = []
        for e in entries:
            gap = runnable_here(e, catalog)
            out.append(ExampleInfo(id=e.id, title=e.title, lesson=e.lesson, tags=list(e.tags),
                                   ask=list(e.paraphrases[:3]), runnable_here=gap is None, why_not=gap,
                                   resource=EXAMPLE_URI.format(id=e.id)))
        return ExamplesResult(examples=out)

    def doctor(self) -> DoctorResult:
        import os

        from ..cli.doctor import checks
        from ..kernel.features import detect, find_bcc_python, probe_loadable
        from ..kernel.tracefs import TracepointIndex, tracefs_root

        f = detect()
        f.bcc_python = find_bcc_python()
        f = probe_loadable(f)
        n_tp = len(TracepointIndex(tracefs_root()).all_names()) if f.tracefs else 0
        headers = os.path.exists(f"/lib/modules/{f.kernel}/build")
        rows = []
        for name, value, fix in checks(f, n_tp, headers):
            ok = bool(value) and value != "not probed"
            shown = "yes" if value is True else ("no" if value in (False, None) else str(value))
            rows.append(Check(name=name, ok=ok, value=clean(shown), fix=None if ok else fix))
        return DoctorResult(ready=bool(f.root and f.tracefs and (f.bpftrace or f.bcc_python)), checks=rows,
                            unsafe_allowed=self.unsafe, default_seconds=self.default_seconds,
                            max_seconds=self.max_seconds, max_runs=self.max_runs)


# -- helpers ----------------------------------------------------------------------------------------------
def _request(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise GpttraceError("the request is empty", "say what to trace, e.g. \"trace files opened by cat\"",
                            ExitCode.USAGE)
    if len(text) > MAX_REQUEST_CHARS:
        raise GpttraceError(f"the request is longer than {MAX_REQUEST_CHARS} characters", "say it shorter",
                            ExitCode.USAGE)
    return text


def _refused(exc: GpttraceError) -> dict[str, Any]:
    suggestions = exc.suggestions if isinstance(exc, UnmappableIntent) else []
    hint = exc.hint
    if hint and "--unsafe" in hint:  # a client cannot pass it: the server's owner can
        hint = "only the person who starts this server can allow it (gpttrace mcp --unsafe)"
    if suggestions:  # the command line's hint spells them as commands
        hint = "ask for one of the suggestions, or say it another way"
    return {"outcome": "refused" if exc.code == ExitCode.USAGE else "failed",
            "reason": clip(exc.message)[0], "hint": clip(hint)[0] if hint else None,
            "suggestions": [clean(s) for s in suggestions]}


def _facts(result: TraceResult) -> dict[str, Any]:
    """What a TraceResult says about the program: the plan record, the text, the failed attempts."""
    planned = result.planned
    record = (planned.plan if planned is not None else None) or {}
    program = result.program
    return {
        "understood": clean(record["understood"]) if record.get("understood") else None,
        "not_honoured": [clean(w) for w in record.get("not_honoured") or []],
        "notes": [clean(n) for n in record.get("notes") or []],
        "source": clean(record.get("source") or (planned.source if planned is not None else "")) or None,
        "backend": program.backend if program is not None else None,
        "program": clip(program.text)[0] if program is not None else None,
        "attempts": [clean(f.summary()) for f in result.attempts],
    }
