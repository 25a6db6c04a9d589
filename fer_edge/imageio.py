"""Safe image reading and normalisation of any input to 8-bit grayscale or BGR."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import cv2
import numpy as np

from fer_edge import MAX_PIXELS, heif, imageheader
from fer_edge.errors import FerEdgeError

# What OpenCV 4.x's wheels decode, under the names cameras, phones, browsers and scanners give them; HEIF/HEIC
# (an iPhone's default) through the heif extra, and without it each such file is an error row saying so.
IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".avif", ".jp2",
    ".pgm", ".ppm", ".pbm", ".pnm", ".heic", ".heif", ".hif",
})

# EXIF orientation -> how to turn the stored pixels upright (None: as stored)
_UPRIGHT = {
    2: lambda im: cv2.flip(im, 1),
    3: lambda im: cv2.rotate(im, cv2.ROTATE_180),
    4: lambda im: cv2.flip(im, 0),
    5: lambda im: cv2.flip(cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE), 1),
    6: lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE),
    7: lambda im: cv2.flip(cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE), 1),
    8: lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def check_regular_file(path: Path) -> None:
    """A pipe, device or socket named as an input would block or never end: refuse it up front."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FerEdgeError(f"{path}: {'broken symbolic link' if path.is_symlink() else 'no such file'}") from None
    except PermissionError:
        raise FerEdgeError(f"{path}: permission denied") from None
    except OSError as e:
        raise FerEdgeError(f"{path}: cannot read ({e.strerror or e})") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a pipe" if stat.S_ISFIFO(mode) else "a device or socket"
        raise FerEdgeError(f"{path}: not a regular file ({kind})")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as OpenCV decodes it (any depth, any channels), turned upright by its EXIF
    orientation, or raise FerEdgeError. Oversized images are refused from their header, before decoding."""
    path = Path(path)
    check_regular_file(path)  # says what is wrong with a missing, unreadable or odd path
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except PermissionError:  # stat passes where reading does not (permissions, locks)
        raise FerEdgeError(f"{path}: permission denied") from None
    except OSError as e:  # gone since, or an I/O error
        raise FerEdgeError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        return decode_image(data)
    except FerEdgeError as e:
        raise FerEdgeError(f"{path}: {e}") from None


def decode_image(data: bytes | np.ndarray) -> np.ndarray:
    """Decode an encoded image held in memory (a file's bytes, an upload) as read_image does: refused from its
    header when it is over the pixel limit, turned upright by its orientation, HEIF through the heif extra."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = np.frombuffer(data, dtype=np.uint8)
    if data.size == 0:
        raise FerEdgeError("empty file (0 bytes)")
    head = data[: 1 << 16].tobytes()
    size = imageheader.dimensions(head)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise FerEdgeError(f"{size[0]}x{size[1]} exceeds the {MAX_PIXELS:,}-pixel limit (FER_EDGE_MAX_PIXELS)")
    lie = imageheader.overlong_chunk(memoryview(data))
    if lie is not None:
        raise FerEdgeError(f"not a decodable image: {lie} (corrupt)")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        image = None
    upright = _UPRIGHT.get(imageheader.orientation(head))  # AVIF too: OpenCV 4.x leaves its own turn undone
    if image is None and heif.is_heif(head):
        image, upright = heif.decode(data.tobytes(), MAX_PIXELS), None  # libheif turns it as it decodes
    if image is None:
        raise FerEdgeError(f"not a decodable image (corrupt, truncated, or over the {MAX_PIXELS:,}-pixel limit)")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise FerEdgeError(f"{image.shape[1]}x{image.shape[0]} exceeds the {MAX_PIXELS:,}-pixel limit (FER_EDGE_MAX_PIXELS)")
    return upright(image) if upright else image


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
