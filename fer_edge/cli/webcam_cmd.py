"""`fer-edge webcam`: faces and their expressions, live, from a camera, a video file or a stream."""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Optional

import typer

from fer_edge.cli.guard import guarded
from fer_edge.cli.output import print_table, status_console
from fer_edge.cli.options import DetectorModelOpt, DetectorName, DetectorOpt, Device, DeviceOpt, MinFaceOpt, ModelOpt, ThreadsOpt
from fer_edge.errors import UsageError


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
    from rich.table import Table

    from fer_edge.contract import LABELS
    from fer_edge.realtime.capture import VideoSource, parse_source
    from fer_edge.realtime.loop import RECORD_COLUMNS, LoopOptions, Pipeline, Window, run
    from fer_edge.realtime.smooth import EmotionSmoother
    from fer_edge.recognizer import Recognizer, RecognizerOptions
    from fer_edge.videoio import VideoSink, stops_short
    from fer_edge.native_stderr import kept_apart, report_native_lines
    from fer_edge.records import RecordWriter, open_output

    console = status_console()
    spec = parse_source(source)
    if report is not None:
        from fer_edge.report.make import preflight

        preflight(report)
    if output is not None and output.suffix.lower() not in VideoSink.SUFFIXES:
        raise UsageError(f"--output {output}: write the video as {', '.join(VideoSink.SUFFIXES)}")
    outputs = [p for p in (output, jsonl, csv_out) if p is not None]
    if len(set(outputs)) != len(outputs):
        raise UsageError("--output, --jsonl and --csv must be different files")
    recognizer = Recognizer.from_options(
        RecognizerOptions(model, detector.value, detector_model, device.value, threads, detect_size, min_face))
    console.print(f"{recognizer.describe()}; detection at {detect_size or 'full'} px, every {detect_every} frame(s)")

    # The report is drawn from the records; without --jsonl or --csv they are kept aside until it is drawn.
    aside = tempfile.TemporaryDirectory(prefix="fer-edge-report-") if report and not (jsonl or csv_out) else None
    records_aside = Path(aside.name) / "records.jsonl" if aside else None
    with ExitStack() as stack:  # (an error or Ctrl-C leaves `aside` to its finaliser)
        window = Window() if display else None  # before opening anything: a missing display fails fast
        # the decoders' own stderr lines (FFmpeg's, libjpeg's) are kept off ours and summed up at the end
        native = stack.enter_context(kept_apart())
        stack.callback(lambda: report_native_lines(console, native.other))
        src = VideoSource(spec, width, height, realtime=realtime, stall_timeout=stall_timeout,
                          notify=lambda msg: console.print(f"[yellow]{msg}[/]"))
        stack.callback(src.close)
        writers = []
        for path, fmt in ((jsonl, "jsonl"), (csv_out, "csv"), (records_aside, "jsonl")):
            if path is not None:
                writers.append(RecordWriter(stack.enter_context(open_output(path, fmt)), fmt, RECORD_COLUMNS))
        video = VideoSink(output, src.fps) if output is not None else None
        console.print(f"source {spec.text} ({spec.kind}, {src.fps:.0f} fps{f', {src.frame_count} frames' if src.frame_count else ''})")
        pipeline = Pipeline(recognizer, detect_every, EmotionSmoother(alpha=smoothing), fps=src.fps)
        # A headless run over a file can take hours: show how far it is (nothing to show for live sources).
        bar = spec.kind == "file" and window is None
        progress = stack.enter_context(Progress(
            TextColumn("frames"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=console, transient=True, disable=not bar,
        ))
        total = min(n for n in (src.frame_count, max_frames) if n) if (src.frame_count or max_frames) else None
        task = progress.add_task("frames", total=total)
        result = run(src, pipeline, LoopOptions(detect_every, max_frames, duration), writers, video, window,
                     log=progress.console.print, on_frame=lambda frame: progress.advance(task))

    if spec.kind == "file" and result.stopped_by == "end of video" and stops_short(result.frames, src.frame_count or 0):
        console.print(f"[yellow]incomplete[/] {spec.text}: the video stops at frame {result.frames} of the "
                      f"{src.frame_count} its header announces (truncated or corrupt); the records up to there are kept")
    table = Table(title=f"fer-edge webcam: {result.frames} frames in {result.seconds:.1f}s "
                        f"({result.fps:.1f} FPS, {result.provider}); stopped by {result.stopped_by}")
    table.add_column("track", justify="right")
    table.add_column("frames", justify="right")
    table.add_column("dominant")
    for label in LABELS:
        table.add_column(label, justify="right")
    for track, s in sorted(result.tracks.items()):
        shares = s.shares()
        table.add_row(str(track), str(s.frames), s.dominant, *[f"{100 * shares[label]:.0f}%" for label in LABELS])
    print_table(console, table)
    ms = result.mean_ms
    console.print("mean ms per frame: " + ", ".join(f"{k} {v:.2f}" for k, v in ms.items()))
    if not result.tracks:
        console.print("no faces were seen" + (": no report to draw" if report else ""))
    elif report is not None:
        from fer_edge.report.make import records

        records(jsonl or csv_out or records_aside, report, video=Path(str(spec.target)) if spec.kind == "file" else None,
                name=spec.text)
        console.print(f"report written: {report}")
    if aside is not None:
        aside.cleanup()
    if result.interrupted is not None:  # ended cleanly, but by Ctrl-C (130) or a signal (143 for SIGTERM)
        from fer_edge.cli.guard import interrupt_exit_code

        raise typer.Exit(interrupt_exit_code(result.interrupted))


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Run")(guarded(webcam))
