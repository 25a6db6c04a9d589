"""Resuming `fer-edge classify --out FILE --resume`: keep the files that finished cleanly, redo the rest."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from fer_edge import atomic
from fer_edge.errors import FerEdgeError
from fer_edge.records import RecordWriter


def _complete_lines(out: Path) -> str:
    try:
        # as classify writes it; newline="": a \r inside a quoted file name must stay a \r
        with open(out, encoding="utf-8", errors="surrogateescape", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise FerEdgeError(f"{out}: cannot read it to resume ({getattr(e, 'strerror', None) or e})") from None
    # A run killed in the middle of a write leaves a partial last line: it belongs to the file redone anyway.
    return text[: text.rfind("\n") + 1]


def _read_records(out: Path, fmt: str, columns: list[str]) -> list[dict]:
    text = _complete_lines(out)
    if fmt == "csv":
        if not text:
            return []
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if reader.fieldnames != columns:
            raise FerEdgeError(f"{out}: its columns are not those of `fer-edge classify` (format csv); "
                               "resume into the file the interrupted run wrote, or start a new one")
        return list(reader)
    records = []
    for n, line in enumerate(text.splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or "path" not in record:
            raise FerEdgeError(f"{out}, line {n}: not a `fer-edge classify` JSONL record; cannot resume into this file")
        records.append(record)
    return records


def finished_paths(out: Path, fmt: str, columns: list[str]) -> set[str]:
    """Rewrite `out` (a CSV with its header) with only the rows of files that finished without an error;
    return those paths. The caller then appends.

    Redone: the last file in `out`, which may have been cut off between two faces or in the middle of a
    video, and every file with an error row, which may read now (permissions fixed, file replaced).
    """
    records = _read_records(out, fmt, columns)
    redo = {records[-1]["path"]} if records else set()
    redo |= {r["path"] for r in records if r.get("error")}
    keep = [r for r in records if r["path"] not in redo]
    _rewrite(out, fmt, columns, keep)
    return {r["path"] for r in keep}


def restore_order(out: Path, fmt: str, columns: list[str], paths: list[str]) -> None:
    """After a resumed run has finished: put the rows back in the order of `paths` (the run's input order),
    as an uninterrupted run writes them. The files redone were appended at the end, so an error row that sat
    in the middle would otherwise move. A file's own rows keep their order."""
    records = _read_records(out, fmt, columns)
    rank = {p: i for i, p in enumerate(paths)}
    ranks = [rank.get(r["path"], len(paths)) for r in records]
    if ranks != sorted(ranks):
        _rewrite(out, fmt, columns, [r for _, r in sorted(zip(ranks, records), key=lambda pair: pair[0])])


def _rewrite(out: Path, fmt: str, columns: list[str], records: list[dict]) -> None:
    with atomic.replacing(out) as tmp:  # an interruption here leaves the old file whole
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            writer = RecordWriter(f, fmt, columns, flush=False)
            for r in records:
                writer.write(r)
