"""Output of batch classification: its rows' columns and contents (written through records.py) and
annotated copies (a PNG per image, an MP4 of the sampled frames per video)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2

from fer_edge.batch import FileResult
from fer_edge.contract import LABELS
from fer_edge.errors import FerEdgeError, UsageError
from fer_edge.render import annotate
from fer_edge.videoio import VideoSink, probe

# The required columns, in order; then, for video files, the frame number and its time in seconds (empty
# for images); then `error` (empty unless the file could not be read).
CLASSIFY_COLUMNS = ["path", "face", "x", "y", "w", "h", "det_score", "label", "confidence", *LABELS, "frame", "time", "error"]


def _r(v: float) -> float:
    return round(float(v), 5)


def classify_records(result: FileResult, fmt: str) -> list[dict]:
    """One record per face; one with an empty label for no face; one with `error` for a failed file."""
    base = {"path": str(result.path)}
    video = {"frame": result.frame, "time": result.time} if result.frame is not None else {}
    if result.error:
        return [{**base, "face": None, "error": result.error}] if fmt == "jsonl" else [{**base, "label": "", "error": result.error}]
    if not result.faces:
        return [{**base, "face": None, "label": "", **video}] if fmt == "jsonl" else [{**base, "label": "", **video}]
    return [{**base, **face_record(i, f), **video} for i, f in enumerate(result.faces)]


def face_record(i: int, f) -> dict:
    """One face as classify writes it: index, box, detector score, label, confidence, one probability a class."""
    x, y, w, h = f.box
    rec = {"face": i, "x": x, "y": y, "w": w, "h": h, "det_score": _r(f.det_score), "label": f.label,
           "confidence": _r(f.confidence)}
    rec.update({label: _r(p) for label, p in zip(LABELS, f.probs)})
    return rec


class AnnotatedCopies:
    """Writes `--annotate` copies into a folder. Files with the same name from different folders are kept
    apart; video writers stay open across a video's frames and are closed by close(), even on Ctrl-C."""

    def __init__(self, folder: Path, video_every: float):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"{folder}: cannot create the --annotate folder ({e.strerror or e})") from None
        self.folder, self.video_every = folder, video_every
        self.names: set[str] = set()
        self.videos: dict[Path, VideoSink] = {}

    def _path(self, source: Path, suffix: str) -> Path:
        name = source.stem
        if len(os.fsencode(name)) > 180:  # a file system takes 255 bytes a name: keep room for the suffix
            digest = hashlib.sha1(os.fsencode(name)).hexdigest()[:10]
            name = os.fsdecode(os.fsencode(name)[:160]).rstrip("\udcff") + "~" + digest
        if name in self.names:
            name = f"{name}_{len(self.names)}"
        self.names.add(name)
        return self.folder / f"{name}.annotated{suffix}"

    def add(self, result: FileResult) -> None:
        if result.error or result.image is None:
            return
        canvas = annotate(result.image, result.faces)
        if result.frame is None:
            path = self._path(result.path, ".png")
            ok, png = cv2.imencode(".png", canvas)
            try:
                if not ok:
                    raise OSError("PNG encoding failed")
                path.write_bytes(png.tobytes())  # through Python, so a failure says why (no space, name too long)
            except OSError as e:
                raise FerEdgeError(f"cannot write the annotated copy {path.name} ({e.strerror or e})") from None
            return
        if result.path not in self.videos:  # sampled frames play at the sampling rate
            fps = 1 / self.video_every if self.video_every > 0 else probe(result.path)[0]
            self.videos[result.path] = VideoSink(self._path(result.path, ".mp4"), fps)
        self.videos[result.path].write(canvas)

    def close(self) -> None:
        for sink in self.videos.values():
            sink.close()
