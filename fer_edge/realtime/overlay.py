"""What the window and the annotated video show: each face's box and label, and the heads-up lines."""

from __future__ import annotations

import cv2
import numpy as np

from fer_edge.realtime.summary import Timings, TrackedFace
from fer_edge.render import draw_face, draw_hud


def draw_frame(image: np.ndarray, faces: list[TrackedFace], hud: list[str]) -> np.ndarray:
    canvas = image.copy() if image.ndim == 3 and image.shape[2] == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    for f in faces:
        draw_face(canvas, f.box, f.label, f.confidence, f.probs, caption=f"#{f.track} ", held=f.held)
    draw_hud(canvas, hud)
    return canvas


def hud_lines(t: Timings, provider: str, recording: bool, paused: bool) -> list[str]:
    ms = t.ms
    lines = [
        f"{t.fps:5.1f} FPS  latency {t.latency_ms:4.0f} ms  [{provider}]",
        f"capture {ms['capture']:.1f}  detect {ms['detect']:.1f}  classify {ms['classify']:.1f}  draw {ms['draw']:.1f} ms",
    ]
    if recording:
        lines.append("REC")
    if paused:
        lines.append("PAUSED (space)")
    return lines
