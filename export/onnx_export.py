"""Export a checkpoint, or an ensemble of them, to an ONNX file that fulfils the runtime contract.

The orchestration of named passes, each in its own room: wrap (wrap.py, gated.py: uint8 in, normalisation
and softmax in the graph, optional flip TTA, members averaged) -> to ONNX with a dynamic batch -> parity
against torch on random and real faces (checks.py) -> an optional temperature fit -> optional int8
(int8.py) -> the temperature as a graph op (rewrites.py) -> accuracy and speed (checks.py) -> metadata,
written once (metadata.py).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from fer_edge.contract import INPUT_NAME, INPUT_SIZE, OUTPUT_NAME
from fer_edge.errors import FerEdgeError, UsageError

from . import gated
from .checks import accuracy, check_parity, faces_per_second, ort_probs, ort_session
from .flip_gate import META_KEY as FLIP_META_KEY, check_flip_below, flip_when_unsure
from ..train.layer_map import write_layer_map
from .int8 import INT8_CALIBRATIONS, _calibrator, calibration_faces, quantize_int8
from .metadata import MAX_IR_VERSION, export_metadata, write_metadata
from .rewrites import apply_temperature
from .wrap import ContractModel
from ..train.checkpoint import check_same_data, load_checkpoint, model_from_checkpoint
from ..train.data import Dataset, load_dataset

__all__ = ["ExportResult", "INT8_CALIBRATIONS", "calibration_faces", "export", "faces_per_second", "latest_checkpoint",
           "quantize_int8"]


@dataclass
class ExportResult:
    path: Path
    checkpoints: list[Path]
    max_abs_diff: float
    parity_samples: int
    val_acc: float | None = None
    int8: dict = field(default_factory=dict)
    size_bytes: int = 0


def latest_checkpoint(runs: Path = Path("runs")) -> Path:
    found = sorted(runs.glob("*/best.pt"), key=lambda p: p.stat().st_mtime) if runs.is_dir() else []
    if not found:
        raise FerEdgeError(f"no --checkpoint given and no {runs}/*/best.pt found; train first or pass --checkpoint")
    return found[-1]


def _to_onnx(wrapper: nn.Module, path: Path, opset: int) -> None:
    example = torch.zeros(2, INPUT_SIZE, INPUT_SIZE, dtype=torch.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            wrapper, (example,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}}, opset_version=opset, dynamo=False,
        )
    model = onnx.load(str(path))
    if model.ir_version > MAX_IR_VERSION:  # what onnxruntime reads (metadata.py)
        model.ir_version = MAX_IR_VERSION
        onnx.save(model, str(path))


def _load_members(checkpoints: list[Path], specialist: Path | None = None) -> tuple[list[dict], list[nn.Module]]:
    """The members' checkpoints and nets, the specialist (if any) last. Ensemble members must share their data;
    a specialist has a job of its own and may have learnt from other faces."""
    ckpts = [load_checkpoint(c) for c in checkpoints]
    check_same_data(checkpoints, ckpts, "ensemble members")
    if specialist is not None:
        ckpts.append(load_checkpoint(specialist))
    return ckpts, [model_from_checkpoint(c) for c in ckpts]


def _judging_faces(ds: Dataset, data_path: Path, config: dict):
    """The held-out faces that fit the gate and the temperature: the ones the run was judged on. A run that
    learnt FER+ votes is judged against the FER+ majority, so its export is too."""
    val = ds["val"] if ds.has("val") else ds["train"]
    votes = config.get("ferplus")
    if not votes or not ds.has("val") or Path(data_path).suffix.lower() not in (".csv", ".gz"):
        return val, "validation faces"
    if not Path(votes).is_file():
        raise FerEdgeError(f"the run learnt FER+ votes from {votes}, which is not there: export from where the run was made")
    from ..train.ferplus import majority_split, read_votes, split_offsets, with_votes

    rows = split_offsets(data_path)["val"]
    held = majority_split(*with_votes(val, rows, read_votes(votes, config.get("contempt", "drop")).get("val", {})))
    return held, "validation faces against the FER+ majority"


def export(
    checkpoints: Path | list[Path],
    out: Path,
    data: Path | None = None,
    tta: bool = False,
    int8: bool = False,
    opset: int = 17,
    log=print,
    calibrate: bool = False,
    int8_calibration: str = "minmax",
    specialist: Path | None = None,
    specialist_tta: bool = False,
    flip_below: float | None = None,
) -> ExportResult:
    """The passes, in order: load -> wrap -> to ONNX -> parity -> [temperature fit] -> [int8] -> [temperature
    as a graph op] -> [the mirror only when unsure] -> accuracy -> metadata with the layer map, written once ->
    the file, atomically."""
    _calibrator(int8_calibration)  # a typo fails before minutes of export, not after
    if flip_below is not None and not (tta or specialist_tta):
        raise UsageError("--flip-below gates flip TTA: add --tta")
    check_flip_below(flip_below)
    checkpoints = [Path(checkpoints)] if isinstance(checkpoints, (str, Path)) else [Path(c) for c in checkpoints]
    if specialist is not None and len(checkpoints) > 1:
        raise UsageError("--specialist gates one generalist checkpoint, not an ensemble")
    ckpts, models = _load_members(checkpoints, Path(specialist) if specialist is not None else None)
    if specialist is not None:
        log(f"gated: {ckpts[0]['config']['arch']} for sharp faces, {checkpoints[0].name} beside the low-resolution "
            f"specialist {Path(specialist).name}{' with flip TTA' if specialist_tta else ''} for faces with little detail")
    elif len(models) > 1:
        log(f"ensemble of {len(models)}: " + ", ".join(f"{c['config']['arch']} (seed {c['config'].get('seed')})" for c in ckpts))

    data_path = Path(data) if data else Path(ckpts[0]["config"].get("data", ""))
    if not str(data_path) or not data_path.exists():
        raise FerEdgeError(
            f"export checks parity on real faces and needs the training data; {data_path or '(none recorded)'} "
            "is not there: pass --data"
        )
    ds: Dataset = load_dataset(data_path)
    val, judged_on = _judging_faces(ds, data_path, ckpts[0]["config"])
    labels = f"{len(val)} {judged_on} of {data_path.name}"
    log(f"gate, temperature and accuracy on {len(val)} {judged_on}")
    wrapper, calibration = _wrap(models, ckpts, checkpoints, specialist, tta, specialist_tta, val,
                                 calibration_faces(ds["train"].x), log)
    # parity on corrupted faces too: the ones a gate hands its specialist
    parity_faces = np.concatenate([val.x[:512], gated.fitting_faces(val.x[:128], copies=1)[128:]])
    out.parent.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        _to_onnx(wrapper, fp32, opset)
        worst, n = check_parity(wrapper, fp32, parity_faces)
        log(f"parity: onnxruntime vs torch on {n} faces (16 random, {n - 16} real): max |diff| {worst:.2e}, argmax agrees")
        temperature = _fit_temperature(fp32, val, log) if calibrate else 1.0
        final, quantization = fp32, "none"
        if int8:
            final = Path(tmp) / "int8.onnx"
            quantize_int8(fp32, final, calibration, int8_calibration)
            ranges = "" if int8_calibration == "minmax" else f", {int8_calibration} activation ranges"
            quantization = f"int8 static QDQ, per-channel weights{ranges}"
        for path in {fp32, final}:  # the temperature is a graph op after the probabilities: no second export
            model = apply_temperature(onnx.load(str(path)), temperature)
            if flip_below is not None:  # after int8: the mirror's ranges were calibrated on every face's mirror
                model = flip_when_unsure(model, flip_below)
            onnx.save(model, str(path))
        if flip_below is not None:
            log(f"flip TTA reads the mirror only below a first-pass top probability of {flip_below:g}")
        val_acc = accuracy(fp32, val.x, val.y)
        result = ExportResult(out, checkpoints, worst, n, val_acc)
        if int8:
            q_acc = accuracy(final, val.x, val.y)
            fp_speed, q_speed = faces_per_second(fp32, 64), faces_per_second(final, 64)
            result.int8 = {
                "val_acc_fp32": val_acc, "val_acc_int8": q_acc, "delta_points": 100 * (q_acc - val_acc),
                "faces_per_s_fp32_b64": fp_speed, "faces_per_s_int8_b64": q_speed,
            }
            log(
                f"int8: val acc {100 * val_acc:.2f}% -> {100 * q_acc:.2f}% ({100 * (q_acc - val_acc):+.2f} points); "
                f"batch 64, 2 threads: {fp_speed:.0f} -> {q_speed:.0f} faces/s"
            )
            result.val_acc = q_acc
        model = onnx.load(str(final))
        meta = export_metadata(ckpts, wrapper, tta, temperature, quantization, result.val_acc, labels)
        if flip_below is not None:
            meta[FLIP_META_KEY] = f"{flip_below:g}"
        write_layer_map(meta, model, wrapper)
        onnx.save(write_metadata(model, meta), str(final))
        os.replace(final, out)
    result.size_bytes = out.stat().st_size
    return result


def _wrap(models, ckpts, checkpoints, specialist, tta, specialist_tta, val, calibration, log) -> tuple[nn.Module, np.ndarray]:
    """The module to export (plain, an ensemble, or gated) and the faces that calibrate its int8 ranges."""
    if specialist is None:
        return ContractModel(models, tta=tta).eval(), calibration
    fit_x = gated.fitting_faces(val.x)
    gate = gated.fit_gate(models[0], models[1], fit_x, np.tile(val.y, len(fit_x) // len(val.x)), tta, specialist_tta, log)
    if float(gate.g_max) < 2 * gated.MIN_SHARE:
        raise FerEdgeError(f"{Path(specialist).name} does not help {checkpoints[0].name} on any face (the fitted gate gives it "
                           f"at most {100 * float(gate.g_max):.1f}% of an answer): export without --specialist")
    # int8 ranges for the specialist need faces that reach it: the calibration faces again, blurred or shrunk
    # (what the specialist is for; noise would widen the generalist's ranges), shuffled so that every
    # calibration batch holds some
    calibration = gated.fitting_faces(calibration, copies=1, kinds=("blur", "low-res"))
    calibration = calibration[np.random.default_rng(0).permutation(len(calibration))]
    return gated.GatedModel(models[0], models[1], gate, tta=tta, specialist_tta=specialist_tta).eval(), calibration


def _fit_temperature(fp32: Path, val, log) -> float:
    """A temperature fitted on the validation faces; 1 (none) unless it lowers the expected calibration error."""
    from ..train.calibration import chosen_temperature

    t, said = chosen_temperature(ort_probs(ort_session(fp32), val.x), val.y)
    log(said)
    return t
