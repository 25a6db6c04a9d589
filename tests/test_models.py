"""The model zoo: every named size builds, maps faces to 7 logits, and is what train/README's size table says."""

import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from fer_edge.train.models import FERNET_SIZES, build_model, count_macs, count_params  # noqa: E402

README = Path(__file__).resolve().parents[1] / "train" / "README.md"


def readme_sizes() -> dict[str, tuple[str, str]]:
    """arch -> (params, MACs) as the README's table prints them, e.g. ('0.95M', '47.3M')."""
    rows = re.findall(r"^\| \**(fernet-[a-z0-9]+)\** [^|]*\|[^|]*\|[^|]*\| ([\d.]+M) \| ([\d.]+M) \|$", README.read_text(), re.M)
    return {arch: (params, macs) for arch, params, macs in rows}


@pytest.mark.parametrize("arch", sorted(FERNET_SIZES))
def test_each_size_gives_seven_logits_and_matches_the_readme(arch):
    model = build_model(arch).eval()
    with torch.no_grad():
        assert model(torch.zeros(3, 1, 48, 48)).shape == (3, 7)
    assert readme_sizes()[arch] == (f"{count_params(model) / 1e6:.2f}M", f"{count_macs(model) / 1e6:.1f}M")
