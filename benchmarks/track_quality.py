"""Are the webcam loop's records on a face? On a clip with shot cuts, motion, an empty shot and two-face
shots, made from real performers' photos, every record the loop writes is checked against a strong detector
(YuNet on the full frame, every frame): a record counts as on a face when its box overlaps one of that
frame's faces with IoU >= 0.3. Recall is the share of (frame, face) pairs that some record marks.

    python benchmarks/track_quality.py --detector-model YUNET.onnx [--data DIR] [--shots 12] [--seed 0]

The photos come from the Taiwanese performers' set ($FER_EDGE_DATA or ../shared/data, taiwanese/); the clip
is built in a temporary folder and never kept.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from fer_edge.detect import YuNetDetector
from fer_edge.realtime.capture import VideoSource, parse_source
from fer_edge.realtime.loop import LoopOptions, Pipeline, run
from fer_edge.realtime.track import iou
from fer_edge.recognizer import Recognizer

SIZE, FPS = (640, 360), 30


def data_dir(given: Path | None) -> Path:
    return given or Path(os.environ.get("FER_EDGE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def backdrop(rng: np.random.Generator) -> np.ndarray:
    """A stage: a lit gradient, a few blurred shapes and sensor noise; different for every shot."""
    w, h = SIZE
    base = np.linspace(rng.uniform(30, 90), rng.uniform(120, 200), w)[None, :, None] * np.ones((h, 1, 3))
    base = base * rng.uniform(0.7, 1.0, 3)
    for _ in range(6):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.rectangle(base, (x, y), (x + int(rng.integers(20, 160)), y + int(rng.integers(20, 160))),
                      tuple(float(v) for v in rng.uniform(0, 255, 3)), -1)
    return cv2.GaussianBlur(base, (0, 0), 3)


def paste(frame: np.ndarray, photo: np.ndarray, cx: float, cy: float, side: int) -> None:
    """Paste a photo centred at (cx, cy), `side` px wide, with feathered edges (no hard square to detect)."""
    p = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha = np.zeros((side, side), np.float32)
    m = side // 8
    alpha[m:-m, m:-m] = 1
    alpha = cv2.GaussianBlur(alpha, (0, 0), m / 2)[..., None]
    x0, y0 = int(cx - side / 2), int(cy - side / 2)
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(SIZE[0], x0 + side), min(SIZE[1], y0 + side)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    sub = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    a = alpha[sub]
    frame[fy0:fy1, fx0:fx1] = a * p[sub] + (1 - a) * frame[fy0:fy1, fx0:fx1]


def make_clip(path: Path, photos: list[Path], shots: int, seed: int) -> int:
    """Shots of 1-3 s: one face panning and zooming, two faces, or an empty stage; hard cuts between them."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    frames = 0
    for s in range(shots):
        kind = "empty" if s % 6 == 3 else "two" if s % 3 == 1 else "one"
        n = int(rng.integers(30, 90))
        stage = backdrop(rng)
        faces = []
        for _ in range({"empty": 0, "one": 1, "two": 2}[kind]):
            photo = cv2.imread(str(photos[int(rng.integers(len(photos)))]))
            side0 = int(rng.integers(150, 300)) if kind == "one" else int(rng.integers(120, 200))
            x0 = rng.uniform(side0 / 2, SIZE[0] - side0 / 2)
            y0 = rng.uniform(SIZE[1] * 0.35, SIZE[1] * 0.6)
            faces.append((photo, x0, y0, side0, rng.uniform(-4, 4), rng.uniform(-1.5, 1.5), rng.uniform(-1.0, 1.5)))
        if kind == "two":  # side by side, apart
            faces[0] = (*faces[0][:1], SIZE[0] * 0.28, *faces[0][2:])
            faces[1] = (*faces[1][:1], SIZE[0] * 0.72, *faces[1][2:])
        for i in range(n):
            frame = stage.copy()
            for photo, x0, y0, side0, vx, vy, vs in faces:
                paste(frame, photo, x0 + vx * i, y0 + vy * i + 6 * np.sin(i / 7), max(60, int(side0 + vs * i)))
            frame += rng.normal(0, 3, frame.shape)
            writer.write(np.clip(frame, 0, 255).astype(np.uint8))
            frames += 1
    writer.release()
    return frames


def truth(path: Path, yunet: Path) -> list[list[tuple[int, int, int, int]]]:
    det = YuNetDetector(yunet, max_side=0, score_threshold=0.7)
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        out.append([d.box for d in det.detect(image)])
    cap.release()
    return out


class Collect:
    def __init__(self):
        self.rows: list[dict] = []

    def write(self, rec: dict) -> None:
        self.rows.append(rec)


def measure(clip: Path, faces: list, detector: str, yunet: Path, every: int, size: int) -> dict:
    recognizer = Recognizer(None, detector, yunet if detector == "yunet" else None, "cpu", detect_size=size)
    source = VideoSource(parse_source(str(clip)))
    rows = Collect()
    t = time.perf_counter()
    result = run(source, Pipeline(recognizer, every, fps=source.fps), LoopOptions(every), [rows], log=lambda m: None)
    seconds = time.perf_counter() - t
    source.close()
    on = sum(any(iou((r["x"], r["y"], r["w"], r["h"]), f) >= 0.3 for f in faces[r["frame"]]) for r in rows.rows)
    by_frame: dict[int, list] = {}
    for r in rows.rows:
        by_frame.setdefault(r["frame"], []).append((r["x"], r["y"], r["w"], r["h"]))
    pairs = sum(len(f) for f in faces)
    marked = sum(any(iou(b, f) >= 0.3 for b in by_frame.get(i, ())) for i, fs in enumerate(faces) for f in fs)
    held = sum(not r["detected"] for r in rows.rows)
    return {"records": len(rows.rows), "on": on, "held": held, "pairs": pairs, "marked": marked,
            "fps": result.frames / seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--detector-model", type=Path, required=True, help="YuNet .onnx: the strong detector, and a detector to test")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--shots", type=int, default=14)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--every", default="3", help="comma-separated --detect-every values")
    args = ap.parse_args()
    photos = sorted((data_dir(args.data) / "taiwanese").rglob("*.jpg"))
    if not photos:
        raise SystemExit(f"no performer photos under {data_dir(args.data) / 'taiwanese'}")
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "shots.avi"
        n = make_clip(clip, photos, args.shots, args.seed)
        faces = truth(clip, args.detector_model)
        console.print(f"{n} frames, {args.shots} shots; {sum(len(f) for f in faces)} faces on "
                      f"{sum(bool(f) for f in faces)} frames (YuNet, full frame)")
        table = Table(title="records on a face (IoU >= 0.3 with a full-frame YuNet face)")
        for c in ("detector", "every", "records", "not detected", "on a face", "faces marked", "FPS"):
            table.add_column(c, justify="right")
        for det in ("haar", "yunet"):
            for every in (int(e) for e in args.every.split(",")):
                m = measure(clip, faces, det, args.detector_model, every, 640)
                table.add_row(det, str(every), f"{m['records']:,}", f"{m['held']:,}",
                              f"{100 * m['on'] / max(m['records'], 1):.1f}%",
                              f"{100 * m['marked'] / max(m['pairs'], 1):.1f}%", f"{m['fps']:.0f}")
        console.print(table)


if __name__ == "__main__":
    main()
