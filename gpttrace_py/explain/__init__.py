"""``gpttrace explain``: a walk through any bpftrace script or BCC program, built offline from the live
kernel's catalog, the project's glossary (``glossary.yaml``) and the examples corpus.

    explain_program(text, backend, catalog, color=False) -> str

``backend`` is "bpftrace", "bcc" or "auto" (detected from the text). With ``color`` the result carries ANSI
escapes (rich: a highlighted listing and styled sections); without, it is plain text for pipes.

Reading a program into a ProgramModel (model.py): bt.py (bpftrace), bcc.py with bcc_python.py and bcc_c.py
(BCC and libbpf), on source.py's text helpers. Facts about each probe on this kernel: probe_facts.py; names:
glossary.py; lessons to read next: lessons.py. Writing the explanation: compose.py puts the sections/ in order,
each reading a Context (context.py) and putting code in words with phrases.py and glosses.py; doc.py renders.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from .model import ProgramModel

if TYPE_CHECKING:
    from ..kernel.catalog import Catalog

__all__ = ["analyze", "detect_backend", "explain_program"]


def detect_backend(text: str) -> str:
    """'bcc' for Python/C BCC programs, else 'bpftrace'."""
    from . import bcc

    head = text.lstrip()[:200]
    if head.startswith("#!") and "bpftrace" in head.splitlines()[0]:
        return "bpftrace"
    if head.startswith("#!") and "python" in head.splitlines()[0]:
        return "bcc"
    if bcc.looks_like_bcc(text) or _is_python(text):
        return "bcc"
    return "bpftrace"


def _is_python(text: str) -> bool:
    import ast
    import re
    import warnings

    if not re.search(r"(?m)^\s*(import\s+\w|from\s+[\w.]+\s+import\b|def\s+\w+\s*\()", text):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
    except SyntaxError:
        return False
    return True


def analyze(text: str, backend: str = "auto") -> ProgramModel:
    from . import bcc, bt
    from .glossary import load

    if backend in ("auto", "", None):
        backend = detect_backend(text)
    if backend == "bcc":
        return bcc.analyze(text, load())
    return bt.analyze(text, load())


def explain_program(
    text: str,
    backend: str,
    catalog: Catalog | None = None,
    color: bool = False,
    *,
    path: str | None = None,
    listing: bool = True,
    width: int | None = None,
) -> str:
    """The explanation of a program, as terminal text (``color``) or plain text."""
    from .compose import compose
    from .doc import render_plain, render_rich
    from .glossary import load

    if catalog is None:
        from ..kernel.catalog import Catalog

        catalog = Catalog()
    model = analyze(text, backend or "auto")
    doc = compose(model, catalog, load(), path=path, listing=listing)
    if color:
        w = width or max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))
        return render_rich(doc, w)
    return render_plain(doc, width or 100)
