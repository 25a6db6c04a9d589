"""`fer-edge models list|pull|add|remove`: the shipped classifiers and the detector models in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fer_edge.cli.guard import guarded
from fer_edge.cli.output import print_table

models_app = typer.Typer(help="The model store: shipped classifiers, and detectors pulled or added (YuNet).",
                         no_args_is_help=True)


def list_models() -> None:
    """Shipped classifiers and stored detectors, with size, sha256 and path."""
    from rich.console import Console
    from rich.table import Table

    from fer_edge import registry, store
    from fer_edge.home import home, sha256_of
    from fer_edge.recognizer import shipped_model_path

    table = Table(title=f"fer-edge models (store: {home()})")
    for col in ("name", "kind", "bytes", "sha256", "path"):
        table.add_column(col, justify="right" if col == "bytes" else "left", overflow="fold")
    manifest = store.read_manifest()
    for name, m in registry.MODELS.items():  # every named model, in the registry's order
        if m.kind == "classifier":
            path = shipped_model_path(name)
            if path.is_file():
                table.add_row(name, "classifier (shipped)", f"{path.stat().st_size:,}", sha256_of(path)[:16], str(path))
            else:
                table.add_row(name, "classifier (shipped)", "-", "missing: reinstall fer-edge", str(path))
            continue
        entry = manifest.get(name)
        path = store.stored(name)
        if path is None:
            hint = "recorded, but the file is gone: pull it again" if entry else f"not stored: fer-edge models pull {name}"
            table.add_row(name, "detector", "-", "-", hint)
        else:
            table.add_row(name, "detector", f"{entry['size']:,}", entry["sha256"][:16], str(path))
    print_table(Console(), table)


def pull(
    name: Annotated[str, typer.Argument(help="yunet")],
    url: Annotated[Optional[str], typer.Option(help="A mirror to download from; the size and sha256 pin still apply.")] = None,
) -> None:
    """Download a detector model, verify it against its pin, and store it (nothing is kept if it fails)."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from fer_edge import store

    with Progress(TextColumn(f"pull {name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("pull", total=None)
        path = store.pull(name, url=url, progress=lambda got, total: progress.update(task, completed=got, total=total))
    typer.echo(f"stored {name}: {path} (sha256 verified); --detector auto now uses it", err=True)


def add(
    name: Annotated[str, typer.Argument(help="yunet")],
    file: Annotated[Path, typer.Argument(help="A local copy of the model file.")],
) -> None:
    """Store a local model file, once OpenCV loads it as YuNet and it finds the face in the check photo."""
    from fer_edge import store
    from fer_edge.detect import check_yunet

    path = store.add(name, file, check_yunet)
    typer.echo(f"stored {name}: {path}; --detector auto now uses it", err=True)


def remove(name: Annotated[str, typer.Argument(help="yunet")]) -> None:
    """Delete a stored detector model."""
    from fer_edge import store

    path = store.remove(name)
    typer.echo(f"removed {name} ({path})", err=True)


def register(app: typer.Typer) -> None:
    models_app.command("list")(guarded(list_models))
    models_app.command("pull")(guarded(pull))
    models_app.command("add")(guarded(add))
    models_app.command("remove")(guarded(remove))
    app.add_typer(models_app, name="models", rich_help_panel="Run")
