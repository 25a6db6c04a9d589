"""Clips for the realtime benchmarks, made from real faces: performers' photos pasted on a stage, panning
and zooming, in shots of 1-3 s with hard cuts, some with two faces and one empty. The photos come from
$FER_EDGE_DATA or ../shared/data (taiwanese/); a clip is written where the caller says and never kept in
the repository.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np


def data_dir(given: Path | None = None) -> Path:
    return given or Path(os.environ.get("FER_EDGE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def performer_photos(given: Path | None = None) -> list[Path]:
    photos = sorted((data_dir(given) / "taiwanese").rglob("*.jpg"))
    if not photos:
        raise SystemExit(f"no performer photos under {data_dir(given) / 'taiwanese'}")
    return photos


FPS = 30


def backdrop(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A stage: a lit gradient, a few blurred shapes and sensor noise; different for every shot."""
    w, h = size
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
    fx1, fy1 = min(frame.shape[1], x0 + side), min(frame.shape[0], y0 + side)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    sub = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    a = alpha[sub]
    frame[fy0:fy1, fx0:fx1] = a * p[sub] + (1 - a) * frame[fy0:fy1, fx0:fx1]


def make_clip(path: Path, photos: list[Path], shots: int, seed: int, size: tuple[int, int] = (640, 360)) -> int:
    """Shots of 1-3 s: one face panning and zooming, two faces, or an empty stage; hard cuts between them."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, size)
    frames = 0
    for s in range(shots):
        kind = "empty" if s % 6 == 3 else "two" if s % 3 == 1 else "one"
        n = int(rng.integers(30, 90))
        stage = backdrop(rng, size)
        faces = []
        for _ in range({"empty": 0, "one": 1, "two": 2}[kind]):
            photo = cv2.imread(str(photos[int(rng.integers(len(photos)))]))
            side0 = int((rng.integers(150, 300) if kind == "one" else rng.integers(120, 200)) * size[1] / 360)
            x0 = rng.uniform(side0 / 2, size[0] - side0 / 2)
            y0 = rng.uniform(size[1] * 0.35, size[1] * 0.6)
            faces.append((photo, x0, y0, side0, rng.uniform(-4, 4), rng.uniform(-1.5, 1.5), rng.uniform(-1.0, 1.5)))
        if kind == "two":  # side by side, apart
            faces[0] = (*faces[0][:1], size[0] * 0.28, *faces[0][2:])
            faces[1] = (*faces[1][:1], size[0] * 0.72, *faces[1][2:])
        for i in range(n):
            frame = stage.copy()
            for photo, x0, y0, side0, vx, vy, vs in faces:
                paste(frame, photo, x0 + vx * i, y0 + vy * i + 6 * np.sin(i / 7), max(60, int(side0 + vs * i)))
            frame += rng.normal(0, 3, frame.shape)
            writer.write(np.clip(frame, 0, 255).astype(np.uint8))
            frames += 1
    writer.release()
    return frames


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """Every frame of a clip, in order."""
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, image = cap.read()
            if not ok:
                return
            yield image
    finally:
        cap.release()
