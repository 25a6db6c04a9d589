"""A generalist and a low-resolution specialist in one graph, each face handed to the specialist by how
little fine detail it has.

A face a few pixels tall in the frame, or out of focus, reaches the classifier as a smooth 48x48 crop. The
generalist, which must also read sharp faces, loses 14 points on faces 12 px tall; a specialist trained on
nothing else (`fer_edge.train.specialist`) reads them better but sharp faces worse. The gate measures the
crop's detail, log(Laplacian energy / variance) at 48x48 and at 24x24 (contrast and brightness cancel out),
and gives the specialist a share g of the answer:

    p = (1 - g) * p_generalist + g * p_specialist,   g = g_max * sigmoid(w . detail + b)

Only faces with g >= MIN_SHARE (0.1) go through the specialist (the batch is gathered, run and scattered back in
the graph), so sharp faces cost what the generalist alone costs and get exactly its answer. The gate's four
numbers are fitted (`fit_gate`) to the two nets' probabilities on validation faces, clean and under the
trainer's random camera corruptions (not the robustness suite's settings), by log-likelihood.
"""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_edge.errors import UsageError

from .wrap import ContractModel, unit

# Faces with a smaller share keep the generalist's answer and never reach the specialist. At 0.1 the shipped
# gate hands it 5% of clean PublicTest faces (61% at 0.02) for the same accuracy, clean and corrupted, within
# two faces (benchmarks/gate_threshold.py, fp32): most real faces are not sharp enough to fall under a smaller share.
MIN_SHARE = 0.1
GATE_SCOPE = "gate"  # node names under /gate/ stay fp32 in an int8 export (int8._keep_fp32)

_LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


def _detail(x01: torch.Tensor) -> torch.Tensor:
    """log(mean squared Laplacian / variance) per face: how much of the face's contrast is fine detail."""
    lap = F.conv2d(x01, _LAPLACE.to(x01.dtype))  # valid: the border is not detail
    energy = lap.pow(2).mean(dim=(1, 2, 3))
    centred = x01 - x01.mean(dim=(1, 2, 3), keepdim=True)
    var = centred.pow(2).mean(dim=(1, 2, 3))
    return torch.log(energy + 1e-6) - torch.log(var + 1e-4)


def detail(x01: torch.Tensor) -> torch.Tensor:
    """float [N, 1, 48, 48] in [0, 1] -> [N, 2]: the detail at full and at half resolution."""
    return torch.stack([_detail(x01), _detail(F.avg_pool2d(x01, 2))], 1)


class Gate(nn.Module):
    """g = g_max * sigmoid(w . detail + b), the specialist's share of each face's answer."""

    def __init__(self, w: tuple[float, float] = (-1.0, -1.0), b: float = -4.0, g_max: float = 0.8):
        super().__init__()
        self.register_buffer("w", torch.tensor(w, dtype=torch.float32))
        self.register_buffer("b", torch.tensor(float(b)))
        self.register_buffer("g_max", torch.tensor(float(g_max)))

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """uint8 faces [N, 48, 48] -> [N] shares."""
        return self.g_max * torch.sigmoid((detail(unit(faces)) * self.w).sum(1) + self.b)

    def describe(self) -> dict:
        return {"w": [round(float(v), 5) for v in self.w], "b": round(float(self.b), 5),
                "g_max": round(float(self.g_max), 5), "min_share": MIN_SHARE,
                "detail": "log(mean Laplacian^2 / variance) at 48x48 and 24x24, pixels in [0, 1]"}


class GatedModel(nn.Module):
    """uint8 faces [N, 48, 48] -> probabilities [N, 7]: the generalist's, blended with the specialist's on
    faces with little detail. Each net is wrapped as an export wraps one (preprocessing, flip TTA, export
    form); an export's temperature is a graph op after the blend (rewrites.apply_temperature)."""

    def __init__(self, generalist: nn.Module, specialist: nn.Module, gate: Gate, tta: bool = False,
                 specialist_tta: bool = False):
        super().__init__()
        self.generalist = ContractModel(generalist, tta=tta)
        self.specialist = ContractModel(specialist, tta=specialist_tta)
        self.trained_members = [generalist, specialist]  # the metadata counts what was trained
        self.gate = gate
        self.tta, self.specialist_tta = tta, specialist_tta
        if self.generalist.data != self.specialist.data:
            raise UsageError("the specialist reads its faces differently from the generalist (input size or normalisation)")
        self.data = self.generalist.data

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        probs = self.generalist(faces)
        share = self.gate(faces)
        routed = torch.nonzero(share >= MIN_SHARE).flatten()  # only these faces reach the specialist
        g = share.index_select(0, routed).unsqueeze(1)
        blended = (1 - g) * probs.index_select(0, routed) + g * self.specialist(faces.index_select(0, routed))
        return probs.index_copy(0, routed, blended)


def fitting_faces(x: np.ndarray, copies: int = 2, seed: int = 0, kinds: tuple[str, ...] = ()) -> np.ndarray:
    """The faces the gate is fitted on: each face clean, and `copies` times under one of the trainer's camera
    corruptions at a random strength (`kinds`, default all: blur, low resolution, noise, JPEG, exposure,
    contrast; augment.corrupt)."""
    from fer_edge.train.augment import CORRUPTIONS, corrupt

    gen = torch.Generator().manual_seed(seed)
    x01 = torch.from_numpy(x).float().unsqueeze(1) / 255.0
    out = [x]
    for _ in range(copies):
        y = corrupt(x01, 1.0, kinds or CORRUPTIONS, gen)
        out.append((y[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).numpy())
    return np.concatenate(out)


@torch.no_grad()
def _member_probs(model: nn.Module, x: np.ndarray, tta: bool, batch: int = 512) -> torch.Tensor:
    wrapped = ContractModel(model, tta=tta).eval()  # what the graph computes for it
    return torch.cat([wrapped(torch.from_numpy(x[i : i + batch])) for i in range(0, len(x), batch)])


def fit_gate(generalist: nn.Module, specialist: nn.Module, x: np.ndarray, y: np.ndarray, tta: bool,
             specialist_tta: bool, log=print) -> Gate:
    """The gate that maximises the blended log-likelihood of the true labels on faces x (uint8 [N, 48, 48])."""
    pg = _member_probs(generalist, x, tta)
    ps = _member_probs(specialist, x, specialist_tta)
    d = detail(unit(torch.from_numpy(x)))
    yt = torch.from_numpy(np.asarray(y)).long()
    params = torch.tensor([-1.0, -1.0, -4.0, 1.0], requires_grad=True)  # w1, w2, b, logit of g_max
    opt = torch.optim.LBFGS([params], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def share(p: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(p[3]) * torch.sigmoid(d @ p[:2] + p[2])

    def loss() -> torch.Tensor:
        opt.zero_grad()
        g = share(params).unsqueeze(1)
        nll = -torch.log(((1 - g) * pg + g * ps).gather(1, yt[:, None]).clamp_min(1e-12)).mean()
        nll.backward()
        return nll

    opt.step(loss)
    p = params.detach()
    gate = Gate((float(p[0]), float(p[1])), float(p[2]), float(torch.sigmoid(p[3])))
    g = share(p).unsqueeze(1)
    acc = {name: 100 * float((q.argmax(1) == yt).float().mean())
           for name, q in (("generalist", pg), ("specialist", ps), ("gated", (1 - g) * pg + g * ps))}
    log(f"gate fitted on {len(x)} faces: {json.dumps(gate.describe())}; routed {100 * float((g >= MIN_SHARE).float().mean()):.1f}%; "
        + ", ".join(f"{k} {v:.2f}%" for k, v in acc.items()))
    return gate
