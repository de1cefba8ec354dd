"""A rendered program: its text, and the layout of what it prints (used to format and parse its output)."""

from __future__ import annotations

from dataclasses import dataclass, field

NAME_MARK = "\x1e"  # brackets a number that the runner replaces by its name (ProgramLayout.column_names)


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
    # columns printed as NAME_MARK number NAME_MARK (a table too large to load into the program, such as the
    # syscall names): for each, in order, its number -> name table and the width to pad the name to (0: none)
    column_names: list[tuple[dict[int, str], int]] = field(default_factory=list)

    def named(self, line: str) -> str:
        """An event line with each marked number replaced by its name."""
        if not self.column_names or NAME_MARK not in line:
            return line
        parts = line.split(NAME_MARK)
        out = [parts[0]]
        for i in range(1, len(parts) - 1, 2):
            column = (i - 1) // 2
            text = parts[i]
            if column < len(self.column_names) and text.lstrip("-").isdigit():
                table, width = self.column_names[column]
                text = table.get(int(text), text).ljust(width)
            out += [text, parts[i + 1]]
        if len(parts) % 2 == 0:  # an unmatched mark: keep the rest as it came
            out.append(NAME_MARK + parts[-1])
        return "".join(out)

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
