"""Batch classification of image and video files: a generator that yields one result per image or sampled
video frame, errors included."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from fer_edge import native_stderr
from fer_edge.contract import LABELS
from fer_edge.errors import FerEdgeError, ModelError, UsageError
from fer_edge.imageio import IMAGE_EXTENSIONS, check_regular_file, read_image
from fer_edge.recognizer import Face, Recognizer, faces_from
from fer_edge.videoio import VIDEO_EXTENSIONS, is_video, sample_frames


stuck_threads = 0  # decodes given up on (file_timeout): their threads run on, and the process must not wait for them


@dataclass(frozen=True)
class FileResult:
    path: Path
    faces: tuple[Face, ...] = ()
    error: str | None = None
    image: np.ndarray | None = field(default=None, repr=False, compare=False)  # kept only when asked (annotation)
    frame: int | None = None  # video frames only: the frame number in the file
    time: float | None = None  # and the seconds into it

    @property
    def is_frame(self) -> bool:
        return self.frame is not None or (self.error is not None and is_video(self.path))


def iter_input_paths(inputs: Iterable[str | Path], recursive: bool = False) -> list[Path]:
    """Expand files and folders into image and video paths, in a stable order. Raises UsageError for a bad input."""
    paths: list[Path] = []
    wanted = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            found = p.rglob("*") if recursive else p.iterdir()
            # files, and links that point nowhere (they become error rows, as when named directly); pipes,
            # devices and sockets are left out of a folder: reading one would hang
            media = sorted(f for f in found if f.suffix.lower() in wanted and (f.is_file() or (f.is_symlink() and not f.exists())))
            if not media:
                hint = "" if recursive else " (add --recursive to look in subfolders)"
                raise UsageError(f"{p}: no images or videos ({', '.join(sorted(wanted))}){hint}")
            paths += media
        elif p.exists() or p.is_symlink():
            paths.append(p)  # an explicitly named file is tried whatever its extension (as an image, unless a video's)
        else:
            raise UsageError(f"{p}: no such file or folder")
    return paths


def classify_files(
    recognizer: Recognizer,
    paths: Iterable[Path],
    detect: bool | None = None,
    keep_images: bool = False,
    video_every: float = 0.5,
    workers: int | None = None,
    file_timeout: float = 0.0,
) -> Iterator[FileResult]:
    """One result per image, and one per sampled frame of a video (every `video_every` s; 0: every frame),
    in the order of `paths`.

    Images are read, searched for faces and cropped ahead in `workers` threads (default: the recognizer's
    thread budget), each with its own detector; their faces are classified together, in batches across
    images. A video that fails part-way keeps the frames already yielded and ends with one error result.
    `file_timeout` > 0: an image that takes longer to decode and search (a decoder stuck on a damaged file)
    becomes an error result and the run goes on without it; its thread cannot be stopped, so `stuck_threads`
    counts it and the caller should exit without waiting for it.
    """
    workers = recognizer.threads.cores if workers is None else workers
    ahead = _ImagesAhead(recognizer, detect, keep_images, workers, file_timeout) if workers > 1 or file_timeout else None
    try:
        run: list[Path] = []
        for path in paths:
            if not is_video(path):
                run.append(path)
                continue
            yield from (ahead.classify(run) if ahead else _one_by_one(recognizer, run, detect, keep_images))
            run = []
            yield from _classify_video(recognizer, path, detect, keep_images, video_every)
        yield from (ahead.classify(run) if ahead else _one_by_one(recognizer, run, detect, keep_images))
    finally:
        if ahead is not None:
            ahead.close()


def _one_by_one(recognizer: Recognizer, paths: list[Path], detect: bool | None, keep_images: bool) -> Iterator[FileResult]:
    for path in paths:
        try:
            image = read_with_decoder_notes(path)
            faces = tuple(recognizer.predict(image, detect=detect))
        except ModelError:
            raise
        except FerEdgeError as e:
            yield FileResult(path, error=str(e).removeprefix(f"{path}: "))
            continue
        yield FileResult(path, faces, image=image if keep_images else None)


class _ImagesAhead:
    """Read, detect and crop in a thread pool; classify in batches in the caller's thread, in order.

    OpenCV and onnxruntime release the GIL, so the pool's threads decode and scan on every core while the
    caller classifies. At most `depth` images are in flight: memory stays bounded on any folder."""

    BATCH = 32  # faces per classifier call: past this the call's cost is per face

    def __init__(self, recognizer: Recognizer, detect: bool | None, keep_images: bool, workers: int, timeout: float = 0.0):
        self.recognizer, self.detect, self.keep_images = recognizer, detect, keep_images
        self.depth = 4 * workers
        self.timeout = timeout
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="fer-edge-read")

    def _locate(self, path: Path):
        detector = getattr(self._local, "detector", None)
        if detector is None:
            detector = self._local.detector = self.recognizer.spare_detector()
        try:
            image = read_with_decoder_notes(path)
            detections, crops = self.recognizer.locate(image, self.detect, detector)
        except FerEdgeError as e:
            return FileResult(path, error=str(e).removeprefix(f"{path}: "))
        return path, image if self.keep_images else None, detections, crops

    def classify(self, paths: list[Path]) -> Iterator[FileResult]:
        pending: deque[tuple[Path, Future]] = deque()
        ready: list = []  # located images waiting for their batch
        faces = 0
        todo = iter(paths)
        for path in todo:
            pending.append((path, self._pool.submit(self._locate, path)))
            if len(pending) >= self.depth:
                break
        while pending:
            path, future = pending.popleft()
            item = self._result(path, future)
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((nxt, self._pool.submit(self._locate, nxt)))
            ready.append(item)
            faces += 0 if isinstance(item, FileResult) else len(item[2])
            if faces >= self.BATCH or not pending:
                yield from self._flush(ready)
                ready, faces = [], 0

    def _result(self, path: Path, future: Future):
        global stuck_threads
        try:
            return future.result(timeout=self.timeout or None)
        except FutureTimeout:
            stuck_threads += 1
            native_stderr.current().abandon()
            return FileResult(path, error=f"no answer after {self.timeout:g} s: the decoder or the detector is stuck on "
                                          "this file; skipped")

    def _flush(self, ready: list) -> Iterator[FileResult]:
        located = [r for r in ready if not isinstance(r, FileResult)]
        crops = [r[3] for r in located if len(r[3])]
        probs = self.recognizer.classifier.predict_probs(np.concatenate(crops)) if crops else np.zeros((0, 7))
        at = 0
        for r in ready:
            if isinstance(r, FileResult):
                yield r
                continue
            path, image, detections, _ = r
            yield FileResult(path, tuple(faces_from(detections, probs[at : at + len(detections)])), image=image)
            at += len(detections)

    def close(self) -> None:
        self._pool.shutdown(wait=stuck_threads == 0, cancel_futures=True)


def read_with_decoder_notes(path: Path) -> np.ndarray:
    """read_image; when it fails, its error ends with what the decoder wrote to stderr meanwhile (kept off
    stderr by native_stderr while a command runs)."""
    with native_stderr.current().during() as caught:
        try:
            return read_image(path)
        except FerEdgeError as e:
            error = e
    raise FerEdgeError(_with_notes(str(error), caught.lines)) from None


def _with_notes(error: str, lines: list[str]) -> str:
    notes = "; ".join(dict.fromkeys(lines))
    if not notes:
        return error
    return f"{error} (decoder: {notes if len(notes) <= 200 else notes[:197] + '...'})"


def _classify_video(
    recognizer: Recognizer, path: Path, detect: bool | None, keep_images: bool, every: float
) -> Iterator[FileResult]:
    notes: list[str] = []  # what the decoder wrote to stderr while reading this video
    capture = native_stderr.current()
    try:
        check_regular_file(path)  # a pipe named clip.mp4 would block the decoder for ever
        frames = sample_frames(path, every)
        while True:
            failure = None
            with capture.during() as caught:
                try:
                    f = next(frames, None)
                except FerEdgeError as e:
                    failure = e
            notes += caught.lines
            if failure is not None:
                raise failure
            if f is None:
                break
            faces = tuple(recognizer.predict(f.image, detect=detect))
            yield FileResult(path, faces, image=f.image if keep_images else None, frame=f.index, time=round(f.time, 3))
    except ModelError:
        raise
    except FerEdgeError as e:
        yield FileResult(path, error=_with_notes(str(e).removeprefix(f"{path}: "), notes))


@dataclass
class BatchStats:
    images: int = 0
    videos: int = 0
    frames: int = 0  # sampled video frames classified
    faces: int = 0
    no_face: int = 0  # images or frames
    errors: int = 0  # files that failed (a video that fails part-way counts once)
    per_class: Counter = field(default_factory=Counter)
    started: float = field(default_factory=time.perf_counter)
    _video: Path | None = field(default=None, repr=False)  # the video being counted

    def add(self, r: FileResult) -> None:
        if r.is_frame:
            if r.path != self._video:
                self.videos, self._video = self.videos + 1, r.path
            self.frames += r.frame is not None
        else:
            self.images += 1
        if r.error:
            self.errors += 1
        elif not r.faces:
            self.no_face += 1
        self.faces += len(r.faces)
        self.per_class.update(f.label for f in r.faces)

    @property
    def files(self) -> int:
        return self.images + self.videos

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def rows(self) -> list[tuple[str, str]]:
        s = max(self.seconds, 1e-9)
        rows = [("images", f"{self.images:,}")]
        if self.videos:
            rows += [("videos", f"{self.videos:,}"), ("video frames sampled", f"{self.frames:,}")]
        rows += [
            ("faces", f"{self.faces:,}"),
            ("images without a face" if not self.videos else "images or frames without a face", f"{self.no_face:,}"),
            ("errors", f"{self.errors:,}"),
        ]
        rows += [(f"  {label}", f"{self.per_class.get(label, 0):,}") for label in LABELS]
        if self.videos:  # one clock for both, so one rate for both
            rows += [("images + video frames/s", f"{(self.images + self.frames) / s:.1f}")]
        else:
            rows += [("images/s", f"{self.images / s:.1f}")]
        rows += [("faces/s", f"{self.faces / s:.1f}"), ("seconds", f"{s:.2f}")]
        return rows
