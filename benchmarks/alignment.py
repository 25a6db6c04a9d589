"""Does turning each crop so the eyes are level (YuNet's eye landmarks) help on tilted faces?

Each PublicTest face is embedded in a larger photo as benchmarks/crop_margin.py does it (4x, mirrored
border), the photo is turned by an angle, YuNet finds the face, and the face is cropped plainly and
aligned, then classified. Accuracy is compared on the same faces, per tilt.

    python benchmarks/alignment.py --data ../shared/data/fer2013.csv.gz --detector-model YUNET.onnx [--limit 1000]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from fer_edge.classifier import ExpressionClassifier
from fer_edge.crop import ALIGN_MIN_TILT, crop_face
from fer_edge.detect import YuNetDetector
from fer_edge.recognizer import resolve_model
from fer_edge.train.data import load_dataset

UPSCALE, PAD = 4, 96


def embed(face: np.ndarray, angle: float) -> np.ndarray:
    big = cv2.resize(face, (48 * UPSCALE, 48 * UPSCALE), interpolation=cv2.INTER_CUBIC)
    img = cv2.copyMakeBorder(big, PAD, PAD, PAD, PAD, cv2.BORDER_REFLECT_101)
    c = (img.shape[1] / 2, img.shape[0] / 2)
    return cv2.warpAffine(img, cv2.getRotationMatrix2D(c, angle, 1.0), img.shape[::-1], borderMode=cv2.BORDER_REFLECT_101)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--detector-model", required=True)
    ap.add_argument("--model")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--angles", default="0,10,-10,20,-20,30,-30")
    ap.add_argument("--min-tilt", type=float, default=ALIGN_MIN_TILT, help="align only crops tilted at least this much (degrees)")
    args = ap.parse_args()

    val = load_dataset(args.data)["val"]
    x, y = val.x[: args.limit], val.y[: args.limit]
    clf = ExpressionClassifier.from_path(resolve_model(args.model), device="cpu")
    det = YuNetDetector(args.detector_model, max_side=0)
    table = Table(title=f"eye-line alignment of tilts >= {args.min_tilt:g} deg, YuNet, {len(y)} PublicTest faces embedded and turned")
    for col in ("turned by", "found", "plain crop", "aligned crop", "change", "mean |tilt| measured"):
        table.add_column(col, justify="right")
    totals = {"plain": [], "aligned": []}
    for angle in (float(a) for a in args.angles.split(",")):
        plain, aligned, labels, tilts = [], [], [], []
        for face, label in zip(x, y):
            img = embed(face, angle)
            dets = det.detect(img)
            if not dets:
                continue
            d = dets[0]
            plain.append(crop_face(img, d.box, det.margin))
            aligned.append(crop_face(img, d.box, det.margin, angle=d.angle if abs(d.angle) >= args.min_tilt else 0.0))
            labels.append(label)
            tilts.append(abs(d.angle))
        labels = np.array(labels)
        acc_p = float((clf.predict_probs(np.stack(plain)).argmax(1) == labels).mean())
        acc_a = float((clf.predict_probs(np.stack(aligned)).argmax(1) == labels).mean())
        totals["plain"].append(acc_p)
        totals["aligned"].append(acc_a)
        table.add_row(f"{angle:+.0f} deg", f"{100 * len(labels) / len(y):.0f}%", f"{100 * acc_p:.2f}%", f"{100 * acc_a:.2f}%",
                      f"{100 * (acc_a - acc_p):+.2f}", f"{np.mean(tilts):.1f} deg")
    table.add_row("mean", "", f"{100 * np.mean(totals['plain']):.2f}%", f"{100 * np.mean(totals['aligned']):.2f}%",
                  f"{100 * (np.mean(totals['aligned']) - np.mean(totals['plain'])):+.2f}", "")
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
