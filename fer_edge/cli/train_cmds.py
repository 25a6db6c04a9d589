"""`fer-edge train`, `eval`, `export` and `data`: thin shells over fer_edge.train and fer_edge.export.

torch is imported inside each command, never at module import, so `fer-edge --help` and the runtime
commands stay torch-free, and a missing `train` extra gets a one-line answer instead of a traceback.
"""

from __future__ import annotations

import importlib.util
import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from fer_edge.cli.guard import guarded
from fer_edge.cli.options import DetectorName, TorchDevice
from fer_edge.errors import FerEdgeError, UsageError

DataOpt = Annotated[Path, typer.Option("--data", "-d", help="FER2013 CSV (.csv/.csv.gz), a cached .npz, or an image-folder dataset.")]


def _need_torch() -> None:
    if importlib.util.find_spec("torch") is None:
        from fer_edge.install import extra_hint

        raise FerEdgeError(f"this command needs the training extra (torch): {extra_hint('train')}")


def _console():
    from fer_edge.cli.output import status_console

    return status_console()


class Optim(str, Enum):
    sgd = "sgd"
    adamw = "adamw"


class Schedule(str, Enum):
    onecycle = "onecycle"
    cosine = "cosine"
    constant = "constant"


class Mix(str, Enum):
    none = "none"
    mixup = "mixup"
    cutmix = "cutmix"


class Balance(str, Enum):
    none = "none"
    loss = "loss"
    sampler = "sampler"


class Int8Calibration(str, Enum):
    minmax = "minmax"
    moving_average = "moving-average"
    percentile = "percentile"


class Tracker(str, Enum):
    none = "none"
    mlflow = "mlflow"


def _corruption_list(text: Optional[str]) -> list[str]:
    from fer_edge.train.augment import CORRUPTIONS

    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown:
        raise UsageError(f"--corruptions: unknown {unknown[0]!r}; choose from {','.join(CORRUPTIONS)}")
    return names


def train(
    data: Annotated[Optional[list[str]], typer.Option("--data", "-d", help="FER2013 CSV (.csv/.csv.gz), a cached .npz, or an image-folder dataset. Repeat it to train on several sources: the first is the primary; PATH@N repeats a source's training faces N times an epoch; each source's validation split is judged. With --resume: only to point at the same primary data in a new place.")] = None,
    ferplus: Annotated[Optional[Path], typer.Option(help="FER+ votes (ferplus_votes.csv.gz) for the FER2013 CSV given first: train on each face's vote distribution, judge the held-out faces against the FER+ majority (counted) and FER2013's labels (reported).")] = None,
    contempt: Annotated[str, typer.Option(help="FER+ contempt votes: drop, disgust or angry (count them for that class).")] = "drop",
    hard_weight: Annotated[float, typer.Option(min=0, max=1, help="With --ferplus: share of FER2013's own label mixed into each face's vote target.")] = 0.0,
    arch: Annotated[str, typer.Option(help="mlp, fernet-t, fernet-t2 (fernet-t's speed, 3x the weights), fernet-s (default), fernet-m (the shipped default model), fernet-l.")] = "fernet-s",
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training data (the schedule ends at the last one, or at --max-minutes).")] = 30,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder.")] = Path("runs/latest"),
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from last.pt.")] = False,
    device: Annotated[TorchDevice, typer.Option(help="Where torch runs: auto takes CUDA when torch sees it.")] = TorchDevice.auto,
    seed: Annotated[int, typer.Option(help="Random seed: weights, batch order, augmentation (a resumed run continues the same stream).")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="Faces per optimiser step.")] = 128,
    optimizer: Annotated[Optim, typer.Option(help="sgd (Nesterov momentum) or adamw.")] = Optim.sgd,
    lr: Annotated[float, typer.Option(min=0, help="Peak learning rate (after warm-up).")] = 0.1,
    momentum: Annotated[float, typer.Option(help="SGD momentum (Nesterov); 0 for plain SGD.")] = 0.9,
    weight_decay: Annotated[float, typer.Option(min=0, help="L2 penalty on the weights (not on biases or norms).")] = 5e-4,
    schedule: Annotated[Schedule, typer.Option(help="onecycle (warm-up then cosine), cosine, or constant.")] = Schedule.onecycle,
    label_smoothing: Annotated[float, typer.Option(min=0, max=0.5, help="Share of each target spread over the other classes.")] = 0.1,
    mix: Annotated[Mix, typer.Option(help="Mixup or CutMix on a --mix-prob share of batches.")] = Mix.none,
    mix_alpha: Annotated[float, typer.Option(min=0.01, help="Beta(alpha, alpha) for the mixing weight.")] = 1.0,
    mix_prob: Annotated[float, typer.Option(min=0, max=1, help="Share of batches that are mixed.")] = 0.5,
    balance: Annotated[Balance, typer.Option(help="Class-weighted loss or class-balanced sampling (helps Disgust).")] = Balance.none,
    augment: Annotated[bool, typer.Option(help="Shift, flip, rotation, scale, brightness, contrast, erasing.")] = True,
    rotate: Annotated[float, typer.Option(min=0, max=180, help="Max rotation, degrees.")] = 10.0,
    scale: Annotated[float, typer.Option(min=0, max=0.9, help="Max zoom in or out (box size error), fraction.")] = 0.1,
    shift: Annotated[float, typer.Option(min=0, max=0.5, help="Max shift (box position error), fraction of the side.")] = 0.1,
    corrupt: Annotated[float, typer.Option(min=0, max=1, help="Share of training faces given one camera corruption (blur, low-res, noise, JPEG, exposure, contrast) at a random strength.")] = 0.0,
    corruptions: Annotated[Optional[str], typer.Option(help="Comma-separated subset of blur,low-res,noise,jpeg,exposure,contrast (default: all).")] = None,
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="bf16 autocast on CUDA and on CPUs with native bf16 (about 2x faster), channels_last everywhere (faster in fp32 too); --no-amp: plain fp32.")] = True,
    val_fraction: Annotated[float, typer.Option(help="Stratified val split (share of the training rows) for data without one.")] = 0.0,
    test_fraction: Annotated[float, typer.Option(help="Stratified test split (share of the training rows) for data without one.")] = 0.0,
    resplit: Annotated[bool, typer.Option(help="Ignore the file's val/test splits; carve them from the training rows.")] = False,
    teacher: Annotated[Optional[list[Path]], typer.Option(help="Distil from these checkpoints (.pt: labels every augmented batch) or contract ONNX models (.onnx: labels each training face once). Repeat for an ensemble.")] = None,
    teacher_tta: Annotated[bool, typer.Option("--teacher-tta/--no-teacher-tta", help="A .pt teacher also labels the mirrored batch and averages the two (flip TTA, about 0.8 points for a fernet-m teacher on FER2013; a second teacher pass). ONNX teachers keep the TTA they were exported with.")] = False,
    teacher_online: Annotated[bool, typer.Option("--teacher-online/--no-teacher-online", help="An .onnx teacher labels every augmented batch through onnxruntime instead of the clean faces once (an int8 export with flip TTA in its graph: a fraction of the cost of its read-back checkpoint with --teacher-tta).")] = False,
    flip_pairs: Annotated[bool, typer.Option("--flip-pairs/--no-flip-pairs", help="Each batch also carries the mirror of every augmented face (twice the student's compute a step); a teacher labels the pair once, with the average of both views (flip TTA, so --teacher-tta adds nothing), and both learn it.")] = False,
    ema: Annotated[float, typer.Option(min=0, max=0.99999, help="Keep an exponential moving average of the weights with this per-step decay (e.g. 0.999); it is validated and saved as best.pt (0: off).")] = 0.0,
    init: Annotated[Optional[Path], typer.Option(help="Warm start from this .pt checkpoint's weights (same --arch); optimiser and schedule start fresh; a last.pt of an --ema run gives its EMA weights. An exported single-model .onnx (a shipped model) works too: its weights are read back and its BatchNorms rebuilt on the training faces. For fine-tuning.")] = None,
    kd_alpha: Annotated[float, typer.Option(min=0, max=1, help="Weight of the teacher's soft labels against the true labels.")] = 0.7,
    kd_temperature: Annotated[float, typer.Option(min=0.1, help="Softening temperature of the distillation.")] = 4.0,
    threads: Annotated[int, typer.Option(min=0, help="torch CPU threads (0: default).")] = 0,
    max_minutes: Annotated[float, typer.Option(min=0, help="Time budget; the schedule anneals by it and the best checkpoint is kept.")] = 0.0,
    patience: Annotated[int, typer.Option(min=0, help="Early stopping after N epochs without a better val accuracy (0: off).")] = 0,
    tta: Annotated[bool, typer.Option("--tta/--no-tta", help="Flip TTA in the final report.")] = True,
    tracker: Annotated[Tracker, typer.Option(help="Also log to an experiment tracker: none or mlflow (offline file store).")] = Tracker.none,
) -> None:
    """Train a model; the run folder gets config.json, metrics.csv, best.pt, last.pt and reports."""
    if data is None and not resume:
        raise UsageError("train needs --data (only --resume can do without it)")
    _need_torch()
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from fer_edge.train.models import ARCHS
    from fer_edge.train.trainer import TrainConfig, main

    if not resume and arch not in ARCHS:  # before the data loads: a typo should not cost a minute of parsing
        raise UsageError(f"unknown --arch {arch!r}; choose one of {', '.join(ARCHS)}")

    cfg = TrainConfig(
        data=str(data[0]) if data else "", extra_data=[str(d) for d in (data or [])[1:]],
        ferplus=str(ferplus or ""), contempt=contempt, hard_weight=hard_weight, out=str(out), arch=arch, epochs=epochs, batch_size=batch_size, optimizer=optimizer.value,
        lr=lr, momentum=momentum, weight_decay=weight_decay, schedule=schedule.value, label_smoothing=label_smoothing, mix=mix.value,
        mix_alpha=mix_alpha, mix_prob=mix_prob, balance=balance.value, augment=augment, rotate=rotate, scale=scale,
        shift=shift, corrupt=corrupt, corruptions=_corruption_list(corruptions), amp=amp, val_fraction=val_fraction,
        test_fraction=test_fraction, resplit=resplit,
        teachers=[str(t) for t in teacher or []], teacher_tta=teacher_tta, teacher_online=teacher_online, flip_pairs=flip_pairs, init=str(init or ""), ema=ema, kd_alpha=kd_alpha, kd_temperature=kd_temperature, seed=seed,
        device=device.value, threads=threads, max_minutes=max_minutes, patience=patience, eval_tta=tta,
        tracker=tracker.value,
    )
    console = _console()
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        # soft_wrap: a log line (and the final `done:` JSON) stays one line in a log file
        main(cfg, resume=resume, log=lambda m: console.print(m, soft_wrap=True), progress=progress)


def evaluate(
    model: Annotated[Path, typer.Argument(help="A .pt checkpoint or an .onnx model.")],
    data: Annotated[Path, typer.Option("--data", "-d", help="FER2013 CSV, a cached .npz, a folder of 48x48 crops, or a class-folder set of photos (each goes through the detector first, as `classify` does).")],
    split: Annotated[Optional[str], typer.Option(help="val or test (default: test when the data has one, else val).")] = None,
    tta: Annotated[bool, typer.Option(help="Average the prediction with the flipped face.")] = False,
    ferplus: Annotated[Optional[Path], typer.Option(help="FER+ votes for the FER2013 CSV: judge against the FER+ majority label instead of FER2013's own.")] = None,
    detector: Annotated[DetectorName, typer.Option(help="For photo folders: the detector that finds each face.")] = DetectorName.auto,
    detector_model: Annotated[Optional[Path], typer.Option(help="For photo folders: a YuNet .onnx.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the JSON report here (plus confusion CSV and PNG beside it).")] = None,
    device: Annotated[TorchDevice, typer.Option(help="Where torch runs: auto takes CUDA when torch sees it.")] = TorchDevice.auto,
) -> None:
    """Accuracy, macro-F1, per-class precision/recall/F1, what the model answers and the confusion matrix."""
    from fer_edge.train.calibration import ece
    from fer_edge.train.eval_sets import judged_set
    from fer_edge.train.evaluate import model_probs
    from fer_edge.train.report import make_report, write_report

    if model.is_dir() or model.suffix.lower() not in (".onnx", ".pt", ".pth"):
        raise UsageError(f"{model}: eval takes a .pt checkpoint or an .onnx model" + (" (this is a folder)" if model.is_dir() else ""))
    if not model.is_file():
        raise UsageError(f"{model}: no such file")
    if json_out is not None and (json_out.is_dir() or str(json_out).endswith(os.sep)):
        json_out = json_out / f"{model.stem}.json"  # a folder: the report goes inside it, named after the model
    if model.suffix.lower() != ".onnx":
        _need_torch()
    judged = judged_set(data, split, detector.value, detector_model, ferplus)
    probs = model_probs(model, judged.x, tta=tta, device=device.value)
    rep = make_report(judged.y, probs.argmax(1), missed=judged.missed, split=judged.split, model=str(model), tta=tta,
                      ece=ece(probs, judged.y) if len(judged.y) else None)
    console = _console()
    console.print(f"{model} on {data}: {judged.how}{', flip TTA' if tta else ''}")
    typer.echo(rep.text())
    if json_out is not None:
        paths = write_report(rep, json_out.parent, json_out.stem)
        console.print(f"wrote {', '.join(str(p) for p in paths.values())}")


def export(
    out: Annotated[Path, typer.Argument(help="The .onnx file to write.")],
    checkpoint: Annotated[
        Optional[list[Path]],
        typer.Option(help="A best.pt (default: the latest runs/*/best.pt). Repeat it to export an equal-weight ensemble in one graph."),
    ] = None,
    data: Annotated[Optional[Path], typer.Option(help="Data for the parity check and int8 calibration (default: the run's).")] = None,
    tta: Annotated[bool, typer.Option(help="Bake flip averaging into the graph (2x the compute).")] = False,
    int8: Annotated[bool, typer.Option(help="Static int8 quantisation calibrated on training faces.")] = False,
    opset: Annotated[int, typer.Option(min=13, max=21, help="ONNX opset to export with.")] = 17,
    calibrate: Annotated[bool, typer.Option(help="Fit a temperature on the validation split and bake it into the graph when it lowers the expected calibration error.")] = False,
    specialist: Annotated[Optional[Path], typer.Option(help="A low-resolution specialist checkpoint (python -m fer_edge.train.specialist): the graph hands it each face with little fine detail (small or blurred), by a gate fitted on the validation faces; sharp faces keep the --checkpoint's answer at its cost.")] = None,
    specialist_tta: Annotated[bool, typer.Option("--specialist-tta/--no-specialist-tta", help="The specialist also reads the mirrored face (2x its cost on the faces it gets).")] = False,
    int8_calibration: Annotated[Int8Calibration, typer.Option(help="How --int8 sets activation ranges from 1,024 training faces: minmax (their extremes), moving-average (the extremes' mean over batches; fewer faces change class against fp32) or percentile (99.999%).")] = Int8Calibration.minmax,
) -> None:
    """Export a checkpoint (or an ensemble) to ONNX under the runtime contract, with a parity check against torch."""
    _need_torch()
    from fer_edge.export.onnx_export import export as do_export
    from fer_edge.export.onnx_export import latest_checkpoint

    if out.is_dir():
        raise UsageError(f"{out}: is a folder; give the .onnx file to write, e.g. {out / 'model.onnx'}")

    console = _console()
    if not checkpoint:
        checkpoint = [latest_checkpoint()]
        console.print(f"exporting the latest run's checkpoint: {checkpoint[0]}")
    try:
        result = do_export(checkpoint, out, data=data, tta=tta, int8=int8, opset=opset, log=console.print, calibrate=calibrate,
                           int8_calibration=int8_calibration.value, specialist=specialist, specialist_tta=specialist_tta)
    except OSError as e:  # a folder that cannot hold files (/proc), no space, no permission
        raise FerEdgeError(f"{out}: cannot write the model there ({e.strerror or e})") from None
    acc = f"; val acc {100 * result.val_acc:.2f}%" if result.val_acc is not None else ""
    console.print(f"wrote {out} ({result.size_bytes / 1e6:.2f} MB{acc})")
    console.print(f"next: fer-edge classify photos/ --model {out}    or    fer-edge webcam --model {out}")


data_app = typer.Typer(help="Look at a dataset: class distribution, a grid of faces.", no_args_is_help=True)


@data_app.command("stats")
@guarded
def data_stats(path: Annotated[Path, typer.Argument(help="FER2013 CSV, .npz, or image-folder dataset.")]) -> None:
    """Class distribution per split, as counts and percentages."""
    from rich.table import Table

    from fer_edge.contract import LABELS
    from fer_edge.train.data import load_dataset

    ds = load_dataset(path)
    table = Table(title=f"{path}  (sha256 {ds.sha256[:12]})")
    table.add_column("class")
    for name in ds.splits:
        table.add_column(name, justify="right")
    counts = {name: s.class_counts() for name, s in ds.splits.items()}
    for i, label in enumerate(LABELS):
        table.add_row(label, *[f"{c[i]:,} ({100 * c[i] / max(c.sum(), 1):.1f}%)" for c in counts.values()])
    table.add_row("total", *[f"{c.sum():,}" for c in counts.values()])
    from rich.console import Console

    Console().print(table)
    if ds.skipped:
        _console().print(f"skipped {len(ds.skipped)} unreadable image(s); first: {ds.skipped[0]}")


@data_app.command("preview")
@guarded
def data_preview(
    path: Annotated[Path, typer.Argument(help="FER2013 CSV, .npz, or image-folder dataset.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")] = Path("grid.png"),
    per_class: Annotated[int, typer.Option(min=1, max=50, help="Faces per class (one row each).")] = 10,
    split: Annotated[str, typer.Option(help="train, val or test.")] = "train",
    seed: Annotated[int, typer.Option(help="Which faces are drawn.")] = 0,
) -> None:
    """A labelled grid of faces: one row per class."""
    from fer_edge.train.data import load_dataset
    from fer_edge.train.preview import draw_grid

    if out.is_dir():
        raise UsageError(f"{out}: is a folder; give the PNG to write, e.g. {out / 'grid.png'}")
    ds = load_dataset(path)
    if not ds.has(split):
        raise UsageError(f"{path}: has no {split} split (it has {', '.join(ds.splits)})")
    import cv2

    grid = draw_grid(ds[split], per_class=per_class, seed=seed)
    try:
        ok = cv2.imwrite(str(out), grid)
    except cv2.error:
        ok = False
    if not ok:
        raise FerEdgeError(f"{out}: cannot write the PNG (no such folder, no permission, or not a .png name)")
    typer.echo(f"wrote {out} ({grid.shape[1]}x{grid.shape[0]})")


@data_app.command("faces")
@guarded
def data_faces(
    folder: Annotated[Path, typer.Argument(help="A class-folder set of photos: FOLDER/<class>/*.jpg.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .npz to write (a training or evaluation source).")],
    detector: Annotated[DetectorName, typer.Option(help="The runtime's detector that finds each face.")] = DetectorName.auto,
    detector_model: Annotated[Optional[Path], typer.Option(help="YuNet .onnx for --detector yunet.")] = None,
    group: Annotated[str, typer.Option(help="Regular expression on the file name giving its subject (first capture group); whole subjects go to one side.")] = r"^(\d\d)",
    folds: Annotated[int, typer.Option(min=0, help="Deal the subjects into this many folds (0: all faces train).")] = 3,
    val_fold: Annotated[int, typer.Option(min=0, help="Which fold is the validation split.")] = 0,
) -> None:
    """Crop a photo folder as the runtime does (detect, square margin crop, 48x48) into a training .npz, split by subject."""
    from fer_edge.train.data import folder_fingerprint, save_npz
    from fer_edge.train.faces import crop_photos, subject_splits

    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder of class folders")
    faces = crop_photos(folder, detector.value, detector_model)
    splits = subject_splits(faces, group, folds, val_fold)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_npz(out, splits, folder_fingerprint(folder) + f":{detector.value}:{group}:{folds}:{val_fold}")
    sizes = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
    typer.echo(f"wrote {out}: {sizes}; no face found in {len(faces.missed)} photo(s), {len(faces.unreadable)} unreadable")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Model factory (needs the train extra)")(guarded(train))
    app.command("eval", rich_help_panel="Model factory (needs the train extra)")(guarded(evaluate))
    app.command(rich_help_panel="Model factory (needs the train extra)")(guarded(export))
    app.add_typer(data_app, name="data", rich_help_panel="Model factory (needs the train extra)")
