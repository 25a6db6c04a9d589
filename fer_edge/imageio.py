"""Safe image reading and normalisation of any input to 8-bit grayscale or BGR."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from fer_edge.errors import FerEdgeError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})

# Refuse images above this many pixels before decoding (a decompression bomb, or a 1-gigapixel scan).
# 100 MP covers every camera photo; override with FER_EDGE_MAX_PIXELS.
MAX_PIXELS = int(os.environ.get("FER_EDGE_MAX_PIXELS", 100_000_000))
# OpenCV checks this limit itself while decoding; it reads the variable once, at import.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as OpenCV decodes it (any depth, any channels), or raise FerEdgeError."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise FerEdgeError(f"{path}: no such file") from None
    except PermissionError:
        raise FerEdgeError(f"{path}: permission denied") from None
    except OSError as e:
        raise FerEdgeError(f"{path}: cannot read ({e.strerror or e})") from None
    if data.size == 0:
        raise FerEdgeError(f"{path}: empty file (0 bytes)")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        image = None
    if image is None:
        raise FerEdgeError(f"{path}: not a decodable image (corrupt, truncated, or too large)")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise FerEdgeError(f"{path}: {image.shape[1]}x{image.shape[0]} exceeds the {MAX_PIXELS:,}-pixel limit")
    return image


def to_u8(image: np.ndarray) -> np.ndarray:
    """Scale 16-bit or float images to 8 bits; 8-bit passes through untouched."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        hi = 1.0 if float(np.nanmax(image, initial=0.0)) <= 1.0 else 255.0
        return np.clip(np.nan_to_num(image) * (255.0 / hi), 0, 255).astype(np.uint8)
    return np.clip(image, 0, 255).astype(np.uint8)


def to_gray_u8(image: np.ndarray) -> np.ndarray:
    """Any image (gray, BGR, BGRA; 8/16-bit, float) as 8-bit single-channel."""
    image = to_u8(image)
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise FerEdgeError(f"unsupported image shape {image.shape}")


def to_bgr_u8(image: np.ndarray) -> np.ndarray:
    """Any image as 8-bit BGR, for detectors that want colour and for drawing."""
    image = to_u8(image)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise FerEdgeError(f"unsupported image shape {image.shape}")
