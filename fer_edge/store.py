"""The model store: the detector models kept in fer-edge's home folder (home.py): `detectors/` (models pulled
or added by `fer-edge models`) and `manifest.json` (what was stored, with its sha256).

A download is streamed to a temporary file in the store, checked against its pin (size and sha256), and
only then renamed into place: an interrupted, refused or failed download leaves nothing behind.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from fer_edge import atomic, registry
from fer_edge.errors import FerEdgeError, UsageError
from fer_edge.home import home, sha256_of
from fer_edge.registry import Pin


# the detectors the store can fetch, by name, with their pins (registry.py names every model)
KNOWN: dict[str, Pin] = {name: m.pin for name, m in registry.detectors().items()}


def _by_hand(name: str) -> str:
    pin = KNOWN[name]
    return f"download {pin.url} by hand and run: fer-edge models add {name} FILE"


def detectors_dir() -> Path:
    return home() / "detectors"


def _manifest_path() -> Path:
    return home() / "manifest.json"


def read_manifest() -> dict:
    path = _manifest_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}  # a damaged manifest: as if empty; the next add or pull rewrites it


def _write_manifest(data: dict) -> None:
    atomic.write_bytes(_manifest_path(), json.dumps(data, indent=2, sort_keys=True).encode())


def stored(name: str) -> Path | None:
    """The stored model of that name, if it is there and still the file that was recorded."""
    entry = read_manifest().get(name)
    if not entry:
        return None
    path = detectors_dir() / entry["file"]
    return path if path.is_file() and path.stat().st_size == entry.get("size") else None


def _record(name: str, path: Path, sha: str, source: str) -> Path:
    manifest = read_manifest()
    manifest[name] = {"file": path.name, "size": path.stat().st_size, "sha256": sha, "source": source,
                      "added": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write_manifest(manifest)
    return path


def _prepare(name: str) -> Path:
    if name not in KNOWN:
        raise UsageError(f"unknown model {name!r}; the store knows: {', '.join(KNOWN)}")
    folder = detectors_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FerEdgeError(f"cannot create the model store at {folder} ({e.strerror}); set FER_EDGE_HOME to a writable folder") from None
    return folder


def pull(name: str, url: str | None = None, pin: Pin | None = None, progress: Callable[[int, int], None] | None = None,
         timeout: float = 30.0) -> Path:
    """Download a known model (or from a mirror `url`; the pin still applies), verify it, store it."""
    folder = _prepare(name)
    pin = pin or KNOWN[name]
    source = url or pin.url
    final = folder / pin.filename
    fd, tmp = atomic.temp_beside(final, ".part")
    try:
        got = 0
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(source, timeout=timeout) as response:
                total = int(response.headers.get("Content-Length") or pin.size)
                while True:
                    chunk = response.read(1 << 16)
                    if not chunk:
                        break
                    out.write(chunk)
                    got += len(chunk)
                    if progress:
                        progress(got, total)
        except urllib.error.HTTPError as e:
            raise FerEdgeError(f"{source}: the server answered {e.code} {e.reason}; {_by_hand(name)}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:  # HTTPException: IncompleteRead
            reason = getattr(e, "reason", None) or e
            what = "download interrupted" if got else "cannot reach the server (no network?)"
            raise FerEdgeError(f"{source}: {what} ({reason}); nothing was kept; {_by_hand(name)}") from None
        if got != pin.size:
            raise FerEdgeError(f"{source}: download interrupted or wrong file: {got:,} bytes, expected {pin.size:,}; "
                               f"nothing was kept; {_by_hand(name)}")
        sha = sha256_of(tmp)
        if sha != pin.sha256:
            raise FerEdgeError(f"{source}: checksum mismatch (sha256 {sha[:16]}..., expected {pin.sha256[:16]}...); "
                               f"nothing was kept; {_by_hand(name)}")
        atomic.publish(tmp, final)
        return _record(name, final, sha, source)
    finally:
        tmp.unlink(missing_ok=True)


def add(name: str, file: Path, check: Callable[[Path], None]) -> Path:
    """Store a local copy, after `check` (which raises FerEdgeError) accepts it: for YuNet,
    detect.check_yunet loads it and finds the test face."""
    folder = _prepare(name)
    file = Path(file)
    if not file.is_file():
        raise UsageError(f"{file}: no such file")
    check(file)
    sha = sha256_of(file)
    final = folder / file.name
    atomic.write_bytes(final, file.read_bytes())
    return _record(name, final, sha, str(file.resolve()))


def remove(name: str) -> Path:
    manifest = read_manifest()
    entry = manifest.pop(name, None)
    if entry is None:
        raise UsageError(f"{name!r} is not in the store ({home()}); see fer-edge models list")
    path = detectors_dir() / entry["file"]
    path.unlink(missing_ok=True)
    _write_manifest(manifest)
    return path
