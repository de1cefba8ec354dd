"""``gpttrace export libbpf|go REQUEST``: write the program for a request as a standalone project."""

from __future__ import annotations

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("lang", type=click.Choice(["libbpf", "go"]))
@click.argument("request", nargs=-1)
@click.option("--spec", "spec_file", type=click.Path(dir_okay=False), help="Export this saved spec (JSON) instead.")
@click.option("-o", "--output", "directory", metavar="DIR", help="Project directory (default: ./NAME).")
@click.option("-n", "--name", metavar="NAME", help="Name of the tool (default: from the program's title).")
@click.option("--offline", is_flag=True, help="Use the offline planner (no network, no API key).")
@click.option("-m", "--model", metavar="MODEL", help="LLM to plan with (default: GPTTRACE_MODEL or config).")
def export(lang: str, request: tuple[str, ...], spec_file: str | None, directory: str | None, name: str | None,
           offline: bool, model: str | None) -> None:
    """Write the program for REQUEST as a project to build and ship: a libbpf CO-RE tool in C, or the same on
    cilium/ebpf in Go. `make` in the directory builds it.

    \b
      gpttrace export libbpf "trace files opened by cat" -o opensnoop
      gpttrace export go "count syscalls by process" -n syscount
    """
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

        plan = make_plan(get_planner(offline=offline, model=model), text, PlanContext(catalog=catalog))
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
