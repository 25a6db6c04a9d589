"""Which crop margin makes detected faces look like FER2013's own crops?

Each PublicTest face (48x48) is upscaled 4x and padded with its own mirrored border, so that it sits in
a larger photo the way a face does. The detector finds it there, and the face is cropped back with each
candidate margin and classified. The margin whose accuracy comes closest to classifying the original
crops is the one whose framing matches the dataset's.

    python benchmarks/crop_margin.py --data ../shared/data/fer2013.csv.gz [--model M] [--detector-model YUNET]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from fer_edge.classifier import ExpressionClassifier
from fer_edge.crop import crop_faces
from fer_edge.detect import make_detector
from fer_edge.recognizer import resolve_model
from fer_edge.train.data import load_dataset

UPSCALE, PAD = 4, 96


def embed(face: np.ndarray) -> np.ndarray:
    big = cv2.resize(face, (48 * UPSCALE, 48 * UPSCALE), interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(big, PAD, PAD, PAD, PAD, cv2.BORDER_REFLECT_101)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--model")
    ap.add_argument("--detector-model", help="also measure YuNet with this model file")
    ap.add_argument("--limit", type=int, default=0, help="use the first N PublicTest faces (0: all)")
    ap.add_argument("--margins", default="0,0.05,0.1,0.15,0.2,0.25,0.3")
    args = ap.parse_args()

    val = load_dataset(args.data)["val"]
    x, y = (val.x[: args.limit], val.y[: args.limit]) if args.limit else (val.x, val.y)
    clf = ExpressionClassifier.from_path(resolve_model(args.model), device="cpu")
    base = float((clf.predict_probs(x).argmax(1) == y).mean())
    margins = [float(m) for m in args.margins.split(",")]

    detectors = [("haar", None)] + ([("yunet", args.detector_model)] if args.detector_model else [])
    table = Table(title=f"crop margin on FER2013 PublicTest ({len(y)} faces; original crops: {100 * base:.2f}%)")
    table.add_column("detector")
    table.add_column("found", justify="right")
    for m in margins:
        table.add_column(f"m={m:g}", justify="right")
    for name, path in detectors:
        det = make_detector(name, path, max_side=0)
        t0 = time.perf_counter()
        images, boxes, found = [], [], []
        for i, face in enumerate(x):
            img = embed(face)
            dets = det.detect(img)
            if dets:
                b = dets[0].box  # the best-scoring face
                images.append(img)
                boxes.append(b)
                found.append(i)
        found = np.array(found, int)
        accs = []
        for m in margins:
            crops = np.concatenate([crop_faces(img, [b], m) for img, b in zip(images, boxes)])
            pred = clf.predict_probs(crops).argmax(1)
            accs.append(float((pred == y[found]).mean()))
        base_found = float((clf.predict_probs(x[found]).argmax(1) == y[found]).mean())
        best = int(np.argmax(accs))
        table.add_row(
            f"{name} ({time.perf_counter() - t0:.0f}s)",
            f"{100 * len(found) / len(y):.1f}%",
            *[f"[bold]{100 * a:.2f}%[/]" if i == best else f"{100 * a:.2f}%" for i, a in enumerate(accs)],
        )
        table.add_row("", "originals", *[f"{100 * base_found:.2f}%"] * len(margins), style="dim")
        box_side = np.mean([max(b[2], b[3]) for b in boxes]) / UPSCALE if boxes else 0
        Console(width=200).print(f"{name}: mean box side {box_side:.1f} px of the 48 px FER crop")
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
