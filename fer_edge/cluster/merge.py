"""Chunk outputs, in order, back into exactly the FileResults the local engine yields for the same files."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from fer_edge.batch import FileResult
from fer_edge.errors import ModelError
from fer_edge.videoio import end_of_scan_error

from .plan import WorkItem
from .worker import decode


class OrderedMerge:
    def __init__(self):
        self._video: str | None = None
        self._yielded = 0
        self._done = False

    def feed(self, item: WorkItem, out: dict) -> Iterator[FileResult]:
        if "fatal" in out:
            raise ModelError(out["fatal"])
        if not item.video:
            yield from (decode(d) for d in out["results"])
            return
        if item.chunk == 0 or item.path != self._video:
            self._video, self._yielded, self._done = item.path, 0, False
        if self._done:  # an earlier chunk ended the file: the local scan would have stopped there
            return
        yield from (decode(d) for d in out["results"])
        path = Path(item.path)
        if out.get("error"):  # cannot open, not a regular file: the local engine's one error row
            self._done = True
            yield FileResult(path, error=out["error"])
            return
        self._yielded += out["yielded"]
        if out["hit_end"] or item.last_chunk:
            self._done = True
            last = out["last"] if out["last"] >= item.start else item.start - 1  # nothing read: the end was before
            error = end_of_scan_error(path, self._yielded, last, out["announced"] or item.announced)
            if error:
                yield FileResult(path, error=error.removeprefix(f"{path}: "))
