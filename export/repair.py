"""Repair an int8 model exported by an older fer-edge, without its checkpoints.

- fp32 head: older int8 exports quantised everything after the classifier layer too (the logits, each
  softmax, the ensemble's sums), so the output sat on a uint8 grid (26 distinct values on 256 faces, rows
  summing to 0.992-1.007); the head computes in fp32 again (rewrites.head_to_fp32).
- the first max-pool before its ReLU, as exports since 2026-11 have it (rewrites.pool_before_relu): the
  pool then runs in fp32 instead of on onnxruntime's slow uint8 kernel.
- `--flip-below P`: flip TTA reads the mirror only for faces whose first pass gives a top probability below
  P (export/flip_gate.py), as `fer-edge export --tta --flip-below P` does; the nets are not touched.
- `--calibrate DATA`: a temperature fitted on DATA's validation split and applied as a graph op when it lowers
  the expected calibration error there, as `fer-edge export --calibrate` does.

    python -m fer_edge.export.repair assets/fer-edge.onnx fixed.onnx [--calibrate ../shared/data/fer2013.csv.gz]
        [--flip-below 0.7]
"""

from __future__ import annotations

import argparse
import sys

import onnx

import fer_edge
from fer_edge.errors import UsageError

from .flip_gate import META_KEY as FLIP_META_KEY, flip_when_unsure
from .metadata import update_metadata
from .rewrites import apply_temperature, head_to_fp32, pool_before_relu


def repair(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int, int]:
    """(the model, Q/DQ pairs removed from the head, max-pools moved before their ReLU)."""
    model, pairs = head_to_fp32(model)
    model, pools = pool_before_relu(model)
    quant = next((p.value for p in model.metadata_props if p.key == "quantization"), "")
    if pairs and "fp32 head" not in quant:
        update_metadata(model, {"quantization": quant + "; fp32 head (classifier layer, softmax and averages)"})
    return model, pairs, pools


def calibrate(model: onnx.ModelProto, data: str) -> tuple[onnx.ModelProto, str]:
    """Fit a temperature on data's validation split; apply it when it lowers the ECE there. (model, what was done)"""
    from fer_edge.train.calibration import apply_temperature as soften, chosen_temperature, ece
    from fer_edge.train.data import load_dataset

    from .checks import ort_probs, ort_session

    val = load_dataset(data)["val"]
    probs = ort_probs(ort_session(model.SerializeToString()), val.x)
    t, said = chosen_temperature(probs, val.y)
    meta = {"val_accuracy": f"{float((probs.argmax(1) == val.y).mean()):.5f}",
            "val_ece": f"{ece(soften(probs, t), val.y):.5f}"}
    if t != 1.0:
        model = apply_temperature(model, t)
        meta["temperature"] = f"{t:.4f}"
    update_metadata(model, meta)
    return model, said


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--calibrate", metavar="DATA", help="fit and apply a temperature on this data's validation split")
    ap.add_argument("--flip-below", type=float, metavar="P", help="read the mirror only below this first-pass top probability")
    args = ap.parse_args(argv)
    try:
        model = onnx.load(args.model)
    except Exception as exc:  # a missing or broken file: one line, not a protobuf traceback
        raise SystemExit(f"error: cannot read {args.model} as ONNX: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    model, pairs, pools = repair(model)
    print(f"{args.out}: {pairs} quantize/dequantize pairs after the classifier layer removed, "
          f"{pools} max-pool(s) moved before their ReLU")
    if args.calibrate:
        model, said = calibrate(model, args.calibrate)
        print(said)
    if args.flip_below is not None:
        try:
            model = flip_when_unsure(model, args.flip_below)
        except UsageError as exc:
            raise SystemExit(f"error: {args.model}: {exc}")
        update_metadata(model, {FLIP_META_KEY: f"{args.flip_below:g}",  # the file says which version rewrote it
                                "rewritten_by": f"fer-edge {fer_edge.__version__}: export.repair --flip-below {args.flip_below:g}"})
        print(f"flip TTA reads the mirror only below a first-pass top probability of {args.flip_below:g}")
    onnx.save(model, args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
