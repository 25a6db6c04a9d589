"""The faces a model is judged on, whatever the set: a FER2013 split (with its own labels or the FER+
majority), an .npz, a folder of ready 48x48 crops, or a folder of photos that go through the runtime's
detector first (end to end: a photo with no face found is a miss, counted wrong)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_edge.errors import UsageError

from .data import load_dataset
from .faces import crop_photos, is_photo_folder


@dataclass
class JudgedSet:
    x: np.ndarray  # uint8 [N, 48, 48]: the faces found
    y: np.ndarray  # their labels
    missed: np.ndarray | None  # labels of photos with no face found (end to end only)
    split: str  # which split, or "photos" for an end-to-end folder
    how: str  # one line: what was judged


def judged_set(data: str | Path, split: str | None = None, detector: str = "auto",
               detector_model: str | Path | None = None, ferplus: str | Path | None = None) -> JudgedSet:
    data = Path(data)
    if data.is_dir() and is_photo_folder(data):
        faces = crop_photos(data, detector, detector_model)
        missed = np.array([label for _, label in faces.missed], np.int64)
        how = (f"{len(faces.y) + len(missed)} photos end to end through the {detector} detector "
               f"({len(missed)} with no face found, {len(faces.unreadable)} unreadable)")
        return JudgedSet(faces.x, faces.y, missed, "photos", how)
    ds = load_dataset(data)
    if split is None:
        split = "test" if ds.has("test") else "val" if ds.has("val") else "train"
        if len(ds.splits) == 1:  # one Usage value, or a folder without split folders: judge it whole
            split = next(iter(ds.splits))
    elif split not in ("val", "test", "train"):
        raise UsageError(f"--split must be val, test or train, not {split!r}")
    if not ds.has(split):
        raise UsageError(f"{data}: has no {split} split (it has {', '.join(ds.splits)})")
    s = ds[split]
    if ferplus:
        from .ferplus import majority_split, read_votes, split_offsets, with_votes

        s = majority_split(*with_votes(s, split_offsets(data)[split], read_votes(ferplus).get(split, {})))
        return JudgedSet(s.x, s.y, None, split, f"{len(s)} {split} faces against the FER+ majority")
    return JudgedSet(s.x, s.y, None, split, f"{len(s)} {split} faces")
