"""Faces per second of ONNX emotion models through onnxruntime on the CPU, at batch 1 and batch 64.

    python benchmarks/classifier_speed.py [MODEL.onnx ...] [--threads 2] [--seconds 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from fer_edge.classifier import ExpressionClassifier
from fer_edge.recognizer import resolve_model


def faces_per_second(clf: ExpressionClassifier, batch: int, seconds: float) -> float:
    x = np.random.default_rng(0).integers(0, 256, (batch, 48, 48), dtype=np.uint8)
    for _ in range(5):
        clf.predict_probs(x, batch=batch)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        clf.predict_probs(x, batch=batch)
        n += batch
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="ONNX files or shipped model names (default, fast); default: the default model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    models = [resolve_model(m) for m in args.models] or [resolve_model(None)]

    table = Table(title=f"onnxruntime CPU, {args.threads} threads")
    for col in ("model", "arch", "TTA", "quant", "MB", "batch 1 faces/s", "batch 1 ms", "batch 64 faces/s"):
        table.add_column(col, justify="right" if col[0].isdigit() or "faces" in col or col in ("MB",) else "left")
    for m in models:
        clf = ExpressionClassifier.from_path(m, device="cpu", threads=args.threads)
        b1 = faces_per_second(clf, 1, args.seconds)
        b64 = faces_per_second(clf, 64, args.seconds)
        meta = clf.info.metadata
        table.add_row(m.name, meta.get("arch", "?"), meta.get("tta", "?"), meta.get("quantization", "?")[:10], f"{m.stat().st_size / 1e6:.2f}",
                      f"{b1:,.0f}", f"{1000 / b1:.2f}", f"{b64:,.0f}")
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
