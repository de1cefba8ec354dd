"""A small document model for explanations, rendered as plain text (pipes) or with rich (terminals)."""

from __future__ import annotations

import io
import re
import textwrap
from dataclasses import dataclass, field


@dataclass
class Para:
    text: str
    style: str = ""  # "", "warn", "dim"


@dataclass
class Item:
    head: str
    text: str = ""
    sub: list = field(default_factory=list)  # of str | Item | Table
    style: str = ""  # "", "warn", "ok"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    title: str = ""


@dataclass
class Code:
    text: str
    lexer: str
    start_line: int = 1


@dataclass
class Section:
    key: str
    title: str
    blocks: list = field(default_factory=list)


@dataclass
class Document:
    title: str
    intro: list = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


# -- plain text ------------------------------------------------------------------------------------
def _wrap(text: str, width: int, indent: str, sub_indent: str | None = None) -> list[str]:
    sub_indent = indent if sub_indent is None else sub_indent
    out: list[str] = []
    for para in text.split("\n"):
        if not para.strip():
            out.append("")
            continue
        out.extend(
            textwrap.wrap(
                para,
                width=width,
                initial_indent=indent,
                subsequent_indent=sub_indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [indent]
        )
    return out


def _plain_table(t: Table, indent: str) -> list[str]:
    rows = [t.headers, *t.rows]
    widths = [max(len(r[i]) if i < len(r) else 0 for r in rows) for i in range(len(t.headers))]
    widths = [min(w, 48) for w in widths]
    lines = []
    if t.title:
        lines.append(indent + t.title)
    for n, r in enumerate(rows):
        cells = [
            (r[i] if i < len(r) else "").ljust(widths[i]) if i < len(widths) - 1 else (r[i] if i < len(r) else "")
            for i in range(len(widths))
        ]
        lines.append((indent + "  ".join(cells)).rstrip())
        if n == 0:
            lines.append(indent + "  ".join("-" * w for w in widths))
    return lines


def _plain_item(it: Item, width: int, indent: str) -> list[str]:
    mark = {"warn": "! ", "ok": "* "}.get(it.style, "* ")
    head = f"{indent}{mark}{it.head}"
    lines: list[str] = []
    if it.text:
        lines += _wrap(f"{it.head}: {it.text}" if it.head else it.text, width, indent + mark, indent + "    ")
    else:
        lines.append(head)
    for s in it.sub:
        if isinstance(s, Item):
            lines += _plain_item(s, width, indent + "    ")
        elif isinstance(s, Table):
            lines += _plain_table(s, indent + "    ")
        elif isinstance(s, Code):
            lines += [indent + "    " + ln for ln in s.text.splitlines()]
        else:
            lines += _wrap(str(s), width, indent + "    ")
    return lines


def _plain_blocks(blocks: list, width: int) -> list[str]:
    lines: list[str] = []
    for b in blocks:
        if isinstance(b, Para):
            if not b.text:
                if lines and lines[-1] != "":
                    lines.append("")
                continue
            prefix = "! " if b.style == "warn" else ""
            lines += _wrap(prefix + b.text, width, "")
            lines.append("")
        elif isinstance(b, Item):
            lines += _plain_item(b, width, "")
        elif isinstance(b, Table):
            lines += _plain_table(b, "  ")
            lines.append("")
        elif isinstance(b, Code):
            n = b.start_line
            last = n + len(b.text.splitlines())
            w = len(str(last))
            for k, ln in enumerate(b.text.splitlines()):
                lines.append(f"{str(n + k).rjust(w)}  {ln}".rstrip())
            lines.append("")
    return lines


def render_plain(doc: Document, width: int = 100) -> str:
    lines = [doc.title, "=" * min(len(doc.title), width), ""]
    lines += _plain_blocks(doc.intro, width)
    for s in doc.sections:
        lines += [s.title, "-" * len(s.title)]
        lines += _plain_blocks(s.blocks, width)
        if lines and lines[-1] != "":
            lines.append("")
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines) + "\n"


# -- rich ------------------------------------------------------------------------------------------
def render_rich(doc: Document, width: int = 100) -> str:
    from rich.console import Console, Group
    from rich.padding import Padding
    from rich.rule import Rule
    from rich.syntax import Syntax
    from rich.table import Table as RTable
    from rich.text import Text

    def Pad(renderable, pad):
        return Padding(renderable, pad, expand=False)

    buf = io.StringIO()
    console = Console(
        file=buf, force_terminal=True, color_system="256", width=width, highlight=False, soft_wrap=False, emoji=False
    )

    def text_of(s: str, style: str = "") -> Text:
        t = Text()
        _inline(t, s, style)
        return t

    def table(t: Table):
        rt = RTable(show_edge=False, header_style="bold", pad_edge=False, box=None)
        for h in t.headers:
            rt.add_column(h, overflow="fold")
        for r in t.rows:
            rt.add_row(*[text_of(c, "green" if c.startswith("*") else "") for c in r])
        if t.title:
            return Group(text_of(t.title, "italic"), rt)
        return rt

    def item(it: Item, level: int):
        mark_style = {"warn": "bold red", "ok": "green"}.get(it.style, "cyan")
        head = Text("• " if it.style != "warn" else "! ", style=mark_style)
        head.append(it.head, style="bold" + (" red" if it.style == "warn" else ""))
        if it.text:
            head.append(": ")
            _inline(head, it.text, "")
        parts: list = [head]
        for s in it.sub:
            if isinstance(s, Item):
                parts.append(item(s, level + 1))
            elif isinstance(s, Table):
                parts.append(Pad(table(s), (0, 0, 0, 2)))
            elif isinstance(s, Code):
                parts.append(Pad(Syntax(s.text, s.lexer, theme="ansi_dark", background_color="default"), (0, 0, 0, 2)))
            else:
                parts.append(Pad(text_of(str(s)), (0, 0, 0, 2)))
        return Pad(Group(*parts), (0, 0, 0, 2 if level else 0))

    def blocks(bs: list) -> None:
        for b in bs:
            if isinstance(b, Para):
                if b.text:
                    console.print(text_of(b.text, {"warn": "bold red", "dim": "dim"}.get(b.style, "")))
                console.print()
            elif isinstance(b, Item):
                console.print(item(b, 0))
            elif isinstance(b, Table):
                console.print(Pad(table(b), (0, 0, 0, 2)))
            elif isinstance(b, Code):
                console.print(
                    Syntax(
                        b.text,
                        b.lexer,
                        theme="ansi_dark",
                        background_color="default",
                        line_numbers=True,
                        start_line=b.start_line,
                        word_wrap=False,
                    )
                )
                console.print()

    console.print(Rule(Text(doc.title, style="bold"), style="cyan"))
    blocks(doc.intro)
    for s in doc.sections:
        console.print(Text(s.title, style="bold underline cyan"))
        blocks(s.blocks)
        console.print()
    # Padding fills lines to the block's width with spaces; drop them (keeping the escapes after them).
    return re.sub(r" +((?:\x1b\[[0-9;]*m)*)$", r"\1", buf.getvalue(), flags=re.M)


def _inline(t, s: str, style: str) -> None:
    """Append text where `backticked` parts are shown as code."""
    parts = s.split("`")
    for i, p in enumerate(parts):
        if i % 2 == 1:
            t.append(p, style="bold yellow")
        else:
            t.append(p, style=style)
