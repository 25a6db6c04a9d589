"""A figure to one PNG, or figures and a summary table to one self-contained HTML file (images inlined)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from fer_edge import atomic
from fer_edge.errors import FerEdgeError, UsageError


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def save(fig, out: Path, title: str, table: list[list[str]] | None = None) -> Path:
    suffix = out.suffix.lower()
    if suffix not in (".png", ".html", ".htm"):
        raise UsageError(f"{out}: the report is written as .png or .html")
    image = png_bytes(fig)
    try:
        if suffix == ".png":
            atomic.write_bytes(out, image)
        else:
            atomic.write_bytes(out, page(title, image, table).encode("utf-8"))
    except OSError as e:
        raise FerEdgeError(f"{out}: cannot write the report ({e.strerror})") from None
    return out


def page(title: str, image: bytes, table: list[list[str]] | None) -> str:
    rows = ""
    if table:
        head, *body = table
        rows = "<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>"
        rows += "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body) + "</table>"
    data = base64.b64encode(image).decode("ascii")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}img{{max-width:100%}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
th{{background:#f4f4f4}}</style></head>
<body><h1>{html.escape(title)}</h1>
{rows}
<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">
</body></html>
"""
