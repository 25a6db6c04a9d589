"""The `fer-edge` command: parse options, build objects, call the library, map FerEdgeError to one line."""

from __future__ import annotations

import typer


app = typer.Typer(
    name="fer-edge",
    help="Facial expression recognition for the edge: classify photos and video, train and export models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from fer_edge.cli import models_cmd, report_cmd, runtime_cmds, train_cmds

    runtime_cmds.register(app)
    models_cmd.register(app)
    report_cmd.register(app)
    train_cmds.register(app)


_register()


def main() -> None:
    from fer_edge.cli.guard import install_signal_handlers

    install_signal_handlers()
    app()
