"""From inputs to a written report: records (webcam or classify output) or run folders (training curves)."""

from __future__ import annotations

from pathlib import Path

from fer_edge.contract import LABELS
from fer_edge.errors import UsageError
from fer_edge.report import figures, publish
from fer_edge.report.records import ClassifyRows, read_records, read_run


def preflight(out: Path) -> None:
    """Before a long run that ends with a report: fail now, not after hours, if it cannot be drawn."""
    if out.suffix.lower() not in (".png", ".html", ".htm"):
        raise UsageError(f"report {out}: the report is written as .png or .html")
    figures.new_figure(1, 1)  # matplotlib is there


def default_out(inputs: list[Path]) -> Path:
    if len(inputs) == 1 and inputs[0].is_dir():
        return inputs[0] / "curves.png"
    if len(inputs) == 1:
        return inputs[0].with_name(inputs[0].stem + ".report.png")
    return Path("curves.png")


def report(inputs: list[Path], out: Path | None = None, tracks: int = 6, video: Path | None = None) -> Path:
    """Write the report for `inputs` and return its path. Folders: training curves, overlaid; a file: records."""
    if not inputs:
        raise UsageError("report needs a records file (JSONL or CSV) or run folders")
    for p in inputs:
        if not p.exists():
            raise UsageError(f"{p}: no such file or folder")
    out = out or default_out(inputs)
    if all(p.is_dir() for p in inputs):
        return curves(inputs, out)
    if len(inputs) > 1:
        raise UsageError("give one records file, or one or more run folders")
    return records(inputs[0], out, tracks, video)


def curves(folders: list[Path], out: Path) -> Path:
    runs = [read_run(f) for f in folders]
    title = "training curves: " + ", ".join(r.name for r in runs)
    table = [["run", "epochs", "best val acc", "at epoch", "last lr"]]
    for r in runs:
        best = int(r.columns["val_acc"].argmax())
        table.append([r.name, str(len(r.epoch)), f"{100 * r.columns['val_acc'][best]:.2f}%", str(int(r.epoch[best])),
                      f"{r.columns['lr'][-1]:.3g}"])
    return publish.save(figures.training_curves(runs, title), out, title, table)


def records(path: Path, out: Path, tracks: int = 6, video: Path | None = None, name: str | None = None) -> Path:
    """`name` titles the report (default: the records file's name)."""
    data = read_records(path)
    name = name or path.name
    if isinstance(data, ClassifyRows):
        title = f"fer-edge classify: {name}"
        table = [["label", "faces", "share"]]
        total = max(len(data.labels), 1)
        for name in LABELS:
            k = data.labels.count(name)
            table.append([name, str(k), f"{100 * k / total:.1f}%"])
        return publish.save(figures.classify_summary(data, title), out, title, table)
    shown = data[: max(tracks, 1)]
    thumbs = figures.thumbnails(video, shown) if video is not None else {}
    title = f"fer-edge webcam: {name}, {len(shown)} of {len(data)} tracks (longest first)"
    table = [["track", "frames", "seconds", "dominant", *LABELS]]
    for tr in shown:
        shares = tr.shares()
        table.append([str(tr.id), str(len(tr.time)), f"{tr.time[-1] - tr.time[0]:.1f}", tr.dominant,
                      *(f"{100 * shares[n]:.0f}%" for n in LABELS)])
    return publish.save(figures.timelines(shown, thumbs, title), out, title, table)
