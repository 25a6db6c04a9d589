"""`fer-edge webcam`: faces and their expressions, live, from a camera, a video file or a stream."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fer_edge.cli.guard import guarded
from fer_edge.cli.output import print_table, status_console
from fer_edge.cli.options import DetectorModelOpt, DetectorName, DetectorOpt, Device, DeviceOpt, MinFaceOpt, ModelOpt, ThreadsOpt


def webcam(
    source: Annotated[str, typer.Option("--source", "-s", help="Camera index, /dev/videoN, video file, or rtsp/http URL.")] = "0",
    width: Annotated[Optional[int], typer.Option(help="Ask the camera for this width.")] = None,
    height: Annotated[Optional[int], typer.Option(help="Ask the camera for this height.")] = None,
    model: ModelOpt = None,
    detector: DetectorOpt = DetectorName.auto,
    detector_model: DetectorModelOpt = None,
    min_face: MinFaceOpt = 0,
    device: DeviceOpt = Device.auto,
    threads: ThreadsOpt = 0,
    display: Annotated[bool, typer.Option("--display/--no-display", help="Show the OpenCV window.")] = True,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the annotated video (.mp4 or .avi).")] = None,
    jsonl: Annotated[Optional[Path], typer.Option(help="One JSON record per face per frame.")] = None,
    csv_out: Annotated[Optional[Path], typer.Option("--csv", help="One CSV row per face per frame.")] = None,
    max_frames: Annotated[int, typer.Option(min=0, help="Stop after N frames (0: no bound).")] = 0,
    duration: Annotated[float, typer.Option(min=0, help="Stop after S seconds (0: no bound).")] = 0.0,
    realtime: Annotated[bool, typer.Option(help="Play files at their frame rate, dropping frames when behind.")] = False,
    detect_every: Annotated[int, typer.Option(min=1, help="Detect every N frames; between them the tracker moves each box along its motion.")] = 3,
    detect_size: Annotated[int, typer.Option(min=0, help="Detect on a copy whose longer side is this (0: full size). 640 finds Haar faces from about 40 px (benchmarks/small_faces.py).")] = 640,
    smoothing: Annotated[float, typer.Option(min=0.01, max=1.0, help="EMA weight of each new frame (1: no smoothing).")] = 0.25,
    stall_timeout: Annotated[float, typer.Option(help="Seconds without a frame before a live source counts as stalled.")] = 5.0,
    report: Annotated[Optional[Path], typer.Option(help="At the end, draw each face's emotions over time here (.png or .html; thumbnails from a video file source).")] = None,
) -> None:
    """Live expressions with stable face ids, smoothed labels and a heads-up display.

    Keys: q or Esc quit, space pauses, s saves a snapshot, r starts or stops recording.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from fer_edge.native_stderr import report_native_lines
    from fer_edge.realtime.job import WebcamJob, WebcamOptions
    from fer_edge.recognizer import RecognizerOptions

    console = status_console()
    job = WebcamJob(
        WebcamOptions(source, width, height, display, output, jsonl, csv_out, max_frames, duration, realtime, detect_every,
                      smoothing, stall_timeout, report),
        RecognizerOptions(model, detector.value, detector_model, device.value, threads, detect_size, min_face))
    console.print(job.banner())
    # A headless run over a file can take hours: show how far it is (nothing to show for live sources).
    progress = Progress(TextColumn("frames"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=console, transient=True, disable=not (job.spec.kind == "file" and not display))
    task = progress.add_task("frames", total=None)

    def on_start(src) -> None:
        total = min(n for n in (src.frame_count, max_frames) if n) if (src.frame_count or max_frames) else None
        progress.update(task, total=total)

    with progress:
        result = job.run(log=progress.console.print, warn=lambda msg: console.print(f"[yellow]{msg}[/]"), on_start=on_start,
                         on_frame=lambda: progress.advance(task), native_lines=lambda lines: report_native_lines(console, lines))
    if result.truncated:
        console.print(f"[yellow]incomplete[/] {result.truncated}")
    _print_summary(console, result.loop)
    if not result.loop.tracks:
        console.print("no faces were seen" + (": no report to draw" if report else ""))
    elif result.report is not None:
        console.print(f"report written: {result.report}")
    for path in result.lost:
        console.print(f"[red]error:[/] {path}: gone at the end of the run (its folder was removed or renamed while "
                      "it was written); what was written to it is lost")
    if result.loop.interrupted is not None:  # ended cleanly, but by Ctrl-C (130) or a signal (143 for SIGTERM)
        from fer_edge.cli.guard import interrupt_exit_code

        raise typer.Exit(interrupt_exit_code(result.loop.interrupted))
    if result.lost:
        raise typer.Exit(1)


def _print_summary(console, loop) -> None:
    from rich.table import Table

    from fer_edge.contract import LABELS

    table = Table(title=f"fer-edge webcam: {loop.frames} frames in {loop.seconds:.1f}s "
                        f"({loop.fps:.1f} FPS, {loop.provider}); stopped by {loop.stopped_by}")
    table.add_column("track", justify="right")
    table.add_column("frames", justify="right")
    table.add_column("dominant")
    for label in LABELS:
        table.add_column(label, justify="right")
    for track, s in sorted(loop.tracks.items()):
        shares = s.shares()
        table.add_row(str(track), str(s.frames), s.dominant, *[f"{100 * shares[label]:.0f}%" for label in LABELS])
    print_table(console, table)
    console.print("mean ms per frame: " + ", ".join(f"{k} {v:.2f}" for k, v in loop.mean_ms.items()))


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Run")(guarded(webcam))
