"""``gpttrace mcp``: serve the planner, the safety gates and the runner to any agent (an MCP host)."""

from __future__ import annotations

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--http", "http", metavar="HOST:PORT",
              help="Serve the streamable HTTP transport on this loopback address (e.g. 127.0.0.1:8765) instead "
                   "of stdio.")
@click.option("--unsafe", is_flag=True,
              help="Let clients run programs that change the system (signals, system(), ...). Off: refused.")
@click.option("--max-seconds", type=click.FloatRange(min=1, max=3600), default=60.0, show_default=True,
              help="The longest a run may trace.")
@click.option("--default-seconds", type=click.FloatRange(min=0.5, max=3600), default=10.0, show_default=True,
              help="How long a run traces when the client says nothing.")
@click.option("--max-runs", type=click.IntRange(1, 32), default=4, show_default=True, help="Runs at once.")
def mcp(http: str | None, unsafe: bool, max_seconds: float, default_seconds: float, max_runs: int) -> None:
    """Run an MCP server (stdio by default, what MCP hosts launch) with the tools plan, run, explain, probes,
    examples and doctor, and the worked examples and tutorial lessons as resources.

    \b
      gpttrace mcp                        # an MCP host starts this (see README)
      gpttrace mcp --http 127.0.0.1:8765  # streamable HTTP at http://127.0.0.1:8765/mcp
    """
    from ..errors import UsageError

    try:
        from ..agent.server import parse_http, serve
        from ..agent.tools import AgentTools
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("mcp", "mcp_types", "anyio", "uvicorn", "starlette"):
            raise
        raise UsageError("the MCP SDK is not installed", "pip install 'gpttrace[mcp]' (./install.sh does)") from None
    if default_seconds > max_seconds:
        raise UsageError(f"--default-seconds {default_seconds:g} is more than --max-seconds {max_seconds:g}")
    address = parse_http(http) if http else None
    tools = AgentTools(unsafe=unsafe, default_seconds=default_seconds, max_seconds=max_seconds, max_runs=max_runs)
    serve(tools, address)
