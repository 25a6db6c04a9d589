"""`fer-edge serve` under load: N concurrent clients for a fixed time, a share of bad requests mixed in.

Starts the real server on 127.0.0.1 (a free port), warms it up, then for each client count (1, 4, 16, 64 by
default) runs that many threads sending POST /v1/classify for --seconds: a 640x480 JPEG with one face, or
(a --bad share) a body that is not an image. Prints requests/s, p50/p99 latency of good requests, answers by
status, wrong answers (a good request not answered 200 with one happy face or 503; a bad one not 422 or
503), and the server's RSS
after warm-up and after each row (repeat a client count, e.g. --clients 64,64,64, to tell growth from a
plateau). Also times the in-process `Recognizer.predict` on the same photo, the floor a
request's latency is compared with.

    python benchmarks/serve_load.py [--clients 1,4,16,64] [--seconds 20] [--bad 0.1] [--workers 1] [--queue 32]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

ASTRONAUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "astronaut.jpg"


def photo() -> bytes:
    """640x480, one face a third of the height, the astronaut's."""
    canvas = np.full((480, 640, 3), 100, np.uint8)
    face = cv2.imread(str(ASTRONAUT))[10:110, 65:165]
    canvas[150:330, 230:410] = cv2.resize(face, (180, 180))
    return cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(workers: int, queue: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "fer_edge", "serve", "--port", "0", "--device", "cpu",
                             "--workers", str(workers), "--queue", str(queue)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    while True:
        line = proc.stderr.readline()
        if not line:
            raise SystemExit(f"the server did not start (exit {proc.poll()})")
        m = re.search(r"serving on (http://127\.0\.0\.1:\d+)/", line)
        if m:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, m.group(1)


def post(url: str, body: bytes) -> tuple[int, bytes]:
    req = urllib.request.Request(url + "/v1/classify", data=body, headers={"Content-Type": "image/jpeg"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        return 0, str(e).encode()


def load(url: str, clients: int, seconds: float, bad_share: float, good: bytes) -> dict:
    stop = time.time() + seconds
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: Counter = Counter()
    wrong = 0

    def client(k: int) -> None:
        nonlocal wrong
        rng = np.random.default_rng(k)
        while time.time() < stop:
            bad = rng.random() < bad_share
            t0 = time.perf_counter()
            status, body = post(url, b"not an image at all" if bad else good)
            dt = time.perf_counter() - t0
            with lock:
                statuses[("bad " if bad else "good ") + str(status)] += 1
                if not bad and status == 200:
                    latencies.append(dt)
                    if b'"label":"happy"' not in body or body.count(b'"face":') != 1:
                        wrong += 1
                elif not bad and status != 503:
                    wrong += 1
                elif bad and status not in (422, 503):  # a full queue refuses before it decodes
                    wrong += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    lat = sorted(latencies)
    return {"requests_s": sum(statuses.values()) / elapsed, "good_s": len(lat) / elapsed,
            "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan"),
            "statuses": dict(statuses), "wrong": wrong}


def in_process_ms(good: bytes, repeats: int = 50) -> float:
    from fer_edge import Recognizer
    from fer_edge.imageio import decode_image

    rec = Recognizer(device="cpu", detect_size=1920)
    rec.predict(decode_image(good))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        rec.predict(decode_image(good))
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="1,4,16,64")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--bad", type=float, default=0.1, help="share of requests that are not an image")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--queue", type=int, default=32)
    args = ap.parse_args()
    good = photo()
    floor = in_process_ms(good)
    proc, url = start_server(args.workers, args.queue)
    try:
        for _ in range(20):
            post(url, good)
        warm = rss_mb(proc.pid)
        rows = []
        for n in (int(c) for c in args.clients.split(",")):
            rows.append((n, load(url, n, args.seconds, args.bad, good)))
            rows[-1][1]["rss_mb"] = rss_mb(proc.pid)
        end = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=20)

    table = Table(title=f"fer-edge serve, {args.workers} worker(s), queue {args.queue}: {args.seconds:.0f} s per row, "
                        f"{100 * args.bad:.0f}% bad requests; in-process Recognizer.predict {floor:.1f} ms")
    for col in ("clients", "requests/s", "good/s", "p50 ms", "p99 ms", "p50 / in-process", "answers", "wrong", "RSS MB after"):
        table.add_column(col, justify="left" if col == "answers" else "right")
    for n, r in rows:
        table.add_row(str(n), f"{r['requests_s']:.1f}", f"{r['good_s']:.1f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
                      f"{r['p50_ms'] / floor:.2f}x", ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items())),
                      str(r["wrong"]), f"{r['rss_mb']:.0f}")
    console = Console(width=200)
    console.print(table)
    console.print(f"server RSS: {warm:.0f} MB after warm-up, {end:.0f} MB at the end ({end / warm:.2f}x)")


if __name__ == "__main__":
    main()
