"""End-to-end FPS and per-stage milliseconds of the realtime loop (headless), per resolution, face count
and detector. The clips are made here from the public-domain astronaut photo in tests/data.

    python benchmarks/webcam_fps.py [--model M] [--detector-model YUNET.onnx] [--frames 200]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from fer_edge.realtime.capture import VideoSource, parse_source
from fer_edge.realtime.loop import LoopOptions, Pipeline, run
from fer_edge.recognizer import Recognizer

ASTRONAUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "astronaut.jpg"


def scene(size: tuple[int, int], faces: int, t: float) -> np.ndarray:
    """A frame of `faces` astronaut faces (a third of the height each) on a noisy background; t in [0, 1)."""
    photo = cv2.imread(str(ASTRONAUT))
    side = size[1] // 3
    face = cv2.resize(photo[10:110, 65:165], (side, side))
    rng = np.random.default_rng(int(t * 1e6))
    frame = np.full((size[1], size[0], 3), 100, np.uint8) + rng.integers(0, 8, (size[1], size[0], 3), dtype=np.uint8)
    for k in range(faces):
        x = int((size[0] - side) * (0.1 + 0.8 * ((t + k / 3) % 1)))
        y = int((size[1] - side) * (0.5 + 0.4 * np.sin(t * 10 + k)))
        frame[y : y + side, x : x + side] = face if k % 2 == 0 else cv2.flip(face, 1)
    return frame


def make_clip(path: Path, size: tuple[int, int], faces: int, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, size)
    for i in range(frames):
        writer.write(scene(size, faces, i / frames))
    writer.release()
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--detector-model")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--detect-size", type=int, default=640)
    ap.add_argument("--detect-every", default="2,3,4")
    args = ap.parse_args()
    detectors = ["haar"] + (["yunet"] if args.detector_model else [])

    table = Table(title=f"fer-edge webcam, headless, {args.threads} threads, detect at {args.detect_size} px")
    for col in ("video", "faces", "detector", "every", "FPS", "capture", "detect", "classify", "draw", "ms/frame"):
        table.add_column(col, justify="left" if col in ("video", "detector") else "right")
    with tempfile.TemporaryDirectory() as tmp:
        for size in ((640, 480), (1280, 720)):
            for faces in (1, 3):
                clip = make_clip(Path(tmp) / f"{size[0]}x{size[1]}_{faces}.avi", size, faces, args.frames)
                for det in detectors:
                    rec = Recognizer(args.model, det, args.detector_model, "cpu", args.threads, detect_size=args.detect_size)
                    for every in (int(e) for e in args.detect_every.split(",")):
                        src = VideoSource(parse_source(str(clip)))
                        # draw is timed as it would be for the window or --output
                        result = run(src, Pipeline(rec, every), LoopOptions(every), video=_NullVideo())
                        src.close()
                        ms = result.mean_ms
                        table.add_row(f"{size[0]}x{size[1]}", str(faces), det, str(every), f"{result.fps:.0f}",
                                      *(f"{ms[s]:.2f}" for s in ("capture", "detect", "classify", "draw")),
                                      f"{sum(ms.values()):.2f}")
    Console(width=200).print(table)


class _NullVideo:
    """Makes the loop draw every frame (as with a window) without the cost of encoding."""

    path = Path("/dev/null")

    def write(self, image) -> None:
        pass

    def close(self) -> None:
        pass


if __name__ == "__main__":
    main()
