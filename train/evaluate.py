"""Predictions of a torch model or an .onnx file on uint8 faces, and the report built from them."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


from .models import DataConfig, data_config_of
from .report import Report, make_report


def normalize(x_u8: torch.Tensor, data: DataConfig = DataConfig()) -> torch.Tensor:
    """uint8 [N, 48, 48] or [N, 1, 48, 48] -> float [N, 1, 48, 48], the trainer's and the graph's normalisation."""
    if x_u8.dim() == 3:
        x_u8 = x_u8.unsqueeze(1)
    return data.normalize(x_u8.float() / 255.0)


@torch.no_grad()
def torch_probs(model: nn.Module, x: np.ndarray, device: torch.device, tta: bool = False, batch: int = 512,
                bf16: bool | None = None, channels_last: bool | None = None) -> np.ndarray:
    """Probabilities [N, 7]. `bf16`: autocast (default: on CUDA only); `channels_last` (default: as bf16). The
    trainer's per-epoch check follows its training mode (trainer.fast_math); final reports stay fp32 on CPUs."""
    bf16 = device.type == "cuda" if bf16 is None else bf16
    channels_last = bf16 if channels_last is None else channels_last
    model.eval()
    data = data_config_of(model)
    out = []
    for i in range(0, len(x), batch):
        xb = normalize(torch.from_numpy(x[i : i + batch]).to(device), data)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            p = torch.softmax(model(xb).float(), 1)
            if tta:
                p = (p + torch.softmax(model(xb.flip(3)).float(), 1)) / 2
        out.append(p.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 7), np.float32)


def evaluate_probs(probs: np.ndarray, y: np.ndarray, **meta) -> Report:
    from .calibration import ece

    return make_report(y, probs.argmax(1), ece=ece(probs, y), **meta)


def model_probs(path, x: np.ndarray, tta: bool = False, device: str = "auto") -> np.ndarray:
    """Probabilities of a .pt checkpoint (torch) or an .onnx model (the runtime's classifier) on uint8 faces."""
    from pathlib import Path

    if Path(path).suffix.lower() == ".onnx":
        from .evaluate_onnx import onnx_probs

        return onnx_probs(Path(path), x, tta=tta)
    from .checkpoint import load_checkpoint, model_from_checkpoint
    from .device import pick_device

    dev = pick_device(device)
    net = model_from_checkpoint(load_checkpoint(path)).to(dev)
    return torch_probs(net, x, dev, tta=tta)
