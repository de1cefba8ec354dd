"""``gpttrace examples``: browse, show, run and check the worked examples of the corpus.

\b
  gpttrace examples                    every entry: id, lesson, what it needs, runnable here, title
  gpttrace examples tcp latency        entries ranked for a query (the planner's own retrieval)
  gpttrace examples show runqlat       explanation, ways to ask, original method, program for this kernel
  gpttrace examples run execsnoop -d 5 run an entry like a one-shot trace
  gpttrace examples --check            load every entry here (dry run): loaded / skipped / failed
  gpttrace examples --refresh          re-render the program: field of every entry file
  gpttrace examples --tools            the classic tools (BCC, bpftrace) and the entries that cover them
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .options import parse_command, run_options

if TYPE_CHECKING:
    from ..corpus import Example
    from ..kernel.catalog import Catalog
    from ..spec import ProgramSpec

_CONTEXT = {"help_option_names": ["-h", "--help"]}


class _ExamplesGroup(click.Group):
    """Words that are not a subcommand are a query: ``gpttrace examples tcp latency`` lists matches."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["list", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ExamplesGroup, invoke_without_command=True, context_settings=_CONTEXT)
@click.option("--check", is_flag=True, help="Load every entry on this kernel (dry run) and report.")
@click.option("--backend", type=click.Choice(["bpftrace", "bcc"]), default="bpftrace", show_default=True,
              help="Backend for --check.")
@click.option("--jobs", type=click.IntRange(1, 16), default=4, show_default=True,
              help="Programs --check loads at the same time.")
@click.option("--refresh", is_flag=True, help="Re-render the program: field of every entry file.")
@click.option("--tools", "tools_table", is_flag=True,
              help="The classic BCC and bpftrace tools and the entries that cover them (a markdown table).")
@click.pass_context
def examples(ctx: click.Context, check: bool, backend: str, jobs: int, refresh: bool, tools_table: bool) -> None:
    """Worked examples: list them (ranked for QUERY), show, run or check them."""
    if ctx.invoked_subcommand is not None:
        return
    if tools_table:
        from ..classic_tools import counts, table

        click.echo(table(), nl=False)
        n = counts()
        click.echo(f"{n['tools']} tools: {n['covered']} covered by {n['entries']} entries, {n['reason']} listed with "
                   f"a reason, {n['missing']} missing", err=True)
        return
    if refresh:
        changed = refresh_programs()
        click.echo(f"{len(changed)} program(s) re-rendered" + (f": {', '.join(changed)}" if changed else ""))
        if not check:
            return
    if check:
        raise SystemExit(_run_check(backend, jobs))
    ctx.invoke(list_cmd)


# -- list ----------------------------------------------------------------------------------------------
@examples.command("list", context_settings=_CONTEXT)
@click.argument("query", nargs=-1)
@click.option("-n", "--limit", type=click.IntRange(1, 500), default=10, show_default=True,
              help="With a query: how many entries to show.")
def list_cmd(query: tuple[str, ...] = (), limit: int = 10) -> None:
    """List the entries, ranked for QUERY when one is given."""
    from ..corpus import load
    from ..kernel.catalog import Catalog

    catalog = Catalog()
    text = " ".join(query).strip()
    if text:
        from ..planning.retrieval import index

        hits = index().search(text, limit=limit)
        if not hits:
            click.echo(f"No example matches {text!r}. `gpttrace examples` lists them all.", err=True)
            raise SystemExit(1)
        rows = [(h.example, f"{h.score:5.1f}") for h in hits]
    else:
        rows = [(e, "") for e in load()]
    width = max(len(e.id) for e, _ in rows)
    head = f"{'ID':<{width}}  {'LESSON':<6}  {'NEEDS':<22}  {'HERE':<4}  TITLE"
    click.echo(("SCORE  " if text else "") + head)
    for e, score in rows:
        gap = runnable_here(e, catalog)
        here = "yes" if gap is None else "no"
        line = f"{e.id:<{width}}  {e.lesson or '':<6}  {needs_text(e):<22}  {here:<4}  {e.title}"
        click.echo((f"{score}  " if text else "") + line)
    if not text:
        click.echo(f"\n{len(rows)} examples. `gpttrace examples QUERY` ranks them; "
                   "`gpttrace examples show ID` shows one.", err=True)


def needs_text(e: Example) -> str:
    """What the entry's spec needs from the kernel: probe kinds (uprobes with their target); a needs_only
    entry's declared need."""
    if e.need:
        return e.need
    parts: list[str] = []
    for p in e.spec.all_probes:
        item = f"{p.kind}:{p.target}" if p.kind in ("uprobe", "uretprobe") else p.kind
        item = item.replace("uretprobe:", "uprobe:")
        if item not in parts:
            parts.append(item)
    return ",".join(parts)


def runnable_here(e: Example, catalog: Catalog) -> str | None:
    """None when the spec (or an alternative) fits this kernel, else why not (a catalog check, no load)."""
    from ..corpus import unmet_need
    from ..corpus_check import missing

    if e.need and (why := unmet_need(e.need, catalog)):
        return f"needs {e.need}: {why}"
    first: str | None = None
    for spec in [e.spec, *e.alternatives]:
        gap = missing(spec, catalog)
        if gap is None:
            return None
        first = first or f"needs {gap[0]}: {gap[1]}"
    return first


# -- show ----------------------------------------------------------------------------------------------
@examples.command("show", context_settings=_CONTEXT)
@click.argument("entry_id", metavar="ID")
@click.option("--backend", type=click.Choice(["bpftrace", "bcc"]), default="bpftrace", show_default=True,
              help="Render the program for this backend.")
def show(entry_id: str, backend: str) -> None:
    """Explain one entry and print its program, rendered for this kernel."""
    from ..kernel.catalog import Catalog

    e = _entry(entry_id)
    catalog = Catalog()
    click.echo(f"{e.id}: {e.title}")
    if e.lesson:
        click.echo(f"Tutorial lesson {e.lesson}")
    if e.tags:
        click.echo(f"Tags: {', '.join(e.tags)}")
    if e.tools:
        click.echo(f"Classic tools: {', '.join(e.tools)}")
    click.echo("")
    click.echo(textwrap.fill(" ".join(e.explanation.split()), width=100))
    if e.paraphrases:
        click.echo("\nWays to ask for it:")
        for p in e.paraphrases:
            click.echo(f'  gpttrace "{p}"')
    gap = runnable_here(e, catalog)
    click.echo(f"\nRunnable here: {'yes' if gap is None else 'no (' + gap + ')'}")
    if e.substitute:
        click.echo(textwrap.fill("Substitute for " + "/".join(e.tools) + ": " + " ".join(e.substitute.split()),
                                 width=100))
    if e.original:
        o = e.original
        click.echo(f"\nThe original method: {o.method} (needs {o.needs}: "
                   f"{_availability(o.needs, catalog, e.id)})")
        if o.note:
            click.echo(textwrap.fill(" ".join(o.note.split()), width=100, initial_indent="  ",
                                     subsequent_indent="  "))
    label = "the original method; not loaded where its need is missing" if e.needs_only else "rendered for this kernel"
    click.echo(f"\n# The program ({backend}, {label}):")
    click.echo(_render_text(e.spec, backend, catalog).rstrip("\n"))
    if e.original and e.original.spec is not None:
        spec = e.original.spec
        orig_backend = "bcc" if any(p.kind in ("xdp", "tc") for p in spec.all_probes) else backend
        click.echo(f"\n# The original method's program ({orig_backend}; shown, not loaded):")
        click.echo(_render_text(spec, orig_backend, catalog).rstrip("\n"))
    for i, alt in enumerate(e.alternatives, 1):
        click.echo(f"\n# Alternative {i} ({backend}):")
        click.echo(_render_text(alt, backend, catalog).rstrip("\n"))


def _availability(need: str, catalog: Catalog, entry_id: str) -> str:
    """Whether this machine has what an original method needs, in words."""
    from ..corpus import unmet_need

    why = unmet_need(need, catalog)
    if why:
        return f"not available here: {why}"
    how = " with the BCC backend" if need in ("xdp", "tc") else ""
    e = _entry(entry_id)
    return f"available here{how} (gpttrace examples run {entry_id}{'' if e.needs_only else ' --original'})"


def _render_text(spec: ProgramSpec, backend: str, catalog: Catalog) -> str:
    """The program for ``backend``; when it cannot be rendered, say why and show the spec instead."""
    import yaml

    from ..errors import GpttraceError

    try:
        if backend == "bcc":
            from ..service.backends import render as render_backend

            return render_backend(spec, "bcc", catalog).text
        from ..render.bpftrace import render

        return render(spec, catalog).text
    except (GpttraceError, ValueError, ImportError) as exc:
        why = getattr(exc, "message", None) or str(exc)
        dump = yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
                              sort_keys=False, width=110)
        return f"# cannot render for {backend} here: {why}\n# the spec:\n" + textwrap.indent(dump, "# ")


# -- run -----------------------------------------------------------------------------------------------
@examples.command("run", context_settings=_CONTEXT)
@click.argument("entry_id", metavar="ID")
@click.option("-y", "--yes", is_flag=True, help="Run without asking for confirmation.")
@click.option("--backend", type=click.Choice(["auto", "bpftrace", "bcc"]), default="auto", show_default=True,
              help="Program flavour: bpftrace script or BCC Python program.")
@click.option("--original", is_flag=True, help="Run the lesson's original method (kprobe, fentry, LSM, XDP, tc).")
@run_options
def run(entry_id: str, yes: bool, backend: str, original: bool, command: str | None, duration: float | None,
        json_out: bool, dry_run: bool) -> None:
    """Run one entry like a one-shot trace (its first spec that fits this kernel)."""
    from .. import safety
    from ..service.trace import run_spec

    safety.check_privileges()  # first: without root, what "fits" cannot be known (tracefs is root's)
    from ..errors import ExitCode, UsageError
    from ..kernel.catalog import Catalog

    e = _entry(entry_id)
    catalog = Catalog()
    if e.need and not original and (gap := runnable_here(e, catalog)):
        raise UsageError(f"{e.id} cannot run here: {gap}", f"`gpttrace examples show {e.id}` shows its program")
    candidates = [e.spec, *e.alternatives]
    if original:
        if e.original is None or e.original.spec is None:
            raise UsageError(f"{e.id} has no original method to run", f"gpttrace examples run {e.id}")
        candidates = [e.original.spec]
    spec = None
    for candidate in candidates:
        if _fits(candidate, catalog):
            spec = candidate
            break
    if spec is None:
        lacks = missing(candidates[0], catalog) if original else None
        why = ((f"needs {lacks[0]}: {lacks[1]}" if lacks else None) or runnable_here(e, catalog)
               or "it does not fit here")
        raise UsageError(f"{e.id} cannot run here: {why}",
                         "`gpttrace examples show " + e.id + "` explains it; `gpttrace doctor` lists what is missing")
    code = run_spec(spec, backend=backend, yes=yes, command=parse_command(command), duration=duration,
                    json_out=json_out, dry_run=dry_run)
    if code != ExitCode.OK:
        raise SystemExit(int(code))


def _fits(spec: ProgramSpec, catalog: Catalog) -> bool:
    return missing(spec, catalog) is None


def missing(spec: ProgramSpec, catalog: Catalog) -> tuple[str, str] | None:
    from ..corpus_check import missing as catalog_gap

    return catalog_gap(spec, catalog)


def _entry(entry_id: str) -> Example:
    from ..corpus import by_id, load
    from ..errors import UsageError

    e = by_id(entry_id)
    if e is None:
        from ..planning.retrieval import index

        near = [h.example.id for h in index().search(entry_id.replace("-", " "), limit=3)]
        ids = {x.id for x in load()}
        close = [i for i in ids if entry_id in i] + near
        hint = f"did you mean: {', '.join(dict.fromkeys(close[:4]))}?" if close else "`gpttrace examples` lists them"
        raise UsageError(f"no example {entry_id!r}", hint)
    return e


# -- check ---------------------------------------------------------------------------------------------
def _run_check(backend: str, jobs: int) -> int:
    from ..corpus_check import CheckResult, check_all, summary

    def progress(r: CheckResult) -> None:
        click.echo(r.line())

    results = check_all(backend=backend, jobs=jobs, progress=progress)
    click.echo(summary(results))
    return 1 if any(r.status == "failed" for r in results) else 0


# -- refresh -------------------------------------------------------------------------------------------
_TOP_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*:")


def program_block(program: str) -> str:
    """The ``program: |`` block for an entry file."""
    lines = [("  " + ln) if ln.strip() else "" for ln in program.rstrip("\n").split("\n")]
    return "program: |\n" + "\n".join(lines) + "\n"


def replace_program(text: str, program: str) -> str:
    """The file text with its top-level ``program:`` block replaced (or appended), the rest untouched."""
    lines = text.split("\n")
    start = next((i for i, ln in enumerate(lines) if ln.startswith("program:")), None)
    if start is None:
        body = text if text.endswith("\n") else text + "\n"
        return body + program_block(program)
    end = next((i for i in range(start + 1, len(lines)) if _TOP_KEY.match(lines[i])), len(lines))
    head = "\n".join(lines[:start])
    tail = "\n".join(lines[end:])
    out = (head + "\n" if head else "") + program_block(program)
    if tail.strip():
        out += tail if tail.endswith("\n") else tail + "\n"
    return out


def refresh_programs(directory: str | None = None) -> list[str]:
    """Re-render every entry's ``program:`` (bpftrace, this machine's catalog); the ids whose text changed."""
    from ..corpus import load
    from ..kernel.catalog import Catalog
    from ..render.bpftrace import render

    catalog = Catalog()
    changed: list[str] = []
    for e in load(directory):
        assert e.path is not None
        path = Path(e.path)
        program = render(e.spec, catalog).text
        if e.program == program or (e.program or "").rstrip("\n") == program.rstrip("\n"):
            continue
        path.write_text(replace_program(path.read_text(), program))
        changed.append(e.id)
    load.cache_clear()
    return changed
