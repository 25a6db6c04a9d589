"""Faces per second of ONNX emotion models through onnxruntime, at batch 1, 64 and more.

    python benchmarks/classifier_speed.py [MODEL.onnx | default | fast ...] [--threads 2] [--seconds 3]
        [--device auto|cpu|cuda|tensorrt|...] [--batches 1,64,256] [--io-binding both] [--blur SIGMA]
        [--real] [--fer-python V/bin/python] [--rounds 2]

The faces are random pixels: sharp, so a gated model (`fer-edge export --specialist`) hands none of them to its
specialist. `--blur 3` smooths them first, so that it hands it every one: its slowest case. `--real` takes
PublicTest faces instead (FER2013 from $FER_EDGE_DATA or ../shared/data): what a gate does with real faces,
and what the default model's mirror gate (`tta_flip_below`) does: random pixels leave it unsure of every face.

`--fer-python V/bin/python` adds the `fer` package's classifier (25.10.3: a TFLite mini-Xception, one
`invoke` a face, as `FER._classify_emotions` runs it), on the same faces and threads, in its own virtual
environment; `--rounds N` interleaves every row N times and prints each cell's range.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

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


FER_SIDE = r"""
import json, os, sys, time, logging
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
logging.disable(logging.WARNING)
import numpy as np, cv2
import tensorflow as tf
from importlib import resources
from fer.fer import FER
faces_file, threads, seconds, batches = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
path = str(resources.files("fer") / "data" / "emotion_model_quantized.tflite")
FER._tflite_interpreter_cache = tf.lite.Interpreter(model_path=path, num_threads=threads)  # FER() takes the cached one
FER._tflite_interpreter_cache.allocate_tensors()
det = FER()
side = det._FER__tflite_input_details[0]["shape"][1]
faces = np.load(faces_file)
faces = np.stack([cv2.resize(f, (side, side)) for f in faces]).astype(np.float32) / 255.0 * 2 - 1  # fer's own scaling
out = {}
for b in batches:
    batch = np.resize(faces, (b, side, side))
    for _ in range(3):
        det._classify_emotions(batch)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        det._classify_emotions(batch)
        n += b
    out[b] = n / (time.perf_counter() - t0)
print(json.dumps(out))
"""


def fer_faces_per_second(fer_python: str, faces: np.ndarray, threads: int, seconds: float, batches: list[int]) -> dict[int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "faces.npy"
        np.save(path, faces)
        done = subprocess.run([fer_python, "-c", FER_SIDE, str(path), str(threads), str(seconds), json.dumps(batches)],
                              capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"error: fer's side failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return {int(k): v for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def spread(values: list[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return format(lo, fmt) if len(values) == 1 or format(lo, fmt) == format(hi, fmt) else f"{format(lo, fmt)}–{format(hi, fmt)}"


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
    ap.add_argument("--fer-python", help="a virtual environment's python holding fer 25.10.3: add its classifier")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds; each cell gives its range")
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
    rows: dict[tuple, dict[int, list[float]]] = {}
    described: dict[tuple, tuple] = {}
    fer_faces = real if real is not None else np.random.default_rng(0).integers(0, 256, (64, 48, 48), dtype=np.uint8)
    for _ in range(args.rounds):
        for m in models:
            for binding in bindings:
                clf = ExpressionClassifier.from_path(m, device=args.device, threads=args.threads, io_binding=binding)
                cell = rows.setdefault((m, binding), {b: [] for b in batches})
                for b in batches:
                    cell[b].append(faces_per_second(clf, b, args.seconds, args.blur, real))
                meta = clf.info.metadata
                described[(m, binding)] = (
                    m.name, meta.get("arch", "?")[:24],
                    meta.get("tta", "?") + (f" <{meta['tta_flip_below']}" if "tta_flip_below" in meta else ""),
                    meta.get("quantization", "?")[:10], f"{m.stat().st_size / 1e6:.2f}", clf.providers.name, "on" if binding else "off")
        if args.fer_python:
            got = fer_faces_per_second(args.fer_python, fer_faces, args.threads, args.seconds, batches)
            cell = rows.setdefault(("fer", False), {b: [] for b in batches})
            for b in batches:
                cell[b].append(got[b])
            described[("fer", False)] = ("fer 25.10.3", "mini-Xception", "false", "TFLite int8", "", "CPU (TFLite)", "")
    for key, cell in rows.items():
        ms = spread([1000 / v for v in cell[1]], ".2f") if 1 in cell else "-"
        table.add_row(*described[key], ms, *(spread(cell[b], ",.0f") for b in batches))
    Console(width=220).print(table)


if __name__ == "__main__":
    main()
