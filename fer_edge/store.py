"""fer-edge's own folder on this machine: FER_EDGE_HOME, else the platform's user cache folder.

It holds what fer-edge keeps between runs: TensorRT engine caches, and the parsed-dataset cache of the
trainer (FER_EDGE_CACHE overrides that one).
"""

from __future__ import annotations

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
