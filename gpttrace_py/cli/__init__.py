"""Command-line entry point: ``gpttrace "INTENT"`` traces; subcommands do the rest.

Like ``llm "prompt"``, the default command is the one-shot trace: anything that is not a subcommand name
is an intent. Heavy modules are imported inside commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import os
import sys

import click

from ..errors import ExitCode, GpttraceError

SUBCOMMANDS = {
    "trace": ("gpttrace_py.cli.trace", "trace"),
    "doctor": ("gpttrace_py.cli.doctor", "doctor"),
    "examples": ("gpttrace_py.cli.examples", "examples"),
    "chat": ("gpttrace_py.cli.chat", "chat"),
    "explain": ("gpttrace_py.cli.explain", "explain"),
    "config": ("gpttrace_py.cli.config", "config"),
    "log": ("gpttrace_py.cli.log", "log"),
    "mcp": ("gpttrace_py.cli.mcp", "mcp"),
    "export": ("gpttrace_py.cli.export", "export"),
    "merge": ("gpttrace_py.cli.merge", "merge"),
}


class DefaultToTrace(click.Group):
    """A group whose commands load lazily and whose default command is ``trace``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (module, _) in SUBCOMMANDS.items() if _module_exists(module)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS or not _module_exists(SUBCOMMANDS[name][0]):
            return None
        import importlib

        module, attr = SUBCOMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in ("--help", "-h", "--version") and args[0] not in self.list_commands(ctx):
            args = ["trace", *args]
        return super().parse_args(ctx, args)


def _module_exists(module: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module) is not None


@click.group(cls=DefaultToTrace, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gpttrace", message="gpttrace %(version)s")
def cli() -> None:
    """Turn a tracing question into a real eBPF program, run it, and explain it.

    \b
      gpttrace "trace files opened by nginx"
      gpttrace -c "ls /tmp" "count syscalls by process"
      gpttrace chat
      gpttrace explain program.bt
      gpttrace export libbpf "count syscalls by process"
      gpttrace examples opens
      gpttrace doctor

    Run `gpttrace trace --help` for the options of a one-shot trace.
    """


def main(argv: list[str] | None = None) -> None:
    """Run the CLI, turning expected failures into one message and an exit code."""
    from .. import speedups

    speedups.fewer_collections()
    speedups.no_pydantic_plugins()
    code = _run(argv)
    if argv is None:  # the gpttrace command itself, not a caller in this process
        speedups.exit_now(code)
    sys.exit(code)


def _run(argv: list[str] | None) -> int:
    debug = bool(os.environ.get("GPTTRACE_DEBUG"))
    try:
        cli.main(args=argv, prog_name="gpttrace", standalone_mode=False)
    except GpttraceError as exc:
        if debug:
            raise
        _fail(exc.message, exc.hint)
        return int(exc.code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return ExitCode.INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return ExitCode.INTERRUPTED
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except BrokenPipeError:
        sys.stderr.close()
        return ExitCode.OK
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else ExitCode.TRACE_FAILED)
    except Exception as exc:  # a bug: one line for the user, the traceback under GPTTRACE_DEBUG=1
        if debug:
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc}",
              "this is a bug in gpttrace; run again with GPTTRACE_DEBUG=1 for the traceback")
        return ExitCode.TRACE_FAILED
    return ExitCode.OK


def _fail(message: str, hint: str | None) -> None:
    from ..terminal import escape  # a message may quote a model server or traced data

    click.echo(f"gpttrace: {escape(message, keep_newlines=True)}", err=True)
    if hint:
        click.echo(escape(f"  {hint}".replace("\n", "\n  "), keep_newlines=True), err=True)
