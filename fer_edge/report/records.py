"""Reading what `webcam` and `classify` wrote (JSONL or CSV) and what `train` wrote (metrics.csv)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_edge.contract import LABELS
from fer_edge.errors import FerEdgeError, UsageError


def _rows(path: Path) -> list[dict]:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            if path.suffix.lower() == ".jsonl":
                rows = []
                for n, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError:
                            raise FerEdgeError(f"{path}: line {n} is not JSON (cut off by a crash?)") from None
                return rows
            return list(csv.DictReader(f))
    except OSError as e:
        raise UsageError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise FerEdgeError(f"{path}: not a text file of records") from None


def _float(v, default: float = float("nan")) -> float:
    try:
        return float(v) if v not in (None, "") else default
    except (TypeError, ValueError):
        return default


@dataclass
class Track:
    """One face followed through a video: times and smoothed probabilities [T, 7], boxes and frames."""

    id: int
    time: np.ndarray
    frame: np.ndarray
    probs: np.ndarray
    boxes: np.ndarray  # [T, 4] x, y, w, h

    @property
    def dominant(self) -> str:
        return LABELS[int(np.bincount(self.probs.argmax(1), minlength=len(LABELS)).argmax())]

    def shares(self) -> dict[str, float]:
        counts = np.bincount(self.probs.argmax(1), minlength=len(LABELS))
        return {name: float(c / max(len(self.time), 1)) for name, c in zip(LABELS, counts)}


@dataclass
class ClassifyRows:
    """classify output: one entry per face (label, confidence, folder or video), and the files that failed."""

    folders: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    no_face: int = 0
    errors: int = 0


def read_records(path: Path) -> list[Track] | ClassifyRows:
    rows = _rows(path)
    if not rows:
        raise FerEdgeError(f"{path}: no records in it")
    keys = set(rows[0])
    if {"track", "time", *(f"p_{n}" for n in LABELS)} <= keys:
        return _tracks(rows)
    if {"path", "label", *LABELS} <= keys or {"path", "error"} <= keys:
        return _classify_rows(rows)
    raise FerEdgeError(f"{path}: neither webcam records (track, time, p_*) nor classify rows (path, label, ...)")


def _tracks(rows: list[dict]) -> list[Track]:
    by_id: dict[int, list[dict]] = {}
    for r in rows:
        by_id.setdefault(int(_float(r["track"], -1)), []).append(r)
    tracks = []
    for tid, rs in by_id.items():
        rs.sort(key=lambda r: _float(r["time"]))
        tracks.append(Track(
            id=tid,
            time=np.array([_float(r["time"]) for r in rs]),
            frame=np.array([int(_float(r.get("frame"), -1)) for r in rs]),
            probs=np.array([[_float(r[f"p_{n}"], 0.0) for n in LABELS] for r in rs]),
            boxes=np.array([[int(_float(r.get(k), 0)) for k in ("x", "y", "w", "h")] for r in rs]),
        ))
    return sorted(tracks, key=lambda t: (-len(t.time), t.id))  # the longest tracks first


def _classify_rows(rows: list[dict]) -> ClassifyRows:
    out = ClassifyRows()
    for r in rows:
        if r.get("error"):
            out.errors += 1
        elif not r.get("label"):
            out.no_face += 1
        else:
            # a video's frames are grouped under the video itself, photos under their folder
            video = r.get("frame") not in (None, "")
            out.folders.append(str(r["path"]) if video else str(Path(str(r["path"])).parent))
            out.labels.append(str(r["label"]))
            out.confidence.append(_float(r.get("confidence"), 0.0))
    return out


@dataclass
class RunCurves:
    name: str
    epoch: np.ndarray
    columns: dict[str, np.ndarray]  # train_loss, val_loss, train_acc, val_acc, lr


def read_run(folder: Path) -> RunCurves:
    metrics = folder / "metrics.csv"
    if not metrics.is_file():
        raise UsageError(f"{folder}: no metrics.csv (not a fer-edge train run folder)")
    rows = _rows(metrics)
    if not rows:
        raise FerEdgeError(f"{metrics}: no epochs yet")
    cols = {k: np.array([_float(r.get(k)) for r in rows]) for k in ("train_loss", "val_loss", "train_acc", "val_acc", "lr")}
    return RunCurves(folder.name or str(folder), np.array([_float(r.get("epoch")) for r in rows]), cols)
