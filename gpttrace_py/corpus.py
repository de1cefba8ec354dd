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

from functools import lru_cache
from pathlib import Path

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
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    title: str
    lesson: str | None = Field(default=None, pattern=r"^[0-9]{1,2}$")
    tags: list[str] = Field(default_factory=list)
    explanation: str = ""
    paraphrases: list[str] = Field(default_factory=list)
    spec: ProgramSpec
    alternatives: list[ProgramSpec] = Field(default_factory=list)
    original: OriginalMethod | None = None
    program: str | None = None
    bcc_program: str | None = None
    path: str | None = Field(default=None, exclude=True)

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
    """Every entry, sorted by id. A malformed entry is an error naming its file (the corpus ships with the tool)."""
    import yaml

    root = Path(directory) if directory else corpus_dir()
    entries: list[Example] = []
    for path in sorted(root.glob("*.yaml")):
        try:
            data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            entry = Example.model_validate({**data, "path": str(path)})
        except (ValidationError, yaml.YAMLError, TypeError) as exc:
            raise CorpusError(f"{path.name}: {exc}") from exc
        if entry.id != path.stem:
            raise CorpusError(f"{path.name}: id {entry.id!r} does not match the file name")
        entries.append(entry)
    return tuple(entries)


def by_id(entry_id: str) -> Example | None:
    for e in load():
        if e.id == entry_id:
            return e
    return None
