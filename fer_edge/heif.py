"""HEIF/HEIC photos (an iPhone's default format) through pillow-heif, the `heif` extra: OpenCV cannot decode
HEVC images. Told apart by their bytes, not their name: phones and transfer tools often save HEIC as .jpg."""

from __future__ import annotations

import numpy as np

from fer_edge.errors import FerEdgeError

# ISO-BMFF major brands of HEVC-coded HEIF images and sequences (AVIF's own brands are left out: OpenCV reads AVIF)
_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"})


def is_heif(head: bytes) -> bool:
    """Whether a file's first bytes open an ISO-BMFF box of a HEIF brand."""
    return len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in _BRANDS


def decode(data: bytes, max_pixels: int) -> np.ndarray:
    """The primary image as 8-bit BGR, BGRA or gray, turned by the file's own rotation and mirror (libheif
    applies them), or FerEdgeError. The size is checked against max_pixels before a byte of it is decoded."""
    try:
        import pillow_heif
    except ImportError:
        raise FerEdgeError('a HEIF/HEIC image, which OpenCV cannot decode: pip install "fer-edge[heif]" '
                           "(or convert it to JPEG)") from None
    try:
        heif = pillow_heif.open_heif(data, convert_hdr_to_8bit=True, bgr_mode=True)
        width, height = heif.size
        if width * height > max_pixels:
            raise FerEdgeError(f"{width}x{height} exceeds the {max_pixels:,}-pixel limit (FER_EDGE_MAX_PIXELS)")
        return np.ascontiguousarray(np.asarray(heif))
    except FerEdgeError:
        raise
    except Exception as e:  # libheif's errors are plain exceptions (ValueError, RuntimeError, ...)
        raise FerEdgeError(f"not a decodable HEIF image ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def reader_version() -> str | None:
    """pillow-heif's version, or None where the extra is not installed (read without importing it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pillow-heif")
    except PackageNotFoundError:
        return None
