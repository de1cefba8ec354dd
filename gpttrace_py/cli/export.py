"""``gpttrace export k8s REQUEST``: Kubernetes manifests that run the planned program on a cluster's nodes."""

from __future__ import annotations

import click

from .options import planner_choice


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def export() -> None:
    """Hand a planned program to another engine (Kubernetes)."""


@export.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("request", nargs=-1)
@click.option("--program", "program_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Export this saved bpftrace program instead of planning a request.")
@click.option("--kind", type=click.Choice(["daemonset", "job"]), default="daemonset", show_default=True,
              help="daemonset: every node (or those --node-selector picks); job: one node.")
@click.option("--node", metavar="NAME", help="The node a job runs on (spec.nodeName).")
@click.option("--node-selector", "selectors", multiple=True, metavar="KEY=VALUE",
              help="Only nodes with this label (repeatable).")
@click.option("--seconds", type=click.IntRange(1, 86400), metavar="N",
              help="How long the program runs on each node (default: a duration the request says, else 60).")
@click.option("--image", default=None, metavar="IMAGE", help="The bpftrace image [quay.io/iovisor/bpftrace:latest].")
@click.option("--name", metavar="NAME", help="The objects' name (default: gpttrace-<hash of the program>).")
@click.option("-n", "--namespace", metavar="NAMESPACE", help="The namespace (default: kubectl's current one).")
@planner_choice
@click.option("--unsafe", is_flag=True, help="Allow a program that changes the system (bpftrace --unsafe).")
@click.option("--no-check", is_flag=True, help="Do not load the program on this machine first.")
def k8s(request: tuple[str, ...], program_file: str | None, kind: str, node: str | None, selectors: tuple[str, ...],
        seconds: int | None, image: str | None, name: str | None, namespace: str | None, offline: bool,
        model: str | None, unsafe: bool, no_check: bool) -> None:
    """Print Kubernetes manifests (YAML) that run REQUEST's program with bpftrace on the nodes.

    \b
      gpttrace export k8s "count syscalls by process" > fleet.yaml
      kubectl apply -f fleet.yaml
      gpttrace export k8s --kind job --node worker-1 --seconds 30 "histogram of read sizes"

    The pods print bpftrace's JSON lines; collect them and combine them with `gpttrace merge`.
    """
    from ..errors import UsageError
    from ..fleet import k8s as manifests
    from ..fleet import program as fleet
    from ..ui import UI

    if bool(request) == bool(program_file):
        raise UsageError("give a REQUEST or --program FILE (one of them)")
    if kind == "daemonset" and node:
        raise UsageError("--node pins a job; a daemonset runs on every node", "use --kind job, or --node-selector")
    if kind == "job" and not (node or selectors):
        raise UsageError("a job runs on one node: say which", "--node NAME (as `kubectl get nodes` lists it), "
                         "or --node-selector KEY=VALUE to let the scheduler pick one of those")
    target = manifests.Target(
        kind="job" if kind == "job" else "daemonset",
        name=manifests.name_of(name, "--name") if name else "",
        namespace=manifests.name_of(namespace, "--namespace") if namespace else None,
        node=manifests.node_name(node) if node else None,
        node_selector=dict(manifests.label(s) for s in selectors),
        image=manifests.image(image) if image else manifests.DEFAULT_IMAGE,
        unsafe=unsafe)
    ui = UI()
    text = " ".join(request)
    if program_file:
        planned = fleet.from_file(program_file, seconds)
    else:
        from ..planning.select import get_planner

        planned = fleet.from_request(text, get_planner(offline=offline, model=model), seconds, unsafe)
        assert planned.plan is not None
        ui.talk(f"understood: {planned.plan.understood()}")
        if planned.plan.not_honoured:
            ui.warn(f"not honoured: {', '.join(planned.plan.not_honoured)}")
    uses = fleet.check_safety(planned, unsafe)
    target.unsafe = bool(uses)
    for note in planned.notes:
        ui.talk(f"note: {note}")
    if no_check:
        ui.talk("not loaded here (--no-check): the nodes' kernels are the first to check it")
    else:
        fleet.check_loads(planned, bool(uses))
        ui.talk("The program loads and attaches on this machine (bpftrace).")
    objects = manifests.manifests(planned.text, planned.seconds, target, text or None)
    click.echo(manifests.to_yaml(objects), nl=False)
    instance = objects[0]["metadata"]["name"]
    ns = f" -n {target.namespace}" if target.namespace else ""
    ui.talk(f"runs {planned.seconds} s per node; then collect and merge:\n"
            f"  kubectl apply -f FILE\n"
            f"  kubectl logs{ns} -l {manifests.INSTANCE_LABEL}={instance} -c {manifests.CONTAINER} --prefix "
            f"--tail=-1 > nodes.log\n"
            f"  gpttrace merge --program FILE nodes.log")
    ui.talk("with kubectl-trace instead (one node per run; text output, which gpttrace merge does not read):\n  "
            + manifests.kubectl_trace(planned.text, planned.seconds, target.node))
