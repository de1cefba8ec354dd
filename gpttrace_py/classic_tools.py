"""The classic tools (BCC's tools/, bpftrace's tools/) and the worked examples that cover them.

``examples_corpus/classic-tools.json`` holds the two lists as they are in those repositories and, for a tool
no entry covers, the reason. An entry covers a tool by naming it in ``tools:`` (BCC name; bpftrace name with
.bt). ``table()`` is the table in examples_corpus/README.md (``gpttrace examples --tools`` prints it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .corpus import Example, corpus_dir, load


@dataclass(frozen=True)
class Row:
    suite: str  # bcc or bpftrace
    tool: str
    entry: str | None  # the covering entries' ids (sslsniff: two), comma-separated
    how: str  # how the entry does it (what it needs), or why no entry covers the tool


@lru_cache(maxsize=1)
def lists() -> dict[str, Any]:
    return json.loads((corpus_dir() / "classic-tools.json").read_text())


def how(e: Example) -> str:
    """What the entry's program needs, as declared (the same on every machine): runs with what / substitute
    for what the original needs / needs what."""
    if e.need:
        return f"needs {e.need} (the original; no substitute)"
    kinds = sorted({p.kind.replace("uretprobe", "uprobe") for s in [e.spec, *e.alternatives] for p in s.all_probes})
    text = ", ".join(kinds)
    if e.substitute:
        return f"substitute with {text}" + (f" (the original needs {e.original.needs})" if e.original else "")
    return f"runs with {text}"


def rows() -> list[Row]:
    data = lists()
    covering: dict[str, list[Example]] = {}
    for e in load():
        for t in e.tools:
            covering.setdefault(t, []).append(e)

    def row(suite: str, tool: str, es: list[Example]) -> Row:
        return Row(suite, tool, ", ".join(e.id for e in es), "; ".join(dict.fromkeys(how(e) for e in es)))

    out: list[Row] = []
    for suite in ("bcc", "bpftrace"):
        for tool in data[suite]:
            if tool in covering:
                out.append(row(suite, tool, covering[tool]))
            else:
                out.append(Row(suite, tool, None, data["not_covered"].get(tool, "")))
    listed = {r.tool for r in out}
    for tool, es in covering.items():  # named by an entry, not in the lists (another version of the repository)
        if tool not in listed:
            out.append(row(("bpftrace" if tool.endswith(".bt") else "bcc") + "*", tool, es))
    return out


def table() -> str:
    """The markdown table: each tool, the entry covering it, and how it runs (or why no entry)."""
    rs = rows()
    lines = ["| suite | tool | entry | runs here, or needs |", "| --- | --- | --- | --- |"]
    for r in rs:
        entry = ", ".join(f"`{x}`" for x in r.entry.split(", ")) if r.entry else "-"
        lines.append(f"| {r.suite} | {r.tool} | {entry} | {r.how or 'MISSING'} |")
    if any(r.suite.endswith("*") for r in rs):
        lines.append("\n\\* named by an entry, not in the repository's list at the commit `classic-tools.json` names")
    return "\n".join(lines) + "\n"


def counts() -> dict[str, int]:
    rs = [r for r in rows() if not r.suite.endswith("*")]
    return {"tools": len(rs), "covered": sum(1 for r in rs if r.entry),
            "reason": sum(1 for r in rs if not r.entry and r.how),
            "missing": sum(1 for r in rs if not r.entry and not r.how),
            "entries": len({x for r in rs if r.entry for x in r.entry.split(", ")})}
