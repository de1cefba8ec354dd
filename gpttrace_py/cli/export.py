"""``gpttrace export k8s|libbpf|go``: hand a planned program to another engine (Kubernetes manifests) or write it as
a standalone project to build and ship (a libbpf CO-RE tool in C, the same on cilium/ebpf in Go)."""

from __future__ import annotations

import click

from .options import planner_choice


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def export() -> None:
    """Hand a planned program to another engine (Kubernetes), or write it as a project to build and ship."""


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
        model: str | None, no_fallback: bool, unsafe: bool, no_check: bool) -> None:
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

        planned = fleet.from_request(text, get_planner(offline=offline, model=model, fallback=not no_fallback),
                                     seconds, unsafe)
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


def _project_options(f):
    f = planner_choice(f)
    f = click.option("-n", "--name", metavar="NAME", help="Name of the tool (default: from the program's title).")(f)
    f = click.option("-o", "--output", "directory", metavar="DIR", help="Project directory (default: ./NAME).")(f)
    f = click.option("--spec", "spec_file", type=click.Path(dir_okay=False),
                     help="Export this saved spec (JSON) instead.")(f)
    return click.argument("request", nargs=-1)(f)


@export.command(context_settings={"help_option_names": ["-h", "--help"]})
@_project_options
def libbpf(request: tuple[str, ...], spec_file: str | None, directory: str | None, name: str | None,
           offline: bool, model: str | None, no_fallback: bool) -> None:
    """Write the program for REQUEST as a libbpf CO-RE tool in C; `make` in the directory builds it.

    \b
      gpttrace export libbpf "trace files opened by cat" -o opensnoop
    """
    _project("libbpf", request, spec_file, directory, name, offline, model, no_fallback)


@export.command(context_settings={"help_option_names": ["-h", "--help"]})
@_project_options
def go(request: tuple[str, ...], spec_file: str | None, directory: str | None, name: str | None,
       offline: bool, model: str | None, no_fallback: bool) -> None:
    """Write the program for REQUEST as a Go tool on cilium/ebpf; `make` in the directory builds it (offline).

    \b
      gpttrace export go "count syscalls by process" -n syscount
    """
    _project("go", request, spec_file, directory, name, offline, model, no_fallback)


def _project(lang: str, request: tuple[str, ...], spec_file: str | None, directory: str | None, name: str | None,
             offline: bool, model: str | None, no_fallback: bool = False) -> None:
    from ..errors import UsageError
    from ..kernel.catalog import Catalog
    from ..project_files import write_files
    from ..render.escape import slug

    catalog = Catalog()
    text = " ".join(request).strip()
    if spec_file and text:
        raise UsageError("give a REQUEST or --spec FILE, not both")
    if spec_file:
        spec = _read_spec(spec_file)
    elif text:
        from ..planning.base import PlanContext
        from ..planning.plan import make_plan
        from ..planning.select import get_planner

        plan = make_plan(get_planner(offline=offline, model=model, fallback=not no_fallback), text,
                         PlanContext(catalog=catalog))
        spec = plan.spec
        click.echo(f"understood: {plan.understood()}", err=True)
    else:
        raise UsageError("nothing to export", 'gpttrace export libbpf "REQUEST" (or --spec FILE)')
    problems = catalog.check_spec(spec)
    if problems:
        raise UsageError(f"{spec.title}: " + "; ".join(str(p) for p in problems))
    name = name or slug(spec.title)[:24].rstrip("_")
    if lang == "libbpf":
        from ..render.export_libbpf import project
    else:
        from ..render.export_go import project
    files = project(spec, catalog, name)
    directory = directory or name
    write_files(directory, files)
    click.echo(f"wrote {', '.join(files)} in {directory}/; build it with: make -C {directory}", err=True)
    click.echo(directory)


def _read_spec(path: str):
    from pydantic import ValidationError

    from ..errors import UsageError
    from ..spec import ProgramSpec

    try:
        with open(path, encoding="utf-8") as fh:
            return ProgramSpec.model_validate_json(fh.read())
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except ValidationError as exc:
        raise UsageError(f"{path} is not a program spec: {exc.errors()[0]['msg']}") from None
