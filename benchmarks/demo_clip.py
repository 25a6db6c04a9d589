"""A 10-second demo clip for reports: the astronaut photo's face twice, one moving and clean, the other still
and going out of focus (Gaussian blur up to sigma 4, as a camera's autofocus hunting would), then darker.
It shows how a model's reading of the same face drifts as the image degrades.

    python benchmarks/demo_clip.py clip.avi
    fer-edge webcam --source clip.avi --no-display --report timeline.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ASTRONAUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "astronaut.jpg"
SIZE, FPS, SECONDS = (640, 360), 15, 10


def main(out: Path) -> None:
    face = cv2.resize(cv2.imread(str(ASTRONAUT))[10:110, 65:165], (150, 150))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    frames = FPS * SECONDS
    rng = np.random.default_rng(0)
    for i in range(frames):
        t = i / frames
        frame = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8) + rng.integers(0, 6, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
        x = int(20 + 200 * t)
        frame[40:190, x : x + 150] = face
        sigma = 4.0 * max(0.0, (t - 0.2) / 0.8)
        other = cv2.flip(face, 1)
        if sigma > 0:
            other = cv2.GaussianBlur(other, (0, 0), sigma)
        if t > 0.7:
            other = (255 * (other / 255.0) ** 1.8).astype(np.uint8)
        frame[180:330, 460:610] = other
        writer.write(frame)
    writer.release()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "clip.avi"))
