"""Video files for batch classification: which files are videos, sampled frames out, annotated video in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from fer_edge.errors import FerEdgeError, UsageError

# FFmpeg prints its own lines ("moov atom not found") over the progress bar; our errors already say what
# is wrong with a file. Set OPENCV_FFMPEG_LOGLEVEL yourself to see them.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"})
ASSUMED_FPS = 30.0  # when a file does not say, or says something absurd


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def frame_rate(cap: cv2.VideoCapture) -> float:
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    return fps if 1 <= fps <= 240 else ASSUMED_FPS


@dataclass(frozen=True)
class VideoFrame:
    image: np.ndarray
    index: int  # frame number in the file
    time: float  # seconds into the file: index / frame rate


def _open(path: Path) -> cv2.VideoCapture:
    if not path.exists():
        raise FerEdgeError(f"{path}: no such file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FerEdgeError(f"{path}: not a video OpenCV can decode (corrupt, or an unsupported format)")
    return cap


def probe(path: Path) -> tuple[float, int]:
    """(frame rate, frame count) from the header; (ASSUMED_FPS, 0) for a file that does not open or say."""
    try:
        cap = _open(path)
    except FerEdgeError:
        return ASSUMED_FPS, 0
    try:
        return frame_rate(cap), max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
    finally:
        cap.release()


def samples_in(path: Path, every: float) -> int:
    """How many frames `sample_frames(path, every)` should yield, by the header: for progress bars."""
    fps, count = probe(path)
    return count if every <= 0 or count == 0 else int((count - 1) / fps / every) + 1


def stops_short(frames: int, announced: int) -> bool:
    """A video that ends well before the frame count its header announces is truncated or corrupt. Some
    containers only estimate the count, so only a clear shortfall (5%, at least 5 frames) counts."""
    return announced > 0 and frames < announced - max(5, 0.05 * announced)


def sampling_plan(fps: float, count: int, every: float) -> list[tuple[int, float]]:
    """The frames `sample_frames` will yield, from the header alone: (index, the `due` time before it).

    The same arithmetic as the scan itself, so a scan resumed at one of these frames with its `due`
    picks exactly the frames the whole scan would (how the Ray engine splits a long video)."""
    plan, due = [], 0.0
    for index in range(count):
        t = index / fps
        if t + 1e-9 < due:
            continue
        plan.append((index, due))
        while due <= t + 1e-9 and every > 0:
            due += every
    return plan


class FrameScan:
    """Iterate the sampled frames of `path` from frame `start` (its `due` from `sampling_plan`) up to
    `stop` (exclusive; None: the end). Afterwards `last` is the last frame index read, `yielded` how many
    were sampled, and `hit_end` whether the file ended before `stop`."""

    def __init__(self, path: Path, every: float, start: int = 0, stop: int | None = None, due: float = 0.0):
        self.path, self.every, self.start, self.stop, self.due = path, every, start, stop, due
        self.last, self.yielded, self.hit_end, self.announced = start - 1, 0, False, 0

    def __iter__(self) -> Iterator[VideoFrame]:
        cap = _open(self.path)
        try:
            fps, self.announced = frame_rate(cap), int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            if self.start > 0:
                cap.set(cv2.CAP_PROP_POS_FRAMES, self.start)
                if int(cap.get(cv2.CAP_PROP_POS_FRAMES)) != self.start:  # inexact seeking: read up to it
                    cap.release()
                    cap = _open(self.path)
                    for _ in range(self.start):
                        if not cap.grab():
                            break
            index, due = self.start - 1, self.due
            while self.stop is None or index + 1 < self.stop:
                if not cap.grab():
                    self.hit_end = True
                    break
                index += 1
                self.last = index
                t = index / fps
                if t + 1e-9 < due:
                    continue
                ok, image = cap.retrieve()
                if not ok or image is None:
                    self.hit_end = True
                    break
                self.yielded += 1
                while due <= t + 1e-9 and self.every > 0:
                    due += self.every
                yield VideoFrame(image, index, t)
        finally:
            cap.release()


def end_of_scan_error(path: Path, yielded: int, last: int, announced: int) -> str | None:
    """What a whole scan that ended after `last` says: nothing, no frame at all, or a truncation."""
    if yielded == 0:
        return f"{path}: not a video OpenCV can decode (no frame could be read)"
    if stops_short(last + 1, announced):
        return f"{path}: the video stops at frame {last + 1} of the {announced} its header announces (truncated or corrupt)"
    return None


def sample_frames(path: Path, every: float) -> Iterator[VideoFrame]:
    """Yield the first frame at or after each multiple of `every` seconds (every <= 0: every frame).

    Skipped frames are grabbed but not converted, which is most of the saving a seek would give and
    stays exact on files whose seeking is not. Raises FerEdgeError if the file yields no frame at all, or,
    after the frames it could read, if it stops well short of the frame count its header announces
    (headers estimate the count in some containers, so only a clear shortfall counts as truncation).
    """
    scan = FrameScan(path, every)
    yield from scan
    error = end_of_scan_error(path, scan.yielded, scan.last, scan.announced)
    if error:
        raise FerEdgeError(error)


class VideoSink:
    """Writes frames to a video file, opened on the first frame (its size is known then)."""

    SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv")

    @classmethod
    def check(cls, path: Path, what: str = "") -> None:
        """A one-line error for a video name OpenCV cannot write: before the run, not at its first frame."""
        if Path(path).suffix.lower() not in cls.SUFFIXES:
            raise UsageError(f"{what}{path}: write the video as {', '.join(cls.SUFFIXES)}")

    def __init__(self, path: Path, fps: float):
        self.check(path)
        self.path, self.fps = path, fps
        self.writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        if self.writer is None:
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() in (".mp4", ".m4v", ".mov") else "MJPG"))
            self.writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (image.shape[1], image.shape[0]))
            if not self.writer.isOpened():
                raise FerEdgeError(f"{self.path}: cannot write a video here (check the folder and the extension: .mp4 or .avi)")
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
