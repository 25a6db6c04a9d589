"""Are the probabilities honest? Expected calibration error, and the temperature that makes them more so.

Numpy only (an .onnx model's probabilities are calibrated without torch). Temperature T acts on the final
probabilities, p_i^(1/T) / sum_j p_j^(1/T): for a single softmax model that is exactly logits / T, and for an
ensemble average it is the same map applied to its output (it is what the export bakes into the graph).
"""

from __future__ import annotations

import numpy as np


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top label, equal-width confidence bins (a fraction, 0 is perfect)."""
    conf = probs.max(1)
    right = probs.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            total += sel.mean() * abs(conf[sel].mean() - right[sel].mean())
    return float(total)


def apply_temperature(probs: np.ndarray, t: float) -> np.ndarray:
    logp = np.log(np.clip(probs, 1e-12, 1.0)) / t
    logp -= logp.max(1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(1, keepdims=True)


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)).mean())


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood (golden-section search on log T)."""
    lo, hi = np.log(0.25), np.log(4.0)
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll(apply_temperature(probs, np.exp(a)), y), nll(apply_temperature(probs, np.exp(b)), y)
    for _ in range(40):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = nll(apply_temperature(probs, np.exp(a)), y)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll(apply_temperature(probs, np.exp(b)), y)
    return float(np.exp((lo + hi) / 2))


def chosen_temperature(probs: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    """The temperature an export applies, and what to say of it: the fitted one when it lowers the expected
    calibration error on these faces, else 1 (none)."""
    t = fit_temperature(probs, y)
    before, after = ece(probs, y), ece(apply_temperature(probs, t), y)
    said = f"calibration on val: temperature {t:.3f}, ECE {100 * before:.2f}% -> {100 * after:.2f}%"
    return (t, said) if after < before else (1.0, said + "; not applied")
