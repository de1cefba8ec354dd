"""A rendered program: its text, and the layout of what it prints (used to format and parse its output)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

NAME_MARK = "\x1e"  # brackets a number that the runner replaces by its name (ProgramLayout.column_names)
# Between the columns of an event line (ASCII unit separator), put there by the renderer's printf format; the
# runner splits the line on it (JSON fields) and pads the columns itself (text). A value that itself contains
# it makes the line ambiguous: then no fields are given rather than wrong ones.
COLUMN_SEP = "\x1f"
_INTEGER = re.compile(r"-?[0-9]+\Z")


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
    widths: list[int] = field(default_factory=list)  # text-mode width of each column (0: not padded)
    named_at: list[int] = field(default_factory=list)  # the column of each column_names entry

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

    def split(self, line: str) -> list[str] | None:
        """The columns of an event line printed with COLUMN_SEP between them, named numbers replaced by their
        names; None when the line does not split into exactly the columns (a value held the separator)."""
        if not self.columns or (len(self.columns) > 1 and COLUMN_SEP not in line):
            return None
        parts = line.split(COLUMN_SEP)
        if len(parts) != len(self.columns):
            return None
        for (table, _), at in zip(self.column_names, self.named_at, strict=False):
            text = parts[at] if at < len(parts) else ""
            if len(text) >= 2 and text[0] == NAME_MARK == text[-1] and text[1:-1].lstrip("-").isdigit():
                parts[at] = table.get(int(text[1:-1]), text[1:-1])
        return parts

    def text(self, line: str, parts: list[str] | None = None) -> str:
        """An event line as text, each column padded to its width (values not escaped: see terminal.escape)."""
        parts = self.split(line) if parts is None else parts
        if parts is None:
            return self.named(line).replace(COLUMN_SEP, " ")
        widths = self.widths or [0] * len(parts)
        last = len(parts) - 1
        return " ".join(p if i == last else p.ljust(w) for i, (p, w) in enumerate(zip(parts, widths, strict=False)))

    def parse_event(self, line: str) -> dict[str, object]:
        """An event line's labelled columns. Columns come from the separator the renderer printed between them,
        never from spaces; a line that does not split exactly gets ``"fields": null`` and ``"ambiguous": true``
        (its text is still given)."""
        if not self.columns:
            return {"line": line}
        parts = self.split(line)
        if parts is None:
            return {"fields": None, "ambiguous": True, "line": self.text(line)}
        values: dict[str, object] = {}
        for label, part in zip(self.columns, parts, strict=False):
            values[label] = int(part) if _INTEGER.match(part) else part
        return {"fields": values, "line": self.text(line, parts)}


@dataclass
class RenderedProgram:
    backend: str  # 'bpftrace' or 'bcc'
    text: str
    layout: ProgramLayout

    @property
    def suffix(self) -> str:
        return ".bt" if self.backend == "bpftrace" else ".py"
