"""Commands that never import torch: classify, info (and webcam, in webcam_cmd)."""

from __future__ import annotations

import sys
import tempfile
from contextlib import ExitStack
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from fer_edge.cli.guard import guarded
from fer_edge.cli.output import print_table, status_console
from fer_edge.cli.options import DetectorModelOpt, DetectorOpt, DetectorName, Device, DeviceOpt, MinFaceOpt, ModelOpt, ThreadsOpt
from fer_edge.errors import FerEdgeError, UsageError


class Engine(str, Enum):
    local = "local"
    ray = "ray"


class Format(str, Enum):
    csv = "csv"
    jsonl = "jsonl"


def classify(
    paths: Annotated[list[Path], typer.Argument(help="Image and video files, and folders of them.", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write rows here instead of stdout.")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="csv or jsonl.")] = Format.csv,
    model: ModelOpt = None,
    detector: DetectorOpt = DetectorName.auto,
    detector_model: DetectorModelOpt = None,
    min_face: MinFaceOpt = 0,
    device: DeviceOpt = Device.auto,
    threads: ThreadsOpt = 0,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Look in subfolders too.")] = False,
    detect: Annotated[
        Optional[bool],
        typer.Option("--detect/--no-detect", help="Force detection on or off (default: off for 48x48 crops only)."),
    ] = None,
    annotate_dir: Annotated[Optional[Path], typer.Option("--annotate", help="Write copies with boxes and labels here.")] = None,
    detect_size: Annotated[int, typer.Option(min=0, help="Detect on a copy whose longer side is at most this (0: full size). 1920 finds faces from about 45-70 px in 12 MP photos; 1280 is 1.5x faster and misses most under 110 px (benchmarks/photo_recall.py).")] = 1920,
    video_every: Annotated[
        float, typer.Option(min=0, help="Videos: classify one frame every this many seconds (0: every frame).")
    ] = 0.5,
    resume: Annotated[
        bool, typer.Option(help="With --out: keep the files an interrupted run finished there, and classify the rest.")
    ] = False,
    strict: Annotated[bool, typer.Option(help="Exit 1 when any file failed.")] = False,
    file_timeout: Annotated[float, typer.Option(min=0, help="Seconds an image may take to decode and search before it becomes an error row and the run goes on (a decoder stuck on a damaged file; 0: no limit).")] = 60.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
    engine: Annotated[Optional[Engine], typer.Option(help="local: this process. ray: a Ray cluster (pip install 'fer-edge[ray]'); same rows, same order. Default: ray when --address is given.")] = None,
    address: Annotated[Optional[str], typer.Option(help="--engine ray: auto, HOST:PORT or ray://HOST:PORT of a running cluster (default: a local Ray for this run).")] = None,
    workers: Annotated[int, typer.Option(min=0, help="--engine ray: actors, each holding one model and detector (0: one per CPU of the cluster).")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="--engine ray: work items (images or video chunks) per actor call.")] = 8,
    chunk_samples: Annotated[int, typer.Option(min=1, help="--engine ray: a long video is split into chunks of this many sampled frames, spread over the workers.")] = 240,
    report: Annotated[Optional[Path], typer.Option(help="At the end, draw label counts per folder or video and the confidence distribution here (.png or .html).")] = None,
) -> None:
    """Classify the faces in images and videos: one CSV/JSONL row per face, flushed as it goes.

    Video files are sampled (--video-every) and each sampled frame is classified on its own; its rows
    carry `frame` and `time`. For tracked, smoothed per-frame records use `fer-edge webcam --source FILE`.

    Exit codes: 0 done (bad files are reported as rows with an error); 1 with --strict when any file
    failed, or when the model cannot be used; 2 usage errors (missing path, empty folder, bad option).
    """
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from fer_edge.batch import BatchStats, FileResult, classify_files, iter_input_paths
    from fer_edge.lock import exclusive
    from fer_edge.native_stderr import kept_apart, report_native_lines
    from fer_edge.recognizer import Recognizer
    from fer_edge.resume import finished_paths, restore_order
    from fer_edge.videoio import is_video, samples_in
    from fer_edge.records import RecordWriter, open_output
    from fer_edge.writers import CLASSIFY_COLUMNS, AnnotatedCopies, classify_records

    if resume and out is None:
        raise UsageError("--resume needs --out FILE: the file an interrupted run was writing")
    engine = engine or (Engine.ray if address else Engine.local)
    if engine is Engine.ray and annotate_dir is not None:
        raise UsageError("--annotate works with the local engine only (the images would have to travel back from the workers)")
    if report is not None:
        from fer_edge.report.make import preflight

        preflight(report)
    files = iter_input_paths(paths, recursive=recursive)
    with ExitStack() as held:  # one writer per output, for the whole run: a second run fails at once
        if out is not None:
            held.callback(exclusive(out, "--out"))
        if annotate_dir is not None:
            try:
                annotate_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise UsageError(f"{annotate_dir}: cannot create the --annotate folder ({e.strerror or e})") from None
            held.callback(exclusive(annotate_dir, "--annotate folder"))
        appending = resume and out.exists()
        recognizer = Recognizer(model, detector.value, detector_model, device.value, threads, detect_size=detect_size,
                                min_face=min_face)
        console = status_console(quiet)
        det = recognizer.detector
        console.print(f"model {recognizer.classifier.info.path} on {recognizer.classifier.providers.describe()}; "
                      f"detector {det.name} ({det.why}); threads: {recognizer.threads.describe()}")
        input_order = [str(p) for p in files]
        if appending:
            done = finished_paths(out, fmt.value, CLASSIFY_COLUMNS)
            todo = [p for p in files if str(p) not in done]
            console.print(f"resuming {out}: {len(files) - len(todo)} file(s) already done, {len(todo)} to classify")
            files = todo

        stats = BatchStats()
        try:
            with ExitStack() as stack:
                if out is not None:
                    stream = stack.enter_context(open_output(out, fmt.value, append=appending))
                else:
                    stream = sys.stdout
                    stream.reconfigure(errors="surrogateescape")
                writer = RecordWriter(stream, fmt.value, CLASSIFY_COLUMNS, header=not appending)
                writers = [writer]
                if report is not None and out is None:  # rows go to stdout: keep a copy aside for the report
                    aside = stack.enter_context(tempfile.NamedTemporaryFile("w", suffix=f".{fmt.value}", encoding="utf-8", newline=""))
                    writers.append(RecordWriter(aside, fmt.value, CLASSIFY_COLUMNS, flush=False))
                copies = AnnotatedCopies(annotate_dir, video_every) if annotate_dir is not None else None
                if copies is not None:
                    stack.callback(copies.close)  # annotated videos stay playable after an error or Ctrl-C
                progress = stack.enter_context(
                    Progress(TextColumn("classify"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True)
                )
                # the decoders' own stderr lines go into their file's error row instead of between ours
                native = stack.enter_context(kept_apart())
                stack.callback(lambda: report_native_lines(progress.console, native.other))
                # One step per image or sampled video frame, so that hours of video move the bar too.
                task = progress.add_task("classify", total=sum(samples_in(p, video_every) or 1 if is_video(p) else 1 for p in files))
                if engine is Engine.ray:
                    from fer_edge.cluster.ray_engine import RayClassifier

                    # the driver's choices travel: every node uses the same detector (a store is per machine)
                    cluster = RayClassifier(
                        dict(model=model, detector=det.name, detector_model=str(det.model_path) if det.model_path else None,
                             device=device.value, threads=threads, detect_size=detect_size, min_face=min_face),
                        address=address, workers=workers, batch_size=batch_size, chunk_samples=chunk_samples)
                    stack.callback(cluster.close)
                    results = cluster.classify(files, detect=detect, video_every=video_every)
                else:
                    cluster = None
                    # the decoders' own stderr lines go into their file's error row instead of between ours
                    results = classify_files(recognizer, files, detect=detect, keep_images=annotate_dir is not None,
                                             video_every=video_every, file_timeout=file_timeout)
                previous = None
                for result in results:
                    for record in classify_records(result, fmt.value):
                        for w in writers:
                            w.write(record)
                    if result.error:
                        part_way = previous is not None and previous.path == result.path and previous.frame is not None
                        kept = f" (rows up to frame {previous.frame} are kept)" if part_way else ""
                        verb = "incomplete" if part_way else "skipped"
                        progress.console.print(f"[yellow]{verb}[/] {escape(str(result.path))}: {escape(result.error)}{kept}")
                    elif copies is not None:
                        try:
                            copies.add(result)
                        except FerEdgeError as e:  # that file's error row; the run goes on
                            failed = FileResult(result.path, error=str(e), frame=result.frame, time=result.time)
                            for record in classify_records(failed, fmt.value):
                                for w in writers:
                                    w.write(record)
                            progress.console.print(f"[yellow]not annotated[/] {escape(str(result.path))}: {escape(str(e))}")
                            stats.errors += 1
                    stats.add(result)
                    progress.advance(task)
                    previous = result
                if report is not None:
                    from fer_edge.report.make import records

                    stream.flush()
                    if len(writers) > 1:
                        aside.flush()
                    records(out if out is not None else Path(aside.name), report,
                            name=str(out) if out is not None else " ".join(map(str, paths)))
                    progress.console.print(f"report written: {report}")
        except KeyboardInterrupt:
            if out is not None:
                typer.echo(f"to continue where this stopped, run the same command with --resume (it appends to {out})", err=True)
            raise
        if appending:  # the redone files were appended: back to the order an uninterrupted run writes
            restore_order(out, fmt.value, CLASSIFY_COLUMNS, input_order)

        table = Table(title="fer-edge classify" + (" (Ray)" if cluster is not None else ""), show_header=False)
        if cluster is not None:
            table.add_row("Ray nodes that worked", f"{len(cluster.nodes)}")
        for name, value in stats.rows():
            table.add_row(name, value)
        print_table(console, table)
        failed = f"{stats.errors} of {stats.files} file(s) failed (--strict)" if strict and stats.errors else None
        _leave_stuck_decoders(console, failed)
        if failed:
            raise FerEdgeError(failed)


def _leave_stuck_decoders(console, error: str | None) -> None:
    """A decoder stuck for good on a file cannot be stopped, and Python would wait for its thread at exit:
    when one was given up on, end the process now, the output already written and closed."""
    import os

    from fer_edge import batch

    if not batch.stuck_threads:
        return
    console.print(f"[yellow]note[/] {batch.stuck_threads} file(s) got no answer within --file-timeout; "
                  "their decoders are left behind")
    if error:
        typer.echo(f"error: {error}", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1 if error else 0)


def info(
    model: ModelOpt = None,
    detector: DetectorOpt = DetectorName.auto,
    detector_model: DetectorModelOpt = None,
    device: DeviceOpt = Device.auto,
    threads: ThreadsOpt = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout: versions, providers (available, active, why not the GPU), GPU facts, shipped models, the model and detector.")] = False,
) -> None:
    """Versions, onnxruntime providers, the GPU, the model's metadata and the detector in use."""
    import json

    from fer_edge.classifier import ExpressionClassifier
    from fer_edge.detect import make_detector
    from fer_edge.facts import gather
    from fer_edge.recognizer import resolve_model

    path = resolve_model(model)
    facts = gather(ExpressionClassifier.from_path(path, device=device.value), path,
                   make_detector(detector.value, detector_model), threads)
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    _print_info(facts)


def _print_info(facts: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    versions = Table(title="fer-edge", show_header=False)
    for name, value in facts["versions"].items():
        versions.add_row(name, value)
    prov = facts["providers"]
    versions.add_row("providers available", ", ".join(prov["available"]))
    versions.add_row("runs on", prov["summary"])
    g = facts["gpu"]
    versions.add_row("NVIDIA", g["driver_detail"] + "".join(
        f"; {x['name']}, driver {x['driver_version']}, {x['memory']}" for x in g.get("gpus", [])))
    for key, label in (("cuda_runtime", "CUDA runtime"), ("cudnn", "cuDNN")):
        if key in g:
            versions.add_row(label, g[key] or "not loadable")
    versions.add_row("threads", facts["threads"]["summary"])
    versions.add_row("fer-edge home", facts["home"])
    print_table(console, versions)

    shipped = Table(title="shipped models (--model NAME)")
    for col in ("name", "file", "arch", "held-out acc", "MB"):
        shipped.add_column(col)
    for name, e in facts["shipped_models"].items():
        if not e["present"]:
            shipped.add_row(name, Path(e["file"]).name, "missing: reinstall fer-edge", "", "")
            continue
        acc = e["publictest_accuracy"]
        shipped.add_row(name, Path(e["file"]).name, e["arch"] or "?",
                        f"{100 * acc:.2f}% ({e['accuracy_against']})" if acc else "?", f"{e['bytes'] / 1e6:.2f}")
    print_table(console, shipped)

    m = facts["model"]
    meta = Table(title=f"model {m['path']}", show_header=False)
    meta.add_row("input", f"{m['input']}: {m['input_dtype']}")
    for key, value in sorted(m["metadata"].items()):
        meta.add_row(key, value if len(value) < 200 else value[:197] + "...")
    print_table(console, meta)
    d = facts["detector"]
    console.print(f"detector: {d['name']} ({d['why']})" + (f": {d['model']}" if d["model"] else ", OpenCV's Haar cascade, built in"))


def register(app: typer.Typer) -> None:
    from fer_edge.cli import webcam_cmd

    app.command(rich_help_panel="Run")(guarded(classify))
    webcam_cmd.register(app)
    app.command(rich_help_panel="Run")(guarded(info))
