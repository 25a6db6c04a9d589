"""Per-track smoothing: an EMA of the probabilities, and hysteresis on the label that is shown.

With alpha a, a one-frame spike of another class reaches at most a of the smoothed mass, so with a
switch margin m it never flips the label while a < (1 + m) / 2 for the previous one-hot class. A real,
lasting change from class A to B flips the label once (1-a)^t < (1 - m) / 2, i.e. after
ceil(log((1 - m) / 2) / log(1 - a)) frames: 3 frames for the defaults (a=0.25, m=0.15), while
a two-frame blip still does not flip it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fer_edge.contract import LABELS


@dataclass
class SmoothedState:
    probs: np.ndarray  # smoothed, LABELS order
    label: int  # index of the displayed label


class EmotionSmoother:
    def __init__(self, alpha: float = 0.25, margin: float = 0.15):
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha = alpha
        self.margin = margin
        self.states: dict[int, SmoothedState] = {}

    @property
    def switch_delay(self) -> int:
        """Frames a lasting, complete change needs before the shown label follows it."""
        if self.alpha >= 1:
            return 1
        return max(1, math.ceil(math.log((1 - self.margin) / 2) / math.log(1 - self.alpha)))

    def update(self, track: int, probs: np.ndarray) -> SmoothedState:
        probs = np.asarray(probs, dtype=np.float64)
        state = self.states.get(track)
        if state is None:
            state = SmoothedState(probs.copy(), int(np.argmax(probs)))
            self.states[track] = state
            return state
        state.probs = (1 - self.alpha) * state.probs + self.alpha * probs
        best = int(np.argmax(state.probs))
        if best != state.label and state.probs[best] - state.probs[state.label] > self.margin:
            state.label = best
        return state

    def label(self, track: int) -> tuple[str, float]:
        s = self.states[track]
        return LABELS[s.label], float(s.probs[s.label])

    def forget(self, keep: set[int]) -> None:
        for track in list(self.states):
            if track not in keep:
                del self.states[track]
