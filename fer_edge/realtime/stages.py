"""Capture and detection ahead of the loop, each in its own thread, so a frame costs the slowest stage
instead of the sum of all of them.

    capture thread: source.read()          -> queue ->
    detect thread:  pipeline.detect(image) -> queue -> the loop: classify, smooth, draw, write, show

The stages hand frames on in order through bounded queues: a file's frames are all processed, in order,
and the records are those of the unstaged loop (each stage keeps its own state; detection passes frozen
views of the tracks on). A live source already drops stale frames in its reader thread; the queues are one
frame deep for it, so a slow loop shows the newest frame, not a backlog. OpenCV and onnxruntime release
the GIL while they work, so the threads run on separate cores.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

from fer_edge.realtime.capture import Frame, VideoSource

_END = object()


@dataclass
class Staged:
    frame: Frame
    tracks: list
    capture_s: float
    detect_s: float


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


class StagedFrames:
    def __init__(self, source: VideoSource, detect, depth: int = 4):
        depth = 1 if source.threaded else depth
        self._source = source
        self._detect = detect
        self._stop = threading.Event()
        self._captured: queue.Queue = queue.Queue(depth)
        self._detected: queue.Queue = queue.Queue(depth)
        self._threads = [
            threading.Thread(target=self._capture_loop, name="fer-edge-decode", daemon=True),
            threading.Thread(target=self._detect_loop, name="fer-edge-detect", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _put(self, q: queue.Queue, item) -> bool:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue):
        while not self._stop.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return _END

    def _capture_loop(self) -> None:
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                frame = self._source.read()
                if frame is None:
                    break
                if not self._put(self._captured, (frame, time.perf_counter() - t0)):
                    return
        except BaseException as e:  # handed to the loop, which raises it
            self._put(self._captured, _Failed(e))
            return
        self._put(self._captured, _END)

    def _detect_loop(self) -> None:
        while True:
            item = self._get(self._captured)
            if item is _END or isinstance(item, _Failed):
                self._put(self._detected, item)
                return
            frame, capture_s = item
            try:
                t0 = time.perf_counter()
                tracks = self._detect(frame.image)
                staged = Staged(frame, tracks, capture_s, time.perf_counter() - t0)
            except BaseException as e:
                self._put(self._detected, _Failed(e))
                return
            if not self._put(self._detected, staged):
                return

    def next(self) -> Staged | None:
        """The next frame with its tracks, or None at the end of the source."""
        item = self._get(self._detected)
        if isinstance(item, _Failed):
            raise item.error
        return None if item is _END else item

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5.0)
