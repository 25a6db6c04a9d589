"""Commands that never import torch: classify, info (and webcam, in webcam_cmd)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from fer_edge.cli.guard import guarded
from fer_edge.cli.output import print_table, status_console
from fer_edge.cli.options import DetectorModelOpt, DetectorOpt, DetectorName, Device, DeviceOpt, MinFaceOpt, ModelOpt, ThreadsOpt
from fer_edge.errors import FerEdgeError


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

    from fer_edge.classify_job import ClassifyJob, JobOptions
    from fer_edge.recognizer import RecognizerOptions
    from fer_edge.native_stderr import report_native_lines

    job = ClassifyJob(
        JobOptions(paths=paths, out=out, fmt=fmt.value, recursive=recursive, detect=detect, annotate_dir=annotate_dir,
                   video_every=video_every, resume=resume, file_timeout=file_timeout,
                   engine=(engine or (Engine.ray if address else Engine.local)).value, address=address, workers=workers,
                   batch_size=batch_size, chunk_samples=chunk_samples, report=report),
        RecognizerOptions(model, detector.value, detector_model, device.value, threads, detect_size, min_face))
    console = status_console(quiet)

    def problem(p) -> None:
        kept = f" (rows up to frame {p.kept_up_to} are kept)" if p.kept_up_to is not None else ""
        progress.console.print(f"[yellow]{p.kind}[/] {escape(str(p.path))}: {escape(p.error)}{kept}")

    with job:
        console.print(job.banner())
        if job.appending:
            console.print(f"resuming {out}: {job.already_done} file(s) already done, {len(job.files)} to classify")
        try:
            with Progress(TextColumn("classify"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=console, transient=True) as progress:
                task = progress.add_task("classify", total=job.steps())
                result = job.run(on_problem=problem, on_step=lambda: progress.advance(task),
                                 on_note=progress.console.print)
        except KeyboardInterrupt:
            if out is not None:
                typer.echo(f"to continue where this stopped, run the same command with --resume (it appends to {out})", err=True)
            raise
    report_native_lines(console, job.native_lines)

    stats = result.stats
    table = Table(title="fer-edge classify" + (" (Ray)" if result.ray_nodes is not None else ""), show_header=False)
    if result.ray_nodes is not None:
        table.add_row("Ray nodes that worked", f"{result.ray_nodes}")
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
