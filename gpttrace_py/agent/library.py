"""The worked examples and the tutorial lessons they teach, as text for MCP resources.

``gpttrace://examples/ID`` is one corpus entry (what it traces, why these probes, how to ask for it, its
bpftrace program); ``gpttrace://lessons/N`` is every entry of tutorial lesson N.
"""

from __future__ import annotations

from ..corpus import Example, load
from .bounds import clip

EXAMPLE_URI = "gpttrace://examples/{id}"
LESSON_URI = "gpttrace://lessons/{n}"


def examples() -> tuple[Example, ...]:
    return load()


def lessons() -> dict[str, list[Example]]:
    """Lesson number -> its entries, in lesson order."""
    out: dict[str, list[Example]] = {}
    for e in sorted((e for e in load() if e.lesson), key=lambda e: (int(e.lesson or 0), e.id)):
        out.setdefault(str(e.lesson), []).append(e)
    return out


def example_text(e: Example) -> str:
    parts = [f"# {e.title}", "", f"id: {e.id}"]
    if e.lesson:
        parts.append(f"tutorial lesson: {e.lesson}")
    if e.tags:
        parts.append(f"tags: {', '.join(e.tags)}")
    parts += ["", " ".join(e.explanation.split())]
    if e.paraphrases:
        parts += ["", "Ways to ask for it (the plan and run tools take these):"]
        parts += [f"- {p}" for p in e.paraphrases]
    if e.original:
        parts += ["", f"The lesson's original method: {e.original.method} (needs {e.original.needs})."]
        if e.original.note:
            parts.append(" ".join(e.original.note.split()))
    if e.program:
        parts += ["", "```bpftrace", e.program.rstrip("\n"), "```"]
    return clip("\n".join(parts) + "\n")[0]


def lesson_text(n: str, entries: list[Example]) -> str:
    body = [f"# Tutorial lesson {n}", ""]
    body += [f"- {e.id}: {e.title} ({EXAMPLE_URI.format(id=e.id)})" for e in entries]
    body += ["", *(example_text(e) for e in entries)]
    return clip("\n".join(body))[0]
