"""The ``baseline`` command: a click group whose subcommands live one per module.

Errors derived from :class:`baseline.errors.BaselineError` become one line on
stderr and the error's exit code, never a traceback. ``--debug`` shows the
traceback for bug reports.
"""

from __future__ import annotations

import logging
import sys
import traceback

import click

from baseline import __version__
from baseline.core.secrets import install_redaction, redact
from baseline.errors import BaselineError

EPILOG = """\b
Examples:
  baseline run configs/demo-helsinki.yaml          # the embedded demo, end to end
  baseline synth --city helsinki --out scene/      # render a scene with exact truth
  baseline evaluate runs/demo-helsinki --truth .cache/scenes/demo-helsinki/truth
"""


class _Group(click.Group):
    """Lists commands in the order they were added (the order of a workflow)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=_Group, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="citybaseline")
@click.option("-v", "--verbose", count=True, help="More log detail (-v info, -vv debug).")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, debug: bool) -> None:
    """Map a city's baseline from satellite imagery: buildings, heights, vehicles."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_redaction()  # credentials a source registers never reach a log line
    ctx.ensure_object(dict)["debug"] = debug


def _register() -> None:
    """Attach every subcommand; each module owns one command."""
    for name in ("synth_cmd", "fetch_cmd", "run_cmd", "evaluate_cmd", "train_cmd", "bench_cmd"):
        try:
            module = __import__(f"baseline.cli.{name}", fromlist=["command"])
        except ModuleNotFoundError as exc:
            if exc.name != f"baseline.cli.{name}":
                raise
            continue
        cli.add_command(module.command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="baseline", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BaselineError as exc:
        if debug:  # the traceback, with any registered secret hidden
            click.echo(redact("".join(traceback.format_exception(exc))).rstrip(), err=True)
            sys.exit(exc.exit_code)
        click.echo(f"error: {redact(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; finished work is kept and a rerun resumes from it", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
