"""The wrap step of an export: trained nets -> one module under the runtime contract (uint8 faces in,
probabilities out, the preprocessing, flip TTA, ensemble average and temperature inside the graph)."""

from __future__ import annotations

import torch
from torch import nn

from fer_edge.contract import PIXEL_MEAN, PIXEL_STD

from .grid_head import export_form


def unit(faces: torch.Tensor) -> torch.Tensor:
    """uint8 faces [N, 48, 48] -> [N, 1, 48, 48] in [0, 1]."""
    return faces.unsqueeze(1).float() * (1.0 / 255.0)


def with_temperature(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """p^(1/T), renormalised: logits / T for one softmax model; T = 1 leaves the probabilities as they are."""
    if temperature == 1.0:
        return probs
    return torch.softmax(torch.log(probs.clamp_min(1e-12)) * (1.0 / temperature), dim=1)


class ContractModel(nn.Module):
    """uint8 faces [N, 48, 48] -> probabilities [N, 7]; the preprocessing lives in the graph.

    Several models make an equal-weight ensemble: the mean of their probabilities (and of their flipped
    views with TTA). Equal weights need no tuning, so no split is spent choosing them.
    """

    def __init__(self, models: nn.Module | list[nn.Module], tta: bool = False, temperature: float = 1.0):
        super().__init__()
        members = models if isinstance(models, (list, tuple)) else [models]
        self.members = nn.ModuleList([export_form(m.eval()) for m in members])  # a grid head as the runtime runs it fast
        self.trained_members = list(members)  # a plain list, not submodules: the metadata counts what was trained
        self.tta = tta
        self.temperature = temperature  # calibration (train/calibration.py): 1 leaves the probabilities as they are

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        x = (unit(faces) - PIXEL_MEAN) * (1.0 / PIXEL_STD)
        views = [x, torch.flip(x, dims=[3])] if self.tta else [x]
        probs = [torch.softmax(m(v), dim=1) for m in self.members for v in views]
        total = sum(probs[1:], probs[0])
        total = total * (1.0 / len(probs)) if len(probs) > 1 else total
        return with_temperature(total, self.temperature)
