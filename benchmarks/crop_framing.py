"""Does the 48x48 the runtime crops from a photo look like a FER2013 face?

For FER2013's PublicTest crops and for the runtime's own crops of the performers' photos (Haar and YuNet,
cropped as `classify` crops them), it measures where the face sits in the frame, from YuNet's landmarks on
each crop upscaled 4x inside a mirrored border: eye height, eye distance (the face's scale), mouth height and
the eye line's tilt; and the grey levels: mean, contrast, and how flat the histogram is (FER2013's copy was
histogram-equalised; 0 is a perfectly flat one). Then it classifies the held-out performers' crops as they
are and equalised, to see what the difference costs.

    python benchmarks/crop_framing.py [--data DIR] [--detector-model YUNET.onnx] [--model default] [--limit 1000]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from fer_edge.classifier import ExpressionClassifier
from fer_edge.recognizer import resolve_model
from fer_edge.train.data import load_dataset
from fer_edge.train.faces import crop_photos, group_folds, groups

from crop_margin import PAD, UPSCALE, embed  # a 48x48 face inside a larger photo, as crop_margin.py builds it



def landmarks(faces: np.ndarray, yunet: Path) -> np.ndarray:
    """[N, 10] landmark coordinates in the 48x48 frame (NaN where YuNet finds no face): right eye, left eye,
    nose, right and left mouth corners."""
    side = 48 * UPSCALE + 2 * PAD
    net = cv2.FaceDetectorYN.create(str(yunet), "", (side, side), 0.5)
    out = np.full((len(faces), 10), np.nan)
    for i, f in enumerate(faces):
        _, found = net.detect(cv2.cvtColor(embed(f), cv2.COLOR_GRAY2BGR))
        if found is None or len(found) == 0:
            continue
        centre = found[:, :2] + found[:, 2:4] / 2  # the face nearest the middle: the crop's own, not a mirror's
        best = found[np.argmin(np.abs(centre - side / 2).sum(1))]
        out[i] = (best[4:14] - PAD) / UPSCALE
    return out


def framing(faces: np.ndarray, yunet: Path) -> dict:
    lm = landmarks(faces, yunet)
    ok = ~np.isnan(lm[:, 0])
    lm = lm[ok]
    eyes_y = (lm[:, 1] + lm[:, 3]) / 2
    eye_dist = np.hypot(lm[:, 2] - lm[:, 0], lm[:, 3] - lm[:, 1])
    mouth_y = (lm[:, 7] + lm[:, 9]) / 2
    tilt = np.degrees(np.arctan2(lm[:, 3] - lm[:, 1], lm[:, 2] - lm[:, 0]))
    flat = [np.abs(np.cumsum(np.bincount(f.ravel(), minlength=256)) / f.size - np.linspace(1 / 256, 1, 256)).max()
            for f in faces]
    return {"found": ok.mean(), "eyes_y": np.median(eyes_y) / 48, "eye_dist": np.median(eye_dist) / 48,
            "mouth_y": np.median(mouth_y) / 48, "tilt": np.median(np.abs(tilt)), "mean": faces.mean(),
            "std": faces.reshape(len(faces), -1).std(1).mean(), "flatness": float(np.median(flat))}


def equalised(faces: np.ndarray) -> np.ndarray:
    return np.stack([cv2.equalizeHist(f) for f in faces])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--detector-model", type=Path, default=None)
    ap.add_argument("--model", default="default")
    ap.add_argument("--limit", type=int, default=1000, help="PublicTest faces to measure (0: all)")
    args = ap.parse_args()
    here = Path(__file__).resolve().parents[1].parent / "shared"
    data = args.data or Path(os.environ.get("FER_EDGE_DATA", here / "data"))
    yunet = args.detector_model or sorted((here / "models").glob("face_detection_yunet*.onnx"))[0]

    fer = load_dataset(data / "fer2013.csv.gz")["val"]
    x = fer.x[: args.limit] if args.limit else fer.x
    sets = {"FER2013 PublicTest": (x, None, None)}
    for det, model in (("haar", None), ("yunet", yunet)):
        faces = crop_photos(data / "taiwanese", det, model)
        fold0 = group_folds(groups(faces.names, r"^(\d\d)"), 3)[0]
        sets[f"performers, {det} crops"] = (faces.x, faces.x[fold0], faces.y[fold0])

    clf = ExpressionClassifier.from_path(resolve_model(args.model), device="cpu")
    table = Table(title="Where the face sits in the 48x48 crop, and its grey levels (medians; positions as a share of the side)")
    for col in ("crops", "faces", "landmarks found", "eyes at", "eye distance", "mouth at", "|tilt| deg", "mean grey",
                "contrast (std)", "histogram flatness", "held-out acc", "equalised"):
        table.add_column(col, justify="left" if col == "crops" else "right")
    for name, (faces, held_x, held_y) in sets.items():
        f = framing(faces, yunet)
        if held_x is None:
            acc = eq = "–"
        else:
            acc = f"{100 * (clf.predict_probs(held_x).argmax(1) == held_y).mean():.2f}%"
            eq = f"{100 * (clf.predict_probs(equalised(held_x)).argmax(1) == held_y).mean():.2f}%"
        table.add_row(name, str(len(faces)), f"{100 * f['found']:.0f}%", f"{f['eyes_y']:.3f}", f"{f['eye_dist']:.3f}",
                      f"{f['mouth_y']:.3f}", f"{f['tilt']:.1f}", f"{f['mean']:.0f}", f"{f['std']:.1f}",
                      f"{f['flatness']:.3f}", acc, eq)
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
