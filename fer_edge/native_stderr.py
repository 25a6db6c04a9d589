"""Keep the decoders' own messages off fer-edge's stderr, and give them to the file they are about.

libpng, libjpeg, libtiff and FFmpeg write straight to the process's stderr (file descriptor 2): "libpng
error: bad adaptive filter value", "Corrupt JPEG data: premature end of data segment", sometimes with bytes
that are not UTF-8. Between fer-edge's own lines a reader or a grep cannot tell which file they are about.

While a `NativeStderr` runs, descriptor 2 is a pipe that a thread drains, and Python's `sys.stderr` (fer-edge's
progress, warnings and summary) keeps writing to the real stderr. `during()` brackets one decode: it holds a
lock, so one file decodes at a time (decoding is a small share of a photo's time next to detection), and
what native code wrote in between is that file's. A marker written through the pipe before and after marks
where the bracket starts and ends, so nothing is attributed early or late.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

_MARK = b"\x00fer-edge-native-stderr-mark\x00"


@dataclass
class Caught:
    raw: bytes = b""
    lines: list[str] = field(default_factory=list)

    def summary(self, limit: int = 200) -> str:
        """The decoder's distinct lines, printable and on one line: for an error row."""
        text = "; ".join(dict.fromkeys(self.lines))
        return text if len(text) <= limit else text[: limit - 3] + "..."


def clean_lines(raw: bytes) -> list[str]:
    text = raw.decode("utf-8", errors="replace").replace("\ufffd", "?")
    lines = (re.sub(r"[^\x20-\x7e?]+", " ", line).strip() for line in text.splitlines())
    return [" ".join(line.split()) for line in lines if line.strip()]


class NativeStderr:
    def __init__(self):
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._buffer = bytearray()
        self._marks = 0
        self._active = False
        self._abandoned = False
        self.other: list[str] = []  # written outside any bracket (a library's start-up notice)

    def start(self) -> "NativeStderr":
        try:
            sys.__stderr__.flush()
            self._real = os.dup(2)
        except (OSError, AttributeError, ValueError):
            return self  # no descriptor 2 (a GUI process): nothing to keep apart
        read, write = os.pipe()
        self._read = read
        os.dup2(write, 2)
        os.close(write)
        self._saved_sys = sys.stderr
        try:
            python_on_fd2 = sys.stderr is not None and sys.stderr.fileno() == 2
        except (OSError, AttributeError, ValueError):
            python_on_fd2 = False  # a test runner's or an application's own stream: leave it be
        if python_on_fd2:
            sys.stderr = open(os.dup(self._real), "w", buffering=1, encoding=getattr(self._saved_sys, "encoding", None) or "utf-8",
                              errors="backslashreplace", closefd=True)
        self._thread = threading.Thread(target=self._drain, name="fer-edge-native-stderr", daemon=True)
        self._thread.start()
        self._active = True
        return self

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self._read, 65536)
            except OSError:
                chunk = b""
            with self._cond:
                if not chunk:
                    self._marks = -1
                    self._cond.notify_all()
                    return
                self._buffer += chunk
                self._marks += chunk.count(_MARK)  # a mark is written in one piece, well under PIPE_BUF
                self._cond.notify_all()

    def _sync(self) -> bytes:
        """Everything written to descriptor 2 until now, taken out of the buffer."""
        if not self._active:  # stopped under a decode that was given up on: descriptor 2 is the real one again
            return b""
        with self._cond:
            want = self._marks + 1
        os.write(2, _MARK)
        with self._cond:
            self._cond.wait_for(lambda: self._marks >= want or self._marks < 0, timeout=5.0)
            data = bytes(self._buffer)
            self._buffer.clear()
        return data.replace(_MARK, b"")

    @contextmanager
    def during(self) -> Iterator[Caught]:
        caught = Caught()
        if not self._active:
            yield caught
            return
        while not self._lock.acquire(timeout=0.2):
            if self._abandoned:  # a decode stuck for good holds the bracket: the rest of the run goes uncaught
                yield caught
                return
        try:
            before = self._sync()
            if before.strip():
                self.other += clean_lines(before)
            try:
                yield caught
            finally:
                caught.raw = self._sync()
                caught.lines = clean_lines(caught.raw)
        finally:
            self._lock.release()

    def abandon(self) -> None:
        """A decode inside a bracket will never return (batch's file timeout gave up on it): stop waiting for
        its bracket; later decodes run without one, their lines counted with `other` at the end."""
        self._abandoned = True

    def stop(self) -> None:
        if not self._active:
            return
        leftover = self._sync()
        self._active = False
        if leftover.strip():
            self.other += clean_lines(leftover)
        if sys.stderr is not self._saved_sys:
            try:
                sys.stderr.flush()
                sys.stderr.close()
            except (OSError, ValueError):
                pass
            sys.stderr = self._saved_sys
        os.dup2(self._real, 2)  # closes the pipe's write end: the drain thread ends
        os.close(self._real)
        self._thread.join(timeout=5.0)
        os.close(self._read)

    def __enter__(self) -> "NativeStderr":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


_current: NativeStderr | None = None


def current() -> NativeStderr:
    """The running capture, or an inactive one whose `during()` catches nothing."""
    return _current or NativeStderr()


@contextmanager
def kept_apart() -> Iterator[NativeStderr]:
    """Run a block with native stderr kept apart (nested calls share the outer capture)."""
    global _current
    if _current is not None:
        yield _current
        return
    capture = NativeStderr().start()
    _current = capture
    try:
        yield capture
    finally:
        _current = None
        capture.stop()


def report_native_lines(console, lines: list[str], most: int = 5) -> None:
    """The distinct lines native code wrote outside any file's bracket, each once with its count."""
    from collections import Counter

    from rich.markup import escape

    counts = Counter(lines)
    for line, n in counts.most_common(most):
        console.print(f"[yellow]note[/] from a native library{f' ({n}x)' if n > 1 else ''}: {escape(line)}")
    if len(counts) > most:
        console.print(f"[yellow]note[/] and {len(counts) - most} other line(s) from native libraries")
