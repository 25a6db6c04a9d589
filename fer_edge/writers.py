"""Output of batch classification: rows (CSV or JSONL, flushed after every record so nothing written is
lost) and annotated copies (a PNG per image, an MP4 of the sampled frames per video)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

import cv2

from fer_edge.batch import FileResult
from fer_edge.contract import LABELS
from fer_edge.errors import FerEdgeError, UsageError
from fer_edge.render import annotate
from fer_edge.videoio import VideoSink, probe

# The required columns, in order; then, for video files, the frame number and its time in seconds (empty
# for images); then `error` (empty unless the file could not be read).
CLASSIFY_COLUMNS = ["path", "face", "x", "y", "w", "h", "det_score", "label", "confidence", *LABELS, "frame", "time", "error"]


@contextmanager
def open_output(path: Path, fmt: str, append: bool = False) -> Iterator[IO[str]]:
    """An output file for `fmt` (csv or jsonl) records. A name that is not valid UTF-8 is written back as its
    own bytes (surrogateescape); a failure to write (no space, /dev/full) is one line, also when it shows only
    at close. A file this run made and left without a row, because the run was stopped or failed, is removed."""
    created = not append and not Path(path).exists()
    try:
        f = open(path, "a" if append else "w", encoding="utf-8", errors="surrogateescape", newline="")
    except OSError as e:
        raise UsageError(f"{path}: cannot write ({e.strerror or e})") from None
    failed = False
    try:
        yield f
    except BaseException:
        failed = True
        raise
    finally:
        try:
            f.close()
        except OSError as e:
            if not failed:  # the last rows were lost at close: say so; after another error, that one speaks
                raise FerEdgeError(f"{path}: cannot write ({e.strerror or e}); the rows flushed before are kept") from None
        if failed and created:
            _remove_if_rowless(Path(path), 1 if fmt == "csv" else 0)


def _remove_if_rowless(path: Path, header_lines: int) -> None:
    """A run stopped (a signal, an error) before its first row: the file it made holds a header at most, and
    under its final name it would pass for a finished run that found nothing."""
    try:
        if path.is_file() and path.stat().st_size < 65536 and path.read_bytes().count(b"\n") <= header_lines:
            path.unlink()
    except OSError:
        pass


class RecordWriter:
    """Writes dict records with fixed columns as CSV (header first) or JSONL; flushes each one.

    header=False appends to a CSV that already has its header; flush=False is for bulk rewrites.
    """

    def __init__(self, stream: IO[str], fmt: str, columns: list[str], header: bool = True, flush: bool = True):
        if fmt not in ("csv", "jsonl"):
            raise ValueError(f"unknown format {fmt!r}")
        self.stream, self.fmt, self.columns, self.flush = stream, fmt, columns, flush
        if fmt == "csv":
            self._csv = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
            # csv quotes a field only for the characters of its line terminator: a row with a \r in it (a
            # file name can hold one) goes through a \r\n writer, which quotes it, so every name round-trips
            self._csv_cr = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
            if header:
                self._csv.writeheader()
                self._flush()

    def write(self, record: dict) -> None:
        if self.fmt == "csv":
            row = {k: "" if v is None else v for k, v in record.items()}
            has_cr = any(isinstance(v, str) and "\r" in v for v in row.values())
            (self._csv_cr if has_cr else self._csv).writerow(row)
        else:
            self.stream.write(_json_line(record))
        if self.flush:
            self._flush()

    def _flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as e:
            raise FerEdgeError(f"cannot write the output ({e.strerror or e}); the rows written so far are kept") from None
        # A file deleted while it is open (or its folder) takes every write without an error, and every row
        # would be lost: stop at the first row that finds it gone.
        try:
            gone = os.fstat(self.stream.fileno()).st_nlink == 0
        except (OSError, AttributeError, ValueError):  # not a file on disk (a pipe, a buffer)
            gone = False
        if gone:
            name = getattr(self.stream, "name", "the output")
            raise FerEdgeError(f"{name}: the output file was deleted (or its folder) while the run wrote to it; "
                               "the rows written to it are gone with it")


def _json_line(record: dict) -> str:
    text = json.dumps(record, ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a file name that is not valid UTF-8 (kept as surrogates): escape it
            text = json.dumps(record)
    return text + "\n"


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
