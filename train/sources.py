"""The training set from one or more sources, and the validation sets the run is judged on.

A run has a primary source (`--data`: FER2013's CSV, an .npz or image folders) and may add more
(`--data B.npz@4`: B's training faces, repeated four times an epoch). With `--ferplus VOTES` the primary
FER2013 CSV trains on the FER+ vote distribution of each face instead of its single FER2013 label, and its
held-out faces are judged twice: against the FER+ majority (counted) and against FER2013's own labels
(reported). Every source with a validation split gets its own figure; the run keeps the checkpoint with the
best mean of the counted figures, so no one set decides alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_edge.contract import LABELS
from fer_edge.errors import FerEdgeError, UsageError

from .data import Dataset, Split, file_sha256, load_dataset, stratified_split
from .ferplus import majority_split, read_votes, split_offsets, with_votes


@dataclass
class Validation:
    split: Split
    counted: bool  # in the mean that picks the best checkpoint (else reported only)


@dataclass
class Sources:
    train: Split  # soft is set when any source has soft targets (then every row has one)
    vals: dict[str, Validation]
    test: Split | None
    sha256: str  # all sources' identities together: --resume checks it
    notes: list[str]  # what each source gave, for the log


def parse_source(spec: str) -> tuple[str, int]:
    """'PATH' or 'PATH@N' (N: how many times its training faces appear in an epoch)."""
    path, at, n = spec.rpartition("@")
    if not at or not n.isdigit() or Path(spec).exists():
        return spec, 1
    if int(n) < 1:
        raise UsageError(f"--data {spec}: the repeat count after @ must be 1 or more")
    return path, int(n)


def prepare_splits(ds: Dataset, cfg) -> tuple[Split, Split, Split | None]:
    """train, val and (optional) test. Fractions are of the training rows, stratified by class."""
    if not ds.has("train"):
        raise FerEdgeError(f"{ds.source}: no training split (Usage=Training rows, or a train/ folder)")
    train = ds["train"]
    val = None if cfg.resplit else (ds["val"] if ds.has("val") else None)
    test = None if cfg.resplit else (ds["test"] if ds.has("test") else None)
    total = len(train)
    if test is None and cfg.test_fraction > 0:
        train, test = stratified_split(train, cfg.test_fraction, cfg.seed)
    if val is None:
        if cfg.val_fraction <= 0:
            raise FerEdgeError(f"{ds.source}: no validation split; pass --val-fraction (e.g. 0.1) to carve one")
        train, val = stratified_split(train, cfg.val_fraction * total / len(train), cfg.seed + 1)
    return train, val, test


def _one_hot(y: np.ndarray) -> np.ndarray:
    return np.eye(len(LABELS), dtype=np.float32)[y]


def _with_ferplus(ds: Dataset, cfg) -> tuple[Dataset, Split | None]:
    """The dataset with FER+ soft targets on its training faces, and its held-out faces labelled by the FER+
    majority."""
    if Path(cfg.data).suffix.lower() not in (".csv", ".gz") or cfg.resplit:
        raise UsageError("--ferplus needs the FER2013 CSV as --data (the votes name its rows), without --resplit")
    votes = read_votes(cfg.ferplus, cfg.contempt)
    rows = split_offsets(cfg.data)
    train, _ = with_votes(ds["train"], rows["train"], votes.get("train", {}))
    # a share of FER2013's own label in the target keeps what it knows where the raters split their votes
    train.soft = (1 - cfg.hard_weight) * train.soft + cfg.hard_weight * _one_hot(train.y)
    train.y = train.soft.argmax(1)
    splits = dict(ds.splits, train=train)
    held = majority_split(*with_votes(ds["val"], rows["val"], votes.get("val", {}))) if ds.has("val") else None
    return Dataset(splits, ds.source, ds.sha256, ds.skipped), held


def assemble(cfg) -> Sources:
    primary = load_dataset(cfg.data)
    ids = [primary.sha256]
    notes = []
    vals: dict[str, Validation] = {}
    held = None
    if cfg.ferplus:
        primary, held = _with_ferplus(primary, cfg)
        ids.append(file_sha256(cfg.ferplus) + cfg.contempt + f"{cfg.hard_weight:g}")
    if primary.skipped:
        notes.append(f"skipped {len(primary.skipped)} unreadable image(s); first: {primary.skipped[0]}")
    train, val, test = prepare_splits(primary, cfg)
    if held is not None:
        vals["ferplus"] = Validation(held, True)
        vals["fer2013"] = Validation(val, False)
        notes.append(f"{cfg.data}: {len(train)} training faces with FER+ vote targets; held-out faces judged against "
                     f"the FER+ majority ({len(vals['ferplus'].split)}, counted) and FER2013's labels ({len(val)}, reported)")
    else:
        vals["val"] = Validation(val, True)
    parts = [train]
    for spec in cfg.extra_data:
        path, repeat = parse_source(spec)
        ds = load_dataset(path)
        if not ds.has("train"):
            raise FerEdgeError(f"{path}: no training split to add")
        ids.append(f"{ds.sha256}@{repeat}")
        name = Path(path).name.split(".")[0]
        parts += [ds["train"]] * repeat
        if ds.has("val"):
            vals[name] = Validation(ds["val"], True)
        checked = f", {len(ds['val'])} to validate on" if ds.has("val") else ""
        notes.append(f"{path}: {len(ds['train'])} training faces x{repeat}{checked}")
    if len(parts) > 1:  # hard sources beside a soft one learn their label as a one-hot distribution
        soft = None if train.soft is None else np.concatenate([p.soft if p.soft is not None else _one_hot(p.y) for p in parts])
        train = Split(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]), soft)
    sha = ids[0] if len(ids) == 1 else hashlib.sha256("\n".join(ids).encode()).hexdigest()
    return Sources(train, vals, test, sha, notes)
