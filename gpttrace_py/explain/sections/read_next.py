"""The Read next section: corpus lessons related to the program."""

from __future__ import annotations

from .. import lessons
from ..context import Context
from ..doc import Item, Para, Section


def next_section(ctx: Context) -> Section:
    s = Section("next", "Read next")
    sugg = lessons.suggest(ctx.model, ctx.suggested)
    if not sugg:
        s.blocks.append(Para("No related lesson found in the examples corpus (`gpttrace examples` lists them)."))
        return s
    for x in sugg:
        head = f"lesson {x.lesson}: {x.title}" if x.lesson else x.title
        s.blocks.append(Item(head, f"corpus example `{x.id}` ({x.reason})"))
    return s
