"""Cross-dataset accuracy: several models on every face set at hand, in one table.

A model is chosen on this table, never on FER2013's PublicTest alone. Sets (each skipped, saying so, when
its data is absent):
  - FER2013 PublicTest against the FER+ majority of ten annotators (3,370 faces with a strict majority);
  - FER2013 PublicTest against FER2013's own labels (3,589);
  - the performers' posed photos (taiwanese/), end to end through the runtime's detector, one row per
    performer-disjoint fold (fold 0 is held out from every fer-edge model; folds 1 and 2 trained 0.2.0's) and
    per detector; a photo with no face found counts wrong;
  - any other class-folder set given with --set NAME=FOLDER (crops or photos).
Each cell: accuracy, and the class with the lowest recall. --per-class adds each set's recall table.

    python benchmarks/cross_dataset.py [MODEL.onnx | default | fast ...] [--data DIR] [--detector-model YUNET.onnx]
        [--set NAME=FOLDER ...] [--per-class] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from fer_edge.contract import LABELS
from fer_edge.recognizer import resolve_model
from fer_edge.train.eval_sets import JudgedSet, judged_set
from fer_edge.train.evaluate_onnx import onnx_probs
from fer_edge.train.faces import crop_photos, group_folds, groups
from fer_edge.train.report import make_report

FOLDS = 3
GROUP = r"^(\d\d)"


def default_data() -> Path:
    return Path(os.environ.get("FER_EDGE_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def default_yunet() -> Path | None:
    found = sorted((Path(__file__).resolve().parents[1].parent / "shared" / "models").glob("face_detection_yunet*.onnx"))
    return found[0] if found else None


def performer_folds(folder: Path, detector: str, model: Path | None) -> dict[str, JudgedSet]:
    """The photos end to end, one set per performer-disjoint fold (the folds `fer-edge data faces` deals)."""
    faces = crop_photos(folder, detector, model)
    names = faces.names + [n for n, _ in faces.missed]
    fold_of = np.empty(len(names), np.int64)
    for f, idx in enumerate(group_folds(groups(names, GROUP), FOLDS)):
        fold_of[idx] = f
    n = len(faces.names)
    missed_y = np.array([label for _, label in faces.missed], np.int64)
    out = {}
    for f in range(FOLDS):
        keep, lost = fold_of[:n] == f, fold_of[n:] == f
        out[f"performers fold {f}, {detector}"] = JudgedSet(faces.x[keep], faces.y[keep], missed_y[lost], "photos",
                                                            f"{keep.sum() + lost.sum()} photos")
    return out


def gather_sets(data: Path, yunet: Path | None, extra: list[str], say) -> dict[str, JudgedSet]:
    sets: dict[str, JudgedSet] = {}
    csv, votes, performers = data / "fer2013.csv.gz", data / "ferplus_votes.csv.gz", data / "taiwanese"
    if csv.is_file() and votes.is_file():
        sets["PublicTest, FER+ majority"] = judged_set(csv, "val", ferplus=votes)
    else:
        say(f"skipped PublicTest against FER+: {votes} not found")
    if csv.is_file():
        sets["PublicTest, FER2013 labels"] = judged_set(csv, "val")
    else:
        say(f"skipped PublicTest: {csv} not found")
    if performers.is_dir():
        sets |= performer_folds(performers, "haar", None)
        if yunet is not None:
            sets |= performer_folds(performers, "yunet", yunet)
    else:
        say(f"skipped the performers: {performers} not found")
    for spec in extra:
        name, _, folder = spec.partition("=")
        sets[name] = judged_set(folder, detector="yunet" if yunet else "haar", detector_model=yunet)
    return sets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="ONNX files or shipped model names (default, fast); default: both shipped")
    ap.add_argument("--data", type=Path, default=None, help="folder with fer2013.csv.gz, ferplus_votes.csv.gz, taiwanese/")
    ap.add_argument("--detector-model", type=Path, default=None, help="YuNet .onnx (default: ../shared/models); 'none' for Haar only")
    ap.add_argument("--set", action="append", default=[], help="NAME=FOLDER: another class-folder set")
    ap.add_argument("--per-class", action="store_true", help="also print each set's per-class recall")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    console = Console(width=220, stderr=False)
    yunet = None if str(args.detector_model) == "none" else (args.detector_model or default_yunet())
    sets = gather_sets(args.data or default_data(), yunet, args.set, lambda m: console.print(f"[yellow]{m}"))
    names = args.models or ["default", "fast"]
    results: dict[str, dict[str, dict]] = {}
    for name in names:
        path = resolve_model(name)
        results[name] = {}
        for set_name, s in sets.items():
            pred = onnx_probs(path, s.x).argmax(1) if len(s.x) else np.zeros(0, np.int64)
            rep = make_report(s.y, pred, missed=s.missed)
            results[name][set_name] = {"faces": rep.samples, "accuracy": rep.accuracy, "macro_f1": rep.macro_f1,
                                       "recall": {k: v["recall"] for k, v in rep.per_class.items()},
                                       "answers": rep.answers}

    table = Table(title="Accuracy % (lowest class recall) per set, onnxruntime CPU")
    table.add_column("set")
    table.add_column("faces", justify="right")
    for name in names:
        table.add_column(Path(name).name, justify="right")
    for set_name in sets:
        cells = []
        for name in names:
            r = results[name][set_name]
            worst = min(r["recall"].items(), key=lambda kv: kv[1])
            cells.append(f"{100 * r['accuracy']:.2f} ({worst[0]} {100 * worst[1]:.0f})")
        table.add_row(set_name, str(results[names[0]][set_name]["faces"]), *cells)
    console.print(table)
    if args.per_class:
        for set_name in sets:
            t = Table(title=f"recall % per class: {set_name}")
            t.add_column("model")
            for label in LABELS:
                t.add_column(label, justify="right")
            for name in names:
                t.add_row(Path(name).name, *(f"{100 * results[name][set_name]['recall'][c]:.0f}" for c in LABELS))
            console.print(t)
    if args.json:
        args.json.write_text(json.dumps({"sets": {k: v.how for k, v in sets.items()}, "models": results}, indent=2))


if __name__ == "__main__":
    main()
