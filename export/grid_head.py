"""The form a grid head (FerNetSpec.head_grid > 1) takes in an ONNX graph: the same function, at GAP's speed.

Exported as trained, AdaptiveAvgPool2d(3) -> Flatten -> Linear costs fernet-t2g about 8% of its int8 time on
2 threads: onnxruntime runs the quantised AveragePool in NCHW (0.45 ms a batch of 64) and transposes the map
out of the NHWC layout of its int8 convolutions first (0.15 ms). Here the pool is a depthwise convolution
with the pool's window and weights 1/k^2, which onnxruntime runs as an NHWC QLinearConv, and the map is
flattened channels-last, which cancels the transpose: the Linear's weights are permuted to match.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ChannelsLastGridHead(nn.Module):
    """[N, C, H, W] -> average over k x k windows (a depthwise conv) -> flatten as (cell, channel) -> Linear."""

    def __init__(self, pool: nn.Conv2d, fc: nn.Linear):
        super().__init__()
        self.pool, self.fc = pool, fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(x).permute(0, 2, 3, 1).flatten(1))


def export_form(model: nn.Module) -> nn.Module:
    """The model itself, or, for a FerNet with a grid head, a copy whose head computes the same in that form."""
    head = getattr(model, "head", None)
    pool = head[0] if isinstance(head, nn.Sequential) and len(head) else None
    if not isinstance(pool, nn.AdaptiveAvgPool2d) or pool.output_size in (1, (1, 1)):
        return model
    grid = pool.output_size if isinstance(pool.output_size, int) else pool.output_size[0]
    fc = next(m for m in head if isinstance(m, nn.Linear))
    with torch.no_grad():
        channels, size = model.features(torch.zeros(1, 1, 48, 48)).shape[1:3]
    if size % grid:  # an uneven grid has overlapping windows: keep the exported pool as it is
        return model
    k = size // grid
    out = copy.deepcopy(model)
    dw = nn.Conv2d(channels, channels, k, stride=k, groups=channels, bias=False)
    nn.init.constant_(dw.weight, 1.0 / (k * k))
    cl = nn.Linear(fc.in_features, fc.out_features)
    with torch.no_grad():  # Linear's inputs were (channel, cell); channels-last flattening gives (cell, channel)
        cl.weight.copy_(fc.weight.view(fc.out_features, channels, grid, grid).permute(0, 2, 3, 1).reshape(fc.out_features, -1))
        cl.bias.copy_(fc.bias)
    out.head = ChannelsLastGridHead(dw, cl)
    return out.eval()
