"""Folder mode: face recall against images per second, per detector, --detect-size and --min-face.

Synthetic photos (made here from the public-domain astronaut photo): 4032x3024 (12 MP, a phone photo) and
1920x1080, each with faces of one height from 30 to 600 px, on a textured background, written as JPEG and
classified the way `fer-edge classify` does it (decode, detect on a copy of at most S px, crop, classify).
Recall: the share of pasted faces that a returned box marks (centre inside, height 0.3-1.5x).

    python benchmarks/photo_recall.py [--detector-model YUNET.onnx] [--photos 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from small_faces import on_face  # noqa: E402 (benchmarks/ is on the path when a script in it runs)

from fer_edge.batch import classify_files
from fer_edge.recognizer import Recognizer

ASTRONAUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "astronaut.jpg"
HEIGHTS = (30, 45, 70, 110, 200, 350, 600)
FORMATS = ((4032, 3024), (1920, 1080))


def make_photos(folder: Path, per_size: int) -> dict[str, list[tuple[int, int, int, int]]]:
    """Photos with several faces of one height each; returns the true boxes per file name."""
    patch = cv2.imread(str(ASTRONAUT))[10:110, 65:165]
    rng = np.random.default_rng(0)
    truth = {}
    for w, h in FORMATS:
        for face in HEIGHTS:
            if face * 2 > h:
                continue
            for k in range(per_size):
                # a soft background (a room, a sky, a wall) with sensor noise
                img = cv2.resize(rng.integers(60, 200, (h // 256 + 2, w // 256 + 2, 3), dtype=np.uint8), (w, h),
                                 interpolation=cv2.INTER_CUBIC)
                img = cv2.add(img, rng.integers(0, 12, img.shape, dtype=np.uint8))
                boxes = []
                n = max(1, min(6, (w // (face * 2)) * (h // (face * 2)) // 2))
                cols = max(1, w // (face * 2))
                for i in range(n):
                    x = (i % cols) * face * 2 + int(rng.integers(0, face // 2 + 1))
                    y = (i // cols) * face * 2 + int(rng.integers(0, face // 2 + 1))
                    if x + face > w or y + face > h:
                        continue
                    img[y : y + face, x : x + face] = cv2.resize(patch, (face, face), interpolation=cv2.INTER_AREA)
                    boxes.append((x, y, face, face))
                name = f"{w}x{h}_{face}px_{k}.jpg"
                cv2.imwrite(str(folder / name), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
                truth[name] = boxes
    return truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector-model", help="also measure YuNet with this model file")
    ap.add_argument("--photos", type=int, default=2, help="photos per format and face height")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--settings", default="haar:960:0,haar:1280:0,haar:1920:0,haar:1920:90,haar:2560:0,haar:2560:90",
                    help="detector:detect-size:min-face, comma-separated (size 0: full size; min-face in photo px, 0: the detector's least)")
    args = ap.parse_args()
    settings = [s.split(":") for s in args.settings.split(",")]
    if args.detector_model and "yunet" not in args.settings:
        settings += [["yunet", "960", "0"], ["yunet", "1280", "0"], ["yunet", "1920", "0"], ["yunet", "2560", "0"]]

    table = Table(title="folder mode: recall of faces 30-600 px tall in 12 MP and 1080p JPEGs, and images/s "
                        f"(decode + detect + classify, {args.threads} threads)")
    for col in ("detector", "detect size", "min face", "recall", *(f"{h} px" for h in HEIGHTS), "images/s"):
        table.add_column(col, justify="left" if col == "detector" else "right")
    with tempfile.TemporaryDirectory() as tmp:
        truth = make_photos(Path(tmp), args.photos)
        files = sorted(Path(tmp).iterdir())
        for name, size, min_face in settings:
            rec = Recognizer(None, name, args.detector_model if name == "yunet" else None, "cpu", args.threads,
                             detect_size=int(size), min_face=int(min_face))
            found = {h: [0, 0] for h in HEIGHTS}
            t0 = time.perf_counter()
            for result in classify_files(rec, files):
                boxes = truth[result.path.name]
                h = boxes[0][3]
                found[h][1] += len(boxes)
                found[h][0] += sum(any(on_face(f.box, b) for f in result.faces) for b in boxes)
            rate = len(files) / (time.perf_counter() - t0)
            total = sum(v[0] for v in found.values()) / max(sum(v[1] for v in found.values()), 1)
            table.add_row(name, size if size != "0" else "full", min_face if min_face != "0" else "-", f"{100 * total:.0f}%",
                          *(f"{100 * found[h][0] / found[h][1]:.0f}%" if found[h][1] else "-" for h in HEIGHTS), f"{rate:.1f}")
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
