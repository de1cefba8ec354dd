"""Session logs: what was asked, planned, run and seen, one JSON object per line, appended as it happens.

A log lives in ``paths.state_dir()/sessions/<timestamp>.jsonl``. The chat REPL keeps one per session; the
one-shot CLI can keep one per run:

    log = SessionLog(mode="trace")
    log.event("intent", text=intent)
    log.spec(spec); log.program(program)
    log.output("a line the user saw")     # capped per run, the rest only counted
    log.event("run_end", events=12)

The file is created with O_EXCL in a directory checked by safefs and then held open by descriptor: each
``event`` is one ``write`` to it (nothing is buffered, so a crash or a kill loses nothing already written), and
the path is never opened again, so a symlink swapped in later changes nothing.
``sessions()`` and ``read()`` are what ``gpttrace log`` shows.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from . import safefs
from .paths import state_dir
from .ui import UI

OUTPUT_LINES_PER_RUN = 200  # output lines logged one by one per run; the rest are counted, and the tail is kept
TAIL_LINES = 40
MAX_LOG_BYTES = 256 << 20  # a log larger than this is not read back


def sessions_dir() -> Path:
    return state_dir() / "sessions"


class SessionLog:
    """An append-only JSONL log of one session. The file is created at the first event."""

    def __init__(self, mode: str = "chat", directory: Path | None = None, enabled: bool = True,
                 **info: Any) -> None:
        self.mode = mode
        self.directory = directory or sessions_dir()
        self.enabled = enabled
        self.path: Path | None = None
        self._lock = threading.Lock()
        self._info = info
        self._run_lines = 0
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._broken = False
        self._fd = -1

    @property
    def id(self) -> str | None:
        return self.path.stem if self.path else None

    # -- writing ---------------------------------------------------------------------------------------
    def event(self, kind: str, **data: Any) -> None:
        """Append one record ``{"t": ..., "kind": kind, **data}``; never raises (logging must not break a trace)."""
        if not self.enabled or self._broken:
            return
        record = {"t": datetime.now().isoformat(timespec="milliseconds"), "kind": kind, **data}
        try:
            line = json.dumps(record, default=_default, ensure_ascii=False)
        except (TypeError, ValueError):
            line = json.dumps({"t": record["t"], "kind": kind, "data": repr(data)[:2000]})
        with self._lock:
            try:
                if self.path is None:
                    self.path = self._create()
                    start = {"t": record["t"], "kind": "session", "mode": self.mode, "pid": os.getpid(),
                             **self._info}
                    self._append(json.dumps(start, default=_default, ensure_ascii=False))
                self._append(line)
            except OSError:
                self._broken = True  # a read-only or full disk: go on without a log

    def intent(self, text: str, **data: Any) -> None:
        self.event("intent", text=text, **data)

    def spec(self, spec: Any, **data: Any) -> None:
        dump = spec.model_dump(mode="json", exclude_none=True) if hasattr(spec, "model_dump") else spec
        self.event("spec", spec=dump, **data)

    def program(self, program: Any, **data: Any) -> None:
        self.event("program", backend=getattr(program, "backend", None), text=getattr(program, "text", str(program)),
                   **data)

    def error(self, message: str, hint: str | None = None, **data: Any) -> None:
        self.event("error", message=message, hint=hint, **data)

    def run_start(self, **data: Any) -> None:
        with self._lock:
            self._run_lines = 0
            self._tail.clear()
        self.event("run_start", **data)

    def output(self, line: str) -> None:
        """One line the run printed: logged as it comes up to a cap; the tail is kept for ``run_end``."""
        with self._lock:
            self._run_lines += 1
            self._tail.append(line)
            n = self._run_lines
        if n <= OUTPUT_LINES_PER_RUN:
            self.event("output", line=line)

    def run_end(self, **data: Any) -> None:
        with self._lock:
            lines, tail = self._run_lines, list(self._tail)
        self.event("run_end", lines=lines, tail=tail if lines > OUTPUT_LINES_PER_RUN else [], **data)

    # -- internals ---------------------------------------------------------------------------------------
    def _create(self) -> Path:
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        with safefs.TrustedDir(self.directory, create=True) as d:
            for n in range(1, 1000):
                name = f"{stamp}.jsonl" if n == 1 else f"{stamp}-{n}.jsonl"
                try:
                    self._fd = d.create_new(name)
                except FileExistsError:
                    continue
                return self.directory / name
        raise OSError("no free session log name")

    def _append(self, line: str) -> None:
        data = (line + "\n").encode("utf-8", "replace")
        while data:
            data = data[os.write(self._fd, data):]

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._broken = True

    def __del__(self) -> None:
        try:
            if self._fd >= 0:
                os.close(self._fd)
        except Exception:
            pass


@dataclass
class LoggingUI(UI):
    """A UI that also logs what the user sees: event lines, failed attempts, and (optionally) each program shown.

    The one-shot CLI can log a run with it::

        log = SessionLog(mode="trace"); log.intent(text)
        result = TraceService(planner, options, LoggingUI(log=log)).trace(text)
    """

    log: SessionLog | None = None
    log_programs: bool = True

    def out(self, line: str) -> None:
        super().out(line)
        if self.log is not None:
            self.log.output(line)

    def show_program(self, program: Any, spec: Any, source: str = "") -> None:
        super().show_program(program, spec, source)
        if self.log is not None and self.log_programs:
            self.log.spec(spec, source=source or None)
            self.log.program(program)

    def attempt_failed(self, number: int, total: int, failure: Any) -> None:
        super().attempt_failed(number, total, failure)
        if self.log is not None:
            self.log.error(failure.summary(), None, stage=getattr(failure, "stage", None), attempt=number,
                           attempts=total, detail=getattr(failure, "log", "")[:4000])


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


# -- reading -------------------------------------------------------------------------------------------------
@dataclass
class SessionSummary:
    id: str
    path: Path
    started: str
    mode: str
    turns: int
    first_intent: str | None
    runs: int
    errors: int
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)


def read(path: Path) -> list[dict[str, Any]]:
    """Every record of a log; a torn last line (a crash mid-write) is skipped."""
    out: list[dict[str, Any]] = []
    blob = safefs.read_file(path, MAX_LOG_BYTES)
    if blob is None:
        return out
    text = blob.decode("utf-8", "replace")
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def summarize(path: Path) -> SessionSummary:
    records = read(path)
    intents = [r for r in records if r.get("kind") == "intent"]
    head = next((r for r in records if r.get("kind") == "session"), {})
    started = head.get("t") or (records[0].get("t") if records else "")
    if not started:
        started = datetime.fromtimestamp(path.stat().st_mtime).isoformat(timespec="seconds")
    return SessionSummary(
        id=path.stem, path=path, started=str(started), mode=str(head.get("mode", "?")), turns=len(intents),
        first_intent=str(intents[0].get("text")) if intents else None,
        runs=sum(1 for r in records if r.get("kind") == "run_start"),
        errors=sum(1 for r in records if r.get("kind") == "error"), records=records)


def sessions(directory: Path | None = None) -> list[SessionSummary]:
    """Past sessions, newest first."""
    root = directory or sessions_dir()
    if not root.is_dir():
        return []
    paths = sorted(root.glob("*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    return [summarize(p) for p in paths]


def find(ident: str, directory: Path | None = None) -> SessionSummary | None:
    """A session by id, by a unique id prefix, by ``last``, or by its number in the listing (1 = newest)."""
    found = sessions(directory)
    if not found:
        return None
    if ident in ("last", "latest", "-1"):
        return found[0]
    for s in found:
        if s.id == ident or s.path.name == ident:
            return s
    if ident.isdigit() and len(ident) <= 4 and 1 <= int(ident) <= len(found):
        return found[int(ident) - 1]
    prefix = [s for s in found if s.id.startswith(ident)]
    return prefix[0] if len(prefix) == 1 else None
