"""``gpttrace merge FILE... | -``: one fleet-wide result from several nodes' bpftrace JSON output."""

from __future__ import annotations

import sys

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--program", "program_file", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="The program the nodes ran (.bt, or the manifests from `gpttrace export k8s`): how each map "
                   "combines.")
@click.option("--by-node", is_flag=True, help="Also show each node's own values.")
@click.option("--json", "json_out", is_flag=True, help="bpftrace's own JSON records, merged.")
def merge(files: tuple[str, ...], program_file: str | None, by_node: bool, json_out: bool) -> None:
    """Combine the `bpftrace -f json` outputs of several nodes into one result.

    Each FILE is one node's output, named after the file (node-a.json is node-a); `-` reads standard input,
    where `kubectl logs --prefix` lines are told apart by pod.

    \b
      kubectl logs -l app.kubernetes.io/instance=NAME -c trace --prefix --tail=-1 > nodes.log
      gpttrace merge --program fleet.yaml nodes.log
      gpttrace merge --program prog.bt --by-node node-a.json node-b.json
    """
    from ..errors import ExitCode, GpttraceError, UsageError
    from ..fleet import merge as fleet
    from ..fleet import show
    from ..ui import UI

    sources = []
    for path in files:
        if path == "-":
            sources.append(("stdin", sys.stdin.read().splitlines()))
            continue
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                sources.append((fleet.node_name(path), fh.read().splitlines()))
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    uses = None
    if program_file:
        with open(program_file, encoding="utf-8", errors="replace") as fh:
            uses = fleet.map_uses(fleet.program_from(fh.read()))
    result = fleet.merge(fleet.read_nodes(sources), uses)
    ui = UI()
    for line in show.summary(result):
        ui.warn(f"gpttrace: {line}")
    if json_out:
        show.print_json(result, by_node, ui.out)
    else:
        show.text_lines(result, by_node, ui.out)
    if not result.merged:
        raise GpttraceError("no node's output could be merged", "see why each was left out, above",
                            ExitCode.TRACE_FAILED)
