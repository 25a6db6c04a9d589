"""Where a CPU training epoch goes: forward+backward in fp32 and in bf16 autocast + channels_last (what the
trainer now turns on for CPUs with native bf16), the augmentation (with and without camera corruptions),
and the per-epoch evaluation, interleaved so that the machine's drift hits every row alike.

    python benchmarks/train_speed.py [--archs fernet-s,fernet-m] [--threads 2] [--steps 12]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from fer_edge.train.augment import AugmentConfig, augment
from fer_edge.train.evaluate import torch_probs
from fer_edge.train.models import build_model


def step_rate(model, x, y, opt, fast: bool, steps: int) -> float:
    """Images per second of forward+backward+step at this batch."""
    if fast:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    for i in range(steps + 3):
        if i == 3:
            t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * len(x) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", default="fernet-s,fernet-m")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved repetitions (the table shows the best)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1, 48, 48, generator=g)
    y = torch.randint(0, 7, (args.batch,), generator=g)
    faces = (torch.rand(3589, 48, 48, generator=g) * 255).to(torch.uint8).numpy()  # a PublicTest-sized val split

    table = Table(title=f"training speed on this CPU, batch {args.batch}, {args.threads} threads (best of {args.rounds})")
    for col in ("arch", "fp32 img/s", "bf16+CL img/s", "speed-up", "epoch fwd+bwd fp32 s", "epoch bf16 s",
                "val eval fp32 s", "val eval bf16 s"):
        table.add_column(col, justify="left" if col == "arch" else "right")
    aug_plain, aug_corrupt = [], []
    for arch in args.archs.split(","):
        best = {"fp32": 0.0, "bf16": 0.0, "eval32": 1e9, "eval16": 1e9}
        for _ in range(args.rounds):
            for fast in (False, True):
                model = build_model(arch)
                opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
                key = "bf16" if fast else "fp32"
                best[key] = max(best[key], step_rate(model, x, y, opt, fast, args.steps))
                t0 = time.perf_counter()
                torch_probs(model, faces, torch.device("cpu"), fast=fast)
                best["eval16" if fast else "eval32"] = min(best["eval16" if fast else "eval32"], time.perf_counter() - t0)
            for store, cfg in ((aug_plain, AugmentConfig()), (aug_corrupt, AugmentConfig(corrupt=0.5))):
                t0 = time.perf_counter()
                for _ in range(10):
                    augment(x, cfg, g)
                store.append((time.perf_counter() - t0) / 10)
        n = 28709  # FER2013 Training
        table.add_row(arch, f"{best['fp32']:,.0f}", f"{best['bf16']:,.0f}", f"{best['bf16'] / best['fp32']:.2f}x",
                      f"{n / best['fp32']:.0f}", f"{n / best['bf16']:.0f}", f"{best['eval32']:.1f}", f"{best['eval16']:.1f}")
    Console(width=200).print(table)
    steps = 28709 // args.batch
    Console(width=200).print(
        f"augmentation per batch: {1000 * min(aug_plain):.1f} ms plain, {1000 * min(aug_corrupt):.1f} ms with --corrupt 0.5 "
        f"({steps * min(aug_plain):.1f} s and {steps * min(aug_corrupt):.1f} s an epoch)")


if __name__ == "__main__":
    main()
