"""The examples corpus: worked examples the planner retrieves from and learners browse.

Each entry is one YAML file in ``examples_corpus/``:

    id: opensnoop                     # the file name without .yaml
    title: Files opened, with the process and the result
    lesson: "4"                       # tutorial lesson id, when the entry teaches one
    tags: [files, open, syscalls]
    tools: [opensnoop, opensnoop.bt]  # optional: the classic tools it covers (BCC name; bpftrace name with .bt)
    explanation: >                    # one paragraph for a learner
      ...
    paraphrases:                      # 3-6 ways a user might ask
      - trace files opened
    spec: {...}                       # a ProgramSpec
    alternatives: [{...}]             # optional: other specs for the same task (other probes), tried in order
    substitute: ...                   # optional: `spec` is not the tool's own method but the closest thing
                                      # that runs here; how it differs (shown as a labelled substitute)
    original:                         # optional: the original method, when it needs what this kernel may lack
      method: kprobe on do_unlinkat   # what the tutorial (or the tool) used
      needs: kprobes                  # what it needs (NEED below), decided on the live machine by unmet_need()
      note: ...                       # what the working alternative can and cannot do
      spec: {...}                     # the original program as a spec (rendered, never loaded here)
    needs_only: true                  # optional: no meaningful substitute; `spec` is the original, never loaded
                                      # where original.needs is missing (a request reaching it exits 2)
    program: |                        # the spec rendered for bpftrace (regenerate with `gpttrace examples --refresh`)
      ...
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field, ValidationError, model_validator

from . import speedups
from .paths import data_dir
from .spec import ProgramSpec

if TYPE_CHECKING:
    from .kernel.catalog import Catalog


# What an original method needs: kernel features, a tracepoint category, or a binary for uprobes/USDT.
# (xdp and tc: attach points the BCC backend provides.)
NEED = r"^(?:kprobes|kretprobes|fentry|lsm|hw_counters|xdp|tc|tracepoint:[a-z0-9_]+|(?:usdt|uprobe):[A-Za-z0-9_./+-]+)$"
TOOL = r"^[a-z0-9][a-z0-9_-]{0,40}(?:\.bt)?$"


class OriginalMethod(BaseModel):
    method: str
    needs: str = Field(pattern=NEED)
    note: str = ""
    spec: ProgramSpec | None = None
    bcc_program: str | None = None


class Example(BaseModel):
    """One corpus entry. Its specs are validated when first used: planning reads the text of every entry
    but the specs of a few (validating all 107 was most of the corpus's load time); `gpttrace examples
    --check` and the tests validate every one."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    title: str
    lesson: str | None = Field(default=None, pattern=r"^[0-9]{1,2}$")
    tags: list[str] = Field(default_factory=list)
    tools: list[Annotated[str, Field(pattern=TOOL)]] = Field(default_factory=list)
    substitute: str | None = None
    needs_only: bool = False
    explanation: str = ""
    paraphrases: list[str] = Field(default_factory=list)
    spec_data: dict[str, Any] = Field(alias="spec")
    alternatives_data: list[dict[str, Any]] = Field(default_factory=list, alias="alternatives")
    original: OriginalMethod | None = None
    program: str | None = None
    bcc_program: str | None = None
    path: str | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _needs_consistent(self) -> Example:
        if self.needs_only and self.original is None:
            raise ValueError("needs_only needs `original` (its method and what it needs)")
        if self.needs_only and self.substitute:
            raise ValueError("needs_only (no substitute) and substitute contradict each other")
        if self.needs_only and (self.alternatives_data or (self.original and self.original.spec is not None)):
            raise ValueError("needs_only: the entry's spec is the original; no alternatives or original.spec")
        if self.substitute is not None and not self.tools:
            raise ValueError("substitute says how the entry differs from a tool: name it in `tools`")
        return self

    @cached_property
    def spec(self) -> ProgramSpec:
        return self._validated(self.spec_data, "spec")

    @cached_property
    def alternatives(self) -> list[ProgramSpec]:
        return [self._validated(d, f"alternatives[{i}]") for i, d in enumerate(self.alternatives_data)]

    def _validated(self, data: dict[str, Any], where: str) -> ProgramSpec:
        try:
            return ProgramSpec.model_validate(data)
        except ValidationError as exc:
            raise CorpusError(f"{Path(self.path or self.id).name}: {where}: {exc}") from exc

    @property
    def needs(self) -> list[str]:
        """Probe kinds the spec needs, for `gpttrace examples`."""
        return sorted({p.kind for p in self.spec.all_probes})

    @property
    def need(self) -> str | None:
        """What a needs_only entry needs (None for the others: their spec runs wherever its probes exist)."""
        return self.original.needs if self.needs_only and self.original else None

    @property
    def tool_names(self) -> list[str]:
        """The tools' names as a user says them: biosnoop, biosnoop.bt -> biosnoop."""
        return list(dict.fromkeys(t.removesuffix(".bt") for t in self.tools))

    def search_text(self) -> str:
        return " ".join([self.id.replace("-", " ").replace("_", " "), self.title, " ".join(self.tags),
                         " ".join(self.paraphrases)])


class CorpusError(Exception):
    pass


def corpus_dir() -> Path:
    return data_dir("examples_corpus")


@lru_cache(maxsize=2)
def load(directory: str | None = None) -> tuple[Example, ...]:
    """Every entry, sorted by id. A malformed entry is an error naming its file (the corpus ships with the tool).

    Parsing the YAML is most of the cost of loading (and of a one-shot trace's planning), so the parsed
    data of the shipped corpus is kept in the cache dir and reused while no file changed (a speed trick:
    GPTTRACE_SPEEDUPS=0 parses every time); it is validated into models every time."""
    root = Path(directory) if directory else corpus_dir()
    paths = sorted(root.glob("*.yaml"))
    key = _fingerprint(root, paths) if directory is None and speedups.enabled() else None
    parsed = _cached_parse(key) if key is not None else None
    if parsed is None:
        parsed = [_parse(path) for path in paths]
        if key is not None:
            _save_parse(key, parsed)
    entries: list[Example] = []
    for path, data in zip(paths, parsed):
        try:
            entry = Example.model_validate({**data, "path": str(path)})
        except (ValidationError, TypeError) as exc:
            raise CorpusError(f"{path.name}: {exc}") from exc
        if entry.id != path.stem:
            raise CorpusError(f"{path.name}: id {entry.id!r} does not match the file name")
        entries.append(entry)
    return tuple(entries)


def _parse(path: Path) -> Any:
    import yaml

    try:
        return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise CorpusError(f"{path.name}: {exc}") from exc


# -- the parse cache: marshal (plain data only; loading it runs no code), in a file only this user can write --
_PARSE_FORMAT = 1


def _parse_cache_file() -> Path:
    from .paths import cache_dir

    return cache_dir() / "corpus-parsed.marshal"


def _fingerprint(root: Path, paths: list[Path]) -> tuple[Any, ...] | None:
    try:
        stats = tuple((p.name, st.st_size, st.st_mtime_ns, st.st_ino) for p in paths for st in (p.stat(),))
    except OSError:
        return None
    return (_PARSE_FORMAT, str(root), stats)


def _cached_parse(key: tuple[Any, ...]) -> list[Any] | None:
    import marshal

    from . import safefs

    blob = safefs.read_file(_parse_cache_file())
    if blob is None:
        return None
    try:
        stored_key, parsed = marshal.loads(blob)
    except (ValueError, EOFError, TypeError):
        return None
    return parsed if stored_key == key and isinstance(parsed, list) and len(parsed) == len(key[2]) else None


def _save_parse(key: tuple[Any, ...], parsed: list[Any]) -> None:
    import marshal

    from . import safefs

    try:
        blob = marshal.dumps((key, parsed))
    except ValueError:  # data marshal cannot hold: just parse next time too
        return
    safefs.write_file(_parse_cache_file(), blob)


def unmet_need(need: str, catalog: Catalog) -> str | None:
    """Why this machine lacks ``need`` (a NEED value), or None when it has it. Decided on the live machine:
    the detected features, the tracepoint catalog, the binary on disk; never a list of what is missing."""
    f = catalog.features
    kind, _, target = need.partition(":")
    if kind in ("kprobes", "kretprobes"):
        return None if f.kprobes else "this kernel has no kprobes (CONFIG_KPROBES off, or kprobe_events absent)"
    if kind in ("fentry", "lsm"):
        attr = "kfunc" if kind == "fentry" else "lsm"
        if getattr(f, attr) is None:
            from .kernel.features import probe_loadable

            probe_loadable(f)
        if getattr(f, attr):
            return None
        return f.notes.get(attr) or f"this kernel refuses {kind} programs"
    if kind == "hw_counters":
        return None if f.hw_counters else "this machine has no hardware performance counters (no CPU PMU; a VM?)"
    if kind in ("xdp", "tc"):
        from .kernel.features import find_bcc_python

        return None if find_bcc_python() else f"{kind} programs need the BCC backend, which is not installed"
    if kind == "tracepoint":
        if target in catalog.tracepoints.categories():
            return None
        return (f"this kernel has no {target} tracepoints (the module or filesystem is not loaded, or the kernel "
                "was built without it)")
    if kind in ("uprobe", "usdt"):
        if not f.uprobes:
            return "this kernel has no uprobes"
        from .kernel.uprobes import resolve_target

        return None if resolve_target(target) else f"{target} is not installed here"
    return f"unknown need {need!r}"


_TOOL_WORD = re.compile(r"[a-z0-9][a-z0-9_-]*(?:\.bt)?")
# "run profile", "like trace", "the profile tool", "bcc's trace": a tool whose name is also a word, said as a tool
_BEFORE_TOOL = r"\b(?:run|runs|running|like|use|using|bcc'?s?|bpftrace'?s?)\s+(?:the\s+)?{name}\b"
_AFTER_TOOL = r"\b{name}\s+(?:tool|script|from bcc|from bpftrace)\b|\b{name}\s+-"


def named_tools(text: str, is_word: Callable[[str], bool] = lambda w: False) -> list[Example]:
    """The entries of the classic tools a request names ("run biosnoop", "like tcpretrans", "opensnoop.bt"). A
    name that is also a word (``is_word``: profile, trace) names the tool only where it is said as one: written
    with .bt, after "run"/"like"/"use", before "tool", or alone."""
    table = _tool_table()
    low = " ".join(text.lower().split())
    found: list[Example] = []
    for word in _TOOL_WORD.findall(low):
        name = word.removesuffix(".bt")
        entries = [e for e in table.get(word) or table.get(name) or [] if e not in found]
        if not entries:
            continue
        if not word.endswith(".bt") and is_word(name) and low != name and not any(
                re.search(rx.format(name=re.escape(name)), low) for rx in (_BEFORE_TOOL, _AFTER_TOOL)):
            continue
        found.extend(entries)
    return found


@lru_cache(maxsize=1)
def _tool_table() -> dict[str, list[Example]]:
    """Tool name (with and without .bt) -> the entries that cover it (sslsniff: its read and its write side)."""
    table: dict[str, list[Example]] = {}
    for e in load():  # (called as the planner calls it: load(None) would be another cache entry, parsed again)
        for t in e.tools:
            for name in dict.fromkeys((t, t.removesuffix(".bt"))):
                table.setdefault(name, []).append(e)
    return table


def by_id(entry_id: str) -> Example | None:
    for e in load():
        if e.id == entry_id:
            return e
    return None
