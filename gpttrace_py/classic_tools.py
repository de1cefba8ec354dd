"""The classic tools (BCC's tools/, bpftrace's tools/) and the worked examples that cover them.

``examples_corpus/classic-tools.json`` holds the two lists as they are in those repositories and, for a tool
no entry covers, the reason. An entry covers a tool by naming it in ``tools:`` (BCC name; bpftrace name with
.bt). ``table()`` is the table in examples_corpus/README.md (``gpttrace examples --tools`` prints it);
``bcc_l_z()`` is examples_corpus/TOOLS-l-z.md, the BCC tools l to z with the reasons grouped.
"""

from __future__ import annotations

import json
import re
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


_L_Z_INTRO = """# BCC tools l-z: which corpus entry covers each

Every tool in BCC's `tools/` (and `tools/lib/`) whose name starts with l to z, from the iovisor/bcc
repository (commit {commit}, {date}): {tools} tools. {covered} are covered by an entry (the entry's `tools:`
field names them), {reasons} are listed below with the reason they have no entry of their own.

"runs here" means the entry's program loads on this kernel (6.18: tracepoints, uprobes, USDT, perf
software events; no kprobes, fentry, BPF LSM or hardware counters); "(substitute)" means its method
differs from the tool's, and the entry's `substitute:` field says how. "needs X" entries carry the
original method as their program (`needs_only: true`): shown and saved, never loaded where X is missing.
`gpttrace examples show ID` explains any of them. bpftrace's tools of the same name (`opensnoop.bt`...)
are listed in the same entries' `tools:`.
"""
_L_Z_END = """
Also in the repository but not separate tools: `tcplife.lua` (a Lua version of tcplife, covered by the
tcplife entry), `netqtop.c` (the BPF half of netqtop), `tools/old/` (older versions of memleak,
offcputime, offwaketime, oomkill, opensnoop, profile, softirqs, stackcount, statsnoop, syncsnoop,
tcpaccept, tcpconnect, tcptop, wakeuptime, covered by the current tools' entries), and the man page
`spfdsnoop.8`, which has no tool in `tools/`.
"""


def bcc_l_z() -> str:
    """examples_corpus/TOOLS-l-z.md: BCC's tools from l to z, the entries covering each and whether they run
    here as declared (needs_only: needs X; substitute), then the others with their reason, tools that share
    a reason on one row."""
    by_id = {e.id: e for e in load()}
    rs = [r for r in rows() if r.suite == "bcc" and r.tool[:1] >= "l"]
    covered = ["| tool | entry | here |", "|---|---|---|"]
    for r in sorted(rs, key=lambda r: r.tool):  # tools/ and tools/lib/ together
        if not r.entry:
            continue
        es = [by_id[x] for x in r.entry.split(", ")]
        need = next((e.need for e in es if e.need), None)
        here = f"needs {need}" if need else "runs here" + (" (substitute)" if any(e.substitute for e in es) else "")
        covered.append(f"| {r.tool} | {r.entry} | {here} |")
    reasons: dict[str, list[str]] = {}
    for tool, why in lists()["not_covered"].items():
        if any(r.tool == tool and not r.entry for r in rs):
            reasons.setdefault(why, []).append(tool)
    others = ["| tool | reason |", "|---|---|"] + [f"| {', '.join(ts)} | {why} |" for why, ts in reasons.items()]
    m = re.search(r" at (\w+) \(([0-9-]+)\)", lists()["sources"]["bcc"])
    commit, date = m.groups() if m else ("?", "?")
    intro = _L_Z_INTRO.format(commit=commit, date=date, tools=len(rs), covered=len(covered) - 2,
                              reasons=sum(len(ts) for ts in reasons.values()))
    return "\n".join([intro, *covered, "", "## Tools without an entry", "", *others, _L_Z_END])
