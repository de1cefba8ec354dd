"""Talking to the user: messages and programs on stderr, events on stdout, confirmation prompts.

Tests build a UI with their own streams instead of patching globals (the httpie ``Environment`` idea).
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from .terminal import escape

if TYPE_CHECKING:
    from .render.program import RenderedProgram
    from .run.failure import LoadFailure
    from .spec import ProgramSpec


@dataclass
class UI:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    quiet: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def interactive(self) -> bool:
        try:
            return self.stdin.isatty() and self.stderr.isatty()
        except (ValueError, AttributeError):
            return False

    @property
    def color(self) -> bool:
        try:
            return self.stderr.isatty()
        except (ValueError, AttributeError):
            return False

    # -- output channels -----------------------------------------------------------------------------
    def out(self, line: str) -> None:
        """An event or aggregate line (stdout, flushed so pipes see it at once)."""
        with self._lock:
            self.stdout.write(line + "\n")
            self.stdout.flush()

    def talk(self, message: str) -> None:
        """A message on stderr. Messages can carry text from outside (a model server's words, a tracer's
        warnings about traced data): control, C1 and bidi characters are shown escaped (terminal.escape)."""
        if self.quiet:
            return
        with self._lock:
            self.stderr.write(escape(message, keep_newlines=True) + "\n")
            self.stderr.flush()

    def warn(self, message: str) -> None:
        with self._lock:
            self.stderr.write(escape(message, keep_newlines=True) + "\n")
            self.stderr.flush()

    # -- programs ------------------------------------------------------------------------------------
    def show_program(self, program: RenderedProgram, spec: ProgramSpec | dict[str, Any], source: str = "") -> None:
        """The program on stderr, after its title and why (``spec`` may be the spec's JSON form)."""
        if self.quiet:
            return
        title, rationale = (spec.get("title"), spec.get("rationale")) if isinstance(spec, dict) else (spec.title,
                                                                                                      spec.rationale)
        if rationale:
            self.talk(f"# {title}: {rationale}")
        lexer = "python" if program.backend == "bcc" else "c"
        if self.color:
            from rich.console import Console
            from rich.syntax import Syntax

            Console(file=self.stderr, stderr=True).print(Syntax(program.text, lexer, theme="ansi_dark",
                                                                background_color="default"))
        else:
            self.talk(program.text.rstrip("\n"))
        if source:
            self.talk(f"(planned from {source}; backend {program.backend})")

    def show_spec(self, spec: ProgramSpec | dict[str, Any]) -> None:
        from .service.options import spec_json

        self.warn(spec_json(spec))

    def attempt_failed(self, number: int, total: int, failure: LoadFailure) -> None:
        self.warn(f"attempt {number}/{total} failed: {failure.summary()}")
        detail = [ln for ln in failure.log.splitlines() if ln.strip()][:6]
        for ln in detail:
            if ln.strip().lstrip("- ") not in failure.message:  # each line once: not what the summary says
                self.warn(f"    {ln}")

    def confirm(self, question: str) -> bool:
        import click

        return click.confirm(question, default=False, err=True)
