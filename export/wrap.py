"""The wrap step of an export: trained nets -> one module under the runtime contract (uint8 faces in,
probabilities out, the preprocessing, flip TTA and ensemble average inside the graph; a temperature is
added to the exported graph afterwards, rewrites.apply_temperature)."""

from __future__ import annotations

import torch
from torch import nn

from fer_edge.errors import UsageError

from ..train.models import data_config_of
from .grid_head import export_form


def unit(faces: torch.Tensor) -> torch.Tensor:
    """uint8 faces [N, 48, 48] -> [N, 1, 48, 48] in [0, 1]."""
    return faces.unsqueeze(1).float() * (1.0 / 255.0)


class ContractModel(nn.Module):
    """uint8 faces [N, 48, 48] -> probabilities [N, 7]; the preprocessing lives in the graph.

    Several models make an equal-weight ensemble: the mean of their probabilities (and of their flipped
    views with TTA). Equal weights need no tuning, so no split is spent choosing them.
    """

    def __init__(self, models: nn.Module | list[nn.Module], tta: bool = False):
        super().__init__()
        members = models if isinstance(models, (list, tuple)) else [models]
        self.members = nn.ModuleList([export_form(m.eval()) for m in members])  # a grid head as the runtime runs it fast
        self.trained_members = list(members)  # a plain list, not submodules: the metadata counts what was trained
        self.tta = tta
        configs = {data_config_of(m) for m in members}
        if len(configs) > 1:
            raise UsageError("the ensemble's members read their faces differently (input size or normalisation)")
        self.data = configs.pop()  # the members' input: the graph normalises once for all of them

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        x = (unit(faces) - self.data.mean) * (1.0 / self.data.std)
        views = [x, torch.flip(x, dims=[3])] if self.tta else [x]
        probs = [torch.softmax(m(v), dim=1) for m in self.members for v in views]
        total = sum(probs[1:], probs[0])
        return total * (1.0 / len(probs)) if len(probs) > 1 else total
