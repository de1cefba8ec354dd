"""Option bundles shared by several commands, declared once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def planner_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--offline", is_flag=True, help="Use the offline planner (no network, no API key).")(f)
    f = click.option("--no-fallback", is_flag=True,
                     help="When the model gives no usable plan (or its service is down), fail instead of using "
                          "the offline planner's plan.")(f)
    f = click.option("-m", "--model", metavar="MODEL", help="LLM to plan with (default: GPTTRACE_MODEL or config).")(f)
    f = click.option("--backend", type=click.Choice(["auto", "bpftrace", "bcc"]), default="auto", show_default=True,
                     help="Program flavour: bpftrace script or BCC Python program.")(f)
    f = click.option("-y", "--yes", is_flag=True, help="Run without asking for confirmation.")(f)
    return f


def run_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("-c", "--command", "command", metavar="CMD",
                     help="Start CMD once the probes are attached; stop shortly after it exits.")(f)
    f = click.option("-d", "--duration", type=click.FloatRange(min=0.1), metavar="SECONDS",
                     help="Stop after SECONDS.")(f)
    f = click.option("--json", "json_out", is_flag=True, help="One JSON object per event and per aggregate.")(f)
    f = click.option("--dry-run", is_flag=True, help="Load and attach the program, then detach and exit.")(f)
    return f
