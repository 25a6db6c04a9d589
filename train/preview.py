"""A labelled grid of faces, one row per class, for eyeballing a dataset."""

from __future__ import annotations

import cv2
import numpy as np

from fer_edge.contract import INPUT_SIZE, LABELS

from .data import Split


def draw_grid(split: Split, per_class: int = 10, seed: int = 0, scale: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cell = INPUT_SIZE * scale
    label_w = 110
    grid = np.full((len(LABELS) * (cell + 4) + 4, label_w + per_class * (cell + 4) + 4, 3), 255, np.uint8)
    for c, name in enumerate(LABELS):
        idx = np.flatnonzero(split.y == c)
        chosen = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        y0 = 4 + c * (cell + 4)
        cv2.putText(grid, f"{name} ({len(idx)})", (6, y0 + cell // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for k, i in enumerate(chosen):
            face = cv2.resize(split.x[i], (cell, cell), interpolation=cv2.INTER_NEAREST)
            x0 = label_w + 4 + k * (cell + 4)
            grid[y0 : y0 + cell, x0 : x0 + cell] = face[:, :, None]
    return grid
