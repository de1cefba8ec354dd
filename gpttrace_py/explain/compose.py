"""Turn what the scanners found into the explanation: the sections in order (each in explain/sections/)."""

from __future__ import annotations

from ..kernel.catalog import Catalog
from .context import Context
from .doc import Code, Document, Section
from .glossary import Glossary
from .model import ProgramModel
from .sections.filters import filters_section
from .sections.intro import intro
from .sections.maps import maps_section
from .sections.names import names_section
from .sections.output import output_section
from .sections.overhead import overhead_section
from .sections.probes import probes_section
from .sections.read_next import next_section
from .sections.walkthrough import walkthrough


def compose(
    model: ProgramModel, catalog: Catalog, glossary: Glossary, *, path: str | None = None, listing: bool = True
) -> Document:
    return document(Context(model, catalog, glossary, path), listing)


def document(ctx: Context, listing: bool) -> Document:
    m = ctx.model
    what = (
        "bpftrace script"
        if ctx.bt
        else "libbpf program (C for the kernel side)"
        if m.libbpf
        else "BCC program (Python with embedded C)"
    )
    title = f"How this {what} works"
    if m.title:
        title += ": " + " ".join(m.title.split())
    doc = Document(title)
    doc.intro = intro(ctx)
    if listing:
        doc.sections.append(Section("program", "Program", [Code(m.text.rstrip("\n"), "c" if ctx.bt else "python")]))
    doc.sections.append(probes_section(ctx))
    doc.sections.append(walkthrough(ctx))
    doc.sections.append(filters_section(ctx))
    doc.sections.append(maps_section(ctx))
    doc.sections.append(names_section(ctx))
    doc.sections.append(output_section(ctx))
    doc.sections.append(overhead_section(ctx))
    doc.sections.append(next_section(ctx))
    return doc
