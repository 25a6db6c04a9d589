"""fer-edge's own folder on this machine, and the content hash its records use.

Root: FER_EDGE_HOME, else the platform's user cache folder (~/.cache/fer-edge on Linux). It holds the model
store (`detectors/`, `manifest.json`: store.py), TensorRT engine caches (providers.py) and the trainer's
caches: parsed datasets and ONNX teachers' labels (FER_EDGE_CACHE overrides those).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path


def home() -> Path:
    if os.environ.get("FER_EDGE_HOME"):
        return Path(os.environ["FER_EDGE_HOME"]).expanduser()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "fer-edge" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "fer-edge"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fer-edge"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
