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


def sample_frames(path: Path, every: float) -> Iterator[VideoFrame]:
    """Yield the first frame at or after each multiple of `every` seconds (every <= 0: every frame).

    Skipped frames are grabbed but not converted, which is most of the saving a seek would give and
    stays exact on files whose seeking is not. Raises FerEdgeError if the file yields no frame at all, or,
    after the frames it could read, if it stops well short of the frame count its header announces.
    """
    cap = _open(path)
    try:
        fps, announced = frame_rate(cap), int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        index, yielded, due = -1, 0, 0.0
        while cap.grab():
            index += 1
            t = index / fps
            if t + 1e-9 < due:
                continue
            ok, image = cap.retrieve()
            if not ok or image is None:
                break
            yielded += 1
            while due <= t + 1e-9 and every > 0:
                due += every
            yield VideoFrame(image, index, t)
        if yielded == 0:
            raise FerEdgeError(f"{path}: not a video OpenCV can decode (no frame could be read)")
        # Headers estimate the count in some containers, so only a clear shortfall counts as truncation.
        if stops_short(index + 1, announced):
            raise FerEdgeError(f"{path}: the video stops at frame {index + 1} of the {announced} its header announces (truncated or corrupt)")
    finally:
        cap.release()


class VideoSink:
    """Writes frames to a video file, opened on the first frame (its size is known then)."""

    SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv")

    def __init__(self, path: Path, fps: float):
        if Path(path).suffix.lower() not in self.SUFFIXES:  # before the run, not at its first frame
            raise UsageError(f"{path}: write the video as {', '.join(self.SUFFIXES)}")
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
