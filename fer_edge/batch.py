"""Batch classification of image files: a generator that yields one result per file, errors included."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from fer_edge.contract import LABELS
from fer_edge.errors import FerEdgeError, UsageError
from fer_edge.imageio import IMAGE_EXTENSIONS, read_image
from fer_edge.recognizer import Face, Recognizer


@dataclass(frozen=True)
class FileResult:
    path: Path
    faces: tuple[Face, ...] = ()
    error: str | None = None
    image: np.ndarray | None = field(default=None, repr=False, compare=False)  # kept only when asked (annotation)


def iter_image_paths(inputs: Iterable[str | Path], recursive: bool = False) -> list[Path]:
    """Expand files and folders into image paths, in a stable order. Raises UsageError for a bad input."""
    paths: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            found = p.rglob("*") if recursive else p.iterdir()
            images = sorted(f for f in found if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not images:
                hint = "" if recursive else " (add --recursive to look in subfolders)"
                raise UsageError(f"{p}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}){hint}")
            paths += images
        elif p.exists() or p.is_symlink():
            paths.append(p)  # an explicitly named file is tried whatever its extension
        else:
            raise UsageError(f"{p}: no such file or folder")
    return paths


def classify_files(
    recognizer: Recognizer, paths: Iterable[Path], detect: bool | None = None, keep_images: bool = False
) -> Iterator[FileResult]:
    for path in paths:
        try:
            image = read_image(path)
            faces = tuple(recognizer.predict(image, detect=detect))
        except FerEdgeError as e:
            yield FileResult(path, error=str(e).removeprefix(f"{path}: "))
            continue
        yield FileResult(path, faces, image=image if keep_images else None)


@dataclass
class BatchStats:
    images: int = 0
    faces: int = 0
    no_face: int = 0
    errors: int = 0
    per_class: Counter = field(default_factory=Counter)
    started: float = field(default_factory=time.perf_counter)

    def add(self, r: FileResult) -> None:
        self.images += 1
        if r.error:
            self.errors += 1
        elif not r.faces:
            self.no_face += 1
        self.faces += len(r.faces)
        self.per_class.update(f.label for f in r.faces)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def rows(self) -> list[tuple[str, str]]:
        s = max(self.seconds, 1e-9)
        rows = [
            ("images", f"{self.images:,}"),
            ("faces", f"{self.faces:,}"),
            ("images without a face", f"{self.no_face:,}"),
            ("errors", f"{self.errors:,}"),
        ]
        rows += [(f"  {label}", f"{self.per_class.get(label, 0):,}") for label in LABELS]
        rows += [("images/s", f"{self.images / s:.1f}"), ("faces/s", f"{self.faces / s:.1f}"), ("seconds", f"{s:.2f}")]
        return rows
