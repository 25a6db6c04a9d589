"""Datasets: the Kaggle FER2013 CSV, image folders, and the parsed-array cache (.npz).

Everything becomes a `Dataset`: uint8 faces [N, 48, 48] and int64 labels in FER2013 order, per split
(train, val, test). Parsing the 300 MB CSV takes a few seconds, so the arrays are cached as .npz, keyed
by the file's sha256; a cache file can also be given directly as --data.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer_edge import atomic
from fer_edge.contract import INPUT_SIZE, LABELS, canonical_label
from fer_edge.errors import FerEdgeError, UsageError
from fer_edge.home import sha256_of
from fer_edge.imageio import IMAGE_EXTENSIONS, read_image, to_gray_u8

PIXELS = INPUT_SIZE * INPUT_SIZE
USAGE_TO_SPLIT = {"training": "train", "publictest": "val", "privatetest": "test"}
SPLIT_DIRS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass
class Split:
    x: np.ndarray  # uint8 [N, 48, 48]
    y: np.ndarray  # int64 [N]
    soft: np.ndarray | None = None  # float32 [N, 7]: a target distribution per face (FER+ votes), when known

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: np.ndarray) -> "Split":
        return Split(self.x[idx], self.y[idx], None if self.soft is None else self.soft[idx])

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.y, minlength=len(LABELS))


@dataclass
class Dataset:
    splits: dict[str, Split]
    source: str
    sha256: str
    skipped: list[str] = field(default_factory=list)  # unreadable images, "path: reason"

    def __getitem__(self, name: str) -> Split:
        return self.splits[name]

    def has(self, name: str) -> bool:
        return name in self.splits and len(self.splits[name]) > 0


file_sha256 = sha256_of  # the data's identity: runs record it, --resume and ensembles check it


def default_cache_dir() -> Path:
    from fer_edge.home import home

    return Path(os.environ.get("FER_EDGE_CACHE") or home())


# ---------------------------------------------------------------------------------------------- CSV


def open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as f:
        magic = f.read(2)
    # utf-8-sig: a CSV saved by Excel or Notepad starts with a byte-order mark; it is not part of "emotion"
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def parse_fer_csv(path: Path) -> dict[str, Split]:
    """Parse the Kaggle layout (emotion,pixels[,Usage]). Errors name the CSV line number."""
    xs: dict[str, list[np.ndarray]] = {}
    ys: dict[str, list[int]] = {}
    try:
        with open_text(path) as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise FerEdgeError(f"{path}: the CSV is empty")
            cols = {name.strip().lower(): i for i, name in enumerate(header)}
            missing = [c for c in ("emotion", "pixels") if c not in cols]
            if missing:
                raise FerEdgeError(
                    f"{path}: missing column(s) {', '.join(missing)}; expected emotion,pixels[,Usage], found {','.join(header)}"
                )
            ie, ip, iu = cols["emotion"], cols["pixels"], cols.get("usage")
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                try:
                    label = int(row[ie])
                except (ValueError, IndexError):
                    raise FerEdgeError(f"{path}, line {line}: emotion is not an integer") from None
                if not 0 <= label < len(LABELS):
                    raise FerEdgeError(f"{path}, line {line}: emotion {label} is out of range 0..{len(LABELS) - 1}")
                pixels = _parse_pixels(row[ip] if ip < len(row) else "", path, line)
                usage = row[iu].strip().lower() if iu is not None and iu < len(row) else "training"
                split = USAGE_TO_SPLIT.get(usage)
                if split is None:
                    raise FerEdgeError(f"{path}, line {line}: unknown Usage {row[iu]!r}")
                xs.setdefault(split, []).append(pixels)
                ys.setdefault(split, []).append(label)
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError, csv.Error) as e:
        raise FerEdgeError(f"{path}: cannot read the CSV ({e})") from None
    if not xs:
        raise FerEdgeError(f"{path}: the CSV has a header but no rows")
    return {
        s: Split(np.stack(xs[s]).reshape(-1, INPUT_SIZE, INPUT_SIZE), np.asarray(ys[s], dtype=np.int64)) for s in xs
    }


def _parse_pixels(text: str, path: Path, line: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # older numpy warns and stops early on a non-numeric token
            values = np.fromstring(text, dtype=np.int64, sep=" ")
    except ValueError:  # newer numpy raises instead
        values = None
    if values is None or values.size != len(text.split()):
        raise FerEdgeError(f"{path}, line {line}: pixels has a non-numeric value")
    if values.size != PIXELS:
        raise FerEdgeError(f"{path}, line {line}: pixels has {values.size} values, expected {PIXELS} (48x48)")
    if values.min() < 0 or values.max() > 255:
        raise FerEdgeError(f"{path}, line {line}: pixel values must be 0..255")
    return values.astype(np.uint8)


# --------------------------------------------------------------------------------------- image folders


def _class_dirs(root: Path) -> dict[int, Path]:
    found: dict[int, Path] = {}
    unknown = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        label = canonical_label(d.name)
        if label is None:
            unknown.append(d.name)
        else:
            found[LABELS.index(label)] = d
    if unknown:
        raise FerEdgeError(
            f"{root}: unknown class folder(s) {', '.join(unknown)}; expected names like {', '.join(LABELS)} "
            "(case-insensitive; anger, happiness and sadness also work)"
        )
    return found


def load_image_folder_split(root: Path, strict: bool = False) -> tuple[Split, list[str]]:
    xs, ys, skipped = [], [], []
    for label, d in _class_dirs(root).items():
        for p in sorted(d.rglob("*")):
            if not (p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS):
                continue
            try:
                gray = to_gray_u8(read_image(p))
            except FerEdgeError as e:
                if strict:
                    raise
                skipped.append(str(e))
                continue
            xs.append(cv2.resize(gray, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA))
            ys.append(label)
    x = np.stack(xs) if xs else np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8)
    return Split(x, np.asarray(ys, dtype=np.int64)), skipped


def load_image_folders(root: Path, strict: bool = False) -> tuple[dict[str, Split], list[str]]:
    subdirs = {SPLIT_DIRS[d.name.lower()]: d for d in root.iterdir() if d.is_dir() and d.name.lower() in SPLIT_DIRS}
    if not subdirs:  # a folder of class folders: one split, evaluated or split whole
        split, skipped = load_image_folder_split(root, strict)
        return {"train": split}, skipped
    splits, skipped = {}, []
    for name, d in subdirs.items():
        splits[name], bad = load_image_folder_split(d, strict)
        skipped += bad
    return splits, skipped


def folder_fingerprint(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            # os.fsencode: a name that is not valid UTF-8 hashes as its own bytes
            h.update(os.fsencode(p.relative_to(root)) + f":{st.st_size}:{int(st.st_mtime)}\n".encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------ cache


def save_npz(path: Path, splits: dict[str, Split], source_sha256: str) -> None:
    arrays = {"source_sha256": np.array(source_sha256)}
    for name, s in splits.items():
        arrays[f"x_{name}"], arrays[f"y_{name}"] = s.x, s.y
    with atomic.replacing(path, ".npz") as tmp:
        np.savez(tmp, **arrays)


def load_npz(path: Path) -> tuple[dict[str, Split], str]:
    try:
        with np.load(path) as z:
            splits = {k[2:]: Split(z[k], z["y_" + k[2:]].astype(np.int64)) for k in z.files if k.startswith("x_")}
            sha = str(z["source_sha256"]) if "source_sha256" in z.files else file_sha256(path)
    except (OSError, ValueError, KeyError) as e:
        raise FerEdgeError(f"{path}: not a readable fer-edge array file ({e})") from None
    if not splits:
        raise FerEdgeError(f"{path}: no splits in it (arrays x_train/y_train, x_val/y_val, x_test/y_test)")
    for name, s in splits.items():
        if s.x.ndim != 3 or s.x.shape[1:] != (INPUT_SIZE, INPUT_SIZE) or len(s.x) != len(s.y):
            raise FerEdgeError(f"{path}: split {name} has faces of shape {s.x.shape}, expected [N, 48, 48]")
        if len(s.y) and (s.y.min() < 0 or s.y.max() >= len(LABELS)):
            raise FerEdgeError(f"{path}: split {name} has label {int(s.y.max() if s.y.max() >= len(LABELS) else s.y.min())}, "
                               f"outside 0..{len(LABELS) - 1}")
    return splits, sha


# ------------------------------------------------------------------------------------------------ entry


def load_dataset(path: str | Path, cache_dir: Path | None = None, strict: bool = False) -> Dataset:
    """Load FER2013 CSV (plain or gzipped), a cached .npz, or an image-folder dataset."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    if path.is_dir():
        splits, skipped = load_image_folders(path, strict)
        ds = Dataset(splits, str(path), folder_fingerprint(path), skipped)
    elif path.suffix == ".npz":
        splits, sha = load_npz(path)
        ds = Dataset(splits, str(path), sha)
    else:
        sha = file_sha256(path)
        cache = (cache_dir or default_cache_dir()) / f"fer-{sha[:16]}.npz"
        if cache.exists():
            splits, _ = load_npz(cache)
        else:
            splits = parse_fer_csv(path)
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                save_npz(cache, splits, sha)
            except OSError:
                pass  # a read-only home only costs the next run a re-parse
        ds = Dataset(splits, str(path), sha)
    for name, s in ds.splits.items():
        if len(s) == 0:
            raise FerEdgeError(f"{path}: split {name!r} is empty")
    return ds


def stratified_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Carve a validation split with the same class shares (for data that has none)."""
    if not 0 < fraction < 1:
        raise FerEdgeError(f"the validation fraction (--val-fraction) must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    val_idx = []
    for c in range(len(LABELS)):
        idx = np.flatnonzero(split.y == c)
        rng.shuffle(idx)
        val_idx.append(idx[: int(round(len(idx) * fraction))])
    val = np.sort(np.concatenate(val_idx))
    mask = np.ones(len(split), bool)
    mask[val] = False
    return split.take(np.flatnonzero(mask)), split.take(val)
