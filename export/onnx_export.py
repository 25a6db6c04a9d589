"""Export a checkpoint, or an ensemble of them, to an ONNX file that fulfils the runtime contract.

load -> wrap (uint8 in, normalisation and softmax in the graph, optional flip TTA, members' probabilities
averaged when several checkpoints are given) -> export with a
dynamic batch -> metadata -> onnx.checker -> parity against torch on random and real faces
(argmax must agree on all of them) -> optional static int8 quantisation, with its accuracy and speed
change measured on the validation split.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

import fer_edge
from fer_edge import contract
from fer_edge.contract import INPUT_NAME, INPUT_SIZE, LABELS, OUTPUT_NAME, PIXEL_MEAN, PIXEL_STD
from fer_edge.errors import FerEdgeError, UsageError

from .fp32_pool import pool_before_relu
from . import gated
from .wrap import ContractModel
from ..train.checkpoint import check_same_data, load_checkpoint, model_from_checkpoint
from ..train.data import Dataset, load_dataset
from ..train.models import count_macs, count_params

MAX_IR_VERSION = 10  # onnxruntime 1.31 reads IR <= 13; onnx 1.23 would write 14. 10 is read widely.
PARITY_ATOL = 1e-4


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


def _metadata(ckpts: list[dict], wrapper: nn.Module, tta: bool, quantization: str, val_acc: float | None,
              val_labels: str = "") -> dict[str, str]:
    cfgs = [c["config"] for c in ckpts]
    archs = [c["arch"] for c in cfgs]

    def joined(values) -> str:  # one value for a single model, comma-separated per member for an ensemble
        return ",".join(str(v) for v in values)

    accs = [float(c.get("val_acc", c.get("best_acc", float("nan")))) for c in ckpts]
    members = {}
    gate = getattr(wrapper, "gate", None)
    if gate is not None:  # a gated graph (export/gated.py): the generalist's figures first, then the specialist's
        members["gate"] = json.dumps(gate.describe())
        members["specialist"] = json.dumps({"arch": cfgs[1]["arch"], "epochs": ckpts[1].get("epoch", -1) + 1,
                                            "tta": wrapper.specialist_tta, **cfgs[1].get("specialist", {})})
    elif len(ckpts) > 1:
        members["ensemble"] = json.dumps(
            [{"arch": cfg["arch"], "seed": cfg.get("seed"), "epochs": c.get("epoch", -1) + 1, "val_accuracy_checkpoint": round(acc, 5)}
             for c, cfg, acc in zip(ckpts, cfgs, accs)]
        )
    return {
        contract.META_CONTRACT: contract.CONTRACT_VERSION,
        contract.META_LABELS: json.dumps(list(LABELS)),
        contract.META_INPUT: json.dumps(
            {"name": INPUT_NAME, "layout": "NHW", "size": [INPUT_SIZE, INPUT_SIZE], "dtype": "uint8", "color": "gray"}
        ),
        contract.META_PREPROCESS: json.dumps(
            {"in_graph": True, "formula": "(pixel / 255 - mean) / std", "scale": 1 / 255, "mean": PIXEL_MEAN, "std": PIXEL_STD,
             "crop": "square face box with margin, grayscale, 48x48 area resize"}
        ),
        contract.META_OUTPUT: "probabilities",
        "arch": archs[0] if len(archs) == 1 else (f"gated: {archs[0]}, {archs[1]} specialist" if gate is not None
                                                  else f"ensemble of {len(archs)}: {joined(archs)}"),
        "params": str(sum(count_params(m) for m in wrapper.trained_members)),
        "macs": str(sum(count_macs(m) for m in wrapper.trained_members)),  # per view; TTA doubles it
        "training_data_sha256": cfgs[0].get("data_sha256", ""),
        "train_epochs": joined(c.get("epoch", -1) + 1 for c in ckpts),
        "train_seed": joined(cfg.get("seed", "") for cfg in cfgs),
        "val_accuracy_checkpoint": joined(f"{acc:.5f}" if acc == acc else "" for acc in accs),  # a soup has none
        "val_accuracy": "" if val_acc is None else f"{val_acc:.5f}",
        "val_labels": val_labels,  # which labels val_accuracy was measured against
        **members,
        # a weight soup names its ingredients (train/soup.py): the card's lineage, inside the file
        **({"soup": json.dumps(cfgs[0]["soup"])} if (len(ckpts) == 1 or gate is not None) and "soup" in cfgs[0] else {}),
        "tta": json.dumps(tta),
        "temperature": f"{wrapper.temperature:.4f}",
        "quantization": quantization,
        "fer_edge_version": fer_edge.__version__,
        "producer": "fer-edge export",
    }


def _write_metadata(path: Path, meta: dict[str, str]) -> None:
    m = onnx.load(str(path))
    m.ir_version = min(m.ir_version, MAX_IR_VERSION)
    del m.metadata_props[:]
    for k, v in meta.items():
        m.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def _ort_session(path: Path, threads: int = 0):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _ort_probs(session, x: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.concatenate([session.run(None, {INPUT_NAME: x[i : i + batch]})[0] for i in range(0, len(x), batch)])


def check_parity(wrapper: ContractModel, path: Path, real: np.ndarray) -> tuple[float, int]:
    """Max |onnxruntime - torch| over random and real faces; raises if any argmax disagrees."""
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, (16, INPUT_SIZE, INPUT_SIZE), dtype=np.uint8), real]
    session = _ort_session(path)
    worst, n = 0.0, 0
    for x in batches:
        if len(x) == 0:
            continue
        with torch.no_grad():
            ref = wrapper(torch.from_numpy(x)).numpy()
        got = _ort_probs(session, x)
        worst = max(worst, float(np.abs(ref - got).max()))
        disagree = int((ref.argmax(1) != got.argmax(1)).sum())
        # a tie within float noise may flip; anything else is a broken export
        if disagree and worst > PARITY_ATOL:
            raise FerEdgeError(f"export parity failed: {disagree} of {len(x)} faces change class (max |diff| {worst:.2e})")
        n += len(x)
    if worst > PARITY_ATOL:
        raise FerEdgeError(f"export parity failed: max |onnxruntime - torch| = {worst:.2e} > {PARITY_ATOL:.0e}")
    return worst, n


def faces_per_second(path: Path, batch: int, threads: int = 2, seconds: float = 2.0) -> float:
    session = _ort_session(path, threads)
    x = np.random.default_rng(0).integers(0, 256, (batch, INPUT_SIZE, INPUT_SIZE), dtype=np.uint8)
    for _ in range(3):
        session.run(None, {INPUT_NAME: x})
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        session.run(None, {INPUT_NAME: x})
        n += batch
    return n / (time.perf_counter() - t0)


# How the int8 activation ranges come from the calibration faces (onnxruntime's calibrators). minmax: the
# extremes over all batches, set by a few outliers; moving-average: the extremes' running mean over batches of
# 64; percentile: 99.999% of the histogram. Re-quantising the third fast cycle, four calibration samples each,
# moving-average changed the class of 19 PublicTest faces on average against fp32, minmax 26 (lower on all four
# samples; benchmarks/int8_calibration.py). minmax stays the default: the shipped files were made with it.
INT8_CALIBRATIONS = ("minmax", "moving-average", "percentile")


def _calibrator(name: str):
    from onnxruntime.quantization import CalibrationMethod

    if name not in INT8_CALIBRATIONS:
        raise UsageError(f"unknown int8 calibration {name!r}; use {', '.join(INT8_CALIBRATIONS)}")
    return {"minmax": (CalibrationMethod.MinMax, {}),
            "moving-average": (CalibrationMethod.MinMax, {"CalibMovingAverage": True}),
            "percentile": (CalibrationMethod.Percentile, {"CalibPercentile": 99.999})}[name]


def calibration_faces(train_x: np.ndarray, seed: int = 0, n: int = 1024) -> np.ndarray:
    """The training faces an int8 export measures its activation ranges on: n at random, fixed by seed."""
    rng = np.random.default_rng(seed)
    return train_x[rng.choice(len(train_x), size=min(n, len(train_x)), replace=False)]


def quantize_int8(fp32: Path, out: Path, calibration: np.ndarray, method: str = "minmax") -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calibrate_method, extra_options = _calibrator(method)
    # whole batches only: the histogram calibrators (percentile) cannot stack a short last batch with the rest;
    # and at least four, so that a moving average over batches is one (1,024 faces: 16 of 64)
    batch = max(1, min(64, len(calibration) // 4))
    calibration = calibration[: len(calibration) // batch * batch]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration[i : i + batch] for i in range(0, len(calibration), batch))

        def get_next(self):
            x = next(self.batches, None)
            return None if x is None else {INPUT_NAME: x}

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=_keep_fp32(pre),
            calibrate_method=calibrate_method, extra_options=extra_options,
        )
    # the first pool after the fp32 first conv would run on uint8 in a slow kernel (export/fp32_pool.py)
    onnx.save(pool_before_relu(onnx.load(str(out)))[0], str(out))


def _keep_fp32(path: Path) -> list[str]:
    """Nodes left in fp32: the in-graph normalisation, every first convolution (one per TTA branch), and
    the head: each classifier layer and everything after it (softmax, the TTA and ensemble average).

    Quantising the first conv cost fernet-s 9.4 points on PublicTest; keeping it costs 0.05, for a 0.4M-MAC
    layer. A quantised head gave probabilities on a uint8 grid (26 distinct values on 256 faces, rows summing
    to 0.992-1.007); in fp32 they are real probabilities, for 160x7 multiply-adds per member."""
    graph = onnx.load(str(path)).graph
    keep, seen_conv = [], set()
    produced_by = {o: n for n in graph.node for o in n.output}
    head_outputs: set[str] = set()
    for node in graph.node:  # topological order: a node fed by the head is part of it
        if node.op_type in ("Gemm", "MatMul") or head_outputs.intersection(node.input):
            keep.append(node.name)
            head_outputs.update(node.output)
        elif node.name.startswith(f"/{gated.GATE_SCOPE}/"):  # a gated graph's gate (export/gated.py): a measure, not a net
            keep.append(node.name)
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        # a conv whose input comes only from the graph input through non-conv ops is a first conv
        stack, first = list(node.input[:1]), True
        while stack:
            src = produced_by.get(stack.pop())
            if src is None or src.name.startswith(f"/{gated.GATE_SCOPE}/"):  # the gate's own convs measure, not classify
                continue
            if src.op_type == "Conv":
                first = False
                break
            stack.extend(src.input)
        if first:
            keep.append(node.name)
            stack = list(node.input[:1])
            while stack:  # and the preprocessing feeding it
                src = produced_by.get(stack.pop())
                if src is not None and src.name not in seen_conv:
                    seen_conv.add(src.name)
                    keep.append(src.name)
                    stack.extend(src.input)
    return keep


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
) -> ExportResult:
    _calibrator(int8_calibration)  # a typo fails before minutes of export, not after
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
    calibration = calibration_faces(ds["train"].x)
    if specialist is None:
        def make_wrapper(temperature: float = 1.0) -> nn.Module:
            return ContractModel(models, tta=tta, temperature=temperature).eval()
    else:
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

        def make_wrapper(temperature: float = 1.0) -> nn.Module:
            return gated.GatedModel(models[0], models[1], gate, tta=tta, specialist_tta=specialist_tta, temperature=temperature).eval()
    wrapper = make_wrapper()
    # parity on corrupted faces too: the ones a gate hands its specialist
    parity_faces = np.concatenate([val.x[:512], gated.fitting_faces(val.x[:128], copies=1)[128:]])
    out.parent.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        _to_onnx(wrapper, fp32, opset)
        _write_metadata(fp32, _metadata(ckpts, wrapper, tta, "none", None))
        worst, n = check_parity(wrapper, fp32, parity_faces)
        log(f"parity: onnxruntime vs torch on {n} faces (16 random, {n - 16} real): max |diff| {worst:.2e}, argmax agrees")

        if calibrate:  # fit a temperature on the validation split; bake it in only if it lowers the ECE there
            from ..train.calibration import apply_temperature, ece, fit_temperature

            probs = _ort_probs(_ort_session(fp32), val.x)
            t = fit_temperature(probs, val.y)
            before, after = ece(probs, val.y), ece(apply_temperature(probs, t), val.y)
            log(f"calibration on val: temperature {t:.3f}, ECE {100 * before:.2f}% -> {100 * after:.2f}%"
                + ("" if after < before else "; not applied"))
            if after < before:
                wrapper = make_wrapper(t)
                _to_onnx(wrapper, fp32, opset)
                _write_metadata(fp32, _metadata(ckpts, wrapper, tta, "none", None))
                worst, n = check_parity(wrapper, fp32, parity_faces)
        val_acc = float((_ort_probs(_ort_session(fp32), val.x).argmax(1) == val.y).mean())
        result = ExportResult(out, checkpoints, worst, n, val_acc)
        final = fp32
        if int8:
            q = Path(tmp) / "int8.onnx"
            quantize_int8(fp32, q, calibration, int8_calibration)
            q_acc = float((_ort_probs(_ort_session(q), val.x).argmax(1) == val.y).mean())
            ranges = "" if int8_calibration == "minmax" else f", {int8_calibration} activation ranges"
            _write_metadata(q, _metadata(ckpts, wrapper, tta, f"int8 static QDQ, per-channel weights{ranges}", q_acc, labels))
            fp_speed, q_speed = faces_per_second(fp32, 64), faces_per_second(q, 64)
            result.int8 = {
                "val_acc_fp32": val_acc, "val_acc_int8": q_acc, "delta_points": 100 * (q_acc - val_acc),
                "faces_per_s_fp32_b64": fp_speed, "faces_per_s_int8_b64": q_speed,
            }
            log(
                f"int8: val acc {100 * val_acc:.2f}% -> {100 * q_acc:.2f}% ({100 * (q_acc - val_acc):+.2f} points); "
                f"batch 64, 2 threads: {fp_speed:.0f} -> {q_speed:.0f} faces/s"
            )
            final = q
            result.val_acc = q_acc
        else:
            _write_metadata(fp32, _metadata(ckpts, wrapper, tta, "none", val_acc, labels))
        os.replace(final, out)
    result.size_bytes = out.stat().st_size
    return result
