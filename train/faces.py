"""Faces from photo folders, cropped as the runtime crops them: detect, pick the face, square margin crop.

A class-folder set of photos (`<root>/<class>/*.jpg`) is judged, and trained on, through the same detector
and crop that `fer-edge classify` uses, so a figure measured here is what a user gets end to end. A photo
that is already a 48x48 crop is taken as it is. A photo in which the detector finds no face is a miss: it is
kept in `missed` (and counted wrong by `eval`), never silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_edge.contract import INPUT_SIZE
from fer_edge.crop import crop_faces, level_tilts
from fer_edge.detect import make_detector
from fer_edge.errors import FerEdgeError
from fer_edge.imageio import IMAGE_EXTENSIONS, read_image, to_gray_u8
from fer_edge.recognizer import is_face_crop

from .data import Split, _class_dirs


@dataclass
class PhotoFaces:
    """One face per photo: the crops, their labels and file names; the photos with no face found apart."""

    x: np.ndarray  # uint8 [N, 48, 48]
    y: np.ndarray  # int64 [N]
    names: list[str]  # relative paths, one per crop
    missed: list[tuple[str, int]] = field(default_factory=list)  # (relative path, label) with no face found
    unreadable: list[str] = field(default_factory=list)  # "path: reason"

    def split(self) -> Split:
        return Split(self.x, self.y)


def photo_files(root: Path) -> list[tuple[Path, int]]:
    """(photo, label) for every image in the class folders under root, in a stable order."""
    files = []
    for label, d in _class_dirs(root).items():
        files += [(p, label) for p in sorted(d.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return files


def is_photo_folder(root: Path) -> bool:
    """A class-folder set whose images are photos (larger than a ready 48x48 crop), judging by the first one."""
    for path, _ in photo_files(root)[:1]:
        try:
            return not is_face_crop(read_image(path))
        except FerEdgeError:
            return True
    return False


def crop_photos(root: str | Path, detector: str = "auto", detector_model: str | Path | None = None,
                min_face: int = 0) -> PhotoFaces:
    """The face the runtime would classify in each photo: the detector's best-scoring face, cropped with
    that detector's margin (and levelled when it is tilted, as the runtime does)."""
    root = Path(root)
    det = make_detector(detector, detector_model, min_face=min_face)
    xs, ys, names, missed, bad = [], [], [], [], []
    for path, label in photo_files(root):
        rel = str(path.relative_to(root))
        try:
            image = read_image(path)
        except FerEdgeError as e:
            bad.append(f"{rel}: {e}")
            continue
        if is_face_crop(image):
            xs.append(to_gray_u8(image))
        else:
            found = det.detect(image)
            if not found:
                missed.append((rel, label))
                continue
            best = max(found, key=lambda d: d.score)  # one face per photo: these sets hold one person each
            xs.append(crop_faces(image, [best.box], det.margin, level_tilts([best.angle]))[0])
        ys.append(label)
        names.append(rel)
    x = np.stack(xs) if xs else np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8)
    return PhotoFaces(x, np.asarray(ys, np.int64), names, missed, bad)


def groups(names: list[str], pattern: str) -> list[str]:
    """Each file's group (its subject), from a regular expression on its file name: the first capture group,
    or the whole match. Validation splits by group so one person's faces never sit on both sides."""
    rx = re.compile(pattern)
    out = []
    for n in names:
        m = rx.search(Path(n).name)
        if m is None:
            raise FerEdgeError(f"{n}: its name does not match the group pattern {pattern!r}")
        out.append(m.group(1) if m.groups() else m.group(0))
    return out


def group_folds(group_of: list[str], folds: int) -> list[np.ndarray]:
    """Indices of each of `folds` folds, whole groups to a fold, groups dealt round-robin in sorted order."""
    names = sorted(set(group_of))
    if folds < 2 or folds > len(names):
        raise FerEdgeError(f"{folds} folds need between 2 and {len(names)} groups' worth of faces")
    fold_of = {g: i % folds for i, g in enumerate(names)}
    idx = np.array([fold_of[g] for g in group_of])
    return [np.flatnonzero(idx == f) for f in range(folds)]


def subject_splits(faces: PhotoFaces, pattern: str, folds: int, val_fold: int) -> dict[str, Split]:
    """{"train", "val"}: the faces of fold `val_fold` (whole subjects, by `pattern`) to validate on, the rest
    to train on; with folds=0, every face trains."""
    if not folds:
        return {"train": faces.split()}
    if val_fold >= folds:
        raise FerEdgeError(f"--val-fold {val_fold} is not one of the {folds} folds (0..{folds - 1})")
    val = group_folds(groups(faces.names, pattern), folds)[val_fold]
    rest = np.setdiff1d(np.arange(len(faces.y)), val)
    return {"train": Split(faces.x[rest], faces.y[rest]), "val": Split(faces.x[val], faces.y[val])}
