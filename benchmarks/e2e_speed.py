"""End-to-end speed of the commands a user runs, as a user runs them: `fer-edge webcam --source CLIP
--no-display` (the loop's FPS), `fer-edge classify FOLDER --out rows.csv` (the loop's images/s) and the
cold start of `fer-edge classify ONE.jpg` (wall seconds and peak RSS of the whole process), for the default
and the fast model, Haar and YuNet, and the thread budget's choice against --threads 1 and 2. Every
configuration runs once per round and the rounds interleave, so load on the machine falls on all of them.

    python benchmarks/e2e_speed.py --detector-model YUNET.onnx [--rounds 2] [--photos 213] [--shots 14]

The clips (640x360 and 720x480) and the photo folder (256x256 performers' photos) are made from
$FER_EDGE_DATA or ../shared/data in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from clips import make_clip, performer_photos

FER_EDGE = [sys.executable, "-m", "fer_edge"]


def timed(cmd: list[str], env: dict | None = None) -> tuple[str, float, float]:
    """(stdout + stderr, wall seconds, peak RSS in MB) of a command."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{out[-2000:]}")
    return out, seconds, usage.ru_maxrss / 1024


def number_after(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    if m is None:
        raise SystemExit(f"cannot find {pattern!r} in:\n{text[-2000:]}")
    return float(m.group(1).replace(",", ""))


def webcam_fps(clip: Path, options: list[str]) -> float:
    out, _, _ = timed([*FER_EDGE, "webcam", "--source", str(clip), "--no-display", *options])
    return number_after(r"\(([\d.]+) FPS", out)


def folder_rate(folder: Path, options: list[str], tmp: Path) -> float:
    out, _, _ = timed([*FER_EDGE, "classify", str(folder), "--out", str(tmp / "rows.csv"), *options])
    return number_after(r"images/s\s*\S?\s*([\d.,]+)", out)


def cold_start(photo: Path, options: list[str], tmp: Path) -> tuple[float, float]:
    _, seconds, rss = timed([*FER_EDGE, "classify", str(photo), "--out", str(tmp / "one.csv"), "--quiet", *options])
    return seconds, rss


def photo_folder(tmp: Path, count: int, given: Path | None) -> Path:
    photos = performer_photos(given)
    step = max(1, len(photos) // count)
    folder = tmp / "photos"
    folder.mkdir()
    for i, p in enumerate(photos[::step][:count]):
        (folder / f"{i:04d}.jpg").symlink_to(p.resolve())
    return folder


def make_clips(tmp: Path, shots: int, given: Path | None) -> list[Path]:
    photos = performer_photos(given)
    clips = []
    for seed, size in ((1, (640, 360)), (2, (720, 480)), (3, (640, 360))):
        path = tmp / f"clip{seed}-{size[0]}x{size[1]}.avi"
        make_clip(path, photos, shots, seed, size)
        clips.append(path)
    return clips


def configs(yunet: Path | None) -> list[tuple[str, list[str]]]:
    out = []
    for model in ("default", "fast"):
        for det in ("haar", "yunet"):
            if det == "yunet" and yunet is None:
                continue
            d = ["--detector", "haar"] if det == "haar" else ["--detector", "yunet", "--detector-model", str(yunet)]
            for threads in (0, 1, 2):
                name = f"{model}, {det}, {'auto' if threads == 0 else threads} thread{'s' if threads != 1 else ''}"
                out.append((name, ["--model", model, *d, "--threads", str(threads)]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector-model", type=Path, default=None, help="YuNet .onnx (without it, Haar only)")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--photos", type=int, default=213)
    ap.add_argument("--shots", type=int, default=14)
    ap.add_argument("--only", default="", help="run the configurations whose name contains this")
    args = ap.parse_args()
    console = Console(width=200)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        clips, folder = make_clips(tmp, args.shots, args.data), photo_folder(tmp, args.photos, args.data)
        one = sorted(folder.iterdir())[0]
        chosen = [c for c in configs(args.detector_model) if args.only in c[0]]
        results: dict[str, dict[str, list]] = {name: {"fps": [], "ips": [], "cold": []} for name, _ in chosen}
        for r in range(args.rounds):
            for name, options in chosen:
                results[name]["fps"].append([webcam_fps(c, options) for c in clips])
                results[name]["ips"].append(folder_rate(folder, options, tmp))
                results[name]["cold"].append(cold_start(one, options, tmp))
            console.print(f"round {r + 1} of {args.rounds} done")
    table = Table(title=f"fer-edge end to end: {len(clips)} clips (webcam loop FPS), {args.photos} photos "
                        f"(classify images/s), cold start on one photo; {args.rounds} interleaved rounds, "
                        f"{os.cpu_count()} CPUs")
    for col in ("configuration", "webcam FPS per clip (best round)", "folder images/s", "cold start s", "peak RSS MB"):
        table.add_column(col, justify="left" if col == "configuration" else "right")
    for name, res in results.items():
        fps = [max(r[i] for r in res["fps"]) for i in range(len(clips))]
        table.add_row(name, " / ".join(f"{v:.0f}" for v in fps), " / ".join(f"{v:.1f}" for v in res["ips"]),
                      f"{min(s for s, _ in res['cold']):.2f}", f"{min(m for _, m in res['cold']):.0f}")
    console.print(table)


if __name__ == "__main__":
    main()
