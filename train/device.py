"""Where torch trains, and in which number format: the device policy every training loop shares."""

from __future__ import annotations

from typing import NamedTuple

import torch

from fer_edge.errors import FerEdgeError


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise FerEdgeError("device cuda was asked for, but torch sees no CUDA device")
    if requested not in ("cpu", "cuda"):
        raise FerEdgeError(f"device must be auto, cpu or cuda, not {requested!r}")
    return torch.device(requested)


class MathMode(NamedTuple):
    bf16: bool  # autocast to bf16
    channels_last: bool  # NHWC tensors: oneDNN's faster convolution layout, in fp32 as in bf16
    why: str  # for the log


def fast_math(device: torch.device, amp: bool) -> MathMode:
    """How to train here, and the reason, for the log.

    bf16 autocast on CUDA, and on a CPU only where oneDNN has native bf16 kernels: there it is about 2x
    faster (fernet-s forward+backward 768 -> 1,550 images/s on 2 EPYC cores); elsewhere bf16 is emulated and
    10x slower. channels_last wherever amp is on: in fp32 too it is faster on both CPUs measured (fernet-s
    768 -> 1,041 on AVX-512; fernet-t2 265 -> 308 and fernet-m 99 -> 108 on an AVX2 EPYC without bf16).
    """
    if not amp:
        return MathMode(False, False, "fp32 (--no-amp)")
    if device.type == "cuda":
        return MathMode(True, True, "bf16 autocast + channels_last (CUDA)")
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return MathMode(True, True, "bf16 autocast + channels_last (this CPU has native bf16)")
    return MathMode(False, True, "fp32 + channels_last (this CPU has no native bf16)")


def seeded(requested: str, threads: int, seed: int) -> tuple[torch.device, torch.Generator]:
    """The device a run trains on, torch's threads (0: its default) and seeds: the global stream (weights)
    and a generator on the device (batch order, augmentation), whose state a checkpoint carries."""
    device = pick_device(requested)
    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return device, gen
