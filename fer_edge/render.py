"""Drawing: boxes, labels and probability bars on a copy of the image. Pure; used by classify and webcam."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from fer_edge.contract import LABELS
from fer_edge.imageio import to_bgr_u8

# BGR colour per class, in LABELS order.
COLORS = {
    "angry": (40, 40, 220),
    "disgust": (40, 140, 40),
    "fear": (150, 60, 150),
    "happy": (0, 200, 255),
    "sad": (200, 120, 40),
    "surprise": (0, 150, 255),
    "neutral": (170, 170, 170),
}
FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_face(
    canvas: np.ndarray,
    box: Sequence[int],
    label: str,
    confidence: float,
    probs: Sequence[float] | None = None,
    caption: str = "",
    held: bool = False,
) -> None:
    """Draw one face onto `canvas` in place (callers own the copy). A held face (the detector lost it; its
    box follows the track's motion) gets a dashed box."""
    x, y, w, h = (int(v) for v in box)
    color = COLORS.get(label, (255, 255, 255))
    scale = max(0.45, min(1.2, canvas.shape[1] / 1200))
    thick = max(1, int(round(scale * 2)))
    if held:
        _dashed_rectangle(canvas, (x, y), (x + w, y + h), color, thick)
    else:
        cv2.rectangle(canvas, (x, y), (x + w, y + h), color, thick)
    text = f"{caption}{label} {100 * confidence:.0f}%" if label else f"{caption}no label"
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thick)
    ty = y - 6 if y - th - 10 > 0 else y + h + th + 6
    cv2.rectangle(canvas, (x, ty - th - 4), (x + tw + 6, ty + base), color, -1)
    cv2.putText(canvas, text, (x + 3, ty - 2), FONT, scale, (0, 0, 0), thick, cv2.LINE_AA)
    if probs is not None:
        _draw_bars(canvas, x + w + 6, y, max(36, h // 2), probs, scale)


def _dashed_rectangle(canvas: np.ndarray, p0: tuple[int, int], p1: tuple[int, int], color, thick: int, dash: int = 8) -> None:
    (x0, y0), (x1, y1) = p0, p1
    for a, b in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        length = max(abs(b[0] - a[0]), abs(b[1] - a[1]))
        for start in range(0, length, 2 * dash):
            end = min(start + dash, length)
            s0 = (a[0] + (b[0] - a[0]) * start // max(length, 1), a[1] + (b[1] - a[1]) * start // max(length, 1))
            s1 = (a[0] + (b[0] - a[0]) * end // max(length, 1), a[1] + (b[1] - a[1]) * end // max(length, 1))
            cv2.line(canvas, s0, s1, color, thick)


def _draw_bars(canvas: np.ndarray, x: int, y: int, height: int, probs: Sequence[float], scale: float) -> None:
    row = max(8, height // len(LABELS))
    width = int(60 * max(scale, 0.6))
    label_w = int(28 * max(scale, 0.6))
    if x + label_w + width > canvas.shape[1]:  # no room right of the box: skip rather than clutter the face
        return
    for i, (label, p) in enumerate(zip(LABELS, probs)):
        ry = y + i * row
        if ry + row > canvas.shape[0]:
            break
        cv2.putText(canvas, label[:3], (x, ry + row - 2), FONT, 0.3 * max(scale, 1.0), (255, 255, 255), 1, cv2.LINE_AA)
        cv2.rectangle(canvas, (x + label_w, ry + 1), (x + label_w + width, ry + row - 1), (60, 60, 60), -1)
        cv2.rectangle(canvas, (x + label_w, ry + 1), (x + label_w + int(width * float(p)), ry + row - 1), COLORS[label], -1)


def annotate(image: np.ndarray, faces: Sequence) -> np.ndarray:
    """A BGR copy of `image` with each Face drawn (box, label, confidence, probability bars)."""
    canvas = to_bgr_u8(image).copy()
    for f in faces:
        draw_face(canvas, f.box, f.label, f.confidence, f.probs)
    return canvas


def draw_hud(canvas: np.ndarray, lines: Sequence[str]) -> None:
    """Heads-up text in the top-left corner, on a translucent panel, in place."""
    if not lines:
        return
    scale, thick, step = 0.5, 1, 18
    width = max(cv2.getTextSize(t, FONT, scale, thick)[0][0] for t in lines) + 12
    height = step * len(lines) + 8
    h, w = canvas.shape[:2]
    panel = canvas[0 : min(height, h), 0 : min(width, w)]
    panel[:] = (panel * 0.4).astype(np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(canvas, text, (6, 18 + i * step), FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)
