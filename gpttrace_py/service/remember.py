"""Programs remembered by request: a trace asked again runs the program planned the first time.

``gpttrace -c "ls" "count syscalls by process"`` typed a second time skips planning and rendering, and with
them the import of the spec models, the corpus and the templates: about a third of a short trace's time
(bench/results.md). The run itself is the same: the program is shown, confirmed, loaded and checked by the
kernel as always.

A program is remembered once it has loaded and attached, under a key made of everything its planning read:
the request and the backend asked for; gpttrace's code, templates and corpus (each file's size and time);
the kernel (release and boot); the tracer and BCC interpreter found and the kernel facts probed. Only the
offline planner's programs are remembered: an LLM planner is asked on purpose, and answers differently from
one call to the next. A remembered program that no longer loads is forgotten and the request planned anew.

``RememberingPlanner`` is a planner with this memory: planning/select.py gives it when asked to remember; the
trace service recalls a request's program from it before planning, and tells it when a program loaded or no
longer loads. The planner itself is made only when a request must be planned.

Entries are JSON files under the cache directory, which must belong to this user and be writable by nobody
else (they are programs that run as root). ``GPTTRACE_NO_CACHE=1`` turns remembering off.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import safefs
from ..paths import cache_dir, data_dir
from ..planning.base import PlannerBase
from ..render.layout_data import from_data, to_data
from ..render.program import RenderedProgram
from .options import PlannedProgram

if TYPE_CHECKING:
    from ..planning.base import PlanContext, Planner, ReplySettings
    from ..run.failure import LoadFailure
    from ..spec import ProgramSpec

FORMAT = 2  # 2: the program stored by render/layout_data.py, every layout field
MAX_ENTRIES = 256
REMEMBERED = "remembered"


def enabled() -> bool:
    return os.environ.get("GPTTRACE_NO_CACHE", "").lower() in ("", "0", "no", "off", "false")


class ProgramCache:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or cache_dir() / "programs"

    # -- keys ------------------------------------------------------------------------------------------------
    def key(self, intent: str, backend: str) -> dict[str, Any]:
        return {"format": FORMAT, "intent": intent, "backend": backend, "code": list(_fingerprint()),
                "kernel": _kernel(), "tools": _tools()}

    def _path(self, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:40]
        return self.directory / f"{digest}.json"

    # -- reading and writing (through safefs: entries are programs that run as root) -------------------------
    def get(self, key: dict[str, Any]) -> PlannedProgram | None:
        d = safefs.trusted(self.directory)
        if d is None:
            return None
        with d:
            data = d.get_bytes(self._path(key).name)
        if data is None:
            return None
        try:
            entry = json.loads(data)
        except ValueError:
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        try:
            return _planned(entry)
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, key: dict[str, Any], planned: PlannedProgram) -> None:
        """Remember ``planned`` (best effort: a cache that cannot be written is no error)."""
        entry = {"key": key, "program": to_data(planned.program), "spec": planned.spec_data(),
                 "source": planned.source, "overload_hint": planned.overload_hint, "pid": planned.pid,
                 "plan": planned.plan}
        try:
            with safefs.TrustedDir(self.directory, create=True) as d:
                d.write_text(self._path(key).name, json.dumps(entry, ensure_ascii=False))
                _prune(d)
        except OSError:
            return

    def forget(self, key: dict[str, Any]) -> None:
        d = safefs.trusted(self.directory)
        if d is not None:
            with d:
                d.unlink(self._path(key).name)


def _prune(d: safefs.TrustedDir) -> None:
    entries = []
    for name in d.names():
        if name.endswith(".json") and not name.startswith("."):
            try:
                entries.append((d.lstat(name).st_mtime, name))
            except OSError:
                continue
    for _, old in sorted(entries)[:-MAX_ENTRIES]:
        d.unlink(old)


class RememberingPlanner(PlannerBase):
    """The planner ``make`` makes, made only when a request must be planned (a remembered one needs none, and
    the trace service prestarts the tracer first); with ``remembers``, the programs it planned are remembered
    by request and backend once they loaded."""

    def __init__(self, make: Callable[[], Planner], remembers: bool, cache: ProgramCache | None = None) -> None:
        self._make = make
        self._inner: Planner | None = None
        self.remembers = remembers
        self.cache = cache or ProgramCache()

    @property
    def inner(self) -> Planner:
        if self._inner is None:
            self._inner = self._make()
        return self._inner

    # -- planning: the inner planner's ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.inner.name

    def plan(self, intent: str, ctx: PlanContext) -> ProgramSpec:
        return self.inner.plan(intent, ctx)

    def refine(self, request: str, spec: ProgramSpec, ctx: PlanContext) -> ProgramSpec:
        return self.inner.refine(request, spec, ctx)

    def revise(self, intent: str, spec: ProgramSpec, failure: LoadFailure, ctx: PlanContext) -> ProgramSpec | None:
        return self.inner.revise(intent, spec, failure, ctx)

    def suggestions(self, intent: str) -> list[str]:
        return self.inner.suggestions(intent)

    def prepare(self, settings: ReplySettings) -> None:
        self.inner.prepare(settings)

    def take_rejected(self) -> list[LoadFailure]:
        return self.inner.take_rejected()

    # -- remembering ------------------------------------------------------------------------------------------
    def recall(self, intent: str, backend: str) -> PlannedProgram | None:
        if not self.remembers:
            return None
        return self.cache.get(self.cache.key(intent, backend))

    def loaded(self, intent: str, backend: str, planned: PlannedProgram) -> None:
        if self.remembers and planned.source == "offline":  # planned offline (not remembered, not given)
            self.cache.put(self.cache.key(intent, backend), planned)

    def stale(self, intent: str, backend: str) -> None:
        if self.remembers:
            self.cache.forget(self.cache.key(intent, backend))


# -- what a plan depends on --------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _fingerprint() -> tuple[Any, ...]:
    """gpttrace's code, templates and corpus: (name, size, mtime) of every file. Read once a process: the key
    is looked up before a run and written after it."""
    from .. import __version__

    out: list[Any] = [__version__]
    for root in (Path(__file__).resolve().parent.parent, data_dir("templates"), data_dir("examples_corpus")):
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith((".py", ".j2", ".yaml", ".json")):
                    try:
                        st = os.stat(os.path.join(dirpath, name))
                    except OSError:
                        continue
                    out.append([os.path.relpath(os.path.join(dirpath, name), root), st.st_size, st.st_mtime_ns])
    return tuple(out)


def _kernel() -> list[str]:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return [platform.release(), boot]


def _tools() -> dict[str, Any]:
    """The tracer, the BCC interpreter and the kernel facts gpttrace found (and how to find them)."""
    from ..kernel.features import find_bpftrace

    out: dict[str, Any] = {v: os.environ.get(v) for v in ("GPTTRACE_BCC_PYTHON", "GPTTRACE_TRACEFS", "PATH")}
    for name, path in (("bpftrace", find_bpftrace()), ("features", str(cache_dir() / "features.json"))):
        try:
            st = os.stat(path) if path else None
        except OSError:
            st = None
        out[name] = [path, st.st_size, st.st_mtime_ns] if st else None
    return out


# -- entries -----------------------------------------------------------------------------------------------
def _planned(entry: dict[str, Any]) -> PlannedProgram:
    program = from_data(RenderedProgram, entry["program"])
    if program.backend not in ("bpftrace", "bcc") or not isinstance(entry["spec"], dict):
        raise ValueError("not an entry of this format")
    source = str(entry["source"])
    return PlannedProgram(program=program, spec=entry["spec"], source=f"{source}, {REMEMBERED}",
                          overload_hint=str(entry["overload_hint"]),
                          pid=int(entry["pid"]) if entry["pid"] is not None else None,
                          plan=entry.get("plan") if isinstance(entry.get("plan"), dict) else None)
