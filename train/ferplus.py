"""FER+ votes: ten annotators per FER2013 face, as soft targets and as majority labels.

FER2013's own label agrees with the FER+ majority on about 65% of the faces; most disagreements are faces
FER2013 calls fear, sad or angry that the raters call neutral. Training on the vote distribution teaches
what people see in a face, and judging on the majority label says how often the model agrees with them.

The votes file (`ferplus_votes.csv.gz`) has a `row` column, the 0-based row of the FER2013 CSV, and a
`Usage` column; the CSV's rows of one Usage are that split's faces in file order, which is how the loader
builds its splits, so a row maps to (split, index in split) by counting.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np

from fer_edge.contract import LABELS
from fer_edge.errors import FerEdgeError

from .data import USAGE_TO_SPLIT, Split, open_text

# The votes file's class columns in our label order (contempt, unknown and NF are handled apart).
VOTE_COLUMNS = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness", "sad": "sadness",
                "surprise": "surprise", "neutral": "neutral"}
OTHER_COLUMNS = ("contempt", "unknown", "NF")
CONTEMPT = ("drop", "disgust", "angry")  # contempt votes: ignored, or counted for one of our classes


def read_votes(path: str | Path, contempt: str = "drop") -> dict[str, dict[int, np.ndarray]]:
    """{split: {CSV row: votes}}, float32 [10]: our seven classes in label order, then contempt, unknown and
    not-a-face. With contempt="disgust" or "angry" the contempt votes count for that class instead. Rows
    whose seven-class votes sum to zero (all contempt, unknown or not-a-face) are left out."""
    if contempt not in CONTEMPT:
        raise FerEdgeError(f"contempt votes: choose one of {', '.join(CONTEMPT)}, not {contempt!r}")
    path = Path(path)
    out: dict[str, dict[int, np.ndarray]] = {}
    try:
        with open_text(path) as f:
            reader = csv.DictReader(f)
            need = {"row", "Usage", *OTHER_COLUMNS, *VOTE_COLUMNS.values()}
            if not need <= set(reader.fieldnames or ()):
                raise FerEdgeError(f"{path}: not a FER+ votes file (needs columns {', '.join(sorted(need))})")
            for rec in reader:
                votes = np.array([float(rec[VOTE_COLUMNS[c]]) for c in LABELS]
                                 + [float(rec[c]) for c in OTHER_COLUMNS], np.float32)
                if contempt != "drop":
                    votes[LABELS.index(contempt)] += votes[len(LABELS)]
                    votes[len(LABELS)] = 0
                if votes[: len(LABELS)].sum() <= 0:
                    continue
                split = USAGE_TO_SPLIT.get(rec["Usage"].strip().lower())
                if split is not None:
                    out.setdefault(split, {})[int(rec["row"])] = votes
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError, csv.Error, ValueError, KeyError) as e:
        raise FerEdgeError(f"{path}: cannot read the FER+ votes ({e})") from None
    return out


def split_offsets(csv_path: str | Path) -> dict[str, list[int]]:
    """{split: the CSV rows of that split, in order}: the map from a CSV row to its index in the split."""
    rows: dict[str, list[int]] = {}
    with open_text(Path(csv_path)) as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader)]
        iu = header.index("usage") if "usage" in header else None
        for i, rec in enumerate(reader):
            usage = rec[iu].strip().lower() if iu is not None and iu < len(rec) else "training"
            rows.setdefault(USAGE_TO_SPLIT.get(usage, usage), []).append(i)
    return rows


def strict_majority(votes: np.ndarray) -> np.ndarray:
    """Over all ten columns: the class with strictly the most votes when it is one of our seven, else -1 (a
    tie, or contempt, unknown or not-a-face ahead). FER+'s own 'majority' scheme; 3,370 PublicTest faces."""
    top = votes.max(1, keepdims=True)
    winners = (votes == top).sum(1)
    best = votes.argmax(1)
    return np.where((winners == 1) & (best < len(LABELS)), best, -1)


def with_votes(split: Split, rows: list[int], votes: dict[int, np.ndarray]) -> tuple[Split, np.ndarray]:
    """The faces of `split` that have votes, with their seven-class vote distribution as `soft`, and each
    one's strict majority label (-1 where there is none)."""
    keep = np.array([i for i, r in enumerate(rows) if r in votes], dtype=np.int64)
    if len(keep) == 0:
        raise FerEdgeError("no face of this split has FER+ votes: is the votes file for this CSV?")
    v = np.stack([votes[rows[i]] for i in keep])
    seven = v[:, : len(LABELS)]
    soft = (seven / seven.sum(1, keepdims=True)).astype(np.float32)
    return Split(split.x[keep], split.y[keep], soft=soft), strict_majority(v)


def majority_split(split: Split, majority: np.ndarray) -> Split:
    """The faces with a strict FER+ majority, labelled by it (the held-out figure 'against FER+')."""
    keep = majority >= 0
    return Split(split.x[keep], majority[keep].astype(np.int64))
