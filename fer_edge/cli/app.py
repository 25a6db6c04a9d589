"""The `fer-edge` command: parse options, build objects, call the library, map FerEdgeError to one line."""

from __future__ import annotations

import sys

import typer

from fer_edge.errors import FerEdgeError

app = typer.Typer(
    name="fer-edge",
    help="Facial expression recognition for the edge: classify photos and video, train and export models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from fer_edge.cli import runtime_cmds, train_cmds

    runtime_cmds.register(app)
    train_cmds.register(app)


_register()


def main() -> None:
    try:
        app(standalone_mode=False)
    except FerEdgeError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.Exit as e:  # --help and friends
        sys.exit(e.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as e:  # click's usage errors
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise
