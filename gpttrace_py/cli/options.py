"""Option bundles shared by several commands, declared once."""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable
from typing import Any

import click

from ..errors import UsageError

MAX_SECONDS = 7 * 24 * 3600.0  # the longest -d / --max-seconds accepted: a week


class Seconds(click.ParamType):
    """A finite number of seconds from ``minimum`` to MAX_SECONDS (``inf`` and ``nan`` are usage errors)."""

    name = "seconds"

    def __init__(self, minimum: float) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or not self.minimum <= seconds <= MAX_SECONDS:
            self.fail(f"{value} is not a number of seconds from {self.minimum:g} to {MAX_SECONDS:g}", param, ctx)
        return seconds


def parse_command(text: str | None) -> list[str] | None:
    """The -c command as an argument list (it runs without a shell)."""
    if text is None:
        return None
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"cannot split the -c command: {exc}", "check its quotes") from None
    if not argv:
        raise UsageError("the -c command is empty")
    return argv


def planner_choice(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--offline", is_flag=True, help="Use the offline planner (no network, no API key).")(f)
    f = click.option("--no-fallback", is_flag=True,
                     help="When the model gives no usable plan (or its service is down), fail instead of using "
                          "the offline planner's plan.")(f)
    f = click.option("-m", "--model", metavar="MODEL", help="LLM to plan with (default: GPTTRACE_MODEL or config).")(f)
    return f


def planner_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = planner_choice(f)
    f = click.option("--backend", type=click.Choice(["auto", "bpftrace", "bcc"]), default="auto", show_default=True,
                     help="Program flavour: bpftrace script or BCC Python program.")(f)
    f = click.option("-y", "--yes", is_flag=True, help="Run without asking for confirmation.")(f)
    return f


def run_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("-c", "--command", "command", metavar="CMD",
                     help="Start CMD once the probes are attached; stop shortly after it exits.")(f)
    f = click.option("-d", "--duration", type=Seconds(0.1), metavar="SECONDS",
                     help="Stop after SECONDS.")(f)
    f = click.option("--json", "json_out", is_flag=True, help="One JSON object per event and per aggregate.")(f)
    f = click.option("--dry-run", is_flag=True, help="Load and attach the program, then detach and exit.")(f)
    return f
