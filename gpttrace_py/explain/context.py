"""The state an explanation is composed from, shared by the sections, and questions about blocks."""

from __future__ import annotations

from ..kernel.catalog import Catalog
from .glossary import Glossary
from .model import ProgramModel
from .probe_facts import ProbeFacts, facts

HIGH_RATES = {"high", "very high"}  # probe rates (ProbeFacts.rate) worth a note


class Context:
    """What every section reads: the program's model, the kernel catalog, the glossary, the facts about each
    probe, and the alternatives suggested so far."""

    def __init__(self, model: ProgramModel, catalog: Catalog, glossary: Glossary, path: str | None) -> None:
        self.model = model
        self.catalog = catalog
        self.glossary = glossary
        self.path = path
        self.facts: list[ProbeFacts] = []
        for p in model.probes:
            used = model.blocks[p.block].fields_used if p.block is not None and p.block < len(model.blocks) else []
            self.facts.append(facts(p, catalog, glossary, used))
        self.suggested: list[str] = []

    # -- questions about blocks ----------------------------------------------------------------------
    @property
    def bt(self) -> bool:
        return self.model.backend == "bpftrace"

    def block_label(self, index: int | None) -> str:
        if index is None or index >= len(self.model.blocks):
            return "?"
        b = self.model.blocks[index]
        if b.function == "__outside__":
            return "code spliced in by the Python"
        if b.function:
            return f"{b.function}()"
        return b.label if len(b.label) < 70 else b.label[:67] + "..."

    def probes_of(self, index: int | None) -> str:
        if index is None or index >= len(self.model.blocks):
            return "?"
        texts = [self.model.probes[i].text for i in self.model.blocks[index].probes]
        return ", ".join(texts) if texts else self.block_label(index)

    def is_event_block(self, index: int | None) -> bool:
        if index is None or index >= len(self.model.blocks):
            return False
        kinds = {self.model.probes[i].kind for i in self.model.blocks[index].probes}
        return bool(kinds) and not kinds <= {"BEGIN", "END", "interval"}

    def block_kinds(self, index: int | None) -> set[str]:
        if index is None or index >= len(self.model.blocks):
            return set()
        return {self.model.probes[i].kind for i in self.model.blocks[index].probes}
