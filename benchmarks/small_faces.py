"""Recall against speed of the realtime loop on small, turning, moving faces, per detector setting.

A synthetic 640x480 clip (made here from the public-domain astronaut photo): six faces from 32 to 200 px
tall drift across the frame while they turn (yaw up to +-50 degrees, drawn as a horizontal squeeze with a
small in-plane tilt). Every frame goes through the webcam pipeline (detect every N frames on a copy of at
most S px -> track -> classify -> smooth). Recall counts, per face and frame, whether a box the loop
emitted marks the true face; per-size columns show where each setting gives up. FPS times
the pipeline alone (no decode, no drawing).

    python benchmarks/small_faces.py [--detector-model YUNET.onnx] [--frames 150] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from fer_edge.realtime.loop import Pipeline
from fer_edge.recognizer import Recognizer

ASTRONAUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "astronaut.jpg"
SIZES = (32, 40, 56, 80, 120, 200)  # face heights in px
FRAME = (640, 480)


def face_patch() -> np.ndarray:
    photo = cv2.imread(str(ASTRONAUT))
    return photo[10:110, 65:165]  # the face, hair to chin (as benchmarks/webcam_fps.py crops it)


def scene(t: float, patch: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Frame at time t in [0, 1) and the true face boxes (each pasted face's box)."""
    frame = np.full((FRAME[1], FRAME[0], 3), 110, np.uint8) + rng.integers(0, 10, (FRAME[1], FRAME[0], 3), dtype=np.uint8)
    boxes = []
    slots = [(80, 30), (560, 20), (80, 380), (90, 170), (260, 60), (380, 240)]  # top-left corners, one per size
    for k, (size, (x0, y0)) in enumerate(zip(SIZES, slots)):
        yaw = np.radians(50) * np.sin(2 * np.pi * (t * 2 + k / 6))
        tilt = 8 * np.sin(2 * np.pi * (t + k / 5))
        w = max(8, int(size * (0.45 + 0.55 * np.cos(yaw))))  # turning away narrows the face
        face = cv2.resize(patch, (w, size), interpolation=cv2.INTER_AREA)
        if yaw < 0:
            face = cv2.flip(face, 1)
        m = cv2.getRotationMatrix2D((w / 2, size / 2), tilt, 1.0)
        face = cv2.warpAffine(face, m, (w, size), borderMode=cv2.BORDER_REPLICATE)
        x = int(x0 + 60 * np.sin(2 * np.pi * t + k))
        y = int(y0 + 25 * np.cos(2 * np.pi * t + k))
        x, y = min(max(x, 0), FRAME[0] - w), min(max(y, 0), FRAME[1] - size)
        frame[y : y + size, x : x + w] = face
        boxes.append((x, y, w, size))
    return frame, boxes


def on_face(box, truth) -> bool:
    """The emitted box marks this face: its centre inside the pasted face, its height 0.3-1.5x the face's.
    (Haar's box is the inner face, YuNet's a bit more: an IoU rule would score the detectors' framing.)"""
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    x, y, w, h = truth
    return x <= cx <= x + w and y <= cy <= y + h and 0.3 * h <= box[3] <= 1.5 * h


def measure(rec: Recognizer, every: int, frames: list[np.ndarray], truth: list[list[tuple]]) -> tuple[np.ndarray, float]:
    pipe = Pipeline(rec, every, fps=30)
    hits = np.zeros((len(frames), len(SIZES)), bool)
    spent = 0.0
    for i, (frame, boxes) in enumerate(zip(frames, truth)):
        t0 = time.perf_counter()
        faces = pipe.classify(frame, pipe.detect(frame))
        spent += time.perf_counter() - t0
        for j, b in enumerate(boxes):
            hits[i, j] = any(on_face(f.box, b) for f in faces)
    return hits, len(frames) / spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector-model", help="also measure YuNet with this model file")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--settings", default="haar:320:2,haar:480:3,haar:640:2,haar:640:3,haar:640:4,haar:0:1",
                    help="detector:detect-size:detect-every, comma-separated (size 0: the full frame)")
    args = ap.parse_args()
    settings = [s.split(":") for s in args.settings.split(",")]
    if args.detector_model and "yunet" not in args.settings:
        settings += [["yunet", "320", "2"], ["yunet", "320", "3"], ["yunet", "640", "2"], ["yunet", "640", "3"]]

    rng = np.random.default_rng(0)
    patch = face_patch()
    frames, truth = zip(*(scene(i / args.frames, patch, rng) for i in range(args.frames)))

    table = Table(title=f"small, turning faces: recall and FPS of the webcam pipeline ({args.frames} frames 640x480, "
                        f"{len(SIZES)} faces, {args.threads} threads)")
    for col in ("detector", "detect size", "every", "recall", *(f"{s} px" for s in SIZES), "FPS"):
        table.add_column(col, justify="left" if col == "detector" else "right")
    for name, size, every in settings:
        rec = Recognizer(None, name, args.detector_model if name == "yunet" else None, "cpu", args.threads,
                         detect_size=int(size))
        hits, fps = measure(rec, int(every), list(frames), list(truth))
        table.add_row(name, size if size != "0" else "full", every, f"{100 * hits.mean():.0f}%",
                      *(f"{100 * hits[:, j].mean():.0f}%" for j in range(len(SIZES))), f"{fps:.0f}")
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
