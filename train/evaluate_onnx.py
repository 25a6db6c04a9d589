"""Predictions of an exported .onnx model, through the runtime's own classifier (no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def onnx_probs(path: Path, x: np.ndarray, tta: bool = False, batch: int = 256, device: str = "cpu") -> np.ndarray:
    from fer_edge.classifier import ExpressionClassifier

    clf = ExpressionClassifier.from_path(path, device=device)
    p = clf.predict_probs(x, batch=batch)
    if tta:
        p = (p + clf.predict_probs(np.ascontiguousarray(x[:, :, ::-1]), batch=batch)) / 2
    return p
