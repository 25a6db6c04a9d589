"""FER2013-C: the corruptions real cameras add to a face crop, at three severities each.

Written with OpenCV and numpy on uint8 [N, 48, 48] faces, so the suite runs through the runtime's ONNX path
without torch (`benchmarks/robustness.py`). The trainer's augmentation (`augment.corrupt`) draws from the
same families with its own torch code and random strengths: the suite is the held-out test of that recipe.
The middle severity of each is the setting first measured in the robustness issue.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

Faces = np.ndarray  # uint8 [N, 48, 48]


def _per_face(x: Faces, fn: Callable[[np.ndarray], np.ndarray]) -> Faces:
    return np.stack([fn(f) for f in x]) if len(x) else x.copy()


def blur(x: Faces, sigma: float) -> Faces:
    return _per_face(x, lambda f: cv2.GaussianBlur(f, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE))


def down_up(x: Faces, px: int) -> Faces:
    """A face px tall in the frame, upscaled to 48 as the crop step does."""
    side = x.shape[-1]
    return _per_face(x, lambda f: cv2.resize(cv2.resize(f, (px, px), interpolation=cv2.INTER_AREA), (side, side), interpolation=cv2.INTER_LINEAR))


def noise(x: Faces, sigma: float, seed: int = 0) -> Faces:
    rng = np.random.default_rng(seed)
    return np.clip(x.astype(np.float32) + rng.normal(0, sigma, x.shape), 0, 255).round().astype(np.uint8)


def jpeg(x: Faces, quality: int) -> Faces:
    def one(f):
        ok, buf = cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)

    return _per_face(x, one)


def rotate(x: Faces, degrees: float, seed: int = 0) -> Faces:
    """Each face turned by +-degrees (the sign drawn per face)."""
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], len(x))
    side = x.shape[-1]
    out = [
        cv2.warpAffine(f, cv2.getRotationMatrix2D((side / 2 - 0.5, side / 2 - 0.5), s * degrees, 1.0), (side, side),
                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        for f, s in zip(x, signs)
    ]
    return np.stack(out) if out else x.copy()


def gamma(x: Faces, g: float) -> Faces:
    """g > 1 darkens: an under-exposed camera."""
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** g, 0, 255).round().astype(np.uint8)
    return lut[x]


def contrast(x: Faces, factor: float) -> Faces:
    mean = x.reshape(len(x), -1).mean(1).reshape(-1, 1, 1) if len(x) else 0
    return np.clip((x.astype(np.float32) - mean) * factor + mean, 0, 255).round().astype(np.uint8)


def box_jitter(x: Faces, scale: float, shift: float, seed: int = 0) -> Faces:
    """A detector's box that is `scale` times too large and off by `shift` px in a random direction."""
    rng = np.random.default_rng(seed)
    side = x.shape[-1]
    angles = rng.uniform(0, 2 * np.pi, len(x))
    out = []
    for f, a in zip(x, angles):
        m = cv2.getRotationMatrix2D((side / 2 - 0.5, side / 2 - 0.5), 0.0, 1.0 / scale)
        m[:, 2] += (shift * np.cos(a), shift * np.sin(a))
        out.append(cv2.warpAffine(f, m, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE))
    return np.stack(out) if out else x.copy()


# name -> (label of the setting, function of faces) for severities 1, 2, 3.
SUITE: dict[str, list[tuple[str, Callable[[Faces], Faces]]]] = {
    "blur": [(f"sigma {s}", lambda x, s=s: blur(x, s)) for s in (0.75, 1.5, 2.5)],
    "low-res": [(f"{p} px", lambda x, p=p: down_up(x, p)) for p in (24, 16, 12)],
    "noise": [(f"sigma {s}", lambda x, s=s: noise(x, s)) for s in (10, 20, 30)],
    "jpeg": [(f"quality {q}", lambda x, q=q: jpeg(x, q)) for q in (30, 15, 8)],
    "rotation": [(f"{d} deg", lambda x, d=d: rotate(x, d)) for d in (15, 25, 35)],
    "dark": [(f"gamma {g}", lambda x, g=g: gamma(x, g)) for g in (1.5, 2.2, 3.0)],
    "contrast": [(f"x {c}", lambda x, c=c: contrast(x, c)) for c in (0.6, 0.4, 0.25)],
    "box-jitter": [(f"scale {s}, shift {d} px", lambda x, s=s, d=d: box_jitter(x, s, d)) for s, d in ((1.08, 2), (1.15, 4), (1.25, 6))],
}


def run_suite(predict: Callable[[Faces], np.ndarray], x: Faces, y: np.ndarray) -> dict:
    """Accuracy clean and under every corruption and severity; `predict` maps faces to [N, 7] probabilities.

    Returns {"clean": acc, "rows": [(name, severity, setting, acc)], "mean_drop": points, "worst_drop": points,
    "worst": (name, setting)}; accuracies are fractions, drops are percentage points.
    """

    def acc(faces: Faces) -> float:
        return float((predict(faces).argmax(1) == y).mean())

    clean = acc(x)
    rows = [(name, sev + 1, label, acc(fn(x))) for name, levels in SUITE.items() for sev, (label, fn) in enumerate(levels)]
    drops = [100 * (clean - a) for *_, a in rows]
    worst = int(np.argmax(drops))
    return {
        "clean": clean,
        "rows": rows,
        "mean_drop": float(np.mean(drops)),
        "worst_drop": float(drops[worst]),
        "worst": (rows[worst][0], rows[worst][2]),
    }
