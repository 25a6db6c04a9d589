"""Batched augmentation on tensors: one affine warp per batch, so it is cheap on a CPU and free on a GPU.

Input and output: float [N, 1, 48, 48] in [0, 1], on whatever device the batch lives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    shift: float = 0.1  # max translation, fraction of the side
    rotate: float = 10.0  # max rotation, degrees
    scale: float = 0.1  # max zoom in or out, fraction
    flip: bool = True
    brightness: float = 0.2  # max additive change, fraction of full range
    contrast: float = 0.2  # max multiplicative change around the image mean
    erase: float = 0.25  # probability of one random erased rectangle per image
    corrupt: float = 0.0  # share of images given one camera corruption (see CORRUPTIONS)
    corruptions: tuple[str, ...] = ()  # which of CORRUPTIONS to draw from; empty: all


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None = None) -> torch.Tensor:
    n, dev = x.shape[0], x.device

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return torch.rand(*(shape or (n,)), generator=gen, device=dev) * (hi - lo) + lo

    # Geometry: rotation, scale, translation and flip in one sampling grid.
    angle = uniform(-cfg.rotate, cfg.rotate) * (math.pi / 180)
    scale = 1.0 / uniform(1 - cfg.scale, 1 + cfg.scale)
    flip = torch.where(uniform(0, 1) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(n, device=dev)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, uniform(-cfg.shift, cfg.shift) * 2], 1),
            torch.stack([sin * flip, cos, uniform(-cfg.shift, cfg.shift) * 2], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    # Photometric: contrast around each image's mean, then brightness.
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    c = uniform(1 - cfg.contrast, 1 + cfg.contrast).view(n, 1, 1, 1)
    b = uniform(-cfg.brightness, cfg.brightness).view(n, 1, 1, 1)
    x = ((x - mean) * c + mean + b).clamp_(0, 1)

    if cfg.corrupt > 0:
        x = corrupt(x, cfg.corrupt, cfg.corruptions or tuple(CORRUPTIONS), gen)
    if cfg.erase > 0:
        x = random_erase(x, cfg.erase, gen)
    return x


# Camera corruptions, each with a random strength per image that spans the robustness suite's severities
# (train/corruptions.py) and a little beyond, so the suite's settings fall inside what training saw.
def gaussian_blur(x: torch.Tensor, sigmas: torch.Tensor, opencv_width: bool = False) -> torch.Tensor:
    """float [N, 1, H, W]: each face blurred with its own sigma (separable, replicated border). The kernel has
    11 taps, or with opencv_width the width cv2.GaussianBlur(f, (0, 0), sigma) picks for a uint8 face, cut per
    face, so that training blurs as the robustness suite does."""
    radii = (torch.round(sigmas * 6 + 1).int() | 1) // 2 if opencv_width else None  # OpenCV: cvRound(6 sigma + 1) | 1 taps
    radius = int(radii.max()) if opencv_width else 5
    r = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype).view(1, -1)
    k = torch.exp(-(r**2) / (2 * sigmas.to(x.dtype).view(-1, 1) ** 2))
    if opencv_width:
        k = torch.where(r.abs() <= radii.view(-1, 1), k, torch.zeros_like(k))
    k = k / k.sum(-1, keepdim=True)  # [n, taps]: one kernel per image (groups=n)
    n, _, h, w = x.shape
    y = F.pad(x.reshape(1, n, h, w), (radius,) * 4, mode="replicate")
    y = F.conv2d(y, k.view(n, 1, 1, -1), groups=n)
    y = F.conv2d(y, k.view(n, 1, -1, 1), groups=n)
    return y.view(n, 1, h, w)


def _blur(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    return gaussian_blur(x, 0.5 + 2.5 * u)  # 0.5 .. 3 px


def _low_res(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    side = x.shape[-1]
    # every side from 10 to 26 px: real faces come at any size, and the suite's 12, 16 and 24 px are among them
    sizes = (10 + (u * 17).floor()).long().clamp_max(26)
    out = x.clone()
    for s in sizes.unique().tolist():
        sel = sizes == s
        small = F.interpolate(x[sel], size=(s, s), mode="area")
        out[sel] = F.interpolate(small, size=(side, side), mode="bilinear", align_corners=False)
    return out


def _noise(x: torch.Tensor, u: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    sigma = (2 + 38 * u).view(-1, 1, 1, 1) / 255  # 2 .. 40 grey levels
    return (x + sigma * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)).clamp(0, 1)


def _jpeg(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    import cv2  # JPEG is a codec, not a tensor op: round-trip each face through OpenCV on the CPU
    import numpy as np

    faces = (x[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    quality = (5 + 55 * u).round().int().tolist()  # 5 .. 60
    out = np.stack([
        cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_GRAYSCALE)
        for f, q in zip(faces, quality)
    ])
    return torch.from_numpy(out).to(x.device, x.dtype).unsqueeze(1) / 255


def _exposure(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    g = torch.exp((u * 2 - 1) * math.log(3.2)).view(-1, 1, 1, 1)  # gamma 1/3.2 .. 3.2: bright or dark
    return x.clamp_min(1e-6) ** g


def _contrast(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    c = (0.2 + 0.6 * u).view(-1, 1, 1, 1)  # x0.2 .. x0.8
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * c + mean


CORRUPTIONS = ("blur", "low-res", "noise", "jpeg", "exposure", "contrast")


def corrupt(x: torch.Tensor, p: float, kinds: tuple[str, ...], gen: torch.Generator | None = None) -> torch.Tensor:
    """Give a p share of the images one corruption each, drawn uniformly from `kinds`, at a random strength."""
    unknown = set(kinds) - set(CORRUPTIONS)
    if unknown:
        raise ValueError(f"unknown corruption {sorted(unknown)[0]!r}; choose from {', '.join(CORRUPTIONS)}")
    n, dev = x.shape[0], x.device
    chosen = torch.rand(n, generator=gen, device=dev) < p
    which = torch.randint(len(kinds), (n,), generator=gen, device=dev)
    strength = torch.rand(n, generator=gen, device=dev)
    out = x.clone()
    for i, kind in enumerate(kinds):
        sel = chosen & (which == i)
        if not bool(sel.any()):
            continue
        xs, u = x[sel], strength[sel]
        if kind == "blur":
            y = _blur(xs, u)
        elif kind == "low-res":
            y = _low_res(xs, u)
        elif kind == "noise":
            y = _noise(xs, u, gen)
        elif kind == "jpeg":
            y = _jpeg(xs, u)
        elif kind == "exposure":
            y = _exposure(xs, u)
        else:
            y = _contrast(xs, u)
        out[sel] = y.clamp(0, 1)
    return out


def random_erase(x: torch.Tensor, p: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Erase one rectangle (2-20% of the area) with noise, in a p share of the images."""
    n, _, h, w = x.shape
    dev = x.device
    area = torch.rand(n, generator=gen, device=dev) * 0.18 + 0.02
    aspect = torch.exp(torch.rand(n, generator=gen, device=dev) * 2.2 - 1.1)  # 1/3 .. 3
    eh = (torch.sqrt(area * aspect) * h).clamp(1, h)
    ew = (torch.sqrt(area / aspect) * w).clamp(1, w)
    y0 = torch.rand(n, generator=gen, device=dev) * (h - eh)
    x0 = torch.rand(n, generator=gen, device=dev) * (w - ew)
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    inside = (
        (ys >= y0.view(n, 1, 1)) & (ys < (y0 + eh).view(n, 1, 1)) & (xs >= x0.view(n, 1, 1)) & (xs < (x0 + ew).view(n, 1, 1))
    )
    chosen = (torch.rand(n, generator=gen, device=dev) < p).view(n, 1, 1)
    mask = (inside & chosen).unsqueeze(1)
    noise = torch.rand(x.shape, generator=gen, device=dev)
    return torch.where(mask, noise, x)


def mix(
    x: torch.Tensor, y: torch.Tensor, mode: str, alpha: float, gen: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float, torch.Tensor]:
    """Mixup or CutMix. Returns (inputs, labels_a, labels_b, lam, perm); the loss is lam*L(a) + (1-lam)*L(b),
    and perm says which row each row was mixed with (precomputed soft labels mix the same way)."""
    perm = torch.randperm(x.shape[0], generator=gen, device=x.device)
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    if mode == "mixup":
        return lam * x + (1 - lam) * x[perm], y, y[perm], lam, perm
    if mode == "cutmix":
        _, _, h, w = x.shape
        rh, rw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy, cx = int(torch.randint(h, (1,), generator=gen, device=x.device)), int(torch.randint(w, (1,), generator=gen, device=x.device))
        y0, y1, x0, x1 = max(cy - rh // 2, 0), min(cy + rh // 2, h), max(cx - rw // 2, 0), min(cx + rw // 2, w)
        x = x.clone()
        x[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
        return x, y, y[perm], lam, perm
    raise ValueError(f"unknown mix mode {mode!r}")
