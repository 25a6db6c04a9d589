"""Between detections, keep each box on its face, or drop it; and notice shot cuts.

A box carried along its track's motion drifts: onto a microphone, a chin, or, after a cut, onto a face that
is no longer there. `FaceFollower` keeps a small grey template of every face where the detector last found
it and, on the frames the detector skips or misses, looks for it around the predicted box (normalised
cross-correlation on a copy scaled so the face is `TEMPLATE` px wide: a fraction of a millisecond a face).
Found: the box moves to where the face is. Not found: the box is not classified and no record is written for
it; the track keeps its id until the tracker gives it up, in case the detector finds the face again.

`CutDetector` compares each frame's thumbnail with the last one: a jump far above the clip's recent
frame-to-frame change is a cut, and a face seen before a cut says nothing about the frame after it.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

Box = tuple[int, int, int, int]

TEMPLATE = 24  # px across the face: enough texture to tell a face from a chin, cheap to match
SEARCH = 0.5  # search this share of the box's size around the predicted box, on each side
MIN_MATCH = 0.6  # TM_CCOEFF_NORMED; the same face a few frames on scores 0.8-0.99
STEADY_MATCH = 0.96  # found again this closely, a face has not turned or changed: no need to detect it again yet
MIN_CONTRAST = 6.0  # grey-level std below which a window is flat: correlation there means nothing
# how the face is looked for, as (width, height) of the predicted box and whether mirrored: as predicted,
# nearer, further, turning (a face turning away narrows), and turned the other way (roughly its mirror image)
LOOKS = ((1.0, 1.0, False), (1.1, 1.1, False), (1 / 1.1, 1 / 1.1, False), (0.75, 1.0, False), (1.0, 1.0, True),
         (0.75, 1.0, True))


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY)


def _clip(box: Box, shape: tuple[int, ...]) -> Box | None:
    h, w = shape[:2]
    x0, y0 = max(0, box[0]), max(0, box[1])
    x1, y1 = min(w, box[0] + box[2]), min(h, box[1] + box[3])
    return (x0, y0, x1 - x0, y1 - y0) if x1 - x0 >= 4 and y1 - y0 >= 4 else None


class FaceFollower:
    def __init__(self, template: int = TEMPLATE, search: float = SEARCH, min_match: float = MIN_MATCH):
        self.template = template
        self.search = search
        self.min_match = min_match
        self._faces: dict[int, np.ndarray] = {}  # track id -> its face's grey template, TEMPLATE px wide
        self.scores: dict[int, float] = {}  # track id -> how well its face was found last (0: not found)

    def remember(self, track_id: int, image: np.ndarray, box: Box) -> None:
        """The detector found this face here: its look becomes the track's template."""
        inside = _clip(box, image.shape)
        if inside is None:
            return
        x, y, w, h = inside
        scale = self.template / w
        size = (self.template, max(4, round(h * scale)))
        self._faces[track_id] = cv2.resize(_gray(image[y : y + h, x : x + w]), size, interpolation=cv2.INTER_AREA)

    def find(self, track_id: int, image: np.ndarray, predicted: Box) -> Box | None:
        """Where the track's face is near `predicted`, or None when nothing there looks like it.

        The part of the face still inside the frame is matched (a face leaving the frame is followed until
        less than a third of it shows), at the sizes in LOOKS."""
        self.scores[track_id] = 0.0
        tmpl = self._faces.get(track_id)
        if tmpl is None:
            return None
        x, y, w, h = predicted
        visible = _clip(predicted, image.shape)
        if visible is None or visible[2] * visible[3] < w * h / 3:
            return None
        mx, my = round(w * self.search), round(h * self.search)
        window = _clip((visible[0] - mx, visible[1] - my, visible[2] + 2 * mx, visible[3] + 2 * my), image.shape)
        wx, wy, ww, wh = window
        gray = _gray(image[wy : wy + wh, wx : wx + ww])
        best = (self.min_match, None)
        regions: dict[tuple[int, int], np.ndarray] = {}  # a look and its mirror share their resized window
        for zx, zy, mirrored in LOOKS:
            sx, sy = tmpl.shape[1] / (w * zx), tmpl.shape[0] / (h * zy)  # frame px -> template px
            # the template's part that falls inside the frame, at this size
            tx0, ty0 = round((visible[0] - x) * sx), round((visible[1] - y) * sy)
            part = (tmpl[:, ::-1] if mirrored else tmpl)[ty0 : ty0 + round(visible[3] * sy), tx0 : tx0 + round(visible[2] * sx)]
            region_size = (round(ww * sx), round(wh * sy))
            if min(part.shape) < 8 or region_size[0] < part.shape[1] or region_size[1] < part.shape[0]:
                continue
            region = regions.get(region_size)
            if region is None:
                region = regions[region_size] = cv2.resize(gray, region_size, interpolation=cv2.INTER_AREA)
                if float(region.std()) < MIN_CONTRAST:
                    return None
            _, score, _, (bx, by) = cv2.minMaxLoc(cv2.matchTemplate(region, part, cv2.TM_CCOEFF_NORMED))
            if np.isfinite(score) and score > best[0]:
                best = (score, (wx + round((bx - tx0) / sx), wy + round((by - ty0) / sy), round(w * zx), round(h * zy)))
        if best[1] is not None:
            self.scores[track_id] = float(best[0])
        return best[1]

    def forget(self, live: set[int]) -> None:
        for k in [k for k in self._faces if k not in live]:
            del self._faces[k]
        self.scores = {k: v for k, v in self.scores.items() if k in live}


class CutDetector:
    """A frame whose thumbnail differs from the last one's by far more than the recent frames did."""

    def __init__(self, floor: float = 20.0, factor: float = 4.0, history: int = 15):
        self.floor = floor  # mean grey-level change a cut needs at least (a pan or a person moving stays below)
        self.factor = factor  # and this many times the recent median change (a shaky camera raises the bar)
        self._recent: deque[float] = deque(maxlen=history)
        self._last: np.ndarray | None = None
        self.diff: np.ndarray | None = None  # |this thumbnail - the last one|, 27 x 48 grey levels

    def is_cut(self, image: np.ndarray) -> bool:
        # grey first: one channel to average instead of three (0.51 against 0.82 ms a 720x480 frame)
        thumb = cv2.resize(_gray(image), (48, 27), interpolation=cv2.INTER_AREA).astype(np.float32)
        last, self._last = self._last, thumb
        if last is None:
            self.diff = None
            return False
        self.diff = np.abs(thumb - last)
        change = float(self.diff.mean())
        usual = float(np.median(self._recent)) if self._recent else 0.0
        self._recent.append(change)
        return change >= max(self.floor, self.factor * usual)

    def quiet_outside(self, boxes: list[Box], shape: tuple[int, ...], level: float = 8.0) -> bool:
        """Nothing changed between the last two frames outside these boxes: no cell of the thumbnail there
        (about 13 x 18 px of a 640 x 480 frame) changed by more than `level` grey levels, so no face can have
        come into view. A cell averages a few hundred pixels: sensor noise moves it well under one level."""
        if self.diff is None:
            return False
        mask = np.ones(self.diff.shape, bool)
        sy, sx = self.diff.shape[0] / shape[0], self.diff.shape[1] / shape[1]
        for x, y, w, h in boxes:
            mask[max(0, int(y * sy)) : int(np.ceil((y + h) * sy)) + 1, max(0, int(x * sx)) : int(np.ceil((x + w) * sx)) + 1] = False
        return not mask.any() or float(self.diff[mask].max()) <= level
