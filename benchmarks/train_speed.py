"""Where a CPU training epoch goes: forward+backward and the per-epoch evaluation in plain fp32 (--no-amp), in
fp32 + channels_last (what the trainer runs on CPUs without native bf16) and in bf16 autocast + channels_last
(what it runs on CPUs with native bf16; skipped elsewhere, where bf16 is emulated and about 10x slower), and
the augmentation (with and without camera corruptions), interleaved so that the machine's drift hits every
row alike.

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
from fer_edge.train.device import fast_math


MODES = {"fp32": (False, False), "fp32+CL": (False, True), "bf16+CL": (True, True)}  # (bf16, channels_last)


def step_rate(model, x, y, opt, bf16: bool, channels_last: bool, steps: int) -> float:
    """Images per second of forward+backward+step at this batch."""
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    for i in range(steps + 3):
        if i == 3:
            t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
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
    trainer_mode = fast_math(torch.device("cpu"), True)
    modes = {k: v for k, v in MODES.items() if not v[0] or trainer_mode.bf16}

    n = 28709  # FER2013 Training
    table = Table(title=f"training speed on this CPU, batch {args.batch}, {args.threads} threads (best of {args.rounds}); "
                        f"the trainer runs {trainer_mode.why}")
    table.add_column("arch")
    for m in modes:
        table.add_column(f"{m} img/s", justify="right")
    for m in modes:
        table.add_column(f"{m} epoch s", justify="right")
    for m in modes:
        table.add_column(f"{m} val eval s", justify="right")
    aug_plain, aug_corrupt = [], []
    for arch in args.archs.split(","):
        rate = {m: 0.0 for m in modes}
        evals = {m: 1e9 for m in modes}
        for _ in range(args.rounds):
            for m, (bf16, cl) in modes.items():
                model = build_model(arch)
                opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
                rate[m] = max(rate[m], step_rate(model, x, y, opt, bf16, cl, args.steps))
                t0 = time.perf_counter()
                torch_probs(model, faces, torch.device("cpu"), bf16=bf16, channels_last=cl)
                evals[m] = min(evals[m], time.perf_counter() - t0)
            for store, cfg in ((aug_plain, AugmentConfig()), (aug_corrupt, AugmentConfig(corrupt=0.5))):
                augment(x, cfg, g)  # the first call imports OpenCV for the JPEG corruption
                t0 = time.perf_counter()
                for _ in range(10):
                    augment(x, cfg, g)
                store.append((time.perf_counter() - t0) / 10)
        table.add_row(arch, *(f"{rate[m]:,.0f} ({rate[m] / rate['fp32']:.2f}x)" for m in modes),
                      *(f"{n / rate[m]:.0f}" for m in modes), *(f"{evals[m]:.1f}" for m in modes))
    Console(width=220).print(table)
    steps = n // args.batch
    Console(width=200).print(
        f"augmentation per batch: {1000 * min(aug_plain):.1f} ms plain, {1000 * min(aug_corrupt):.1f} ms with --corrupt 0.5 "
        f"({steps * min(aug_plain):.1f} s and {steps * min(aug_corrupt):.1f} s an epoch)")


if __name__ == "__main__":
    main()
