"""What a user installs and reads: the wheel on its own (models and a short card inside, no history), the
README as a front door with the set-up commands CI runs, the generated CLI reference, and no document named
after the working periods that produced it."""

from __future__ import annotations

import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from helpers import ASTRONAUT, REPO

import fer_edge


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("build", reason="the wheel test needs `build` (the dev extra)")
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the setuptools already installed builds it, with no download
    result = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (found,) = out.glob("fer_edge-*.whl")
    return found


def test_the_wheel_carries_the_models_and_a_short_card_not_the_history(wheel):
    assert wheel.name.startswith(f"fer_edge-{fer_edge.__version__}-")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("fer_edge/assets/fer-edge.onnx", "fer_edge/assets/fer-edge-fast.onnx", "fer_edge/assets/MODEL_CARD.md",
                   "fer_edge/cli/app.py", "fer_edge/train/trainer.py", "fer_edge/export/onnx_export.py",
                   "fer_edge/serve/page/index.html", "fer_edge/serve/page/app.js", "fer_edge/serve/page/style.css"):
        assert needed in names, needed
    assert not [n for n in names if n.endswith((".csv", ".json")) and "/assets/" in n]  # no training logs
    assert not [n for n in names if n.startswith(("tests/", "train/", "export/", "docs/", "benchmarks/"))]
    licence = [n for n in names if n.endswith("LICENSE")]
    assert licence, names
    card = zipfile.ZipFile(wheel).read("fer_edge/assets/MODEL_CARD.md").decode()
    assert len(card.splitlines()) <= 200


def test_the_wheel_installs_and_classifies_without_the_source_tree(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    # the runtime's dependencies come from this interpreter's site-packages; fer-edge only from the wheel
    venv.create(env_dir, with_pip=True, system_site_packages=True)
    py = env_dir / "bin" / "python"
    install = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(ASTRONAUT.read_bytes())
    where = subprocess.run([str(py), "-c", "import fer_edge; print(fer_edge.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True)
    assert str(env_dir) in where.stdout, where.stdout + where.stderr  # not the repository's copy
    result = subprocess.run([str(env_dir / "bin" / "fer-edge"), "classify", str(photo)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = result.stdout.splitlines()
    assert rows[0].startswith("path,face,x,y,w,h,det_score,label,confidence")
    assert rows[1].startswith(f"{photo},0,") and ",happy," in rows[1]


def test_readme_is_a_front_door_that_keeps_the_ci_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", " ", "if", "fi", "set", "cd"))]
    assert ci == ['pip install -e ".[train,dev,ray,serve]" torch==2.13.0', "python -m pytest -q"]
    develop = readme.split("## Develop", 1)[1]
    for command in ci:
        assert command in develop
    for link in re.findall(r"\]\(((?:docs|assets|train)/[^)#]+)", readme):
        assert (REPO / link).exists(), link


def test_the_cli_reference_is_generated_from_the_app():
    pytest.importorskip("typer.cli", reason="typer's docs generator")
    result = subprocess.run([sys.executable, "-m", "typer", "fer_edge.cli.app", "utils", "docs", "--name", "fer-edge"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == (REPO / "docs" / "cli.md").read_text(encoding="utf-8").strip(), (
        "docs/cli.md is out of date: python -m typer fer_edge.cli.app utils docs --name fer-edge --output docs/cli.md")


def test_nothing_is_named_after_working_sessions():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    pattern = re.compile(r"\bsessions? \d+", re.I)
    found = []
    for name in tracked.stdout.splitlines():
        path = REPO / name
        if path.suffix in (".onnx", ".png", ".jpg", ".gz", ".npz") or not path.is_file() or name == "tests/test_release.py":
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{name}:{i}")
    assert not found, found
