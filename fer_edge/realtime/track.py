"""IoU tracker: gives each face a stable id while it stays in view."""

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
    box: Box
    score: float = 0.0
    missed: int = 0  # detection rounds since it was last matched
    hits: int = 1


class IoUTracker:
    def __init__(self, iou_threshold: float = 0.25, max_missed: int = 5):
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, boxes: list[Box], scores: list[float] | None = None) -> list[Track]:
        """Match this round's detections to tracks (greedy by IoU); return the tracks seen now, in box order."""
        scores = scores or [0.0] * len(boxes)
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
            t.box, t.score = b, scores[bi]
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return [owner[bi] for bi in range(len(boxes))]

    def current(self) -> list[Track]:
        """Tracks to carry between detection rounds: those seen in the last round."""
        return [t for t in self.tracks if t.missed == 0]

    def ids(self) -> set[int]:
        return {t.id for t in self.tracks}
