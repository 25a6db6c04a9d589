"""How this copy of fer-edge was installed, so that a hint to add an extra is one the user can paste."""

from __future__ import annotations

import json
from importlib import metadata
from urllib.parse import unquote, urlparse


def extra_hint(extra: str) -> str:
    """`pip install -e "/src/fer-edge[train]"` for an editable install from a checkout, `pip install
    "/path/fer-edge[train]"` for one from a local folder, `pip install "fer-edge[train]"` otherwise."""
    direct = None
    for dist in metadata.distributions(name="fer-edge"):  # a checkout's own .egg-info may come first
        try:
            direct = json.loads(dist.read_text("direct_url.json") or "null")
        except (json.JSONDecodeError, OSError):
            continue
        if direct:
            break
    if isinstance(direct, dict) and str(direct.get("url", "")).startswith("file://"):
        folder = unquote(urlparse(direct["url"]).path)
        editable = (direct.get("dir_info") or {}).get("editable", False)
        return f'pip install {"-e " if editable else ""}"{folder}[{extra}]"'
    return f'pip install "fer-edge[{extra}]"'
