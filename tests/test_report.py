"""`fer-edge report` and --report: timelines from webcam records, classify summaries, training curves."""

from __future__ import annotations

import base64
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fer_edge.cli.app import app
from fer_edge.contract import LABELS

pytest.importorskip("matplotlib", reason="reports need matplotlib (the report or train extra)")

runner = CliRunner()
RECORD_KEYS = ["time", "frame", "track", "x", "y", "w", "h", "label", "confidence", *(f"p_{n}" for n in LABELS)]


def webcam_records(path: Path, lengths=(60, 30, 12), fmt: str = "jsonl") -> Path:
    """Tracks of the given lengths; track 1 turns from sad to happy halfway and vanishes for a while."""
    rows = []
    for tid, n in enumerate(lengths, 1):
        for k in range(n):
            if tid == 1 and 20 <= k < 30:
                continue  # a gap
            p = np.full(7, 0.02)
            p[LABELS.index("happy" if k > n // 2 else "sad")] = 0.88
            rows.append({"time": round(k / 30, 3), "frame": k, "track": tid, "x": 10 + k, "y": 20, "w": 60, "h": 60,
                         "label": LABELS[int(p.argmax())], "confidence": 0.88, **{f"p_{n}": v for n, v in zip(LABELS, p)}})
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=RECORD_KEYS)
            w.writeheader()
            w.writerows(rows)
    return path


def png_height(path: Path) -> int:
    img = cv2.imread(str(path))
    assert img is not None and img.shape[1] == 1200  # 12 in at 100 dpi
    return img.shape[0]


def test_one_panel_per_track_longest_first(tmp_path):
    rec = webcam_records(tmp_path / "faces.jsonl")
    for n in (1, 2, 3):
        out = tmp_path / f"r{n}.png"
        result = runner.invoke(app, ["report", str(rec), "--out", str(out), "--tracks", str(n)])
        assert result.exit_code == 0, result.output
        assert png_height(out) == 110 + 200 * n  # the figure grows by one 2-inch panel per track
    default = runner.invoke(app, ["report", str(rec)])  # all three (default 6), beside the records
    assert default.exit_code == 0 and png_height(tmp_path / "faces.report.png") == 110 + 200 * 3


def test_html_is_one_self_contained_file(tmp_path):
    rec = webcam_records(tmp_path / "faces.csv", fmt="csv")
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(rec), "--out", str(out), "--tracks", "2"])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing to fetch: images are inlined
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 1
    img = cv2.imdecode(np.frombuffer(base64.b64decode(images[0]), np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[0] == 110 + 200 * 2
    # the summary table: the two longest tracks, with the dominant label and the share of each class
    assert "<td>1</td><td>50</td>" in page and "<td>2</td><td>30</td>" in page and "<td>3</td>" not in page


def test_thumbnails_come_from_the_source_video(tmp_path):
    from fer_edge.report.figures import thumbnails
    from fer_edge.report.records import read_records

    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (200, 120))
    for k in range(60):
        frame = np.zeros((120, 200, 3), np.uint8)
        frame[20:80, 10 + k : 70 + k] = (0, 0, 255)  # a red "face" moving right, where the records say
        writer.write(frame)
    writer.release()
    tracks = read_records(webcam_records(tmp_path / "faces.jsonl", lengths=(60,)))
    thumbs = thumbnails(video, tracks)
    assert set(thumbs) == {1} and thumbs[1].shape == (96, 96, 3)
    assert thumbs[1][..., 2].mean() > 200 and thumbs[1][..., :2].mean() < 40  # the face, not the background
    out = tmp_path / "with_thumbs.png"
    assert runner.invoke(app, ["report", str(tmp_path / "faces.jsonl"), "--video", str(video), "--out", str(out)]).exit_code == 0
    panel = cv2.imread(str(out))[110:310, :150]
    assert (panel[..., 2] > 200).sum() > 1000 and (panel[..., 1] < 60).sum() > 1000  # the red thumbnail is drawn


def test_classify_output_counts_per_folder_and_confidence(tmp_path):
    rows = [{"path": f"a/{i}.jpg", "face": 0, "label": "happy", "confidence": 0.9, **{n: 0.0 for n in LABELS}} for i in range(5)]
    rows += [{"path": "b/x.jpg", "face": 0, "label": "sad", "confidence": 0.5, **{n: 0.0 for n in LABELS}},
             {"path": "b/none.jpg", "label": ""}, {"path": "b/bad.jpg", "face": None, "error": "cannot decode"}]
    rec = tmp_path / "faces.jsonl"
    rec.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "c.html"
    result = runner.invoke(app, ["report", str(rec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "<td>happy</td><td>5</td><td>83.3%</td>" in page and "<td>sad</td><td>1</td>" in page


def test_bad_inputs_are_one_line_errors(tmp_path):
    cases = {
        "missing": ([str(tmp_path / "nope.jsonl")], 2, "no such file"),
        "empty": ([str((tmp_path / "e.jsonl"))], 1, "no records"),
        "foreign": ([str(tmp_path / "f.csv")], 1, "neither webcam records"),
        "cut": ([str(tmp_path / "cut.jsonl")], 1, "line 2 is not JSON"),
        "suffix": ([str(webcam_records(tmp_path / "ok.jsonl")), "--out", str(tmp_path / "r.gif")], 2, ".png or .html"),
        "not a run": ([str(tmp_path)], 2, "no metrics.csv"),
    }
    (tmp_path / "e.jsonl").write_text("")
    (tmp_path / "f.csv").write_text("a,b\n1,2\n")
    (tmp_path / "cut.jsonl").write_text(json.dumps({"track": 1}) + "\n{\"track\": 2, \"ti")
    for name, (args, code, text) in cases.items():
        result = runner.invoke(app, ["report", *args])
        assert result.exit_code == code, (name, result.output)
        assert text in result.stderr and len(result.stderr.strip().splitlines()) == 1, (name, result.stderr)


def test_without_matplotlib_the_command_says_how_to_get_it(tmp_path):
    rec = webcam_records(tmp_path / "faces.jsonl")
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None\n"  # as if it were not installed
        "from fer_edge.cli.app import main\n"
        f"sys.argv = ['fer-edge', 'report', {str(rec)!r}]\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    from fer_edge.install import extra_hint

    assert done.returncode == 1 and extra_hint("report") in done.stderr and "Traceback" not in done.stderr
    assert "[report]" in extra_hint("report")


def test_report_never_imports_torch(tmp_path):
    rec = webcam_records(tmp_path / "faces.jsonl")
    code = (
        "import sys\n"
        "from fer_edge.cli.app import main\n"
        f"sys.argv = ['fer-edge', 'report', {str(rec)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'torch' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr  # no DISPLAY either: drawing is headless


def test_webcam_and_classify_write_their_report(tmp_path, tiny_model, astronaut):
    from test_webcam import make_video

    video = make_video(tmp_path / "two_faces.avi", astronaut)
    out = tmp_path / "w.html"
    result = runner.invoke(app, ["webcam", "--source", str(video), "--model", str(tiny_model), "--no-display",
                                 "--device", "cpu", "--detect-size", "480", "--report", str(out)])
    assert result.exit_code == 0, result.output
    assert "report written" in result.stderr and "<td>1</td>" in out.read_text()
    assert not list(Path(tempfile_root()).glob("fer-edge-report-*"))  # the records kept aside are gone

    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), astronaut)
    png = tmp_path / "c.png"
    result = runner.invoke(app, ["classify", str(folder), "--model", str(tiny_model), "--device", "cpu", "--report", str(png)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("path,face") and png_height(png) == 460  # rows still on stdout, report drawn


def tempfile_root() -> str:
    import tempfile

    return tempfile.gettempdir()


torch = pytest.importorskip("torch", reason="training curves need the train extra (torch)")


def test_training_writes_curves_every_epoch_and_report_overlays_runs(tmp_path, monkeypatch):
    from fer_edge.train import trainer
    from synthetic import write_csv

    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    data = write_csv(tmp_path / "fer.csv")
    runs = []
    for seed in (0, 1):
        out = tmp_path / f"run{seed}"
        trainer.main(trainer.TrainConfig(data=str(data), out=str(out), arch="fernet-t", epochs=2, batch_size=32,
                                         threads=1, device="cpu", eval_tta=False, seed=seed), log=lambda *_: None)
        assert (out / "curves.png").is_file() and png_height(out / "curves.png") == 440
        runs.append(out)
    out = tmp_path / "both.html"
    result = runner.invoke(app, ["report", *map(str, runs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "<td>run0</td><td>2</td>" in page and "<td>run1</td><td>2</td>" in page
