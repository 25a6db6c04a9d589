"""IoU tracker: gives each face a stable id while it stays in view, and moves its box between detections.

Between detection rounds (`--detect-every` > 1) a box would otherwise stand still and then jump; each
track keeps a damped per-frame velocity from its detections and `predict()` carries the box along it.
A face the detector misses (turned away, blurred, one bad frame) is held on its predicted box for up to
`max_missed` detection rounds, about half a second, and keeps its id when it is found again. Ids are never
reused.
"""

from __future__ import annotations

from dataclasses import dataclass

Box = tuple[int, int, int, int]


def iou(a: Box, b: Box) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    id: int
    box: Box  # where the face is now: detected, or predicted between detections
    score: float = 0.0
    missed: int = 0  # detection rounds since it was last matched
    hits: int = 1
    detected: Box | None = None  # the last detected box
    velocity: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)  # x, y, w, h per frame
    since: int = 0  # frames since the last detection
    detected_now: bool = True  # this frame's box came from the detector (not predicted, not held)
    angle: float = 0.0  # the eye line's tilt at the last detection (YuNet), for aligned crops

    @property
    def held(self) -> bool:
        """Lost by the detector and carried on its motion until it is found again or given up."""
        return self.missed > 0


class IoUTracker:
    def __init__(self, iou_threshold: float = 0.25, max_missed: int = 5, damping: float = 0.5):
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.damping = damping  # share of the old velocity kept at each detection: detector jitter is not motion
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, boxes: list[Box], scores: list[float] | None = None, angles: list[float] | None = None) -> list[Track]:
        """Match this round's detections to tracks (greedy by IoU). Return the detected tracks in box order,
        then the held ones (missed, on their predicted boxes).

        Tracks are matched at their predicted boxes, so a face moving fast between rounds keeps its id.
        """
        self._advance()
        scores = scores or [0.0] * len(boxes)
        angles = angles or [0.0] * len(boxes)
        pairs = sorted(
            ((iou(t.box, b), ti, bi) for ti, t in enumerate(self.tracks) for bi, b in enumerate(boxes)), reverse=True
        )
        matched_tracks: set[int] = set()
        owner: dict[int, Track] = {}
        for overlap, ti, bi in pairs:
            if overlap < self.iou_threshold:
                break
            if ti in matched_tracks or bi in owner:
                continue
            matched_tracks.add(ti)
            owner[bi] = self.tracks[ti]
        for ti, t in enumerate(self.tracks):
            if ti not in matched_tracks:
                t.missed += 1
                t.detected_now = False
        for bi, b in enumerate(boxes):
            t = owner.get(bi)
            if t is None:
                t = Track(self._next_id, b)
                self._next_id += 1
                self.tracks.append(t)
                owner[bi] = t
            else:
                t.hits += 1
                t.missed = 0
                self._observe(t, b)
            t.box, t.score, t.detected, t.since, t.detected_now, t.angle = b, scores[bi], b, 0, True, angles[bi]
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        found = [owner[bi] for bi in range(len(boxes))]
        return found + [t for t in self.tracks if t.held]

    def follow(self, t: Track, box: Box) -> None:
        """The face was found at `box` without the detector (FaceFollower): the box and the motion follow it;
        a track the detector has lost still counts its missed rounds."""
        self._observe(t, box)
        t.box, t.detected, t.since = box, box, 0

    def _observe(self, t: Track, box: Box) -> None:
        """Blend the motion seen since the track's last observed box into its velocity."""
        if t.detected is not None and t.since > 0:
            seen = tuple((n - o) / t.since for n, o in zip(box, t.detected))
            t.velocity = tuple(self.damping * v + (1 - self.damping) * s for v, s in zip(t.velocity, seen))

    def reset(self) -> None:
        """A shot cut: every track ends (ids are still never reused)."""
        self.tracks = []

    def predict(self) -> list[Track]:
        """A frame without detection: move every live track along its velocity (held ones too)."""
        self._advance()
        for t in self.tracks:
            t.detected_now = False
        return list(self.tracks)

    def _advance(self) -> None:
        for t in self.tracks:
            t.since += 1
            if t.detected is not None:
                x, y, w, h = (d + v * t.since for d, v in zip(t.detected, t.velocity))
                t.box = (round(x), round(y), max(1, round(w)), max(1, round(h)))

    def ids(self) -> set[int]:
        return {t.id for t in self.tracks}
