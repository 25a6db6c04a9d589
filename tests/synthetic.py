"""Synthetic training data for the model factory's tests: learnable stand-ins for faces, never real ones."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def synthetic_face(c: int, rng: np.random.Generator) -> np.ndarray:
    """A learnable stand-in for a face: class c is a bright bar at height 5 + 5c, on noise."""
    img = rng.integers(0, 80, (48, 48))
    img[5 + c * 5 : 9 + c * 5, 8:40] += 150
    return np.clip(img, 0, 255).astype(np.uint8)


def write_csv(path: Path, per_split=(("Training", 14), ("PublicTest", 6)), seed=0, gz=False) -> Path:
    """A FER2013-layout CSV (emotion,pixels,Usage): per_class faces of each class in each Usage, classes in turn."""
    rng = np.random.default_rng(seed)
    lines = ["emotion,pixels,Usage"]
    for usage, per_class in per_split:
        for i in range(per_class * 7):
            c = i % 7
            lines.append(f"{c},{' '.join(map(str, synthetic_face(c, rng).ravel()))},{usage}")
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path
