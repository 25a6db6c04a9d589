"""What a training run is: every choice of `fer-edge train` and `fer-edge train specialist`, declared once.

Each field carries its command-line help (and bounds, choices, option names) in its metadata: the CLI is
built from these classes (fer_edge/cli/config_options.py), and a run saves its config as config.json, which
`--config FILE` reads back. torch-free, so `fer-edge --help` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

SCHEDULES = ("onecycle", "cosine", "constant")
OPTIMIZERS = ("sgd", "adamw")
MIXES = ("none", "mixup", "cutmix")
BALANCES = ("none", "loss", "sampler")
TRACKERS = ("none", "mlflow")
CONTEMPT = ("drop", "disgust", "angry")
TORCH_DEVICES = ("auto", "cpu", "cuda")


def opt(default, help: str, **cli):
    """A config field and its command-line option. `cli` may hold: flags (the option's names), min, max,
    choices, path (a file or folder), argument (positional), cli=False (not on the command line)."""
    meta = {"help": help, **cli}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


class _FromDict:
    @classmethod
    def from_dict(cls, d: dict):
        """From a config.json: unknown keys (a newer or older fer-edge's) are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class TrainConfig(_FromDict):
    data: str = opt("", "FER2013 CSV (.csv/.csv.gz), a cached .npz, or an image-folder dataset. Repeat it to train on several sources: the first is the primary; PATH@N repeats a source's training faces N times an epoch; each source's validation split is judged. With --resume: only to point at the same primary data in a new place.",
                    flags=("--data", "-d"), multiple="extra_data")
    extra_data: list[str] = opt([], "More sources, PATH or PATH@N (the --data given after the first).", cli=False)
    ferplus: str = opt("", "FER+ votes (ferplus_votes.csv.gz) for the FER2013 CSV given first: train on each face's vote distribution, judge the held-out faces against the FER+ majority (counted) and FER2013's labels (reported).", path=True)
    contempt: str = opt("drop", "FER+ contempt votes: drop, or count them for disgust or angry.", choices=CONTEMPT)
    hard_weight: float = opt(0.0, "With --ferplus: share of FER2013's own label mixed into each face's vote target.", min=0, max=1)
    out: str = opt("runs/latest", "Run folder.", flags=("--out", "-o"), path=True)
    arch: str = opt("fernet-s", "mlp, fernet-t, fernet-t2 (fernet-t's speed, 3x the weights), fernet-t2g, fernet-s (default), fernet-m (the shipped default model), fernet-l.")
    epochs: int = opt(30, "Passes over the training data (the schedule ends at the last one, or at --max-minutes).", min=1)
    batch_size: int = opt(128, "Faces per optimiser step.", min=1)
    optimizer: str = opt("sgd", "sgd (Nesterov momentum) or adamw.", choices=OPTIMIZERS)
    lr: float = opt(0.1, "Peak learning rate (after warm-up).", min=0)
    momentum: float = opt(0.9, "SGD momentum (Nesterov); 0 for plain SGD.", min=0, max=1)
    weight_decay: float = opt(5e-4, "L2 penalty on the weights (not on biases or norms).", min=0)
    schedule: str = opt("onecycle", "onecycle (warm-up then cosine), cosine, or constant.", choices=SCHEDULES)
    warmup: float = opt(0.1, "Share of training spent warming up (onecycle).", min=0, max=0.99)
    label_smoothing: float = opt(0.1, "Share of each target spread over the other classes.", min=0, max=0.5)
    mix: str = opt("none", "Mixup or CutMix on a --mix-prob share of batches.", choices=MIXES)
    mix_alpha: float = opt(1.0, "Beta(alpha, alpha) for the mixing weight.", min=0.01)
    mix_prob: float = opt(0.5, "Share of batches that are mixed.", min=0, max=1)
    balance: str = opt("none", "Class-weighted loss or class-balanced sampling (helps Disgust).", choices=BALANCES)
    augment: bool = opt(True, "Shift, flip, rotation, scale, brightness, contrast, erasing.")
    shift: float = opt(0.1, "Max shift (box position error), fraction of the side.", min=0, max=0.5)
    rotate: float = opt(10.0, "Max rotation, degrees.", min=0, max=180)
    scale: float = opt(0.1, "Max zoom in or out (box size error), fraction.", min=0, max=0.9)
    erase: float = opt(0.25, "Share of faces given a random erased rectangle.", min=0, max=1)
    corrupt: float = opt(0.0, "Share of training faces given one camera corruption (blur, low-res, noise, JPEG, exposure, contrast) at a random strength.", min=0, max=1)
    corruptions: list[str] = opt([], "Comma-separated subset of blur,low-res,noise,jpeg,exposure,contrast (default: all).", comma=True)
    val_fraction: float = opt(0.0, "Stratified val split (share of the training rows) for data without one.", min=0, max=0.9)
    test_fraction: float = opt(0.0, "Stratified test split (share of the training rows) for data without one.", min=0, max=0.9)
    resplit: bool = opt(False, "Ignore the file's val/test splits; carve them from the training rows.")
    teachers: list[str] = opt([], "Distil from these checkpoints (.pt: labels every augmented batch) or contract ONNX models (.onnx: labels each training face once). Repeat for an ensemble.",
                              flags=("--teacher",), path=True)
    teacher_tta: bool = opt(False, "A .pt teacher also labels the mirrored batch and averages the two (flip TTA, about 0.8 points for a fernet-m teacher on FER2013; a second teacher pass). ONNX teachers keep the TTA they were exported with.")
    teacher_online: bool = opt(False, "An .onnx teacher labels every augmented batch through onnxruntime instead of the clean faces once (an int8 export with flip TTA in its graph: a fraction of the cost of its read-back checkpoint with --teacher-tta).")
    flip_pairs: bool = opt(False, "Each batch also carries the mirror of every augmented face (twice the student's compute a step); a teacher labels the pair once, with the average of both views (flip TTA, so --teacher-tta adds nothing), and both learn it.")
    ema: float = opt(0.0, "Keep an exponential moving average of the weights with this per-step decay (e.g. 0.999); it is validated and saved as best.pt (0: off).", min=0, max=0.99999)
    init: str = opt("", "Warm start from this .pt checkpoint's weights (same --arch); optimiser and schedule start fresh; a last.pt of an --ema run gives its EMA weights. An exported single-model .onnx (a shipped model) works too: its weights are read back and its BatchNorms rebuilt on the training faces. For fine-tuning.", path=True)
    kd_alpha: float = opt(0.7, "Weight of the teacher's soft labels against the true labels.", min=0, max=1)
    kd_temperature: float = opt(4.0, "Softening temperature of the distillation.", min=0.1)
    seed: int = opt(0, "Random seed: weights, batch order, augmentation (a resumed run continues the same stream).")
    device: str = opt("auto", "Where torch runs: auto takes CUDA when torch sees it.", choices=TORCH_DEVICES)
    threads: int = opt(0, "torch CPU threads (0: torch's default).", min=0)
    max_minutes: float = opt(0.0, "Time budget; the schedule anneals by it and the best checkpoint is kept (0: none).", min=0)
    patience: int = opt(0, "Early stopping after N epochs without a better val accuracy (0: off).", min=0)
    amp: bool = opt(True, "bf16 autocast on CUDA and on CPUs with native bf16 (about 2x faster), channels_last everywhere (faster in fp32 too); --no-amp: plain fp32.")
    eval_tta: bool = opt(True, "Flip TTA in the final report.", flags=("--tta/--no-tta",))
    tracker: str = opt("none", "Also log to an experiment tracker: none or mlflow (offline file store).", choices=TRACKERS)
    data_sha256: str = opt("", "The data's sha256, filled in from the data.", cli=False)


@dataclass
class SpecialistConfig(_FromDict):
    """A low-resolution specialist's run (train/specialist.py)."""

    out: str = opt("runs/specialist", "Run folder: config.json, metrics.csv, last.pt (resumable), best.pt (best at the smallest --px).",
                   argument=True, path=True)
    start: str = opt("", "The checkpoint to fine-tune (a shipped .onnx read back first: fer-edge train from-onnx).", argument=True, path=True)
    data: str = opt("", "The training data (FER2013 CSV, .npz or image folders); its validation split is judged each epoch.",
                    flags=("--data", "-d"), path=True)
    teacher: str = opt("", "Labels the clean faces: an .onnx once before training, a .pt checkpoint each augmented batch (default: the shipped default model).", path=True)
    px: str = opt("10-16", "Side of the training faces in pixels, or a range to draw from.")
    blur_share: float = opt(0.25, "Share of faces blurred (sigma 1.5-3) instead of shrunk.", min=0, max=1)
    minutes: float = opt(60.0, "Training budget; the schedule anneals by it.", min=0.001)
    lr: float = opt(0.01, "Peak learning rate.", min=0)
    kd_alpha: float = opt(0.7, "Weight of the teacher's soft labels against the true labels.", min=0, max=1)
    kd_temperature: float = opt(4.0, "Softening temperature of the distillation.", min=0.1)
    batch_size: int = opt(128, "Faces per optimiser step.", flags=("--batch-size", "--batch"), min=1)
    seed: int = opt(0, "Random seed (a resumed run continues the same stream).")
    device: str = opt("auto", "Where torch runs: auto takes CUDA when torch sees it.", choices=TORCH_DEVICES)
    threads: int = opt(0, "torch CPU threads (0: torch's default).", min=0)
