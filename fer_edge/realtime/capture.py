"""Video sources: cameras, device paths, files and network streams.

Live sources (cameras, streams, and files with --realtime) are read by a thread that keeps only the
freshest frame, so a slow consumer skips frames instead of falling behind. Files without --realtime
are read in order, every frame, as fast as the pipeline goes.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from fer_edge.errors import FerEdgeError, UsageError
from fer_edge.videoio import frame_rate

STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # camera, file or stream
    target: int | str
    text: str

    @property
    def live(self) -> bool:
        return self.kind in ("camera", "stream")


@dataclass
class Frame:
    image: np.ndarray
    index: int  # frame number in the source (files), or count since start (live)
    captured: float  # perf_counter() when it was grabbed, for latency
    time: float  # seconds into the video (files) or since the start (live)


def parse_source(text: str) -> SourceSpec:
    text = str(text).strip()
    if re.fullmatch(r"\d+", text):
        return SourceSpec("camera", int(text), text)
    if text.lower().startswith(STREAM_PREFIXES):
        return SourceSpec("stream", text, text)
    if text.startswith("/dev/video"):
        return SourceSpec("camera", text, text)
    path = Path(text)
    if not path.exists():
        raise UsageError(f"{text}: no such video file (give a camera index like 0, a /dev/videoN path, a file or a URL)")
    if path.is_dir():
        raise UsageError(f"{text}: is a folder; for folders of images or videos use `fer-edge classify`")
    return SourceSpec("file", str(path), text)


def _open_capture(spec: SourceSpec, width: int | None, height: int | None) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(spec.target)
    if spec.kind == "camera" and cap.isOpened():
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    return cap


def _open_error(spec: SourceSpec) -> FerEdgeError:
    if spec.kind == "camera":
        dev = spec.target if isinstance(spec.target, str) else f"/dev/video{spec.target}"
        return FerEdgeError(
            f"cannot open camera {spec.text}: check that it is connected, not in use by another program, "
            f"and that you may read {dev} (on Linux: the 'video' group); list cameras with `ls /dev/video*`"
        )
    if spec.kind == "stream":
        return FerEdgeError(f"cannot open stream {spec.text}: check the URL, the network, and the credentials")
    return FerEdgeError(f"{spec.text}: not a video OpenCV can decode (corrupt, or an unsupported format)")


class VideoSource:
    """Frames from one source. `read()` returns the next frame to process, or None at the end."""

    def __init__(
        self,
        spec: SourceSpec,
        width: int | None = None,
        height: int | None = None,
        realtime: bool = False,
        stall_timeout: float = 5.0,
        retries: int = 5,
        notify: Callable[[str], None] = lambda msg: None,
    ):
        self.spec = spec
        self.width, self.height = width, height
        self.stall_timeout = stall_timeout
        self.retries = retries
        self.notify = notify
        self.cap = _open_capture(spec, width, height)
        if not self.cap.isOpened():
            raise _open_error(spec)
        self.fps = frame_rate(self.cap)
        self.frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if spec.kind == "file" else 0
        self.threaded = spec.live or realtime
        self.error: str | None = None  # why a live source ended, if it did
        self._started = time.perf_counter()
        self._index = 0
        if spec.kind == "file":
            ok, first = self.cap.read()  # an unreadable file opens, then yields nothing: say so now
            if not ok:
                self.cap.release()
                raise _open_error(spec)
            self._pending: np.ndarray | None = first
        if self.threaded:
            self._latest: Frame | None = None
            self._seq = 0
            self._taken = 0
            self._done = False
            self._cond = threading.Condition()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._grab_loop, name="fer-edge-capture", daemon=True)
            self._thread.start()

    # ---- synchronous path (files, every frame)

    def _read_direct(self) -> Frame | None:
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            ok, image = self.cap.read()
            if not ok:
                return None
        frame = Frame(image, self._index, time.perf_counter(), self._index / self.fps)
        self._index += 1
        return frame

    # ---- threaded path (live, or files paced with --realtime)

    def _grab_loop(self) -> None:
        failures = 0
        next_due = time.perf_counter()
        while not self._stop.is_set():
            if self.spec.kind == "file":
                frame = self._read_direct()
                if frame is None:
                    break
                next_due += 1.0 / self.fps
                time.sleep(max(0.0, next_due - time.perf_counter()))
            else:
                ok, image = self.cap.read()
                if not ok or image is None:
                    failures += 1
                    if not self._reconnect(failures):
                        break
                    continue
                failures = 0
                frame = Frame(image, self._index, time.perf_counter(), time.perf_counter() - self._started)
                self._index += 1
            with self._cond:
                self._latest = frame
                self._seq += 1
                self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def _reconnect(self, attempt: int) -> bool:
        if attempt > self.retries:
            self.error = f"{self.spec.text}: no frames after {self.retries} reconnection attempts; giving up"
            self.notify(self.error)
            return False
        delay = min(0.5 * 2 ** (attempt - 1), 8.0)
        self.notify(f"{self.spec.text}: lost the video; reconnecting in {delay:.1f}s (attempt {attempt}/{self.retries})")
        if self._stop.wait(delay):
            return False
        self.cap.release()
        self.cap = _open_capture(self.spec, self.width, self.height)
        return True

    def _read_latest(self) -> Frame | None:
        deadline = time.perf_counter() + self.stall_timeout
        with self._cond:
            while self._seq == self._taken and not self._done:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    self.error = f"{self.spec.text}: the stream stalled (no frame for {self.stall_timeout:g}s)"
                    self.notify(self.error)
                    return None
                self._cond.wait(remaining)
            if self._seq == self._taken:
                return None
            self._taken = self._seq
            return self._latest

    def read(self) -> Frame | None:
        return self._read_latest() if self.threaded else self._read_direct()

    def close(self) -> None:
        if self.threaded:
            self._stop.set()
            self._thread.join(timeout=2.0)
        self.cap.release()
