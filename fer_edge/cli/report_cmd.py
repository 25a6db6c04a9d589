"""`fer-edge report`: pictures of webcam records, classify output and training runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fer_edge.cli.guard import guarded


def report(
    inputs: Annotated[list[Path], typer.Argument(help="A records file that webcam or classify wrote (.jsonl or .csv), or one or more run folders of fer-edge train (curves, overlaid).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="report.png (one image) or report.html (one self-contained file). Default: RECORDS.report.png, or RUN/curves.png.")] = None,
    tracks: Annotated[int, typer.Option(min=1, help="Webcam records: how many tracks to draw, longest first.")] = 6,
    video: Annotated[Optional[Path], typer.Option(help="Webcam records: the source video, for a face thumbnail per track.")] = None,
) -> None:
    """Draw a report: emotion over time per face, label counts and confidence, or training curves."""
    from fer_edge.report.make import report as make_report

    path = make_report(inputs, out, tracks, video)
    typer.echo(f"report written: {path}", err=True)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Run")(guarded(report))
