"""Face crops that look like FER2013's: square, with a margin around the detector's box, 48x48 gray.

Only the crop region is converted and resized, never the whole image, so a 6000x4000 photo costs no
more per face than a webcam frame. Where the square runs past the image, the border pixels are
repeated rather than the square shrunk, so the face keeps its shape.
"""

from __future__ import annotations

import cv2
import numpy as np

from fer_edge.contract import INPUT_SIZE
from fer_edge.imageio import to_gray_u8

# Extra context on each side, as a fraction of the box side. Each detector carries its own tuned value
# (detect.py); this one is for boxes that already frame a face as FER2013 does.
DEFAULT_MARGIN = 0.0
# The recognizer aligns a crop only when the face is tilted at least this much: FER2013's own faces lean a
# few degrees, and levelling every face cost 2.6 points on upright ones (benchmarks/alignment.py).
ALIGN_MIN_TILT = 10.0


def square_box(box: tuple[int, int, int, int], margin: float) -> tuple[int, int, int]:
    """(x, y, w, h) -> (x0, y0, side): a square around the box centre, margin added on each side."""
    x, y, w, h = box
    side = max(1, int(round(max(w, h) * (1 + 2 * margin))))
    cx, cy = x + w / 2, y + h / 2
    return int(round(cx - side / 2)), int(round(cy - side / 2)), side


def crop_face(image: np.ndarray, box: tuple[int, int, int, int], margin: float = DEFAULT_MARGIN, size: int = INPUT_SIZE,
              angle: float = 0.0) -> np.ndarray:
    """A size x size uint8 grayscale crop of `box` in `image` (any channels and depth). `angle` (degrees, the
    eye line's tilt) turns the crop so the eyes are level."""
    if abs(angle) >= 1.0:
        return _aligned(image, box, margin, size, angle)
    return _square_crop(image, square_box(box, margin), size)


def _square_crop(image: np.ndarray, square: tuple[int, int, int], size: int) -> np.ndarray:
    h, w = image.shape[:2]
    x0, y0, side = square
    x1, y1 = x0 + side, y0 + side
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx1 <= cx0 or cy1 <= cy0:
        return np.zeros((size, size), np.uint8)
    roi = to_gray_u8(image[cy0:cy1, cx0:cx1])
    if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
        roi = cv2.copyMakeBorder(roi, cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if side >= size else cv2.INTER_LINEAR
    return cv2.resize(roi, (size, size), interpolation=interp)


def _aligned(image: np.ndarray, box: tuple[int, int, int, int], margin: float, size: int, angle: float) -> np.ndarray:
    """Crop a square around the box large enough to hold it turned (side x 1.5), bring it to scale, then
    rotate it about its centre by the eye line's tilt and keep the middle size x size."""
    x0, y0, side = square_box(box, margin)
    big = int(round(side * 1.5))
    outer = (x0 + side // 2 - big // 2, y0 + side // 2 - big // 2, big)
    scaled = int(round(size * 1.5))
    roi = _square_crop(image, outer, scaled)
    m = cv2.getRotationMatrix2D((scaled / 2 - 0.5, scaled / 2 - 0.5), angle, 1.0)
    m[:, 2] -= (scaled - size) / 2
    return cv2.warpAffine(roi, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def level_tilts(tilts: list[float] | None) -> list[float] | None:
    """The turn each crop gets: the eye line's tilt where it is at least ALIGN_MIN_TILT degrees, else none."""
    return [a if abs(a) >= ALIGN_MIN_TILT else 0.0 for a in tilts] if tilts else None


def crop_faces(image: np.ndarray, boxes: list[tuple[int, int, int, int]], margin: float = DEFAULT_MARGIN,
               angles: list[float] | None = None) -> np.ndarray:
    if not boxes:
        return np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8)
    angles = angles or [0.0] * len(boxes)
    return np.stack([crop_face(image, b, margin, angle=a) for b, a in zip(boxes, angles)])
