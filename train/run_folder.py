"""What every training run writes beside its checkpoints: config.json, metrics.csv a row an epoch, and curves.png."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable

from fer_edge import atomic
from fer_edge.errors import FerEdgeError


def run_to_resume(out: Path, resume: bool, name_it: str) -> Path | None:
    """The last.pt a resume continues, or None for a fresh run. A resume needs one; a fresh run may not
    overwrite one (`name_it`: how the command names the folder, for the message)."""
    last = out / "last.pt"
    if resume and not last.exists():
        raise FerEdgeError(f"cannot resume: {last} does not exist")
    if not resume and last.exists():
        raise FerEdgeError(f"{out} already holds a run; pass --resume to continue it, or choose another {name_it}")
    return last if resume else None


def start_fresh(out: Path) -> None:
    """A new run's folder, without an earlier metrics.csv to append to."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.csv").unlink(missing_ok=True)


def write_config(out: Path, config: dict) -> None:
    atomic.write_bytes(out / "config.json", json.dumps(config, indent=2).encode())


def append_metrics_row(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def draw_curves(out: Path, said: str, log: Callable[[str], None]) -> str:
    """Redraw curves.png after each epoch. A missing matplotlib is said once, and training goes on; returns
    what was said, to pass back in next time."""
    from fer_edge.report.make import curves

    try:
        curves([out], out / "curves.png")
        return ""
    except FerEdgeError as e:
        if str(e) != said:
            log(f"curves.png not drawn: {e}")
        return str(e)
