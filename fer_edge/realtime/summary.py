"""What a realtime run yields and measures: each face of a frame (TrackedFace), each stage's milliseconds
and the frame rate, each track's labels, and the run's result."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from fer_edge.contract import LABELS

STAGES = ("capture", "detect", "classify", "draw")


@dataclass(frozen=True)
class TrackedFace:
    track: int
    box: tuple[int, int, int, int]
    label: str  # smoothed, with hysteresis
    confidence: float  # smoothed probability of `label`
    probs: tuple[float, ...]  # smoothed
    raw: tuple[float, ...]  # this frame's model output
    detected: bool = True  # this frame's box came from the detector (else predicted along the track's motion)
    held: bool = False  # the detector has lost this face: its box is held on the predicted motion


class Timings:
    """Exponential moving averages of per-stage milliseconds and of the frame rate."""

    def __init__(self, alpha: float = 0.1):
        self.alpha = alpha
        self.ms = {s: 0.0 for s in STAGES}
        self.totals = {s: 0.0 for s in STAGES}
        self.fps = 0.0
        self.latency_ms = 0.0
        self.frames = 0
        self._last: float | None = None

    def add(self, stage: str, seconds: float) -> None:
        ms = 1000 * seconds
        self.ms[stage] = ms if self.frames == 0 else (1 - self.alpha) * self.ms[stage] + self.alpha * ms
        self.totals[stage] += ms

    def tick(self, now: float, captured: float) -> None:
        if self._last is not None and now > self._last:
            fps = 1.0 / (now - self._last)
            self.fps = fps if self.fps == 0 else (1 - self.alpha) * self.fps + self.alpha * fps
        self._last = now
        lat = 1000 * (now - captured)
        self.latency_ms = lat if self.frames == 0 else (1 - self.alpha) * self.latency_ms + self.alpha * lat
        self.frames += 1

    def mean_ms(self) -> dict[str, float]:
        return {s: self.totals[s] / max(self.frames, 1) for s in STAGES}



@dataclass
class TrackSummary:
    frames: int = 0
    counts: Counter = field(default_factory=Counter)

    @property
    def dominant(self) -> str:
        return self.counts.most_common(1)[0][0] if self.counts else ""

    def shares(self) -> dict[str, float]:
        return {label: self.counts.get(label, 0) / max(self.frames, 1) for label in LABELS}


@dataclass
class LoopResult:
    frames: int
    seconds: float
    stopped_by: str
    tracks: dict[int, TrackSummary]
    mean_ms: dict[str, float]
    provider: str
    records: int = 0
    interrupted: KeyboardInterrupt | None = None  # Ctrl-C or a termination signal ended the run

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0
