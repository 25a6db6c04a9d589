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


def square_box(box: tuple[int, int, int, int], margin: float) -> tuple[int, int, int]:
    """(x, y, w, h) -> (x0, y0, side): a square around the box centre, margin added on each side."""
    x, y, w, h = box
    side = max(1, int(round(max(w, h) * (1 + 2 * margin))))
    cx, cy = x + w / 2, y + h / 2
    return int(round(cx - side / 2)), int(round(cy - side / 2)), side


def crop_face(image: np.ndarray, box: tuple[int, int, int, int], margin: float = DEFAULT_MARGIN, size: int = INPUT_SIZE) -> np.ndarray:
    """A size x size uint8 grayscale crop of `box` in `image` (any channels and depth)."""
    h, w = image.shape[:2]
    x0, y0, side = square_box(box, margin)
    x1, y1 = x0 + side, y0 + side
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx1 <= cx0 or cy1 <= cy0:
        return np.zeros((size, size), np.uint8)
    roi = to_gray_u8(image[cy0:cy1, cx0:cx1])
    if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
        roi = cv2.copyMakeBorder(roi, cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if side >= size else cv2.INTER_LINEAR
    return cv2.resize(roi, (size, size), interpolation=interp)


def crop_faces(image: np.ndarray, boxes: list[tuple[int, int, int, int]], margin: float = DEFAULT_MARGIN) -> np.ndarray:
    if not boxes:
        return np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8)
    return np.stack([crop_face(image, b, margin) for b in boxes])
