"""Are the webcam loop's records on a face? On a clip with shot cuts, motion, an empty shot and two-face
shots, made from real performers' photos, every record the loop writes is checked against a strong detector
(YuNet on the full frame, every frame): a record counts as on a face when its box overlaps one of that
frame's faces with IoU >= 0.3. Recall is the share of (frame, face) pairs that some record marks.

    python benchmarks/track_quality.py --detector-model YUNET.onnx [--data DIR] [--shots 12] [--seed 0] [--rounds 3]

Each detector runs with and without the steady-scene cadence (the detector waits up to 3x longer while every
face is found again closely and nothing moves elsewhere), in interleaved rounds.

The photos come from the Taiwanese performers' set ($FER_EDGE_DATA or ../shared/data, taiwanese/); the clip
is built in a temporary folder and never kept.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from clips import make_clip, performer_photos, read_frames
from fer_edge.detect import YuNetDetector
from fer_edge.realtime.capture import VideoSource, parse_source
from fer_edge.realtime.loop import LoopOptions, Pipeline, run
from fer_edge.realtime.track import iou
from fer_edge.recognizer import Recognizer


def truth(path: Path, yunet: Path) -> list[list[tuple[int, int, int, int]]]:
    det = YuNetDetector(yunet, max_side=0, score_threshold=0.7)
    return [[d.box for d in det.detect(image)] for image in read_frames(path)]


class Collect:
    def __init__(self):
        self.rows: list[dict] = []

    def write(self, rec: dict) -> None:
        self.rows.append(rec)


def measure(clip: Path, faces: list, detector: str, yunet: Path, every: int, size: int, steady: bool = True) -> dict:
    """steady=False: the detector runs every `every` frames whatever the scene (fer-edge 0.3.0's cadence)."""
    recognizer = Recognizer(None, detector, yunet if detector == "yunet" else None, "cpu", detect_size=size)
    source = VideoSource(parse_source(str(clip)))
    rows = Collect()
    t = time.perf_counter()
    pipeline = Pipeline(recognizer, every, fps=source.fps, steady_every=None if steady else every)
    result = run(source, pipeline, LoopOptions(every), [rows], log=lambda m: None)
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
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; FPS is the median")
    args = ap.parse_args()
    photos = performer_photos(args.data)
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "shots.avi"
        n = make_clip(clip, photos, args.shots, args.seed)
        faces = truth(clip, args.detector_model)
        console.print(f"{n} frames, {args.shots} shots; {sum(len(f) for f in faces)} faces on "
                      f"{sum(bool(f) for f in faces)} frames (YuNet, full frame)")
        table = Table(title="records on a face (IoU >= 0.3 with a full-frame YuNet face)")
        for c in ("detector", "every", "steady scenes", "records", "not detected", "on a face", "faces marked", "FPS"):
            table.add_column(c, justify="right")
        configs = [(det, int(e), steady) for det in ("haar", "yunet") for e in args.every.split(",") for steady in (False, True)]
        runs: dict[tuple, list[dict]] = {c: [] for c in configs}
        for _ in range(args.rounds):  # interleaved: the machine's load falls on every configuration alike
            for c in configs:
                runs[c].append(measure(clip, faces, c[0], args.detector_model, c[1], 640, c[2]))
        for (det, every, steady), ms in runs.items():
            m, fps = ms[0], sorted(r["fps"] for r in ms)[len(ms) // 2]
            table.add_row(det, str(every), "up to 3x longer" if steady else "no (0.3.0)", f"{m['records']:,}", f"{m['held']:,}",
                          f"{100 * m['on'] / max(m['records'], 1):.1f}%",
                          f"{100 * m['marked'] / max(m['pairs'], 1):.1f}%", f"{fps:.0f}")
        console.print(table)


if __name__ == "__main__":
    main()
