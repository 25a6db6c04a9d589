"""`fer-edge train` and its tools: `train specialist`, `train grow`, `train soup`, `train from-onnx`.

`fer-edge train` itself trains (its options are built from TrainConfig, declared once in train/config.py);
the tools are its subcommands. torch is imported inside each command, never at module import.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import Annotated, Optional

import typer

from fer_edge.cli.config_options import config_command
from fer_edge.cli.guard import guarded
from fer_edge.cli.output import status_console
from fer_edge.errors import FerEdgeError, UsageError
from fer_edge.train.config import SpecialistConfig, TrainConfig

PANEL = "Model factory (needs the train extra)"


def need_torch() -> None:
    if importlib.util.find_spec("torch") is None:
        from fer_edge.install import extra_hint

        raise FerEdgeError(f"this command needs the training extra (torch): {extra_hint('train')}")


def _resume_opt(help: str) -> inspect.Parameter:
    return inspect.Parameter("resume", inspect.Parameter.KEYWORD_ONLY, default=False,
                             annotation=Annotated[bool, typer.Option("--resume", help=help)])


def train(cfg: TrainConfig, ctx: typer.Context, resume: bool) -> None:
    """Train a model; the run folder gets config.json, metrics.csv, best.pt, last.pt and reports. The tools below are its subcommands."""
    if ctx.invoked_subcommand is not None:
        return
    if not cfg.data and not resume:
        raise UsageError("train needs --data (only --resume can do without it)")
    need_torch()
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from fer_edge.train.trainer import main

    console = status_console()
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        # soft_wrap: a log line (and the final `done:` JSON) stays one line in a log file
        main(cfg, resume=resume, log=lambda m: console.print(m, soft_wrap=True), progress=progress)


def specialist(cfg: SpecialistConfig, resume: bool) -> None:
    """Fine-tune a low-resolution specialist: faces a few pixels tall or blurred, taught by a teacher's reading of the same faces clean; export it beside its generalist with `fer-edge export --specialist`."""
    need_torch()
    from fer_edge.train.specialist import train_specialist

    console = status_console()
    train_specialist(cfg, resume=resume, log=lambda m: console.print(m, soft_wrap=True))


def grow(
    out: Annotated[Path, typer.Argument(help="The grown checkpoint to write (.pt); pass it to fer-edge train --init.")],
    source: Annotated[Path, typer.Argument(help="A FerNet checkpoint (.pt) or a single FerNet exported by fer-edge (.onnx).")],
    arch: Annotated[str, typer.Option(help="The arch to grow into, e.g. fernet-t2g.")],
    data: Annotated[Optional[Path], typer.Option("--data", "-d", help="The training data: an .onnx source's BatchNorm statistics are measured on it.")] = None,
) -> None:
    """Grow a FerNet's head into a roomier arch that computes the same logits (checked before writing)."""
    need_torch()
    from fer_edge.train.grow import grow_file

    src, gap = grow_file(out, source, arch, data)
    typer.echo(f"wrote {out}: a {arch} grown from {src['config']['arch']} ({source}); largest logit change {gap:.1e}")


def soup(
    out: Annotated[Path, typer.Argument(help="The soup checkpoint to write (.pt).")],
    checkpoints: Annotated[list[Path], typer.Argument(help="Two or more checkpoints of one model (a start and its fine-tunes).")],
    weights: Annotated[Optional[str], typer.Option(help="Comma-separated mixing weights, one per checkpoint (default: equal).")] = None,
) -> None:
    """Average checkpoints that share a start into one (a weight soup, WiSE-FT); a last.pt gives its EMA weights."""
    need_torch()
    from fer_edge.train.soup import soup_file

    made = soup_file(out, checkpoints, weights)
    parts = ", ".join(f"{s['weight']:g} x {p}{' (EMA)' if s['ema'] else ''}" for p, s in zip(checkpoints, made["config"]["soup"]))
    typer.echo(f"wrote {out}: {parts}")


def from_onnx(
    out: Annotated[Path, typer.Argument(help="The checkpoint to write (.pt).")],
    model: Annotated[Path, typer.Argument(help="A FerNet exported by fer-edge (int8 or fp32), alone or gated.")],
    data: Annotated[Path, typer.Option("--data", "-d", help="The training data (CSV, .npz or image folders): its training faces set the BatchNorm statistics.")],
    member: Annotated[str, typer.Option(help="Which net of a gated graph: generalist or specialist (a single-model file has one).")] = "generalist",
) -> None:
    """Read a fer-edge ONNX export back into a trainable checkpoint (fine-tune a shipped model without its run)."""
    need_torch()
    from fer_edge.train.from_onnx import read_back

    if member not in ("generalist", "specialist"):
        raise UsageError(f"--member {member!r}: use generalist or specialist")
    ckpt = read_back(out, model, data, member)
    typer.echo(f"wrote {out}: a trainable {ckpt['config']['arch']} from {model}")


def register(app: typer.Typer) -> None:
    train_app = typer.Typer(no_args_is_help=False, context_settings={"help_option_names": ["-h", "--help"]})
    train_app.callback(invoke_without_command=True)(guarded(config_command(TrainConfig, train, [_resume_opt("Continue the run in --out from its last.pt, with its own config: only --device, --threads, --data (the same data in a new place) and --max-minutes may change.")])))
    train_app.command("specialist")(guarded(config_command(SpecialistConfig, specialist, [_resume_opt("Continue the run in OUT from its last.pt, with its own config and time budget: only --device, --threads and --data (the same data in a new place) may change.")])))
    train_app.command("grow")(guarded(grow))
    train_app.command("soup")(guarded(soup))
    train_app.command("from-onnx")(guarded(from_onnx))
    app.add_typer(train_app, name="train", rich_help_panel=PANEL)
