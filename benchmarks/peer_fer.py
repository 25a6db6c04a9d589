"""fer-edge against the `fer` package on the same photos, end to end, interleaved in one run.

`fer` (25.10.3: Haar faces, a TFLite mini-Xception) lives in its own virtual environment, never in
fer-edge's; give its python with --fer-python. Both read each photo from disk, find the faces and classify
them; the answer for a photo is its highest-scoring face's label (none found: a miss, counted wrong).
Rounds alternate fer and fer-edge so that load on the machine falls on both; images/s counts the loop only,
after one warm-up photo, and start-up is timed apart.

    python benchmarks/peer_fer.py --fer-python /path/to/fer-venv/bin/python [--data DIR] [--photos N]
        [--rounds 2] [--model default|fast|FILE.onnx] [--detector haar|yunet] [--detector-model YUNET.onnx]

The photos default to the performers' held-out fold (taiwanese/, fold 0 of `fer-edge data faces`), the
faces no fer-edge model trained on; any class-folder set can be given with --data. With --crops, both
classify FER2013's PublicTest crops instead (fer given the whole 48x48 crop as its face box), judged against
FER2013's labels and the FER+ majority. The faces go to the other process through a temporary file that is
deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fer_edge.contract import LABELS

# Each side reads its work from stdin (photo paths, or the path of an .npy of crops; argv names which) and
# prints {"labels", "seconds" (the loop), "startup" (import, load, first item)} as one JSON line.
FER_SIDE = r"""
import json, sys, time, logging, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
logging.disable(logging.WARNING)
import cv2, numpy as np
t0 = time.time()
from fer.fer import FER
crops = sys.argv[1] == "crops"
# photos: fer's defaults (Haar, smallest face 50 px, the TFLite model); crops: the crop is the face, so no
# margin is added (fer's default adds 10 px of black border) and the whole crop is the face box
det = FER(offsets=(0, 0)) if crops else FER()
work = json.load(sys.stdin)
items = np.load(work) if crops else work
def faces_of(item):
    if crops:
        return det.detect_emotions(cv2.cvtColor(item, cv2.COLOR_GRAY2BGR), face_rectangles=[(0, 0, 48, 48)])
    return det.detect_emotions(cv2.imread(item))
faces_of(items[0])  # warm-up
start = time.time() - t0
labels = []
t1 = time.time()
for item in items:
    faces = faces_of(item)
    labels.append(max(faces[0]["emotions"].items(), key=lambda kv: kv[1])[0] if faces else None)
print(json.dumps({"labels": labels, "seconds": time.time() - t1, "startup": start}))
"""

EDGE_SIDE = r"""
import json, sys, time
import cv2, numpy as np
t0 = time.time()
from fer_edge import Recognizer
from fer_edge.contract import LABELS
mode, model, detector, detector_model = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] or None
rec = Recognizer(model, detector=detector, detector_model=detector_model)
work = json.load(sys.stdin)
if mode == "crops":  # ready crops: one batched classification
    faces = np.load(work)
    t1 = time.time()
    labels = [LABELS[i] for i in rec.classifier.predict_probs(faces).argmax(1)]
    print(json.dumps({"labels": labels, "seconds": time.time() - t1, "startup": 0.0}))
    sys.exit(0)
rec.predict(cv2.imread(work[0]))  # warm-up
start = time.time() - t0
labels = []
t1 = time.time()
for p in work:
    faces = rec.predict(cv2.imread(p))
    labels.append(max(faces, key=lambda f: f.det_score).label if faces else None)
print(json.dumps({"labels": labels, "seconds": time.time() - t1, "startup": start}))
"""


def held_out_photos(root: Path, limit: int) -> list[tuple[str, int]]:
    from fer_edge.train.faces import group_folds, groups, photo_files

    files = photo_files(root)
    names = [p.name for p, _ in files]
    fold0 = set(group_folds(groups(names, r"^(\d\d)"), 3)[0].tolist()) if (root.name == "taiwanese") else set(range(len(files)))
    chosen = [(str(p), label) for i, (p, label) in enumerate(files) if i in fold0]
    return chosen[:limit] if limit else chosen


def run_side(cmd: list[str], paths) -> dict:
    proc = subprocess.run(cmd, input=json.dumps(paths), capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'failed'}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fer-python", required=True, help="the python of a virtual environment with fer installed")
    ap.add_argument("--data", type=Path, default=None, help="a class-folder set of photos (default: ../shared/data/taiwanese)")
    ap.add_argument("--photos", type=int, default=0, help="first N photos only (0: all)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--model", default="default")
    ap.add_argument("--detector", default="haar")
    ap.add_argument("--detector-model", default="")
    ap.add_argument("--crops", action="store_true", help="FER2013 PublicTest crops instead of photos")
    args = ap.parse_args()
    data = Path(os.environ.get("FER_EDGE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if args.crops:
        crops_table(args, data)
        return
    root = args.data or data / "taiwanese"
    photos = held_out_photos(root, args.photos)
    paths, truth = [p for p, _ in photos], [LABELS[y] for _, y in photos]
    sides = {"fer": [args.fer_python, "-c", FER_SIDE, "photos"],
             f"fer-edge {args.model} ({args.detector})": [sys.executable, "-c", EDGE_SIDE, "photos", args.model,
                                                          args.detector, args.detector_model]}
    runs: dict[str, list[dict]] = {k: [] for k in sides}
    for _ in range(args.rounds):
        for name, cmd in sides.items():
            runs[name].append(run_side(cmd, paths))

    table = Table(title=f"{len(paths)} photos of {root}, end to end, {args.rounds} interleaved rounds")
    for col in ("system", "accuracy", "no face", "images/s (each round)", "start-up s", "vs fer"):
        table.add_column(col, justify="right" if col != "system" else "left")
    fer_speed = None
    for name, rs in runs.items():
        labels = rs[0]["labels"]
        acc = sum(a == b for a, b in zip(labels, truth)) / len(truth)
        speeds = [len(paths) / r["seconds"] for r in rs]
        best = max(speeds)
        fer_speed = fer_speed or best
        table.add_row(name, f"{100 * acc:.2f}%", str(sum(a is None for a in labels)),
                      " / ".join(f"{s:.1f}" for s in speeds), f"{min(r['startup'] for r in rs):.2f}", f"{best / fer_speed:.2f}x")
    Console(width=160).print(table)


def crops_table(args, data: Path) -> None:
    import tempfile

    import numpy as np

    from fer_edge.train.eval_sets import judged_set

    csv, votes = data / "fer2013.csv.gz", data / "ferplus_votes.csv.gz"
    sets = {"FER2013 labels": judged_set(csv, "val"), "FER+ majority": judged_set(csv, "val", ferplus=votes)}
    table = Table(title="FER2013 PublicTest crops: accuracy")
    table.add_column("system")
    for name in sets:
        table.add_column(name, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        results: dict[str, list[str]] = {}
        for name, s in sets.items():
            faces = Path(tmp) / f"{len(results)}.npy"
            np.save(faces, s.x)
            for system, cmd in (("fer", [args.fer_python, "-c", FER_SIDE, "crops"]),
                                (f"fer-edge {args.model}", [sys.executable, "-c", EDGE_SIDE, "crops", args.model, "haar", ""])):
                labels = run_side(cmd, str(faces))["labels"]
                acc = sum(a == LABELS[b] for a, b in zip(labels, s.y)) / len(s.y)
                results.setdefault(system, []).append(f"{100 * acc:.2f}% ({len(s.y)})")
    for system, cells in results.items():
        table.add_row(system, *cells)
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
