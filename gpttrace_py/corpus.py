"""The examples corpus: worked examples the planner retrieves from and learners browse.

Each entry is one YAML file in ``examples_corpus/``:

    id: opensnoop                     # the file name without .yaml
    title: Files opened, with the process and the result
    lesson: "4"                       # tutorial lesson id, when the entry teaches one
    tags: [files, open, syscalls]
    explanation: >                    # one paragraph for a learner
      ...
    paraphrases:                      # 3-6 ways a user might ask
      - trace files opened
    spec: {...}                       # a ProgramSpec
    alternatives: [{...}]             # optional: other specs for the same task (other probes), tried in order
    original:                         # optional: the lesson's original method, when this kernel lacks it
      method: kprobe on do_unlinkat   # what the tutorial used
      needs: kprobes                  # the kernel feature it needs
      note: ...                       # what the working alternative can and cannot do
      spec: {...}                     # the original program as a spec (rendered, never loaded here)
    program: |                        # the spec rendered for bpftrace (regenerate with `gpttrace examples --refresh`)
      ...
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from .paths import data_dir
from .spec import ProgramSpec


class OriginalMethod(BaseModel):
    method: str
    needs: str
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
    explanation: str = ""
    paraphrases: list[str] = Field(default_factory=list)
    spec_data: dict[str, Any] = Field(alias="spec")
    alternatives_data: list[dict[str, Any]] = Field(default_factory=list, alias="alternatives")
    original: OriginalMethod | None = None
    program: str | None = None
    bcc_program: str | None = None
    path: str | None = Field(default=None, exclude=True)

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
    data of the shipped corpus is kept in the cache dir and reused while no file changed; it is validated
    into models every time."""
    root = Path(directory) if directory else corpus_dir()
    paths = sorted(root.glob("*.yaml"))
    key = _fingerprint(root, paths) if directory is None else None
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


def by_id(entry_id: str) -> Example | None:
    for e in load():
        if e.id == entry_id:
            return e
    return None
