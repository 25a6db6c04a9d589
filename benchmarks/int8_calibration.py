"""How much each int8 activation calibration costs a checkpoint: PublicTest accuracy, and the faces whose class
changes against the fp32 export, over several calibration samples (the quantisation's own noise).

    python benchmarks/int8_calibration.py CHECKPOINT.pt [--data fer2013.csv.gz] [--tta] [--samples 4]
        [--methods minmax,moving-average,percentile]

The class changes are label-free and far less noisy than accuracy: one calibration sample against another moves
PublicTest accuracy by up to 0.3 points. An exported .onnx is tried through its read-back:
`fer-edge train from-onnx X.pt X.onnx --data ...` first.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from fer_edge.export.checks import ort_probs, ort_session
from fer_edge.export.int8 import INT8_CALIBRATIONS, calibration_faces, quantize_int8
from fer_edge.export.onnx_export import export
from fer_edge.train.data import load_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/fer2013.csv.gz"))
    ap.add_argument("--tta", action="store_true", help="flip TTA in the graph, as a --tta export")
    ap.add_argument("--samples", type=int, default=4, help="calibration samples (seeds 0..N-1; the export uses seed 0)")
    ap.add_argument("--methods", default=",".join(INT8_CALIBRATIONS))
    args = ap.parse_args()
    ds = load_dataset(args.data)
    split = "val" if ds.has("val") else "train"
    val = ds[split]
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export(args.checkpoint, fp32, data=args.data, tta=args.tta, log=lambda *_: None)
        ref = ort_probs(ort_session(fp32), val.x)
        table = Table(title=f"{args.checkpoint}: int8 on the {len(val)} {split} faces; fp32 "
                            f"{100 * (ref.argmax(1) == val.y).mean():.2f}%")
        table.add_column("calibration")
        for seed in range(args.samples):
            table.add_column(f"sample {seed}", justify="right")
        table.add_column("mean acc.", justify="right")
        table.add_column("mean class changes", justify="right")
        for method in args.methods.split(","):
            accs, changes = [], []
            for seed in range(args.samples):
                q = Path(tmp) / f"{method}-{seed}.onnx"
                quantize_int8(fp32, q, calibration_faces(ds["train"].x, seed), method)
                p = ort_probs(ort_session(q), val.x)
                accs.append(100 * float((p.argmax(1) == val.y).mean()))
                changes.append(int((p.argmax(1) != ref.argmax(1)).sum()))
            table.add_row(method, *(f"{a:.2f}% ({c})" for a, c in zip(accs, changes)),
                          f"{np.mean(accs):.2f}%", f"{np.mean(changes):.1f}")
    console.print(table)


if __name__ == "__main__":
    main()
