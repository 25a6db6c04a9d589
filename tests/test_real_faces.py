"""Real-faces factory: FER+ votes, several training sources, photo folders cropped as the runtime crops them,
and end-to-end evaluation that counts the photos with no face found. Synthetic data only."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch", reason="the model factory needs the train extra (torch)")

from helpers import astronaut_face  # noqa: E402
from synthetic import synthetic_face, write_csv  # noqa: E402

from fer_edge.cli.app import app  # noqa: E402
from fer_edge.contract import LABELS  # noqa: E402
from fer_edge.errors import FerEdgeError  # noqa: E402
from fer_edge.train.data import Split, load_dataset, save_npz  # noqa: E402
from fer_edge.train.faces import crop_photos, group_folds, groups  # noqa: E402
from fer_edge.train.ferplus import read_votes, split_offsets, strict_majority, with_votes  # noqa: E402
from fer_edge.train.report import make_report  # noqa: E402
from fer_edge.train.sources import assemble, parse_source  # noqa: E402
from fer_edge.train.config import TrainConfig  # noqa: E402

runner = CliRunner()
VOTE_ORDER = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF"]
OURS = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad", "anger": "angry",
        "disgust": "disgust", "fear": "fear"}


def write_votes(path: Path, csv_path: Path, special: dict[int, dict[str, int]] | None = None) -> Path:
    """FER+ votes for every row of a synthetic CSV: 8 of 10 raters agree with the row's label, 2 say neutral
    (or what `special` says for a row)."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["row", "Usage", *VOTE_ORDER])
        for i, rec in enumerate(rows):
            votes = dict.fromkeys(VOTE_ORDER, 0)
            ours = LABELS[int(rec["emotion"])]
            votes[next(k for k, v in OURS.items() if v == ours)] += 8
            votes["neutral"] += 2
            if special and i in special:
                votes = dict.fromkeys(VOTE_ORDER, 0) | special[i]
            w.writerow([i, rec["Usage"], *(votes[k] for k in VOTE_ORDER)])
    return path


@pytest.fixture
def csv_data(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    return write_csv(tmp_path / "fer.csv")


# ----------------------------------------------------------------------------------------------- votes


def test_votes_map_to_our_classes_and_rows(csv_data, tmp_path):
    votes_path = write_votes(tmp_path / "votes.csv", csv_data, special={
        0: {"contempt": 6, "anger": 4},  # contempt ahead: no majority unless contempt counts for a class
        1: {"NF": 10},  # not a face: no vote for our classes, left out
        2: {"happiness": 5, "sadness": 5},  # a tie: no majority
    })
    votes = read_votes(votes_path)
    assert set(votes) == {"train", "val"}
    assert 1 not in votes["train"] and len(votes["train"]) == 14 * 7 - 1
    v3 = votes["train"][3]  # row 3 is class 3 (happy): 8 happy votes, 2 neutral
    assert v3[LABELS.index("happy")] == 8 and v3[LABELS.index("neutral")] == 2 and v3.sum() == 10
    majority = strict_majority(np.stack([votes["train"][0], votes["train"][2], v3]))
    assert majority.tolist() == [-1, -1, LABELS.index("happy")]

    as_disgust = read_votes(votes_path, contempt="disgust")["train"][0]
    assert as_disgust[LABELS.index("disgust")] == 6 and as_disgust[len(LABELS)] == 0
    assert strict_majority(as_disgust[None])[0] == LABELS.index("disgust")


def test_with_votes_gives_soft_targets_in_split_order(csv_data, tmp_path):
    votes = read_votes(write_votes(tmp_path / "votes.csv", csv_data))
    offsets = split_offsets(csv_data)
    assert offsets["val"][0] == 14 * 7  # PublicTest rows follow the Training rows
    val = load_dataset(csv_data)["val"]
    soft_split, majority = with_votes(val, offsets["val"], votes["val"])
    assert len(soft_split) == len(val)
    np.testing.assert_allclose(soft_split.soft.sum(1), 1, atol=1e-6)
    np.testing.assert_array_equal(majority, val.y)  # 8 of 10 raters agree with the label
    assert soft_split.soft[0, LABELS.index("neutral")] == pytest.approx(0.2)


def test_a_file_that_is_not_a_votes_file_is_one_line(csv_data, tmp_path):
    result = runner.invoke(app, ["train", "--data", str(csv_data), "--ferplus", str(csv_data), "--out",
                                 str(tmp_path / "r"), "--epochs", "1", "--arch", "mlp", "--device", "cpu"])
    assert result.exit_code == 1
    assert "not a FER+ votes file" in result.stderr and "Traceback" not in result.output
    with pytest.raises(FerEdgeError, match="contempt"):
        read_votes(csv_data, contempt="ignore")


# --------------------------------------------------------------------------------------------- sources


def test_parse_source_reads_a_repeat_count_but_not_from_a_real_name(tmp_path):
    assert parse_source("a/b.npz@3") == ("a/b.npz", 3)
    assert parse_source("a/b.npz") == ("a/b.npz", 1)
    odd = tmp_path / "set@2"
    odd.mkdir()
    assert parse_source(str(odd)) == (str(odd), 1)  # a folder really named so is that folder


def _extra_npz(path: Path, n_train=5, n_val=3) -> Path:
    rng = np.random.default_rng(7)
    def split(n):
        y = np.arange(n * 7) % 7
        return Split(np.stack([synthetic_face(c, rng) for c in y]), y.astype(np.int64))
    save_npz(path, {"train": split(n_train), "val": split(n_val)}, "synthetic-extra")
    return path


def test_sources_add_repeated_hard_sources_beside_soft_ferplus_targets(csv_data, tmp_path):
    votes = write_votes(tmp_path / "votes.csv", csv_data)
    extra = _extra_npz(tmp_path / "extra.npz")
    cfg = TrainConfig(data=str(csv_data), extra_data=[f"{extra}@3"], ferplus=str(votes), hard_weight=0.5)
    src = assemble(cfg)
    assert len(src.train) == 14 * 7 + 3 * 5 * 7
    assert src.train.soft is not None and src.train.soft.shape == (len(src.train), 7)
    first = src.train.soft[0]  # class 0 face: 0.5 * (0.8 angry + 0.2 neutral) + 0.5 * one-hot angry
    assert first[0] == pytest.approx(0.9) and first[LABELS.index("neutral")] == pytest.approx(0.1)
    np.testing.assert_array_equal(src.train.soft[-35:], np.eye(7, dtype=np.float32)[src.train.y[-35:]])
    assert {k: v.counted for k, v in src.vals.items()} == {"ferplus": True, "fer2013": False, "extra": True}
    # the run's identity changes with what it learns from, so --resume cannot mix them up
    other = assemble(TrainConfig(data=str(csv_data), extra_data=[f"{extra}@3"], ferplus=str(votes), hard_weight=0.2))
    assert other.sha256 != src.sha256


def test_training_on_several_sources_reports_each_one(csv_data, tmp_path):
    votes = write_votes(tmp_path / "votes.csv", csv_data)
    extra = _extra_npz(tmp_path / "extra.npz")
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(csv_data), "--ferplus", str(votes), "--hard-weight", "0.2",
                                 "--data", f"{extra}@2", "--out", str(out), "--arch", "fernet-t", "--epochs", "6",
                                 "--batch-size", "16", "--lr", "0.05", "--threads", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    with open(out / "metrics.csv") as f:
        header = next(csv.reader(f))
    assert {"val_acc_ferplus", "val_acc_fer2013", "val_acc_extra"} <= set(header)
    summary = json.loads((out / "summary.json").read_text())
    for name in ("ferplus", "fer2013", "extra"):
        assert (out / f"report_val_{name}.json").is_file()
        assert summary[f"val_{name}_acc_tta"] > 0.5, summary  # the synthetic task is learnt on every set (chance 1/7)
    assert "FER+ majority" in result.output and "FER2013's labels" in result.output


# ------------------------------------------------------------------------------------ photos end to end


def _photo(face: np.ndarray | None, size=256) -> np.ndarray:
    canvas = np.full((size, size, 3), 120, np.uint8)
    if face is not None:
        canvas[40:200, 48:208] = cv2.resize(face, (160, 160))
    return canvas


@pytest.fixture
def photo_folder(tmp_path, astronaut) -> Path:
    """Four performers (01..04), each with a photo in 'happy' and 'sad'; one 'angry' photo has no face."""
    root = tmp_path / "photos"
    face = astronaut_face(astronaut)
    for cls in ("happy", "sad"):
        (root / cls).mkdir(parents=True)
        for p in ("01", "02", "03", "04"):
            cv2.imwrite(str(root / cls / f"{p}_{cls}.jpg"), _photo(face))
    (root / "angry").mkdir()
    cv2.imwrite(str(root / "angry" / "02_angry.jpg"), _photo(None))
    (root / "sad" / "03_broken.jpg").write_bytes(b"not a jpeg")
    return root


def test_photos_are_cropped_as_the_runtime_crops_them(photo_folder):
    faces = crop_photos(photo_folder, "haar")
    assert len(faces.y) == 8 and faces.x.shape == (8, 48, 48)
    assert faces.missed == [("angry/02_angry.jpg", LABELS.index("angry"))]
    assert len(faces.unreadable) == 1 and "03_broken.jpg" in faces.unreadable[0]
    assert faces.x.std() > 10  # a face, not the grey background


def test_subjects_never_sit_on_both_sides_of_a_split(photo_folder, tmp_path):
    out = tmp_path / "tw.npz"
    result = runner.invoke(app, ["data", "faces", str(photo_folder), "--out", str(out), "--detector", "haar",
                                 "--folds", "2", "--val-fold", "1"])
    assert result.exit_code == 0, result.output
    assert "no face found in 1 photo(s), 1 unreadable" in result.output
    ds = load_dataset(out)
    assert len(ds["train"]) + len(ds["val"]) == 8 and len(ds["val"]) == 4
    names = crop_photos(photo_folder, "haar").names
    g = groups(names, r"^(\d\d)")
    folds = group_folds(g, 2)
    assert not {g[i] for i in folds[0]} & {g[i] for i in folds[1]}
    bad = runner.invoke(app, ["data", "faces", str(photo_folder), "--out", str(out), "--group", r"^(\d\d\d\d)"])
    assert bad.exit_code == 1 and "does not match the group pattern" in bad.stderr


def test_eval_on_a_photo_folder_counts_photos_with_no_face_as_wrong(photo_folder, tiny_model, tmp_path):
    report = tmp_path / "rep.json"
    result = runner.invoke(app, ["eval", str(tiny_model), "--data", str(photo_folder), "--detector", "haar",
                                 "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert "9 photos end to end through the haar detector (1 with no face found, 1 unreadable)" in result.output
    assert "no face" in result.output
    rep = json.loads(report.read_text())
    assert rep["samples"] == 9 and rep["no_face"][LABELS.index("angry")] == 1
    assert rep["per_class"]["angry"]["recall"] == 0
    assert sum(rep["answers"].values()) == 8


def test_a_missed_face_counts_wrong_but_stays_out_of_the_confusion_matrix():
    rep = make_report(np.array([0, 1, 1]), np.array([0, 1, 0]), missed=np.array([1]))
    assert rep.samples == 4 and rep.accuracy == pytest.approx(0.5)
    assert rep.per_class["disgust"]["recall"] == pytest.approx(1 / 3)
    assert np.array(rep.confusion).sum() == 3 and rep.no_face[1] == 1
    assert rep.answers["angry"] == 2 and "no face" in rep.text()
    plain = make_report(np.array([0, 1]), np.array([0, 1]))
    assert plain.no_face is None and "no face" not in plain.text()


def test_judged_sets_are_described_by_their_labels(csv_data, tmp_path):
    from fer_edge.train.eval_sets import judged_set

    votes = write_votes(tmp_path / "votes.csv", csv_data)
    fer = judged_set(csv_data, "val")
    plus = judged_set(csv_data, "val", ferplus=votes)
    assert fer.how == "42 val faces" and plus.how == "42 val faces against the FER+ majority"
    np.testing.assert_array_equal(plus.y, fer.y)  # 8 of 10 raters agree with every synthetic label
