"""Model zoo: the seed's MLP baseline and FerNet, a VGG-style CNN family sized for 48x48 faces.

FerNet keeps the first stage cheap (one narrow conv at 48x48) because that resolution dominates the
cost on a CPU, then doubles the width at each of three 2x downsamplings (24, 12, 6). Global average
pooling keeps the head tiny, so the parameter count stays in the convolutions that earn it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fer_edge.contract import INPUT_SIZE, LABELS, PIXEL_MEAN, PIXEL_STD


@dataclass(frozen=True)
class DataConfig:
    """What an architecture reads (after timm's pretrained_cfg): the side of its square grey input and the
    normalisation its first layer expects, (pixel / 255 - mean) / std. The trainer, the evaluation, the
    teachers and the export all take it from the net, and the export's metadata copies it."""

    input_size: int = INPUT_SIZE
    mean: float = PIXEL_MEAN
    std: float = PIXEL_STD

    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        """Faces scaled to [0, 1] -> what the net reads."""
        return (x01 - self.mean) / self.std

    def to_dict(self) -> dict:
        return {"size": [self.input_size, self.input_size], "mean": self.mean, "std": self.std, "color": "gray"}


@dataclass(frozen=True)
class FerNetSpec:
    widths: tuple[int, ...]  # channels per stage; stage i runs at 48 / 2**i
    depths: tuple[int, ...]  # 3x3 convs per stage
    dropout: float = 0.3
    # the head pools the last stage to grid x grid cells, not to one: the classifier then sees where on the face
    # a feature fired (brows in the top row, mouth in the bottom), for 7 x C x grid^2 weights and no convolution
    head_grid: int = 1
    data: DataConfig = DataConfig()


# Named sizes (train/README.md measures each). The shipped models are a fernet-m (default) and a fernet-t2g (fast).
FERNET_SIZES: dict[str, FerNetSpec] = {
    "fernet-t": FerNetSpec(widths=(16, 32, 64, 128), depths=(1, 2, 2, 2), dropout=0.2),
    # fernet-t's speed through int8 onnxruntime with 3x its weights and 2x its MACs: the 48x48 and 24x24 stages
    # (8 and 32 channels, one conv each) set the CPU time, so the capacity goes to 12x12 and 6x6 (benchmarks/student_archs.py)
    "fernet-t2": FerNetSpec(widths=(8, 32, 96, 192), depths=(1, 1, 2, 3), dropout=0.2),
    # fernet-t2 with a 3x3 head: grown from it function-preserving (train/grow.py), at its speed
    "fernet-t2g": FerNetSpec(widths=(8, 32, 96, 192), depths=(1, 1, 2, 3), dropout=0.2, head_grid=3),
    "fernet-s": FerNetSpec(widths=(20, 40, 80, 160), depths=(1, 2, 2, 2), dropout=0.3),
    "fernet-m": FerNetSpec(widths=(32, 64, 128, 256), depths=(1, 2, 3, 3), dropout=0.3),
    "fernet-l": FerNetSpec(widths=(64, 128, 256, 512), depths=(2, 2, 3, 3), dropout=0.4),
}
ARCHS: tuple[str, ...] = ("mlp", *FERNET_SIZES)
DEFAULT_ARCH = "fernet-s"


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class FerNet(nn.Module):
    """Input: float [N, 1, 48, 48], already normalised. Output: logits [N, num_classes]."""

    def __init__(self, spec: FerNetSpec, num_classes: int = len(LABELS)):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for stage, (width, depth) in enumerate(zip(spec.widths, spec.depths)):
            if stage > 0:
                layers.append(nn.MaxPool2d(2))
            for _ in range(depth):
                layers += _conv_bn_relu(cin, width)
                cin = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(spec.head_grid), nn.Flatten(), nn.Dropout(spec.dropout),
            nn.Linear(cin * spec.head_grid ** 2, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class MLP(nn.Module):
    """The seed notebook's baseline: 2304 -> 64 -> ReLU -> 7."""

    def __init__(self, hidden: int = 64, num_classes: int = len(LABELS)):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(INPUT_SIZE * INPUT_SIZE, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def data_config(arch: str) -> DataConfig:
    """The input an arch reads (FerNets name theirs in their spec; the MLP reads the contract's)."""
    return FERNET_SIZES[arch].data if arch in FERNET_SIZES else DataConfig()


def data_config_of(model: nn.Module) -> DataConfig:
    """A built net's data config (build_model attaches it); the contract's for a net built elsewhere."""
    return getattr(model, "data_config", None) or DataConfig()


def build_model(arch: str, num_classes: int = len(LABELS)) -> nn.Module:
    if arch == "mlp":
        model: nn.Module = MLP(num_classes=num_classes)
    elif arch in FERNET_SIZES:
        model = FerNet(FERNET_SIZES[arch], num_classes)
    else:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    model.data_config = data_config(arch)
    return model


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module) -> int:
    """Multiply-accumulates of one 48x48 forward pass (convolutions and linear layers)."""
    macs = 0

    def conv_hook(m: nn.Conv2d, _inp, out):
        nonlocal macs
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs += out.numel() // out.shape[0] * k

    def linear_hook(m: nn.Linear, _inp, out):
        nonlocal macs
        macs += m.in_features * m.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return macs
