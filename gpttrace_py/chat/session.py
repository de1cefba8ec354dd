"""The chat's state and behaviour, independent of the terminal: what a line does, what a run does.

A ``ChatSession`` keeps the current program (spec + rendered text), the planner, the session log and, while a
trace runs, the background thread and its stop event. ``handle(line)`` is the whole protocol: a slash-command,
or a message that plans a new program or refines the current one (shown, not run). ``run()`` starts the
trace service in a thread with ``TraceOptions(stop_event=..., yes=True)`` after the chat's own confirmation;
``stop()`` ends it gently, so the tracer prints its aggregates.

The REPL (``repl.py``) adds the prompt, completion, history and key bindings on top.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import GpttraceError, UnmappableIntent, UsageError
from ..kernel.catalog import Catalog
from ..planning.base import Conversation, PlanContext, Planner
from ..render.program import RenderedProgram
from ..sessionlog import LoggingUI, SessionLog
from ..spec import ProgramSpec
from . import commands

if TYPE_CHECKING:
    from ..service.options import TraceOptions

STOP_WAIT_SECONDS = 20.0
READY_TAIL = "Hit Ctrl-C to end."
MAX_INTENT = 1000  # a refined program's intent: the question and its refinements, for the planner's retries


@dataclass
class ChatUI(LoggingUI):
    """The chat's UI: tees events and failed attempts into the session log; during a run the program is not
    shown again (it was shown, and logged, when it was planned)."""

    log_programs: bool = False
    running: bool = False
    ask: Callable[[str], bool] | None = None
    attached: threading.Event = field(default_factory=threading.Event)

    def out(self, line: str) -> None:
        super().out(line)
        if self.running and not self.attached.is_set() and line.startswith("Tracing ") and line.endswith(READY_TAIL):
            self.attached.set()  # the program's BEGIN line: every probe is attached

    def show_program(self, program: RenderedProgram, spec: ProgramSpec | dict[str, Any], source: str = "") -> None:
        if self.running:
            return  # already shown when it was planned; the trace service shows it again before running
        super().show_program(program, spec, source)

    def confirm(self, question: str) -> bool:
        if self.ask is not None:
            return self.ask(question)
        return super().confirm(question)


class ChatSession:
    def __init__(self, planner: Planner, ui: ChatUI, *, catalog: Catalog | None = None, backend: str = "auto",
                 yes: bool = False, log: SessionLog | None = None,
                 confirm: Callable[[str], bool] | None = None) -> None:
        self.planner = planner
        self.ui = ui
        self.catalog = catalog or Catalog()
        self.backend = backend
        self.yes = yes
        self.log = log or SessionLog(mode="chat", enabled=False)
        self.ui.log = self.log
        self.confirm = confirm or (lambda q: ui.confirm(q))
        self.conversation = Conversation()
        self.spec: ProgramSpec | None = None
        self.program: RenderedProgram | None = None
        self.intent: str = ""  # the message the current program answers (refinements extend it)
        self.duration: float | None = None
        self.done = False
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None
        self._lock = threading.Lock()
        self.run_started: float | None = None
        self.last_events = 0
        self.on_change: Callable[[], None] | None = None  # the REPL redraws its toolbar

    # -- state ------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def status(self) -> str:
        if self.running:
            secs = time.monotonic() - (self.run_started or time.monotonic())
            if not self.ui.attached.is_set():
                return f"loading the program into the kernel ({secs:.0f} s)... /stop or Ctrl-C cancels"
            return f"tracing {self.spec.title if self.spec else ''} for {secs:.0f} s: /stop or Ctrl-C ends it"
        if self.spec is None:
            return "no program yet: say what to trace"
        backend = self.program.backend if self.program else self.backend
        dur = f", {self.duration:g} s runs" if self.duration else ""
        return f"program: {self.spec.title} ({backend}{dur}) - /run runs it"

    def ctx(self) -> PlanContext:
        return PlanContext(catalog=self.catalog, backend=self.backend, conversation=self.conversation)

    # -- the protocol -----------------------------------------------------------------------------------
    def handle(self, line: str) -> bool:
        """Do what one input line says; False once the session should end."""
        text = line.strip()
        if not text:
            return not self.done
        try:
            if text.startswith("/"):
                self.command(text)
            else:
                self.message(text)
        except GpttraceError as exc:
            self._error(exc.message, exc.hint)
        except KeyboardInterrupt:
            self.ui.warn("(cancelled)")
        except Exception as exc:
            self._error(f"internal error: {type(exc).__name__}: {exc}",
                        "the session goes on; see the log for details")
            self.log.event("traceback", text=traceback.format_exc())
        return not self.done

    def command(self, text: str) -> None:
        name, _, arg = text[1:].partition(" ")
        arg = arg.strip()
        cmd = commands.lookup(name)
        if cmd is None:
            near = [c.name for c in commands.COMMANDS if c.name.startswith(name.lower()[:2])] if name else []
            raise UsageError(f"unknown command /{name}", f"did you mean /{near[0]}?" if near else "see /help")
        if cmd.name != "lesson":  # a lesson logs itself as a turn
            self.log.event("command", name=cmd.name, arg=arg or None)
        getattr(self, f"cmd_{cmd.name}")(arg)

    def message(self, text: str) -> None:
        from ..planning import refine as refine_mod
        from ..planning.language import detect, read

        said = text
        if detect(text) == "zh":  # refinements are read in English words, as requests are ("改成直方图")
            reading = read(text)
            if not reading.unknown:
                text = reading.text
        duration, run, rest = refine_mod.run_request(text)
        if duration is not None:
            self.duration = duration
            self.ui.talk(f"(runs stop after {duration:g} s; /duration off to run until /stop)")
        if not rest and (run or duration is not None):
            self.log.intent(text, mode="run")
            if run:
                self.cmd_run("")
            return
        refining = self.spec is not None and refine_mod.is_refinement(text, self.spec, self.catalog)
        self.log.intent(text, mode="refine" if refining else "new")
        if refining:
            self._refine(rest)
        else:
            from ..planning.plan import make_plan

            try:
                plan = make_plan(self.planner, said if said != text else rest, self.ctx())
                spec = plan.spec
            except UnmappableIntent:
                # No program for it as a topic: it may still be an edit of the current one.
                if self.spec is None or not refine_mod.understands(rest):
                    raise
                self._refine(rest)
            else:
                from ..planning.lexicon import load

                say = load(plan.language).say
                self.ui.talk(f"{say('understood')}: {plan.understood()}")
                if plan.not_honoured:
                    self.ui.warn(f"{say('not_honoured')}: {', '.join(plan.not_honoured)}")
                if plan.duration_s:  # "for 5 seconds": how long /run runs
                    self.duration = plan.duration_s
                self._adopt(spec, rest, new=True, planned_from=self._source())
                if run:
                    self.ui.talk("(a new program is shown first: /run runs it)")
                    return
        if run:
            self.cmd_run("")

    # -- planning and refining ----------------------------------------------------------------------------
    def _refine(self, request: str) -> None:
        from ..planning import refine as refine_mod
        from ..planning.refine_edits import RefineError

        old = self.spec
        assert old is not None
        notes: list[str] = []
        if self.planner.name == "offline":
            result = refine_mod.apply(request, old, self.catalog)
            if not result.understood:
                raise RefineError(f"cannot tell how to change the program from {request!r}",
                                  "say what to change (see /help), or /new to start over")
            new, changes, notes = result.spec, result.changes, result.notes
        else:
            new = self.planner.refine(request, old, self.ctx())
            changes = refine_mod.describe_changes(old, new)
        if new.model_dump() == old.model_dump():
            self.ui.talk("Nothing to change: " + ("; ".join(notes) if notes else "the program already does that") + ".")
            return
        old_backend = self.backend
        if new.backend != old.backend and new.backend != "auto":
            self.backend = new.backend  # "use BCC instead" outranks --backend
        intent = f"{self.intent} ({request})" if self.intent else request
        try:
            self._adopt(new, intent[-MAX_INTENT:], new=False, changes=changes, notes=notes)
        except GpttraceError:
            self.backend = old_backend
            raise

    def _adopt(self, spec: ProgramSpec, intent: str, *, new: bool, planned_from: str = "",
               changes: list[str] | None = None, notes: list[str] | None = None) -> None:
        """Make ``spec`` the current program: check it against the kernel, render it, show it (not run it)."""
        from ..planning import edits
        from ..service.backends import choose_backend, render

        spec = edits.fit_to_kernel(spec, self.catalog)
        backend = choose_backend(spec, self.backend, self.catalog)
        try:
            program = render(spec, backend, self.catalog)
        except (ValueError, TypeError) as exc:
            raise GpttraceError(f"cannot render that program for {backend}: {exc}",
                                "try another wording, or /backend to switch flavour") from None
        problems = self.catalog.check_spec(spec)
        self.spec, self.program, self.intent = spec, program, intent
        self.conversation.spec = spec
        self.conversation.intents.append(intent)
        self.log.spec(spec, mode="new" if new else "refine", changes=changes or [])
        self.log.program(program)
        if changes:
            self.ui.talk("Changed: " + "; ".join(changes) + ".")
        for n in notes or []:
            self.ui.talk(f"(note: {n})")
        self.ui.show_program(program, spec, planned_from)
        for p in problems:
            self.ui.warn(f"warning: {p} (running it will let the planner try another program)")
        self.ui.talk("/run runs it; or refine it in words (\"only for pid 1234\", \"count by process instead\").")
        self._changed()

    def _source(self) -> str:
        cands = getattr(self.planner, "last_candidates", None)
        name = self.planner.name
        if cands:
            return f"{name}: {cands[0].source}"
        return name

    # -- running ------------------------------------------------------------------------------------------
    def cmd_run(self, arg: str) -> None:
        if arg:
            self.cmd_duration(arg)
        if self.running:
            self.ui.talk("A trace is already running: /stop it first.")
            return
        if self.spec is None or self.program is None:
            self.ui.talk("Nothing to run yet: say what to trace first (e.g. \"trace files opened by cat\").")
            return
        if not self.yes:
            from .. import safety

            uses = safety.check(self.program.text, self.program.backend, True)
            question = "Run this program?"
            if uses:
                question = f"This program CHANGES THE SYSTEM ({', '.join(n for n, _ in uses)}). Run it anyway?"
            if not self.confirm(question):
                self.ui.talk("Not run.")
                self.log.event("declined")
                return
        self.start_run()

    def start_run(self) -> None:
        from ..service.options import TraceOptions

        assert self.spec is not None
        stop = threading.Event()
        options = TraceOptions(backend=self.backend, yes=True, duration=self.duration, stop_event=stop, retries=2,
                               max_seconds=0)
        spec, intent = self.spec, self.intent or self.spec.title
        self._stop = stop
        self.run_started = time.monotonic()
        self.log.run_start(title=spec.title, backend=self.program.backend if self.program else None,
                           duration=self.duration)
        how = f"for {self.duration:g} s" if self.duration else "until /stop or Ctrl-C"
        self.ui.talk(f"Running {spec.title!r} {how}; keep typing meanwhile.")
        self.ui.attached.clear()
        self.ui.running = True
        self._thread = threading.Thread(target=self._run, args=(spec, intent, options), name="gpttrace-run",
                                        daemon=True)
        self._thread.start()
        self._changed()

    def _run(self, spec: ProgramSpec, intent: str, options: TraceOptions) -> None:
        from ..errors import ExitCode
        from ..service.trace import TraceService

        events = 0
        outcome = "error"
        try:
            result = TraceService(self.planner, options, self.ui, self.catalog, self.conversation).trace(intent, spec)
            events = result.events
            outcome = "stopped" if result.code in (ExitCode.OK, ExitCode.INTERRUPTED) else f"exit {int(result.code)}"
            if result.spec is not None and result.spec.model_dump() != spec.model_dump():
                self.ui.talk(f"(the planner revised the program to load: {result.spec.title})")
                self.log.spec(result.spec, mode="revised")
                if result.program is not None:
                    self.log.program(result.program)
                with self._lock:
                    self.spec, self.program = result.spec, result.program
        except GpttraceError as exc:
            self._error(exc.message, exc.hint)
        except Exception as exc:
            self._error(f"the run failed: {type(exc).__name__}: {exc}")
            self.log.event("traceback", text=traceback.format_exc())
        finally:
            self.ui.running = False
            self.last_events = events
            secs = time.monotonic() - (self.run_started or time.monotonic())
            self.log.run_end(outcome=outcome, events=events, seconds=round(secs, 2))
            if outcome != "error":
                self.ui.talk(f"(trace {outcome} after {secs:.1f} s: {events} event{'s' if events != 1 else ''})")
            self._changed()

    def cmd_stop(self, arg: str = "") -> None:
        if not self.running:
            self.ui.talk("Nothing is running.")
            return
        if not self.ui.attached.is_set():
            # The tracer only listens for a stop once it is attached: do not hold the prompt meanwhile.
            self.stop(wait=False)
            self.ui.talk("(the program is still loading; it stops as soon as it is attached)")
            return
        self.stop(wait=True)

    def stop(self, wait: bool = True) -> None:
        """Stop the running trace gently (its aggregates are printed); with ``wait``, until it has ended."""
        if self._stop is not None:
            self._stop.set()
        t = self._thread
        if wait and t is not None and t is not threading.current_thread():
            t.join(STOP_WAIT_SECONDS)
            if t.is_alive():
                self.ui.warn("(the tracer is slow to stop; it goes on ending in the background)")

    # -- showing ------------------------------------------------------------------------------------------
    def _need_program(self) -> bool:
        if self.spec is None or self.program is None:
            self.ui.talk("No program yet: say what to trace first.")
            return False
        return True

    def cmd_show(self, arg: str = "") -> None:
        if self._need_program():
            assert self.program is not None and self.spec is not None
            was, self.ui.running = self.ui.running, False
            try:
                self.ui.show_program(self.program, self.spec, self._source())
            finally:
                self.ui.running = was

    def cmd_spec(self, arg: str = "") -> None:
        if self._need_program():
            assert self.spec is not None
            self.ui.warn(self.spec.model_dump_json(indent=2, exclude_none=True))

    def cmd_explain(self, arg: str = "") -> None:
        if not self._need_program():
            return
        assert self.program is not None and self.spec is not None
        from ..explain import explain_program  # loaded only when asked for

        text = None
        try:
            text = explain_program(self.program.text, self.program.backend, self.catalog, color=self.ui.color)
        except GpttraceError:
            raise
        except Exception as exc:  # the chat boundary: the spec's own account is shown instead
            self.log.event("traceback", text=traceback.format_exc())
            self.ui.warn(f"(the line-by-line explainer failed: {exc}; here is what the spec says)")
        if not text:
            text = explain_spec(self.spec, self.program, self.catalog)
        self.ui.talk(str(text).rstrip("\n"))
        self.log.event("explain", text=str(text)[:4000])

    def cmd_save(self, arg: str) -> None:
        if not arg:
            raise UsageError("/save needs a file name", "e.g. /save opens.bt, or /save opens.json for the spec")
        if not self._need_program():
            return
        assert self.program is not None and self.spec is not None
        path = Path(arg).expanduser()
        if path.suffix == ".json":
            text = self.spec.model_dump_json(indent=2, exclude_none=True) + "\n"
        else:
            text = self.program.text
        from .. import safefs

        try:  # a new file renamed over the name: a symlink planted there is replaced, not followed
            safefs.write_output(path, text, 0o755 if path.suffix != ".json" and text.startswith("#!") else 0o644)
        except safefs.UnsafePath as exc:
            raise UsageError(f"not writing {path}: {exc}", "save it in a folder only you (root) can write") from None
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror}", "choose another file") from None
        what = "spec" if path.suffix == ".json" else f"{self.program.backend} program"
        self.ui.talk(f"(saved the {what} to {path})")
        self.log.event("saved", path=str(path), what=what)

    def cmd_backend(self, arg: str) -> None:
        if not arg:
            now = f" (the program is {self.program.backend})" if self.program else ""
            self.ui.talk(f"Backend: {self.backend}{now}")
            return
        if arg not in commands.BACKENDS:
            raise UsageError(f"unknown backend {arg!r}", "choose bpftrace, bcc or auto")
        from ..planning import edits

        old_backend = self.backend
        self.backend = arg
        if self.spec is not None:
            try:
                self._adopt(edits.set_backend(self.spec, arg), self.intent, new=False, changes=[f"backend {arg}"])
            except GpttraceError:
                self.backend = old_backend
                raise
        else:
            self.ui.talk(f"(programs will be {arg})")

    def cmd_duration(self, arg: str) -> None:
        from ..planning import refine as refine_mod

        if arg in ("off", "none", "0", ""):
            self.duration = None
            self.ui.talk("(runs go on until /stop or Ctrl-C)")
            return
        duration, _, _ = refine_mod.run_request(f"for {arg}" if not arg.startswith("for") else arg)
        if duration is None:
            try:
                duration = float(arg)
            except ValueError:
                raise UsageError(f"cannot read a duration in {arg!r}",
                                 "e.g. /duration 5, /duration 2m, /duration off") from None
        if duration <= 0:
            raise UsageError("the duration must be positive")
        self.duration = duration
        self.ui.talk(f"(runs stop after {duration:g} s)")
        self._changed()

    def cmd_examples(self, arg: str) -> None:
        from ..corpus import load
        from ..planning.retrieval import index

        if arg:
            hits = [h.example for h in index().search(arg, limit=8)]
            if not hits:
                self.ui.talk(f"No example matches {arg!r}; /examples alone lists them all.")
                return
        else:
            hits = list(load())
        for e in hits:
            lesson = f"  [lesson {e.lesson}]" if e.lesson else ""
            ask = f'  e.g. "{e.paraphrases[0]}"' if e.paraphrases else ""
            self.ui.talk(f"  {e.id:<18} {e.title}{lesson}")
            if ask and arg:
                self.ui.talk(f"  {'':<18}{ask}")
        self.ui.talk("Ask for one in words, or /lesson N to load a lesson's example.")

    def cmd_lesson(self, arg: str) -> None:
        from ..corpus import load

        n = arg.strip().lstrip("#")
        if not n.isdigit():
            lessons = sorted({e.lesson for e in load() if e.lesson}, key=int)
            raise UsageError("/lesson needs a lesson number", f"lessons with examples: {', '.join(lessons)}")
        found = sorted((e for e in load() if e.lesson == str(int(n))), key=lambda e: (len(e.id), e.id))
        if not found:
            lessons = sorted({e.lesson for e in load() if e.lesson}, key=int)
            raise UsageError(f"no example for lesson {n}", f"lessons with examples: {', '.join(lessons)}")
        e = found[0]
        self.ui.talk(f"Lesson {e.lesson}: {e.title}")
        if e.explanation:
            self.ui.talk(e.explanation.strip())
        if e.original is not None:
            o = e.original
            self.ui.talk(f"(the lesson uses {o.method}, which needs {o.needs}; {o.note.strip()})")
        if len(found) > 1:
            self.ui.talk("Other examples of this lesson: " + ", ".join(x.id for x in found[1:]))
        self.log.intent(f"/lesson {n}", mode="lesson", example=e.id)
        spec = e.spec
        if self.backend in ("bpftrace", "bcc"):
            from ..planning import edits

            spec = edits.set_backend(spec, self.backend)
        self._adopt(spec, e.title, new=True, planned_from=f"example {e.id}")

    def cmd_new(self, arg: str = "") -> None:
        self.spec = self.program = None
        self.intent = ""
        self.conversation.spec = None
        self.ui.talk("(no current program: the next message plans a new one)")
        self._changed()

    def cmd_log(self, arg: str = "") -> None:
        path = self.log.path
        self.ui.talk(f"This session is logged to {path}" if path else "Nothing logged yet.")

    def cmd_help(self, arg: str = "") -> None:
        self.ui.talk(commands.help_text())

    def cmd_quit(self, arg: str = "") -> None:
        self.quit()

    def quit(self) -> None:
        if self.running:
            self.ui.talk("(stopping the running trace)")
            self.stop(wait=True)
        if not self.done:
            self.log.event("quit")
        self.done = True

    # -- helpers ------------------------------------------------------------------------------------------
    def _error(self, message: str, hint: str | None = None) -> None:
        self.ui.warn(f"error: {message}")
        if hint:
            self.ui.warn("  " + hint.replace("\n", "\n  "))
        self.log.error(message, hint)

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:
                pass


def explain_spec(spec: ProgramSpec, program: RenderedProgram, catalog: Catalog) -> str:
    """A plain account of a program from its spec (used when the line-by-line explainer is not available)."""
    from ..render.common import probe_comment

    lines = [f"{spec.title}.", ""]
    if spec.rationale:
        lines += [f"Why: {spec.rationale}", ""]
    if spec.start is not None:
        lines.append("It pairs two moments of the same event:")
        for p in spec.start.probes:
            lines.append(f"  at {p.text} ({probe_comment(p, catalog)})")
        saved = ", ".join(f"{s.expr} as start.{s.name}" for s in spec.start.save)
        key = ", ".join(spec.start.key)
        lines.append(f"    it remembers the time{' and ' + saved if saved else ''}, keyed by {key};")
        for p in spec.probes:
            lines.append(f"  at {p.text} ({probe_comment(p, catalog)})")
        lines.append("    it looks the start up again (delta = the time between the two) and then forgets it.")
    else:
        lines.append("It attaches to:")
        for p in spec.probes:
            lines.append(f"  {p.text}: {probe_comment(p, catalog)}")
    f = spec.filter
    conds = [f"the process name is {f.comm!r}" if f.comm else "", f"the process id is {f.pid}" if f.pid else "",
             f"{f.expr}" if f.expr else ""]
    conds = [c for c in conds if c]
    if conds:
        lines.append("Only events where " + " and ".join(conds) + " count.")
    if spec.print:
        lines.append("For each event it prints one line: " + ", ".join(
            f"{c.label or c.expr} ({c.expr})" for c in spec.print) + ".")
    for a in spec.aggregates:
        what = {"count": "counts events", "sum": f"adds up {a.value}", "avg": f"averages {a.value}",
                "min": f"keeps the smallest {a.value}", "max": f"keeps the largest {a.value}",
                "hist": f"builds a power-of-2 histogram of {a.value}",
                "lhist": f"builds a linear histogram of {a.value}",
                "stats": f"keeps count, average and total of {a.value}"}[a.func]
        by = f" per {', '.join(k.label or k.expr for k in a.keys)}" if a.keys else ""
        unit = f" (in {a.unit})" if a.unit else ""
        top = f", showing the top {a.top}" if a.top else ""
        lines.append(f"It {what}{unit}{by} in a BPF map{top}; the map is printed "
                     + (f"every {spec.interval_s} s and cleared." if spec.interval_s else "when the trace stops."))
    lines.append(f"It runs as a {program.backend} program; the kernel checks it with the BPF verifier before it "
                 "attaches.")
    return "\n".join(lines)


def spec_json(spec: ProgramSpec) -> str:
    return json.dumps(spec.model_dump(mode="json", exclude_none=True), indent=2)
