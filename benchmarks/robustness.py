"""FER2013-C: accuracy of ONNX emotion models on PublicTest faces under camera corruptions, through the runtime.

Eight corruptions (blur, low resolution, noise, JPEG, rotation, dark, low contrast, detector box jitter) at
three severities each (train/corruptions.py). Prints one table, a column per model: clean accuracy, each
corruption and severity, the mean drop and the worst drop (percentage points below clean).

    python benchmarks/robustness.py [MODEL.onnx | default | fast ...] [--data fer2013.csv.gz] [--limit N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fer_edge.classifier import ExpressionClassifier
from fer_edge.recognizer import resolve_model
from fer_edge.train.corruptions import run_suite
from fer_edge.train.data import load_dataset


def default_data() -> Path:
    root = Path(os.environ.get("FER_EDGE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    return root / "fer2013.csv.gz" if root.is_dir() else root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="ONNX files or shipped model names (default, fast); default: both shipped")
    ap.add_argument("--data", type=Path, default=None, help="FER2013 CSV or .npz (default: $FER_EDGE_DATA or ../shared/data)")
    ap.add_argument("--split", default="val", help="val (PublicTest, the default) or test")
    ap.add_argument("--limit", type=int, default=0, help="first N faces only (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    split = load_dataset(args.data or default_data())[args.split]
    x, y = (split.x[: args.limit], split.y[: args.limit]) if args.limit else (split.x, split.y)
    names = args.models or ["default", "fast"]
    results = {}
    for name in names:
        clf = ExpressionClassifier.from_path(resolve_model(name), device="cpu", threads=args.threads)
        t0 = time.time()
        results[name] = run_suite(lambda faces: clf.predict_probs(faces, batch=256), x, y)
        results[name]["seconds"] = round(time.time() - t0, 1)

    table = Table(title=f"FER2013-C: accuracy % on {args.split} ({len(y)} faces), onnxruntime CPU")
    table.add_column("corruption")
    table.add_column("setting")
    for name in names:
        table.add_column(Path(name).name, justify="right")
    table.add_row("none", "clean", *(f"{100 * results[n]['clean']:.2f}" for n in names))
    for i, (corr, _sev, setting, _acc) in enumerate(results[names[0]]["rows"]):
        table.add_row(corr, setting, *(f"{100 * results[n]['rows'][i][3]:.2f}" for n in names))
    table.add_row("mean drop", "points", *(f"{results[n]['mean_drop']:.2f}" for n in names))
    table.add_row("worst drop", "points", *(f"{results[n]['worst_drop']:.2f} ({', '.join(results[n]['worst'])})" for n in names))
    Console(width=200).print(table)
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "faces": len(y), "models": results}, indent=2))


if __name__ == "__main__":
    main()
