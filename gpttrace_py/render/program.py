"""A rendered program: its text, and the layout of what it prints (used to format and parse its output)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AggregateLayout:
    name: str
    func: str
    title: str
    key_labels: list[str]
    value_label: str
    key_names: list[dict[int, str] | None] = field(default_factory=list)  # applied by the runner to keys


@dataclass
class ProgramLayout:
    ready: str = ""  # the line BEGIN prints once every probe is attached
    header: str | None = None  # the column header line printed at start
    columns: list[str] = field(default_factory=list)
    titles: set[str] = field(default_factory=set)
    aggregates: dict[str, AggregateLayout] = field(default_factory=dict)

    def parse_event(self, line: str) -> dict[str, object]:
        """Split an event line into its labelled columns (the last column takes the rest of the line)."""
        if not self.columns:
            return {"line": line}
        parts = line.split(None, len(self.columns) - 1)
        values: dict[str, object] = {}
        for label, part in zip(self.columns, parts):
            values[label] = int(part) if part.lstrip("-").isdigit() else part
        return {"fields": values, "line": line}


@dataclass
class RenderedProgram:
    backend: str  # 'bpftrace' or 'bcc'
    text: str
    layout: ProgramLayout

    @property
    def suffix(self) -> str:
        return ".bt" if self.backend == "bpftrace" else ".py"
