"""Row writers for per-face results: CSV or JSONL, flushed after every record so nothing written is lost."""

from __future__ import annotations

import csv
import json
from typing import IO

from fer_edge.batch import FileResult
from fer_edge.contract import LABELS

# The required columns, in order; then, for video files, the frame number and its time in seconds (empty
# for images); then `error` (empty unless the file could not be read).
CLASSIFY_COLUMNS = ["path", "face", "x", "y", "w", "h", "det_score", "label", "confidence", *LABELS, "frame", "time", "error"]


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
            if header:
                self._csv.writeheader()
                stream.flush()

    def write(self, record: dict) -> None:
        if self.fmt == "csv":
            self._csv.writerow({k: "" if v is None else v for k, v in record.items()})
        else:
            self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.flush:
            self.stream.flush()


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
    out = []
    for i, f in enumerate(result.faces):
        x, y, w, h = f.box
        rec = {**base, "face": i, "x": x, "y": y, "w": w, "h": h, "det_score": _r(f.det_score), "label": f.label,
               "confidence": _r(f.confidence)}
        rec.update({label: _r(p) for label, p in zip(LABELS, f.probs)})
        rec.update(video)
        out.append(rec)
    return out
