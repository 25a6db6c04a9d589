"""int8: static QDQ quantisation calibrated on training faces, with the layers that lose accuracy in int8
(the first convolution, the head) and a gate left in fp32."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx

from fer_edge.contract import INPUT_NAME
from fer_edge.errors import UsageError

from . import gated
from .graph_index import GraphIndex
from .rewrites import pool_before_relu


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
    # the first pool after the fp32 first conv would run on uint8 in a slow kernel (rewrites.pool_before_relu)
    onnx.save(pool_before_relu(onnx.load(str(out)))[0], str(out))


def _keep_fp32(path: Path) -> list[str]:
    """Nodes left in fp32: the in-graph normalisation, every first convolution (one per TTA branch), and
    the head: each classifier layer and everything after it (softmax, the TTA and ensemble average).

    Quantising the first conv cost fernet-s 9.4 points on PublicTest; keeping it costs 0.05, for a 0.4M-MAC
    layer. A quantised head gave probabilities on a uint8 grid (26 distinct values on 256 faces, rows summing
    to 0.992-1.007); in fp32 they are real probabilities, for 160x7 multiply-adds per member."""
    g = GraphIndex(onnx.load(str(path)))
    in_gate = lambda node: node.name.startswith(f"/{gated.GATE_SCOPE}/")  # noqa: E731 (a measure, not a net)
    head = g.downstream(lambda node: node.op_type in ("Gemm", "MatMul"))
    keep = [n.name for n in g.nodes if n.op_type in ("Gemm", "MatMul") or head.intersection(n.input) or in_gate(n)]
    seen: set[str] = set()
    for node in g.nodes:
        if node.op_type != "Conv":
            continue
        # a conv whose input comes only from the graph input through non-conv ops is a first conv (the gate's
        # own convs measure detail: not counted)
        feeding = g.upstream_nodes(node.input[0], stop=lambda n: n.op_type == "Conv" or in_gate(n))
        if any(n.op_type == "Conv" and not in_gate(n) for n in feeding):
            continue
        keep.append(node.name)
        for src in g.upstream_nodes(node.input[0]):  # and the preprocessing feeding it
            if src.name not in seen:
                seen.add(src.name)
                keep.append(src.name)
    return keep
