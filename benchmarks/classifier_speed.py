"""Faces per second of ONNX emotion models through onnxruntime, at batch 1, 64 and more.

    python benchmarks/classifier_speed.py [MODEL.onnx | default | fast ...] [--threads 2] [--seconds 3]
        [--device auto|cpu|cuda|tensorrt|...] [--batches 1,64,256] [--io-binding both] [--blur SIGMA]

The faces are random pixels: sharp, so a gated model (`fer-edge export --specialist`) hands none of them to its
specialist. `--blur 3` smooths them first, so that it hands it every one: its slowest case. `--real` takes
PublicTest faces instead (FER2013 from $FER_EDGE_DATA or ../shared/data): what a gate does with real faces.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from fer_edge.classifier import ExpressionClassifier
from fer_edge.recognizer import resolve_model


def faces_per_second(clf: ExpressionClassifier, batch: int, seconds: float, blur: float = 0.0,
                     real: np.ndarray | None = None) -> float:
    """Random pixels, or successive batches of real faces (no one batch sets the figure); blurred if asked."""
    if real is None:
        batches = [np.random.default_rng(0).integers(0, 256, (batch, 48, 48), dtype=np.uint8)]
    else:
        batches = [np.resize(real[i:], (batch, 48, 48)) for i in range(0, len(real), batch)]
    if blur > 0:
        batches = [np.stack([cv2.GaussianBlur(f, (0, 0), blur, borderType=cv2.BORDER_REPLICATE) for f in x]) for x in batches]
    for _ in range(5):
        clf.predict_probs(batches[0], batch=batch)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        clf.predict_probs(batches[(n // batch) % len(batches)], batch=batch)
        n += batch
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="ONNX files or shipped model names (default, fast); default: the default model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, tensorrt, ...: what runs is printed")
    ap.add_argument("--batches", default="1,64", help="comma-separated batch sizes")
    ap.add_argument("--blur", type=float, default=0.0, help="Gaussian blur sigma for the random faces (0: sharp)")
    ap.add_argument("--real", action="store_true", help="PublicTest faces instead of random pixels")
    ap.add_argument("--io-binding", choices=("off", "on", "both"), default="off", help="onnxruntime I/O binding")
    args = ap.parse_args()
    models = [resolve_model(m) for m in args.models] or [resolve_model(None)]
    batches = [int(b) for b in args.batches.split(",")]
    bindings = {"off": [False], "on": [True], "both": [False, True]}[args.io_binding]

    real = None
    if args.real:
        from robustness import default_data  # the suite's own way to find FER2013

        from fer_edge.train.data import load_dataset

        real = load_dataset(default_data())["val"].x
    blurred = f", faces blurred with sigma {args.blur:g}" if args.blur > 0 else ""
    blurred += ", PublicTest faces" if real is not None else ""
    table = Table(title=f"onnxruntime, --device {args.device}, {args.threads} CPU threads{blurred}")
    for col in ("model", "arch", "TTA", "quant", "MB", "runs on", "I/O binding", "batch 1 ms",
                *(f"batch {b} faces/s" for b in batches)):
        table.add_column(col, justify="right" if "faces" in col or col in ("MB", "batch 1 ms") else "left")
    for m in models:
        for binding in bindings:
            clf = ExpressionClassifier.from_path(m, device=args.device, threads=args.threads, io_binding=binding)
            speeds = {b: faces_per_second(clf, b, args.seconds, args.blur, real) for b in batches}
            meta = clf.info.metadata
            table.add_row(m.name, meta.get("arch", "?")[:24], meta.get("tta", "?") + (f" <{meta['tta_flip_below']}" if "tta_flip_below" in meta else ""), meta.get("quantization", "?")[:10],
                          f"{m.stat().st_size / 1e6:.2f}", clf.providers.name, "on" if binding else "off",
                          f"{1000 / speeds[1]:.2f}" if 1 in speeds else "-", *(f"{speeds[b]:,.0f}" for b in batches))
    Console(width=220).print(table)


if __name__ == "__main__":
    main()
