"""The `fer-edge` command: parse options, build objects, call the library, map FerEdgeError to one line."""

from __future__ import annotations

from typing import Annotated

import typer


app = typer.Typer(
    name="fer-edge",
    help="Facial expression recognition for the edge: classify photos and video, train and export models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        import fer_edge

        typer.echo(f"fer-edge {fer_edge.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Facial expression recognition for the edge: classify photos and video, train and export models."""


def _plain_flags() -> None:
    """Typer labels every on/off flag `<bool>` in --help, as if it took a value; it takes none."""
    try:
        from typer.core import TyperOption
    except ImportError:  # another typer: its own labels, nothing breaks
        return
    shown = TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        return "" if getattr(self, "is_flag", False) and self.metavar is None else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich


def _register() -> None:
    from fer_edge.cli import data_cmd, models_cmd, report_cmd, runtime_cmds, serve_cmd, train_cmds, train_group

    runtime_cmds.register(app)
    serve_cmd.register(app)
    models_cmd.register(app)
    report_cmd.register(app)
    train_group.register(app)
    train_cmds.register(app)
    data_cmd.register(app)


_register()
_plain_flags()


def main() -> None:
    import os

    from fer_edge.cli.guard import install_signal_handlers

    # OpenCV's own [ WARN ] and [ERROR] lines (12 of them for a missing camera) repeat what our one-line
    # errors say; OpenCV reads this once, when cv2 loads. OPENCV_LOG_LEVEL=INFO brings them back.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    install_signal_handlers()
    try:
        code = app(standalone_mode=False)
    except Exception as e:  # click's usage errors (typer vendors click): one line, as our own errors are
        if not (hasattr(e, "format_message") and hasattr(e, "exit_code")):
            raise
        ctx = getattr(e, "ctx", None)
        where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        message = " ".join(e.format_message().split())
        if message:  # (a bare command has just printed its help)
            typer.echo(f"error: {message}{where}", err=True)
        raise SystemExit(e.exit_code) from None
    except KeyboardInterrupt as e:  # Ctrl-C or a signal outside a command (while starting): as inside one
        from fer_edge.cli.guard import interrupt_exit_code

        typer.echo(f"stopped by {e.args[0] if e.args else 'Ctrl-C'} while starting: nothing was written", err=True)
        raise SystemExit(interrupt_exit_code(e)) from None
    raise SystemExit(code if isinstance(code, int) else 0)
