"""Record files: CSV (header first) or JSONL rows, flushed one by one so that nothing written is lost, and
the output file they go to. Classify's rows (writers.py) and the webcam's records (realtime/loop.py) both
write through these."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Iterator

from fer_edge.errors import FerEdgeError, UsageError


@contextmanager
def open_output(path: Path, fmt: str, append: bool = False) -> Iterator[IO[str]]:
    """An output file for `fmt` (csv or jsonl) records. A name that is not valid UTF-8 is written back as its
    own bytes (surrogateescape); a failure to write (no space, /dev/full) is one line, also when it shows only
    at close. A file this run made and left without a row, because the run was stopped or failed, is removed."""
    created = not append and not Path(path).exists()
    try:
        f = open(path, "a" if append else "w", encoding="utf-8", errors="surrogateescape", newline="")
    except OSError as e:
        raise UsageError(f"{path}: cannot write ({e.strerror or e})") from None
    failed = False
    try:
        yield f
    except BaseException:
        failed = True
        raise
    finally:
        try:
            f.close()
        except OSError as e:
            if not failed:  # the last rows were lost at close: say so; after another error, that one speaks
                raise FerEdgeError(f"{path}: cannot write ({e.strerror or e}); the rows flushed before are kept") from None
        if failed and created:
            _remove_if_rowless(Path(path), 1 if fmt == "csv" else 0)


def _remove_if_rowless(path: Path, header_lines: int) -> None:
    """A run stopped (a signal, an error) before its first row: the file it made holds a header at most, and
    under its final name it would pass for a finished run that found nothing."""
    try:
        if path.is_file() and path.stat().st_size < 65536 and path.read_bytes().count(b"\n") <= header_lines:
            path.unlink()
    except OSError:
        pass


class RecordWriter:
    """Writes dict records with fixed columns as CSV (header first) or JSONL; flushes each one.

    header=False appends to a CSV that already has its header; flush=False is for bulk rewrites.
    """

    def __init__(self, stream: IO[str], fmt: str, columns: list[str], header: bool = True, flush: bool = True):
        if fmt not in ("csv", "jsonl"):
            raise ValueError(f"unknown format {fmt!r}")
        self.stream, self.fmt, self.columns, self.flush = stream, fmt, columns, flush
        if fmt == "csv":
            self._csv = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
            # csv quotes a field only for the characters of its line terminator: a row with a \r in it (a
            # file name can hold one) goes through a \r\n writer, which quotes it, so every name round-trips
            self._csv_cr = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
            if header:
                self._csv.writeheader()
                self._flush()

    def write(self, record: dict) -> None:
        if self.fmt == "csv":
            row = {k: "" if v is None else v for k, v in record.items()}
            has_cr = any(isinstance(v, str) and "\r" in v for v in row.values())
            (self._csv_cr if has_cr else self._csv).writerow(row)
        else:
            self.stream.write(_json_line(record))
        if self.flush:
            self._flush()

    def _flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as e:
            raise FerEdgeError(f"cannot write the output ({e.strerror or e}); the rows written so far are kept") from None
        # A file deleted while it is open (or its folder) takes every write without an error, and every row
        # would be lost: stop at the first row that finds it gone.
        try:
            gone = os.fstat(self.stream.fileno()).st_nlink == 0
        except (OSError, AttributeError, ValueError):  # not a file on disk (a pipe, a buffer)
            gone = False
        if gone:
            name = getattr(self.stream, "name", "the output")
            raise FerEdgeError(f"{name}: the output file was deleted (or its folder) while the run wrote to it; "
                               "the rows written to it are gone with it")


def _json_line(record: dict) -> str:
    text = json.dumps(record, ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a file name that is not valid UTF-8 (kept as surrogates): escape it
            text = json.dumps(record)
    return text + "\n"


class ReportRows:
    """The rows a run's report is drawn from: the run's own records file when it writes one, else a copy kept
    aside in a temporary file (gone with the run's stack) until the report is drawn. classify and webcam share it."""

    def __init__(self, stack: ExitStack, report: Path | None, written: Path | None, fmt: str, columns: list[str]):
        self.report, self.path, self.writer, self._aside = report, written, None, None
        if report is not None and written is None:
            self._aside = stack.enter_context(tempfile.NamedTemporaryFile("w", suffix=f".{fmt}", encoding="utf-8", newline=""))
            self.path = Path(self._aside.name)
            self.writer = RecordWriter(self._aside, fmt, columns, flush=False)

    def ready(self) -> Path | None:
        """The file to draw the report from, with everything written so far in it (None: no report asked)."""
        if self._aside is not None:
            self._aside.flush()
        return self.path if self.report is not None else None
