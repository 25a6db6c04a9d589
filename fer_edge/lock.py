"""One writer per output: an exclusive lock held for a whole run, so that two runs given the same --out
(or --annotate folder) cannot interleave their rows. The second one fails at once and names the first.

The lock is an flock on a small file beside the output (`.NAME.lock`, or `.fer-edge.lock` inside a
folder), not on the output itself: `--resume` replaces the output file atomically, which would drop a
lock taken on it. The lock file holds the owner's pid and command line, and is removed when the run ends.
Where flock does not exist (Windows), or the lock file cannot be created, nothing is locked.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Callable

from fer_edge.errors import FerEdgeError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


def _lock_path(target: Path) -> Path:
    return target / ".fer-edge.lock" if target.is_dir() else target.parent / f".{target.name}.lock"


def exclusive(target: Path, option: str) -> Callable[[], None]:
    """Lock `target` (a file about to be written, or a folder) for this process; return the release."""
    if fcntl is None:
        return lambda: None
    try:
        if target.exists() and not (target.is_dir() or stat.S_ISREG(os.stat(target).st_mode)):
            return lambda: None  # /dev/stdout, /dev/full, a pipe: nothing to protect
    except OSError:
        return lambda: None
    path = _lock_path(target)
    for _ in range(5):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return lambda: None  # a read-only folder: writing the output will say what is wrong
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 300, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise FerEdgeError(f"{target}: another fer-edge run is writing it ({holder or 'pid unknown'}); "
                               f"wait for it to end, or choose another {option}") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a lock file its previous owner removed while we opened it
            break
        os.close(fd)
    else:
        return lambda: None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}: {' '.join(sys.argv)[:200]}".encode("utf-8", "replace"))

    def release() -> None:
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)

    return release
