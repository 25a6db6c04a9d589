"""Throw generated damage at every decoder path: valid JPEG, PNG, WebP, TIFF, GIF, HEIC, MP4, AVI and MKV
files are mutated (bit flips, truncation, byte runs, header fields set to extremes, chunks duplicated and
reordered) and `fer-edge classify` runs over them in batches, as a user would. Every file must end in a row
(a result or an error row), within the time limit, with exit 0, no traceback, nothing on stderr but
fer-edge's own lines, and bounded memory. `--webcam` also runs `fer-edge webcam --source` over each
mutated video.

    python benchmarks/fuzz.py [--files 3000] [--seed 0] [--batch 300] [--minutes 0] [--webcam] [--keep DIR]

Seeded: the same seed makes the same files. A failing batch is kept (--keep) with its stderr, to replay.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

ASTRONAUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "astronaut.jpg"
# fer-edge's own stderr lines start with one of these (tables and blank lines aside)
OWN_LINES = re.compile(r"^(model |skipped |incomplete |note |not annotated |resuming |report written|fer-edge |to continue|"
                       r"source |mean ms|no faces|error: |stopped by |interrupted|incomplete|[ \u2500-\u257f]|$)")


def seeds(folder: Path) -> list[Path]:
    """Valid files of every format the runtime reads, small enough to mutate by the thousand."""
    face = cv2.resize(cv2.imread(str(ASTRONAUT)), (160, 160))
    out = []
    for ext in (".jpg", ".png", ".webp", ".tiff"):
        path = folder / f"seed{ext}"
        cv2.imwrite(str(path), face)
        out.append(path)
    try:
        from PIL import Image

        Image.fromarray(face[:, :, ::-1]).save(folder / "seed.gif")
        out.append(folder / "seed.gif")
        try:
            from pillow_heif import register_heif_opener

            register_heif_opener()
            Image.fromarray(face[:, :, ::-1]).save(folder / "seed.heic")
            out.append(folder / "seed.heic")
        except Exception:  # no HEIC encoder here: that path goes unfuzzed, and the table says so
            pass
    except ImportError:
        pass
    for ext, fourcc in ((".avi", "MJPG"), (".mp4", "mp4v"), (".mkv", "MJPG")):
        path = folder / f"seed{ext}"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (160, 160))
        for i in range(12):
            writer.write(np.roll(face, 3 * i, axis=1))
        writer.release()
        if path.stat().st_size > 0:
            out.append(path)
    return out


def chunks(data: bytes, ext: str) -> list[tuple[int, int]]:
    """(start, end) of the format's chunks where it has them (PNG, RIFF: WebP and AVI), else equal slices."""
    spans = []
    if ext == ".png" and data[:8] == b"\x89PNG\r\n\x1a\n":
        at = 8
        while at + 12 <= len(data):
            (n,) = struct.unpack(">I", data[at : at + 4])
            end = at + 12 + n
            if end > len(data):
                break
            spans.append((at, end))
            at = end
    elif data[:4] == b"RIFF":
        at = 12
        while at + 8 <= len(data):
            (n,) = struct.unpack("<I", data[at + 4 : at + 8])
            end = at + 8 + n + (n & 1)
            if end > len(data) or n == 0:
                break
            spans.append((at, end))
            at = end
    if len(spans) < 2:
        step = max(16, len(data) // 12)
        spans = [(i, min(len(data), i + step)) for i in range(16, len(data), step)]
    return spans


def mutate(data: bytes, ext: str, rng: np.random.Generator) -> tuple[bytes, str]:
    b = bytearray(data)
    kind = rng.choice(["flip", "truncate", "run", "extreme", "duplicate", "reorder", "mixed"])
    if kind in ("flip", "mixed"):
        for i in rng.integers(0, len(b), int(rng.integers(1, 40))):
            b[i] ^= 1 << int(rng.integers(0, 8))
    if kind in ("truncate", "mixed"):
        b = b[: int(rng.integers(0, len(b)))]
    if kind == "run" and b:
        at, n = int(rng.integers(0, len(b))), int(rng.integers(1, 4096))
        b[at:at] = bytes([int(rng.choice([0, 255, int(rng.integers(0, 256))]))]) * n
    if kind == "extreme" and len(b) > 64:
        # width/height/count/length fields live in the first few hundred bytes of every format here
        for _ in range(int(rng.integers(1, 6))):
            at = int(rng.integers(0, min(len(b) - 4, 512)))
            b[at : at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x00\x01\x00\x00"])
    if kind in ("duplicate", "reorder"):
        spans = chunks(bytes(b), ext)
        i, j = (int(x) for x in rng.integers(0, len(spans), 2))
        if kind == "duplicate":
            b[spans[j][1] : spans[j][1]] = bytes(b[slice(*spans[i])]) * int(rng.integers(1, 4))
        elif i != j:
            (s0, e0), (s1, e1) = sorted([spans[i], spans[j]])
            first, second = bytes(b[s0:e0]), bytes(b[s1:e1])
            b = b[:s0] + second + b[e0:s1] + first + b[e1:]
    return bytes(b), str(kind)


@dataclass
class Tally:
    files: int = 0
    rows: int = 0
    error_rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    peak_mb: float = 0.0
    by_format: Counter = field(default_factory=Counter)
    errors_by_format: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def run_batch(folder: Path, out: Path, limit_s: float, extra: list[str]) -> tuple[int, str, float, float]:
    """(exit code, stderr, seconds, peak RSS in MB) of one classify run; -9 when it ran over `limit_s`."""
    cmd = [sys.executable, "-m", "fer_edge", "classify", str(folder), "--out", str(out), "--device", "cpu", *extra]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err: list[bytes] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    reader.start()
    code, usage = None, None
    while code is None:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            code = os.waitstatus_to_exitcode(status)
        elif time.perf_counter() - t > limit_s:
            proc.kill()
            _, _, usage = os.wait4(proc.pid, 0)
            code = -9
        else:
            time.sleep(0.05)
    proc.returncode = code
    reader.join(timeout=10)
    return code, b"".join(err).decode("utf-8", "replace"), time.perf_counter() - t, usage.ru_maxrss / 1024


def check_batch(folder: Path, out: Path, code: int, err: str, tally: Tally, keep: Path | None, label: str) -> None:
    names = sorted(p.name for p in folder.iterdir())
    problems = []
    if code != 0:
        problems.append(f"exit {code}" + (" (killed: over the time limit)" if code == -9 else ""))
    if "Traceback" in err:
        problems.append("a traceback on stderr")
    strays = [line for line in err.splitlines() if not OWN_LINES.match(line)]
    if strays:
        problems.append(f"{len(strays)} stderr line(s) not fer-edge's, e.g. {strays[0][:120]!r}")
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline=""))) if out.exists() else []
    seen = {Path(r["path"]).name for r in rows}
    missing = [n for n in names if n not in seen]
    if missing:
        problems.append(f"{len(missing)} file(s) without a row, e.g. {missing[0]}")
    tally.rows += len(rows)
    errored = {Path(r["path"]).name for r in rows if r["error"]}
    tally.error_rows += len(errored)
    for n in names:
        ext = Path(n).suffix
        tally.by_format[ext] += 1
        tally.errors_by_format[ext] += n in errored
    if problems:
        tally.failures.append(f"{label}: " + "; ".join(problems))
        if keep is not None:
            dest = keep / label
            shutil.copytree(folder, dest / "files")
            (dest / "stderr.txt").write_text(err, encoding="utf-8")


def webcam_check(video: Path, limit_s: float) -> str | None:
    cmd = [sys.executable, "-m", "fer_edge", "webcam", "--source", str(video), "--no-display", "--device", "cpu"]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=limit_s)
    except subprocess.TimeoutExpired:
        return f"{video.name}: webcam over the time limit"
    err = done.stderr.decode("utf-8", "replace")
    if "Traceback" in err:
        return f"{video.name}: webcam traceback"
    if done.returncode not in (0, 1):
        return f"{video.name}: webcam exit {done.returncode}"
    strays = [line for line in err.splitlines() if not OWN_LINES.match(line)]
    return f"{video.name}: webcam stderr {strays[0][:100]!r}" if strays else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=300, help="files per classify run")
    ap.add_argument("--per-file", type=float, default=2.0, help="seconds a file may take on average in a batch")
    ap.add_argument("--minutes", type=float, default=0, help="stop after this long (0: when --files are done)")
    ap.add_argument("--webcam", action="store_true", help="also run webcam --source over every mutated video")
    ap.add_argument("--keep", type=Path, default=None, help="copy failing batches here")
    ap.add_argument("--max-mb", type=float, default=1500, help="peak RSS a classify run may reach")
    ap.add_argument("--model", default=None, help="a model for classify (default: the shipped default)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    tally = Tally()
    kinds: Counter = Counter()
    extra = ["--model", args.model] if args.model else []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "seeds").mkdir()
        originals = [(p.suffix, p.read_bytes()) for p in seeds(tmp / "seeds")]
        made = 0
        while made < args.files and not (args.minutes and time.perf_counter() - started > 60 * args.minutes):
            folder = tmp / f"batch{tally.batches}"
            folder.mkdir()
            n = min(args.batch, args.files - made)
            for i in range(n):
                ext, data = originals[int(rng.integers(len(originals)))]
                damaged, kind = mutate(data, ext, rng)
                kinds[kind] += 1
                (folder / f"{made + i:06d}-{kind}{ext}").write_bytes(damaged)
            out = tmp / f"batch{tally.batches}.csv"
            code, err, seconds, peak_mb = run_batch(folder, out, 30 + args.per_file * n, extra)
            tally.seconds += seconds
            tally.peak_mb = max(tally.peak_mb, peak_mb)
            if peak_mb > args.max_mb:
                tally.failures.append(f"batch{tally.batches}-seed{args.seed}: peak RSS {peak_mb:.0f} MB, over --max-mb")
                if args.keep is not None:
                    shutil.copytree(folder, args.keep / f"batch{tally.batches}-seed{args.seed}-memory")
            check_batch(folder, out, code, err, tally, args.keep, f"batch{tally.batches}-seed{args.seed}")
            if args.webcam:
                for video in sorted(p for p in folder.iterdir() if p.suffix in (".avi", ".mp4", ".mkv")):
                    problem = webcam_check(video, 60)
                    if problem:
                        tally.failures.append(problem)
            tally.files += n
            made += n
            tally.batches += 1
            shutil.rmtree(folder)
            print(f"{tally.files:,} files, {len(tally.failures)} failure(s), {time.perf_counter() - started:.0f} s", flush=True)
    print(f"\nseed {args.seed}: {tally.files:,} mutated files in {tally.batches} classify runs, "
          f"{tally.seconds / 60:.1f} min, peak RSS {tally.peak_mb:.0f} MB; mutations {dict(kinds)}")
    print("format  files  error rows")
    for ext in sorted(tally.by_format):
        print(f"{ext:6} {tally.by_format[ext]:6,} {tally.errors_by_format[ext]:6,}")
    print(f"failures: {len(tally.failures)}")
    for f in tally.failures[:50]:
        print("  " + f)
    sys.exit(1 if tally.failures else 0)


if __name__ == "__main__":
    main()
