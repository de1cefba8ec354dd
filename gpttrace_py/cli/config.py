"""``gpttrace config``: where the settings file is, what is set (keys masked), and set/unset/path."""

from __future__ import annotations

import click


class _ShowByDefault(click.Group):
    """``gpttrace config`` alone (or with show's options) shows the settings."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0].startswith("-") and args[0] not in ("-h", "--help")):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ShowByDefault, context_settings={"help_option_names": ["-h", "--help"]})
def config() -> None:
    """Show or change the LLM settings (API key, base URL, model).

    \b
      gpttrace config                                   what is set, and from where
      gpttrace config set model gpt-4o
      gpttrace config set base_url http://localhost:11434/v1
      gpttrace config set api_key                       (asks for the key; not echoed)
      gpttrace config unset api_key
      gpttrace config path

    The environment (OPENAI_API_KEY, OPENAI_BASE_URL, GPTTRACE_MODEL) overrides the file; -m/--model
    overrides both. With no key and no base URL, gpttrace plans offline.
    """


@config.command("show")
@click.option("--json", "json_out", is_flag=True, help="Print the settings as JSON (the key masked).")
def show(json_out: bool) -> None:
    """Show the settings file and every setting with its source."""
    import json
    import os

    from .. import config as cfg

    path = cfg.config_path()
    resolved = cfg.resolve()
    llm = bool(resolved["api_key"].value or resolved["base_url"].value)
    rows = {}
    for key, r in resolved.items():
        shown = cfg.mask(r.value) if cfg.SETTINGS[key].secret else ("(not set)" if r.value is None else str(r.value))
        rows[key] = {"value": shown, "source": r.source or "unset"}
    if json_out:
        click.echo(json.dumps({"path": str(path), "exists": path.exists(), "settings": rows,
                               "planner": "llm" if llm else "offline"}, indent=2))
        return
    state = "exists" if path.exists() else "not created yet"
    mode = ""
    if path.exists():
        mode = f", mode {oct(os.stat(path).st_mode & 0o777)[2:]}"
    click.echo(f"config file: {path} ({state}{mode})")
    width = max(len(k) for k in rows)
    for key, row in rows.items():
        source = f"  [{row['source']}]" if row["source"] != "unset" else ""
        click.echo(f"  {key:<{width}}  {row['value']}{source}")
    if llm:
        where = resolved["base_url"].value or "https://api.openai.com/v1"
        click.echo(f"planner: LLM ({resolved['model'].value} at {where}); --offline plans without it")
    else:
        click.echo("planner: offline (set api_key or base_url to plan with an LLM)")


@config.command("set")
@click.argument("key")
@click.argument("value", required=False)
def set_(key: str, value: str | None) -> None:
    """Set KEY to VALUE (api_key: leave VALUE out to type it without echo, or '-' to read stdin)."""
    import sys

    from .. import config as cfg

    name = cfg.canonical_key(key)
    if value is None or value == "-":
        if not cfg.SETTINGS[name].secret and value is None:
            raise click.UsageError(f"give a value: gpttrace config set {name} VALUE")
        if value == "-" or not sys.stdin.isatty():
            value = sys.stdin.readline().strip()
        else:
            value = click.prompt(f"{name}", hide_input=True, err=True)
    path = cfg.set_value(name, value)
    shown = cfg.mask(value) if cfg.SETTINGS[name].secret else cfg.check_value(name, value)
    click.echo(f"{name} = {shown}  (saved to {path})", err=True)
    env = cfg.SETTINGS[name].env
    import os

    if os.environ.get(env):
        click.echo(f"note: ${env} is set and takes precedence over the file", err=True)


@config.command("unset")
@click.argument("key")
def unset(key: str) -> None:
    """Remove KEY from the settings file."""
    from .. import config as cfg

    name = cfg.canonical_key(key)
    if cfg.unset_value(name):
        click.echo(f"{name} removed from {cfg.config_path()}", err=True)
    else:
        click.echo(f"{name} was not set in {cfg.config_path()}", err=True)


@config.command("path")
def path() -> None:
    """Print the path of the settings file."""
    from .. import config as cfg

    click.echo(str(cfg.config_path()))
