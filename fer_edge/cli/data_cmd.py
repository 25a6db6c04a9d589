"""`fer-edge data`: look at a dataset (class distribution, a grid of faces) and crop photo folders into one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fer_edge.cli.guard import guarded
from fer_edge.cli.options import DetectorName
from fer_edge.cli.output import status_console
from fer_edge.errors import FerEdgeError, UsageError

data_app = typer.Typer(help="Look at a dataset: class distribution, a grid of faces.", no_args_is_help=True)


@data_app.command("stats")
@guarded
def data_stats(path: Annotated[Path, typer.Argument(help="FER2013 CSV, .npz, or image-folder dataset.")]) -> None:
    """Class distribution per split, as counts and percentages."""
    from rich.table import Table

    from fer_edge.contract import LABELS
    from fer_edge.train.data import load_dataset

    ds = load_dataset(path)
    table = Table(title=f"{path}  (sha256 {ds.sha256[:12]})")
    table.add_column("class")
    for name in ds.splits:
        table.add_column(name, justify="right")
    counts = {name: s.class_counts() for name, s in ds.splits.items()}
    for i, label in enumerate(LABELS):
        table.add_row(label, *[f"{c[i]:,} ({100 * c[i] / max(c.sum(), 1):.1f}%)" for c in counts.values()])
    table.add_row("total", *[f"{c.sum():,}" for c in counts.values()])
    from rich.console import Console

    Console().print(table)
    if ds.skipped:
        status_console().print(f"skipped {len(ds.skipped)} unreadable image(s); first: {ds.skipped[0]}")


@data_app.command("preview")
@guarded
def data_preview(
    path: Annotated[Path, typer.Argument(help="FER2013 CSV, .npz, or image-folder dataset.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")] = Path("grid.png"),
    per_class: Annotated[int, typer.Option(min=1, max=50, help="Faces per class (one row each).")] = 10,
    split: Annotated[str, typer.Option(help="train, val or test.")] = "train",
    seed: Annotated[int, typer.Option(help="Which faces are drawn.")] = 0,
) -> None:
    """A labelled grid of faces: one row per class."""
    from fer_edge.train.data import load_dataset
    from fer_edge.train.preview import draw_grid

    if out.is_dir():
        raise UsageError(f"{out}: is a folder; give the PNG to write, e.g. {out / 'grid.png'}")
    ds = load_dataset(path)
    if not ds.has(split):
        raise UsageError(f"{path}: has no {split} split (it has {', '.join(ds.splits)})")
    import cv2

    grid = draw_grid(ds[split], per_class=per_class, seed=seed)
    try:
        ok = cv2.imwrite(str(out), grid)
    except cv2.error:
        ok = False
    if not ok:
        raise FerEdgeError(f"{out}: cannot write the PNG (no such folder, no permission, or not a .png name)")
    typer.echo(f"wrote {out} ({grid.shape[1]}x{grid.shape[0]})")


@data_app.command("faces")
@guarded
def data_faces(
    folder: Annotated[Path, typer.Argument(help="A class-folder set of photos: FOLDER/<class>/*.jpg.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .npz to write (a training or evaluation source).")],
    detector: Annotated[DetectorName, typer.Option(help="The runtime's detector that finds each face.")] = DetectorName.auto,
    detector_model: Annotated[Optional[Path], typer.Option(help="YuNet .onnx for --detector yunet.")] = None,
    group: Annotated[str, typer.Option(help="Regular expression on the file name giving its subject (first capture group); whole subjects go to one side.")] = r"^(\d\d)",
    folds: Annotated[int, typer.Option(min=0, help="Deal the subjects into this many folds (0: all faces train).")] = 3,
    val_fold: Annotated[int, typer.Option(min=0, help="Which fold is the validation split.")] = 0,
) -> None:
    """Crop a photo folder as the runtime does (detect, square margin crop, 48x48) into a training .npz, split by subject."""
    from fer_edge.train.data import folder_fingerprint, save_npz
    from fer_edge.train.faces import crop_photos, subject_splits

    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder of class folders")
    faces = crop_photos(folder, detector.value, detector_model)
    splits = subject_splits(faces, group, folds, val_fold)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_npz(out, splits, folder_fingerprint(folder) + f":{detector.value}:{group}:{folds}:{val_fold}")
    sizes = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
    typer.echo(f"wrote {out}: {sizes}; no face found in {len(faces.missed)} photo(s), {len(faces.unreadable)} unreadable")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data", rich_help_panel="Model factory (needs the train extra)")
