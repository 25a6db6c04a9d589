"""Local engine against the Ray engine (1 and 2 workers) on this machine: images/s on a folder of photos and
sampled frames/s on a video, each timed end to end as `fer-edge classify` runs it (Ray's start-up included,
and shown apart), the photos and clip made here from the public-domain test photo.

    python benchmarks/scale_out.py [--photos 120] [--video-seconds 60] [--address HOST:PORT] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webcam_fps import make_clip, scene  # noqa: E402

from fer_edge.batch import classify_files  # noqa: E402
from fer_edge.cluster.ray_engine import RayClassifier  # noqa: E402
from fer_edge.recognizer import Recognizer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=120)
    ap.add_argument("--video-seconds", type=float, default=60.0)
    ap.add_argument("--address", help="a running cluster (default: a local Ray started here)")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--threads", type=int, default=2, help="onnxruntime threads of the local engine")
    args = ap.parse_args()

    kwargs = dict(model=None, detector="haar", device="cpu", detect_size=1920)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for i in range(args.photos):
            cv2.imwrite(str(folder / f"{i:05d}.jpg"), scene((1280, 720), 1 + i % 3, i / args.photos))
        photos = sorted(folder.iterdir())
        clip = make_clip(Path(tmp) / "clip.avi", (1280, 720), 1, int(30 * args.video_seconds))
        sets = [("photos 1280x720, 1-3 faces", photos, "images/s"), (f"video 720p {args.video_seconds:g} s, every 0.5 s", [clip], "frames/s")]

        table = Table(title="local engine against Ray Data on this machine (2 cores), Haar at 1920 px, default model")
        for col in ("input", "engine", "workers", "items", "seconds", "start-up s", "items/s", "vs local"):
            table.add_column(col, justify="left" if col in ("input", "engine") else "right")
        for name, paths, unit in sets:
            rec = Recognizer(**kwargs, threads=args.threads)
            t0 = time.perf_counter()
            n = sum(1 for _ in classify_files(rec, paths, video_every=0.5))
            local = n / (time.perf_counter() - t0)
            table.add_row(name, "local", "-", str(n), f"{n / local:.1f}", "-", f"{local:.1f} {unit}", "1.00x")
            for w in (int(x) for x in args.workers.split(",")):
                engine = RayClassifier(kwargs, address=args.address, workers=w, batch_size=4, chunk_samples=20)
                t0 = time.perf_counter()
                engine._connect()
                startup = time.perf_counter() - t0
                n = sum(1 for _ in engine.classify(paths, video_every=0.5))
                total = time.perf_counter() - t0
                table.add_row(name, "ray", str(w), str(n), f"{total:.1f}", f"{startup:.1f}", f"{n / total:.1f} {unit}",
                              f"{n / total / local:.2f}x")
                engine.close()
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
