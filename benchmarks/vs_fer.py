"""fer-edge against the `fer` package (25.10.3, TFLite), side by side, interleaved in one run: the webcam
loop's FPS on real-face clips, folder images/s on 256x256 photos, and the cold start (wall seconds and peak
RSS) of classifying one photo. fer-edge runs as a user runs it: the CLI with its defaults (Haar with nothing
stored, or YuNet when --detector-model is given). fer runs in its own virtual environment, never in
fer-edge's:

    python3 -m venv V && V/bin/pip install tensorflow-cpu==2.21.0 opencv-contrib-python==4.14.0.94 h5py \\
        pandas tqdm requests Pillow "setuptools<81" && V/bin/pip install --no-deps fer==25.10.3
    python benchmarks/vs_fer.py --fer-python V/bin/python [--detector-model YUNET.onnx] [--rounds 2]

fer's loop: read the frame (cv2.VideoCapture) or the photo (cv2.imread), then FER().detect_emotions on it,
its defaults (Haar on the whole frame, smallest face 50 px). Clips and photos as in e2e_speed.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from e2e_speed import cold_start, folder_rate, make_clips, photo_folder, timed, webcam_fps

FER_SIDE = r"""
import json, os, sys, time, logging
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
logging.disable(logging.WARNING)
import cv2
from fer.fer import FER
det = FER()
mode, target = sys.argv[1], sys.argv[2]
if mode == "video":
    cap = cv2.VideoCapture(target)
    n, t = 0, time.perf_counter()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        det.detect_emotions(frame)
        n += 1
    print(json.dumps({"rate": n / (time.perf_counter() - t)}))
elif mode == "folder":
    paths = sorted(os.path.join(target, p) for p in os.listdir(target))
    det.detect_emotions(cv2.imread(paths[0]))  # warm-up, as fer-edge's loop figure excludes its start
    t = time.perf_counter()
    for p in paths:
        det.detect_emotions(cv2.imread(p))
    print(json.dumps({"rate": len(paths) / (time.perf_counter() - t)}))
else:  # one photo, from a cold process
    faces = det.detect_emotions(cv2.imread(target))
    print(json.dumps({"faces": len(faces)}))
"""


def fer_rate(python: str, mode: str, target: Path) -> float:
    out, _, _ = timed([python, "-c", FER_SIDE, mode, str(target)])
    return json.loads(out.strip().splitlines()[-1])["rate"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fer-python", required=True)
    ap.add_argument("--detector-model", type=Path, default=None, help="also run fer-edge with YuNet stored")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--photos", type=int, default=213)
    ap.add_argument("--shots", type=int, default=14)
    args = ap.parse_args()
    sides = {"fer": None, "fer-edge (Haar)": ["--detector", "haar"]}
    if args.detector_model:
        sides["fer-edge (YuNet)"] = ["--detector", "yunet", "--detector-model", str(args.detector_model)]
    console = Console(width=200)
    res = {name: {"fps": [], "ips": [], "cold": []} for name in sides}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        clips, folder = make_clips(tmp, args.shots, args.data), photo_folder(tmp, args.photos, args.data)
        one = sorted(folder.iterdir())[0]
        for r in range(args.rounds):
            for name, options in sides.items():
                if options is None:
                    res[name]["fps"].append([fer_rate(args.fer_python, "video", c) for c in clips])
                    res[name]["ips"].append(fer_rate(args.fer_python, "folder", folder))
                    res[name]["cold"].append(timed([args.fer_python, "-c", FER_SIDE, "one", str(one)])[1:])
                else:
                    res[name]["fps"].append([webcam_fps(c, options) for c in clips])
                    res[name]["ips"].append(folder_rate(folder, options, tmp))
                    res[name]["cold"].append(cold_start(one, options, tmp))
            console.print(f"round {r + 1} of {args.rounds} done")
    table = Table(title=f"fer-edge against fer 25.10.3: {len(clips)} clips, {args.photos} photos, {args.rounds} "
                        f"interleaved rounds, {os.cpu_count()} CPUs; x: against fer in the same round")
    for col in ("system", "webcam FPS per clip", "x fer", "folder images/s", "x fer", "cold start s", "peak RSS MB"):
        table.add_column(col, justify="left" if col == "system" else "right")
    fer = res["fer"]
    for name, r in res.items():
        fps_x = [v / f for rf, rr in zip(fer["fps"], r["fps"]) for v, f in zip(rr, rf)]
        ips_x = [v / f for v, f in zip(r["ips"], fer["ips"])]
        table.add_row(name, " / ".join(f"{max(x[i] for x in r['fps']):.0f}" for i in range(len(clips))),
                      f"{min(fps_x):.2f}-{max(fps_x):.2f}x", " / ".join(f"{v:.0f}" for v in r["ips"]),
                      f"{min(ips_x):.2f}-{max(ips_x):.2f}x", f"{min(s for s, _ in r['cold']):.2f}",
                      f"{min(m for _, m in r['cold']):.0f}")
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
