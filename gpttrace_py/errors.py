"""Exit codes and the one error type the CLI turns into a clean message."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    TRACE_FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


class GpttraceError(Exception):
    """An expected failure: a one-line reason, an optional fix, and the exit code to leave with."""

    def __init__(self, message: str, hint: str | None = None, code: ExitCode = ExitCode.TRACE_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


class UsageError(GpttraceError):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint, ExitCode.USAGE)


class UnmappableIntent(GpttraceError):
    """The planner found no program for the intent; ``suggestions`` are nearby things it can do."""

    def __init__(self, message: str, suggestions: list[str] | None = None) -> None:
        hint = None
        if suggestions:
            hint = "try one of:\n" + "\n".join(f"  gpttrace \"{s}\"" for s in suggestions)
        super().__init__(message, hint, ExitCode.USAGE)
        self.suggestions = suggestions or []


class MissingFeature(UnmappableIntent):
    """The request needs what this machine lacks (kprobes, hardware counters...). ``program`` is, when one can
    be written, the spec of a program for a machine that has it: shown and saved (--dry-run -o), never loaded."""

    def __init__(self, message: str, program: object | None = None) -> None:
        super().__init__(message, [])
        self.program = program
