"""Which backend runs a spec (bpftrace or BCC), and the spec rendered for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UsageError
from ..spec.kinds import of_family

if TYPE_CHECKING:
    from ..kernel.catalog import Catalog
    from ..render.program import RenderedProgram
    from ..spec import ProgramSpec

BCC_ONLY_KINDS = of_family("packet")  # XDP and tc programs: bpftrace cannot attach them


def choose_backend(spec: ProgramSpec, requested: str, catalog: Catalog) -> str:
    kinds = {p.kind for p in spec.all_probes}
    wanted = requested if requested != "auto" else spec.backend
    if wanted in ("bpftrace", "bcc"):
        if wanted == "bpftrace" and kinds & BCC_ONLY_KINDS:
            raise UsageError(f"bpftrace cannot attach {', '.join(sorted(kinds & BCC_ONLY_KINDS))} programs",
                             "use --backend bcc (or auto)")
        return wanted
    if kinds & BCC_ONLY_KINDS:
        return "bcc"
    if catalog.features.bpftrace is None:
        from ..kernel.features import find_bcc_python

        if (catalog.features.bcc_python or find_bcc_python()) is not None:
            return "bcc"
    return "bpftrace"


def render(spec: ProgramSpec, backend: str, catalog: Catalog) -> RenderedProgram:
    if backend == "bcc":
        from ..render.bcc import program as bcc

        return bcc.render(spec, catalog)
    from ..render import bpftrace

    return bpftrace.render(spec, catalog)
