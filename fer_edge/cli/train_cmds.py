"""`fer-edge eval` and `export`: thin shells over fer_edge.train and fer_edge.export.

torch is imported inside each command, never at module import, so `fer-edge --help` and the runtime
commands stay torch-free, and a missing `train` extra gets a one-line answer instead of a traceback.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from fer_edge.cli.guard import guarded
from fer_edge.cli.options import DetectorName, TorchDevice
from fer_edge.cli.train_group import PANEL, need_torch
from fer_edge.errors import FerEdgeError, UsageError


def _console():
    from fer_edge.cli.output import status_console

    return status_console()


class Int8Calibration(str, Enum):
    minmax = "minmax"
    moving_average = "moving-average"
    percentile = "percentile"


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
        need_torch()
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
    specialist: Annotated[Optional[Path], typer.Option(help="A low-resolution specialist checkpoint (fer-edge train specialist): the graph hands it each face with little fine detail (small or blurred), by a gate fitted on the validation faces; sharp faces keep the --checkpoint's answer at its cost.")] = None,
    specialist_tta: Annotated[bool, typer.Option("--specialist-tta/--no-specialist-tta", help="The specialist also reads the mirrored face (2x its cost on the faces it gets).")] = False,
    flip_below: Annotated[Optional[float], typer.Option(metavar="P", help="With --tta: read the mirror only for the faces whose first pass gives a top probability below P (0.7 changed no answer of the full average on 9,417 judged faces and cut the default model's cost by a quarter to a half).")] = None,
    int8_calibration: Annotated[Int8Calibration, typer.Option(help="How --int8 sets activation ranges from 1,024 training faces: minmax (their extremes), moving-average (the extremes' mean over batches; fewer faces change class against fp32) or percentile (99.999%).")] = Int8Calibration.minmax,
) -> None:
    """Export a checkpoint (or an ensemble) to ONNX under the runtime contract, with a parity check against torch."""
    need_torch()
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
                           int8_calibration=int8_calibration.value, specialist=specialist, specialist_tta=specialist_tta,
                           flip_below=flip_below)
    except OSError as e:  # a folder that cannot hold files (/proc), no space, no permission
        raise FerEdgeError(f"{out}: cannot write the model there ({e.strerror or e})") from None
    acc = f"; val acc {100 * result.val_acc:.2f}%" if result.val_acc is not None else ""
    console.print(f"wrote {out} ({result.size_bytes / 1e6:.2f} MB{acc})")
    console.print(f"next: fer-edge classify photos/ --model {out}    or    fer-edge webcam --model {out}")


def register(app: typer.Typer) -> None:
    app.command("eval", rich_help_panel=PANEL)(guarded(evaluate))
    app.command(rich_help_panel=PANEL)(guarded(export))
