"""Throughput of batch classification (what `fer-edge classify` does, without writing rows): images/s on
folders of full-size JPEG photos, and sampled frames/s on a video, per photo size and face count. Decoding,
detection (on a copy of at most --detect-size px), cropping and classification are all counted. The
photos and the clip are made here from the public-domain astronaut photo in tests/data.

    python benchmarks/classify_throughput.py [--model M] [--detector-model YUNET.onnx] [--photos 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
from rich.console import Console
from rich.table import Table

from fer_edge.batch import classify_files
from fer_edge.recognizer import Recognizer
from webcam_fps import make_clip, scene

PHOTO_SIZES = ((640, 480), (1920, 1080), (4032, 3024))  # VGA, full HD, a 12 MP phone photo


def timed(rec: Recognizer, paths: list[Path], every: float = 0.5) -> tuple[int, int, float]:
    items = faces = 0
    t0 = time.perf_counter()
    for result in classify_files(rec, paths, video_every=every):
        assert result.error is None, result.error
        items += 1
        faces += len(result.faces)
    return items, faces, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--detector-model")
    ap.add_argument("--photos", type=int, default=20, help="photos per size and face count")
    ap.add_argument("--video-seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--detect-size", type=int, default=1920)  # classify's default
    args = ap.parse_args()
    detectors = ["haar"] + (["yunet"] if args.detector_model else [])

    table = Table(title=f"fer-edge classify, {args.threads} threads, detect at <= {args.detect_size} px")
    for col in ("input", "faces", "detector", "items", "faces found", "items/s", "faces/s", "ms/item"):
        table.add_column(col, justify="left" if col in ("input", "detector") else "right")
    with tempfile.TemporaryDirectory() as tmp:
        sets = []
        for size in PHOTO_SIZES:
            for faces in (1, 3):
                folder = Path(tmp) / f"{size[0]}x{size[1]}_{faces}"
                folder.mkdir()
                for i in range(args.photos):
                    cv2.imwrite(str(folder / f"{i:03d}.jpg"), scene(size, faces, i / args.photos), [cv2.IMWRITE_JPEG_QUALITY, 90])
                sets.append((f"JPEG {size[0]}x{size[1]}", faces, sorted(folder.iterdir()), 0.5))
        frames = int(args.video_seconds * 30)
        clip = make_clip(Path(tmp) / "clip.avi", (1280, 720), 1, frames)
        sets += [(f"video 1280x720, every {e:g} s" if e else "video 1280x720, every frame", 1, [clip], e) for e in (0.5, 0.0)]
        for det in detectors:
            rec = Recognizer(args.model, det, args.detector_model, "cpu", args.threads, detect_size=args.detect_size)
            timed(rec, sets[0][2][:2])  # warm-up: session, first-call allocations
            for name, faces, paths, every in sets:
                items, found, seconds = timed(rec, paths, every)
                table.add_row(name, str(faces), det, str(items), str(found), f"{items / seconds:.1f}",
                              f"{found / seconds:.1f}", f"{1000 * seconds / items:.1f}")
    Console(width=200).print(table)
    print(f"video clip: {frames} frames at 30 fps ({args.video_seconds:g} s); 'every frame' at N items/s runs at N/30x real time")


if __name__ == "__main__":
    main()
