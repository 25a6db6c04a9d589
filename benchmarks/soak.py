"""A long run that watches for leaks: `fer-edge webcam` over a looping live stream (MJPEG over HTTP from a
server on 127.0.0.1 that drops the connection now and then) and `fer-edge classify --engine local` over a
large folder, side by side. Every 10 s it samples each process's resident memory, open file descriptors,
threads and rate (webcam frames/s from its records, classify rows/s), then prints each measure's start, end
and slope per hour after a warm-up. Flat means no growth beyond noise; every drop of the stream must show up
as one reconnect line on webcam's stderr.

    python benchmarks/soak.py [--minutes 30] [--drop-every 45] [--photos 150000] [--data DIR]

The stream and the folder are made from the performers' photos ($FER_EDGE_DATA or ../shared/data); the
folder holds links to them, so a large folder costs no disk.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from clips import make_clip, performer_photos, read_frames


class Stream:
    """JPEG frames of a clip, served in a loop as multipart/x-mixed-replace at the clip's rate; every
    `drop_every` seconds (on average) the connection is cut mid-stream, as a flaky camera's would be."""

    def __init__(self, frames: list[bytes], fps: float, drop_every: float, seed: int = 0):
        self.frames, self.fps, self.drop_every = frames, fps, drop_every
        self.rng = np.random.default_rng(seed)
        self.drops = 0
        self.connections = 0
        stream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                stream.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                cut_at = time.monotonic() + stream.rng.exponential(stream.drop_every)
                i = 0
                try:
                    while True:
                        jpg = stream.frames[i % len(stream.frames)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg))
                        self.wfile.write(jpg + b"\r\n")
                        i += 1
                        if time.monotonic() >= cut_at:
                            stream.drops += 1
                            self.connection.shutdown(socket.SHUT_RDWR)
                            return
                        time.sleep(1 / stream.fps)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def proc_stats(pid: int) -> dict | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "fds": fds, "threads": int(fields["Threads"])}


def last_frame(jsonl: Path) -> int:
    try:
        with jsonl.open("rb") as f:
            f.seek(max(0, jsonl.stat().st_size - 4096))
            lines = f.read().splitlines()
        for line in reversed(lines):
            try:
                return int(json.loads(line)["frame"])
            except (ValueError, KeyError):
                continue
    except OSError:
        pass
    return 0


def rows(csv_path: Path) -> int:
    try:
        with csv_path.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except OSError:
        return 0


def slope_per_hour(t: np.ndarray, v: np.ndarray) -> float:
    return float(np.polyfit(t / 3600, v, 1)[0]) if len(t) > 2 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--drop-every", type=float, default=45, help="mean seconds between dropped connections")
    ap.add_argument("--photos", type=int, default=150_000, help="links in the classify folder")
    ap.add_argument("--every", type=float, default=10, help="seconds between samples")
    ap.add_argument("--warm-up", type=float, default=60, help="seconds left out of the slopes")
    ap.add_argument("--data", type=Path, default=None)
    args = ap.parse_args()
    photos = performer_photos(args.data)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        clip = tmp / "clip.avi"
        make_clip(clip, photos, 12, 5)
        frames = [cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes() for image in read_frames(clip)]
        stream = Stream(frames, 30, args.drop_every)
        folder = tmp / "photos"
        folder.mkdir()
        for i in range(args.photos):
            (folder / f"{i:07d}.jpg").symlink_to(photos[i % len(photos)].resolve())
        seconds = 60 * args.minutes
        jsonl, out = tmp / "webcam.jsonl", tmp / "rows.csv"
        fe = [sys.executable, "-m", "fer_edge"]
        webcam = subprocess.Popen([*fe, "webcam", "--source", stream.url, "--no-display", "--jsonl", str(jsonl),
                                   "--duration", str(seconds), "--stall-timeout", "10"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        classify = subprocess.Popen([*fe, "classify", str(folder), "--out", str(out), "--engine", "local", "--quiet"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        webcam_err: list[str] = []
        threading.Thread(target=lambda: webcam_err.extend(webcam.stderr), daemon=True).start()
        samples: dict[str, list] = {"webcam": [], "classify": []}
        start = time.monotonic()
        last = {"webcam": (start, 0), "classify": (start, 0)}
        while time.monotonic() - start < seconds + 30 and webcam.poll() is None:
            time.sleep(args.every)
            now = time.monotonic()
            for name, proc, count in (("webcam", webcam, lambda: last_frame(jsonl)), ("classify", classify, lambda: rows(out))):
                s = proc_stats(proc.pid) if proc.poll() is None else None
                if s is None:
                    continue
                n = count()
                t0, n0 = last[name]
                s["rate"] = (n - n0) / (now - t0)
                last[name] = (now, n)
                samples[name].append((now - start, s))
            w = samples["webcam"][-1][1] if samples["webcam"] else {}
            c = samples["classify"][-1][1] if samples["classify"] else {}
            print(f"{now - start:6.0f}s  webcam {w.get('rss_mb', 0):.0f} MB {w.get('fds', 0)} fds {w.get('threads', 0)} thr "
                  f"{w.get('rate', 0):.0f} FPS | classify {c.get('rss_mb', 0):.0f} MB {c.get('fds', 0)} fds "
                  f"{c.get('threads', 0)} thr {c.get('rate', 0):.0f} rows/s | drops {stream.drops}", flush=True)
        for proc in (webcam, classify):
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=60)
        reconnects = sum("lost the video" in line for line in webcam_err)
        print(f"\nwebcam exit {webcam.returncode}, classify exit {classify.returncode}; the server dropped the stream "
              f"{stream.drops} times ({stream.connections} connections); webcam logged {reconnects} reconnect(s)")
        print(f"{'process':9} {'measure':8} {'start':>8} {'end':>8} {'min':>8} {'max':>8} {'slope/h':>9}  (after {args.warm_up:.0f} s)")
        for name, series in samples.items():
            kept = [(t, s) for t, s in series if t >= args.warm_up]
            if not kept:
                continue
            t = np.array([x for x, _ in kept])
            for key in ("rss_mb", "fds", "threads", "rate"):
                v = np.array([s[key] for _, s in kept], float)
                print(f"{name:9} {key:8} {v[0]:8.1f} {v[-1]:8.1f} {v.min():8.1f} {v.max():8.1f} {slope_per_hour(t, v):+9.2f}")


if __name__ == "__main__":
    main()
