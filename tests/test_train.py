"""Model factory: data loading and its errors, train/resume, eval, export. Tiny synthetic data only."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch", reason="the model factory needs the train extra (torch)")

import torch  # noqa: E402

from fer_edge.cli.app import app  # noqa: E402
from fer_edge.contract import LABELS  # noqa: E402
from fer_edge.errors import FerEdgeError  # noqa: E402
from fer_edge.train import trainer  # noqa: E402
from fer_edge.train.data import load_dataset, parse_fer_csv  # noqa: E402
from helpers import second_run, train_args  # noqa: E402
from synthetic import synthetic_face, write_csv  # noqa: E402

runner = CliRunner()


def write_folders(root: Path, names=("Anger", "disgust", "FEAR", "happiness", "sadness", "surprise", "neutral")) -> Path:
    rng = np.random.default_rng(1)
    for split, n in (("train", 8), ("test", 3)):
        for c, name in enumerate(names):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(n):
                face = cv2.resize(synthetic_face(c, rng), (96, 96))  # any size; the loader brings it to 48x48
                cv2.imwrite(str(d / f"{i}.png"), cv2.cvtColor(face, cv2.COLOR_GRAY2BGR))
    return root


# ----------------------------------------------------------------------------------------------- data


def test_csv_parses_to_splits_and_caches(csv_data, tmp_path):
    ds = load_dataset(csv_data)
    assert len(ds["train"]) == 98 and len(ds["val"]) == 42
    assert ds["train"].x.shape[1:] == (48, 48) and ds["train"].x.dtype == np.uint8
    assert list(ds["val"].class_counts()) == [6] * 7
    assert list((tmp_path / "cache").glob("fer-*.npz"))  # second load reads the cache
    again = load_dataset(csv_data)
    np.testing.assert_array_equal(again["train"].x, ds["train"].x)
    assert again.sha256 == ds.sha256


def test_gzipped_csv(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    ds = load_dataset(write_csv(tmp_path / "fer.csv.gz", gz=True))
    assert len(ds["train"]) == 98


def _bad_csv(tmp_path: Path, rows: list[str], header="emotion,pixels,Usage") -> Path:
    p = tmp_path / "bad.csv"
    p.write_text("\n".join([header, *rows]) + "\n")
    return p


GOOD_PIXELS = " ".join(["10"] * 2304)


@pytest.mark.parametrize(
    "header, rows, message",
    [
        ("emotion,Usage", ["1,Training"], "missing column\\(s\\) pixels"),
        (None, [f"1,{GOOD_PIXELS},Training", f"2,{' '.join(['1'] * 2000)},Training"], "line 3: pixels has 2000 values"),
        (None, [f"1,{GOOD_PIXELS},Training", f"2,{GOOD_PIXELS[:-2]}x1,Training"], "line 3: pixels has a non-numeric value"),
        (None, [f"9,{GOOD_PIXELS},Training"], "line 2: emotion 9 is out of range"),
        (None, [f"happy,{GOOD_PIXELS},Training"], "line 2: emotion is not an integer"),
        (None, [f"1,{' '.join(['300'] * 2304)},Training"], "pixel values must be 0..255"),
        (None, [f"1,{GOOD_PIXELS},Holdout"], "unknown Usage"),
        (None, [], "no rows"),
    ],
)
def test_bad_csv_gets_a_clear_error(tmp_path, header, rows, message):
    path = _bad_csv(tmp_path, rows, header or "emotion,pixels,Usage")
    with pytest.raises(FerEdgeError, match=message):
        parse_fer_csv(path)


def test_bad_data_through_the_cli_is_one_line(tmp_path):
    path = _bad_csv(tmp_path, [f"1,{' '.join(['1'] * 5)},Training"])
    result = runner.invoke(app, ["data", "stats", str(path)])
    assert result.exit_code == 1
    assert "line 2: pixels has 5 values" in result.stderr and "Traceback" not in result.output
    assert runner.invoke(app, ["data", "stats", str(tmp_path / "missing.csv")]).exit_code == 2  # a usage error


def test_image_folders_with_synonyms(tmp_path):
    ds = load_dataset(write_folders(tmp_path / "faces"))
    assert set(ds.splits) == {"train", "test"}
    assert list(ds["train"].class_counts()) == [8] * 7 and ds["test"].x.shape == (21, 48, 48)


def test_unknown_class_folder_lists_what_was_found(tmp_path):
    root = write_folders(tmp_path / "faces")
    (root / "train" / "contempt").mkdir()
    with pytest.raises(FerEdgeError, match="unknown class folder\\(s\\) contempt"):
        load_dataset(root)


def test_unreadable_images_are_skipped_or_fatal_with_strict(tmp_path):
    root = write_folders(tmp_path / "faces")
    (root / "train" / "happiness" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    ds = load_dataset(root)
    assert len(ds.skipped) == 1 and "broken.jpg" in ds.skipped[0]
    assert len(ds["train"]) == 56
    with pytest.raises(FerEdgeError, match="broken.jpg"):
        load_dataset(root, strict=True)


def test_data_stats_and_preview(csv_data, tmp_path):
    result = runner.invoke(app, ["data", "stats", str(csv_data)])
    assert result.exit_code == 0, result.output
    assert "angry" in result.stdout and "14 (14.3%)" in result.stdout and "6 (14.3%)" in result.stdout
    grid = tmp_path / "grid.png"
    result = runner.invoke(app, ["data", "preview", str(csv_data), "--out", str(grid), "--per-class", "4"])
    assert result.exit_code == 0, result.output
    img = cv2.imread(str(grid))
    assert img is not None and img.shape[0] >= 7 * 96


# ------------------------------------------------------------------------------------------ training


def test_train_on_csv_writes_a_complete_run_folder(csv_data, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, train_args(csv_data, out, "--epochs", "2"))
    assert result.exit_code == 0, result.output
    for name in ("config.json", "metrics.csv", "best.pt", "last.pt", "report_val.json", "report_val_confusion.png",
                 "report_val_confusion.csv", "summary.json"):
        assert (out / name).is_file(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["arch"] == "fernet-t" and len(cfg["data_sha256"]) == 64
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert set(rows[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}
    report = json.loads((out / "report_val.json").read_text())
    assert {"accuracy", "macro_f1", "per_class", "confusion", "samples"} <= set(report)
    assert report["samples"] == 42 and np.array(report["confusion"]).sum() == 42
    assert "epoch   2/2" in result.output


def test_train_on_folders_with_val_fraction(tmp_path):
    root = write_folders(tmp_path / "faces")
    out = tmp_path / "run"
    result = runner.invoke(app, train_args(root, out, "--epochs", "1"))
    assert result.exit_code == 1 and "--val-fraction" in result.stderr  # train/test but no val: say how
    result = runner.invoke(app, train_args(root, out, "--epochs", "1", "--val-fraction", "0.25"))
    assert result.exit_code == 0, result.output
    assert (out / "report_test.json").is_file()  # the test split is reported at the end too


def test_mlp_baseline_and_options(csv_data, tmp_path):
    out = tmp_path / "mlp"
    args = train_args(csv_data, out, "--epochs", "1", "--mix", "cutmix", "--mix-prob", "1", "--balance", "sampler",
                      "--optimizer", "adamw", "--lr", "0.001")
    args[args.index("fernet-t")] = "mlp"
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["params"] == 2304 * 64 + 64 + 64 * 7 + 7


def test_learns_the_synthetic_task(csv_data, tmp_path):
    summary = trainer.main(
        trainer.TrainConfig(data=str(csv_data), out=str(tmp_path / "r"), arch="fernet-t", epochs=8, batch_size=16,
                            lr=0.05, threads=1, device="cpu"),
        log=lambda *_: None,
    )
    assert summary["best_val_acc"] > 0.6  # chance is 1/7


def test_resume_after_a_kill_matches_an_uninterrupted_run(csv_data, tmp_path, monkeypatch):
    cfg = dict(data=str(csv_data), arch="fernet-t", epochs=3, batch_size=32, lr=0.05, threads=1, device="cpu",
               mix="mixup", erase=0.5)
    trainer.main(trainer.TrainConfig(out=str(tmp_path / "a"), **cfg), log=lambda *_: None)

    real_save = trainer.save_atomic
    saves = []

    def killed_after_epoch_2(obj, path):
        real_save(obj, path)
        saves.append(path.name)
        if saves.count("last.pt") == 2:
            raise KeyboardInterrupt  # the process dies right after epoch 2's checkpoint

    monkeypatch.setattr(trainer, "save_atomic", killed_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        trainer.main(trainer.TrainConfig(out=str(tmp_path / "b"), **cfg), log=lambda *_: None)
    monkeypatch.setattr(trainer, "save_atomic", real_save)
    trainer.main(trainer.TrainConfig(out=str(tmp_path / "b"), device="cpu", threads=1), resume=True, log=lambda *_: None)

    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    ma = strip(csv.DictReader((tmp_path / "a" / "metrics.csv").open()))
    mb = strip(csv.DictReader((tmp_path / "b" / "metrics.csv").open()))
    assert ma == mb


def test_existing_run_needs_resume_and_resume_needs_a_run(csv_data, tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(app, train_args(csv_data, out, "--epochs", "1")).exit_code == 0
    again = runner.invoke(app, train_args(csv_data, out, "--epochs", "1"))
    assert again.exit_code == 1 and "--resume" in again.stderr
    fresh = runner.invoke(app, train_args(csv_data, tmp_path / "none", "--resume"))
    assert fresh.exit_code == 1 and "last.pt" in fresh.stderr
    no_data = runner.invoke(app, ["train", "--out", str(tmp_path / "new")])
    assert no_data.exit_code != 0 and "--data" in no_data.stderr


def test_resume_finds_its_data_or_accepts_the_same_data_moved(csv_data, tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(app, train_args(csv_data, out, "--epochs", "3")).exit_code == 0
    resume = ["train", "--out", str(out), "--resume", "--threads", "1", "--device", "cpu", "--epochs", "3"]
    # The run was complete; shorten it by hand so that a resume has an epoch left to run.
    ckpt = torch.load(out / "last.pt", weights_only=False)
    ckpt["epoch"] = 1
    torch.save(ckpt, out / "last.pt")
    ok = runner.invoke(app, resume)  # no --data: the run's own config says where the data is
    assert ok.exit_code == 0, ok.output
    assert "resuming" in ok.stderr

    moved = tmp_path / "elsewhere" / "fer.csv"
    moved.parent.mkdir()
    moved.write_bytes(csv_data.read_bytes())
    torch.save(ckpt, out / "last.pt")
    assert runner.invoke(app, [*resume, "--data", str(moved)]).exit_code == 0
    other = write_csv(tmp_path / "other.csv", seed=7)
    torch.save(ckpt, out / "last.pt")
    refused = runner.invoke(app, [*resume, "--data", str(other)])
    assert refused.exit_code == 1 and "not the data this run was trained on" in refused.stderr


def test_time_budget_ends_cleanly_with_best_checkpoint(csv_data, tmp_path):
    summary = trainer.main(
        trainer.TrainConfig(data=str(csv_data), out=str(tmp_path / "r"), arch="fernet-t", epochs=1000, batch_size=16,
                            threads=1, device="cpu", max_minutes=0.05),
        log=lambda *_: None,
    )
    assert summary["stopped_by"].startswith("time budget") and summary["last_epoch"] < 1000
    assert (tmp_path / "r" / "best.pt").is_file()


def test_checkpoints_load_safely(tmp_path):
    from fer_edge.train.checkpoint import load_checkpoint

    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Evil(), "config": {}}, path)
    with pytest.raises(FerEdgeError, match="not a fer-edge checkpoint"):
        load_checkpoint(path)


def test_mlflow_absent_is_a_clear_message(csv_data, tmp_path):
    try:
        import mlflow  # noqa: F401

        pytest.skip("mlflow is installed here")
    except ImportError:
        pass
    result = runner.invoke(app, train_args(csv_data, tmp_path / "r", "--epochs", "1", "--tracker", "mlflow"))
    assert result.exit_code == 1 and "pip install mlflow" in result.stderr


# ---------------------------------------------------------------------------------------- eval/export


def test_distillation_from_a_checkpoint_and_from_an_onnx_teacher(trained_run, tmp_path, csv_data, monkeypatch):
    onnx_teacher = tmp_path / "teacher.onnx"
    assert runner.invoke(app, ["export", str(onnx_teacher), "--checkpoint", str(trained_run / "best.pt"), "--tta"]).exit_code == 0

    # offline labels are the ONNX model's probabilities, softened, and they follow a mixup permutation
    ds = load_dataset(csv_data)
    teacher = trainer.Teacher([str(onnx_teacher)], torch.device("cpu"), ds["train"].x, log=lambda *_: None)
    from fer_edge.classifier import ExpressionClassifier

    want = ExpressionClassifier.from_path(onnx_teacher, device="cpu").predict_probs(ds["train"].x)
    idx, perm = torch.tensor([5, 0, 17]), torch.tensor([2, 0, 1])
    got = teacher.soft_targets(torch.zeros(3, 1, 48, 48), 1.0, idx).numpy()
    np.testing.assert_allclose(got, want[[5, 0, 17]], atol=1e-5)
    mixed = teacher.soft_targets(torch.zeros(3, 1, 48, 48), 1.0, idx, perm, 0.25).numpy()
    np.testing.assert_allclose(mixed, 0.25 * want[[5, 0, 17]] + 0.75 * want[[17, 5, 0]], atol=1e-5)
    hot = teacher.soft_targets(torch.zeros(3, 1, 48, 48), 4.0, idx).numpy()
    assert (hot.max(1) < got.max(1)).all()  # a temperature above 1 softens

    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "fresh-cache"))  # the labels above are not read back
    for name, path in (("pt", trained_run / "best.pt"), ("onnx", onnx_teacher)):
        out = tmp_path / f"kd-{name}"
        result = runner.invoke(app, train_args(csv_data, out, "--epochs", "1", "--teacher", str(path), "--mix", "cutmix",
                                               "--mix-prob", "1"))
        assert result.exit_code == 0, result.output
        assert json.loads((out / "config.json").read_text())["teachers"] == [str(path)]
        assert ("labelled 98 training faces once" in result.output) == (name == "onnx")


def test_a_checkpoint_teacher_with_tta_averages_the_batch_and_its_mirror(trained_run, tmp_path, csv_data):
    from fer_edge.train.checkpoint import load_checkpoint

    net = trainer.model_from_checkpoint(load_checkpoint(trained_run / "best.pt")).eval()
    x = torch.randn(5, 1, 48, 48)  # a face is not its mirror, so the two views disagree
    with torch.no_grad():
        plain, mirror = (torch.softmax(net(v) / 2.0, 1) for v in (x, x.flip(3)))
    assert (plain - mirror).abs().max() > 1e-4
    flipped = trainer.Teacher([str(trained_run / "best.pt")], torch.device("cpu"), log=lambda *_: None, tta=True)
    torch.testing.assert_close(flipped.soft_targets(x, 2.0), (plain + mirror) / 2)
    one_view = trainer.Teacher([str(trained_run / "best.pt")], torch.device("cpu"), log=lambda *_: None)
    torch.testing.assert_close(one_view.soft_targets(x, 2.0), plain)

    out = tmp_path / "kd-tta"
    result = runner.invoke(app, train_args(csv_data, out, "--epochs", "1", "--teacher", str(trained_run / "best.pt"),
                                           "--teacher-tta"))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["teacher_tta"] is True
    assert "labels every augmented batch and its mirror, averaged" in result.output


def test_flip_pairs_put_each_face_beside_its_mirror_with_one_target(trained_run, tmp_path, csv_data, monkeypatch):
    from fer_edge.train.checkpoint import load_checkpoint

    seen, targets = [], []
    labelled = trainer.Teacher.soft_targets

    def spy_teacher(self, x, *args, **kwargs):
        seen.append(x.detach().clone())
        return labelled(self, x, *args, **kwargs)

    kl_div = torch.nn.functional.kl_div

    def spy_kl(log_probs, target, **kwargs):
        targets.append(target.detach().clone())
        return kl_div(log_probs, target, **kwargs)

    monkeypatch.setattr(trainer.Teacher, "soft_targets", spy_teacher)
    monkeypatch.setattr(trainer.F, "kl_div", spy_kl)
    out = tmp_path / "pairs"
    result = runner.invoke(app, train_args(csv_data, out, "--epochs", "1", "--teacher", str(trained_run / "best.pt"),
                                           "--teacher-tta", "--flip-pairs", "--no-amp"))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["flip_pairs"] is True
    assert "flip pairs" in result.output and "and its mirror, averaged" not in result.output  # no second TTA pass

    net = trainer.model_from_checkpoint(load_checkpoint(trained_run / "best.pt")).eval()
    assert len(seen) == len(targets) == 98 // 32
    for x, target in zip(seen, targets):
        half = len(x) // 2
        assert len(x) == 64 and not torch.equal(x[:half], x[:half].flip(3))
        torch.testing.assert_close(x[half:], x[:half].flip(3))  # each face's mirror, in the same step
        with torch.no_grad():
            tta = sum(torch.softmax(net(v) / 4.0, 1) for v in (x[:half], x[half:])) / 2
        torch.testing.assert_close(target[:half], tta)  # the teacher's flip TTA of the pair ...
        torch.testing.assert_close(target[half:], tta)  # ... taught to both views

    result = runner.invoke(app, train_args(csv_data, tmp_path / "pairs-mix", "--epochs", "1", "--flip-pairs",
                                           "--mix", "cutmix"))
    assert result.exit_code == 2 and "--flip-pairs" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "pairs-mix").exists()


def test_an_online_onnx_teacher_labels_the_augmented_batch_itself(trained_run, tmp_path, csv_data, monkeypatch):
    from fer_edge.classifier import ExpressionClassifier
    from fer_edge.contract import PIXEL_MEAN, PIXEL_STD

    onnx_teacher = tmp_path / "teacher.onnx"
    assert runner.invoke(app, ["export", str(onnx_teacher), "--checkpoint", str(trained_run / "best.pt")]).exit_code == 0
    clf = ExpressionClassifier.from_path(onnx_teacher, device="cpu")
    faces = np.random.default_rng(3).integers(0, 256, (6, 48, 48), dtype=np.uint8)  # not training faces
    x = (torch.from_numpy(faces).float()[:, None] / 255.0 - PIXEL_MEAN) / PIXEL_STD  # as the trainer feeds them

    def softened(f, t):
        return torch.softmax(torch.from_numpy(np.log(clf.predict_probs(f))) / t, 1)

    online = trainer.Teacher([str(onnx_teacher)], torch.device("cpu"), log=lambda *_: None, online=True)
    assert not online.offline  # no labels of the training faces were made
    torch.testing.assert_close(online.soft_targets(x, 2.0), softened(faces, 2.0), atol=1e-5, rtol=1e-4)
    assert (softened(faces, 2.0) - softened(faces[:, :, ::-1], 2.0)).abs().max() > 1e-4  # the mirror differs
    mirrored = trainer.Teacher([str(onnx_teacher)], torch.device("cpu"), log=lambda *_: None, online=True, tta=True)
    torch.testing.assert_close(mirrored.soft_targets(x, 2.0),
                               (softened(faces, 2.0) + softened(faces[:, :, ::-1], 2.0)) / 2, atol=1e-5, rtol=1e-4)

    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "fresh-cache"))
    out = tmp_path / "kd-online"
    result = runner.invoke(app, train_args(csv_data, out, "--epochs", "1", "--teacher", str(onnx_teacher),
                                           "--teacher-online"))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["teacher_online"] is True
    assert "labels every augmented batch through onnxruntime" in result.output
    assert "training faces once" not in result.output


def test_onnx_teacher_labels_are_cached_by_teacher_and_faces(trained_run, tmp_path, monkeypatch):
    from fer_edge.classifier import ExpressionClassifier

    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    onnx_teacher = tmp_path / "teacher.onnx"
    assert runner.invoke(app, ["export", str(onnx_teacher), "--checkpoint", str(trained_run / "best.pt")]).exit_code == 0
    faces = np.random.default_rng(0).integers(0, 256, (40, 48, 48), dtype=np.uint8)
    lines = []
    first = trainer.Teacher([str(onnx_teacher)], torch.device("cpu"), faces, log=lines.append).offline[0]
    assert "labelled 40 training faces once" in lines[-1]

    labelled = []
    real = ExpressionClassifier.from_path
    monkeypatch.setattr(ExpressionClassifier, "from_path", lambda *a, **k: labelled.append(1) or real(*a, **k))
    again = trainer.Teacher([str(onnx_teacher)], torch.device("cpu"), faces, log=lines.append).offline[0]
    assert not labelled and "read from" in lines[-1]
    torch.testing.assert_close(again, first, rtol=0, atol=0)

    other = faces.copy()
    other[0, 0, 0] ^= 1  # one grey level on one face: other faces, other labels
    trainer.Teacher([str(onnx_teacher)], torch.device("cpu"), other, log=lines.append)
    assert labelled == [1] and "labelled 40" in lines[-1]

    cached = sorted((tmp_path / "cache" / "teacher-labels").glob("*.npy"))
    assert len(cached) == 2
    for f in cached:
        f.write_bytes(f.read_bytes()[:100])  # torn files are ignored and relabelled, never trusted
    trainer.Teacher([str(onnx_teacher)], torch.device("cpu"), faces, log=lines.append)
    assert labelled == [1, 1] and "labelled 40" in lines[-1]


def test_warm_start_takes_the_weights_and_refuses_another_arch(trained_run, tmp_path, csv_data):
    out = tmp_path / "fine"
    # lr 0: the weights must come out exactly as they went in (BatchNorm's running statistics still move)
    result = runner.invoke(app, train_args(csv_data, out, "--epochs", "1", "--lr", "0", "--init", str(trained_run / "best.pt")))
    assert result.exit_code == 0, result.output
    assert "warm start from" in result.output
    before, after = torch.load(trained_run / "best.pt")["model"], torch.load(out / "last.pt")["model"]
    weights = [k for k in before if k.endswith("weight") or k.endswith("bias")]
    assert weights and all(torch.equal(before[k], after[k]) for k in weights)
    assert json.loads((out / "config.json").read_text())["init"] == str(trained_run / "best.pt")

    other = runner.invoke(app, train_args(csv_data, tmp_path / "other", "--arch", "mlp", "--init", str(trained_run / "best.pt")))
    assert other.exit_code == 2 and "holds a fernet-t model" in other.output


def test_ema_weights_are_validated_saved_and_resumed(csv_data, tmp_path, monkeypatch):
    cfg = dict(data=str(csv_data), arch="fernet-t", epochs=2, batch_size=16, lr=0.05, threads=1, device="cpu",
               eval_tta=False, ema=0.9)
    lines: list[str] = []
    trainer.main(trainer.TrainConfig(out=str(tmp_path / "a"), **cfg), log=lines.append)
    assert any("EMA 0.9 a step" in line for line in lines)
    last, best = torch.load(tmp_path / "a" / "last.pt"), torch.load(tmp_path / "a" / "best.pt")
    assert "ema" in last and "ema" not in best
    average = {k.removeprefix("module."): v for k, v in last["ema"].items() if k.startswith("module.")}
    key = next(k for k in last["model"] if k.endswith("weight") and last["model"][k].dim() == 4)
    assert not torch.equal(average[key], last["model"][key])  # an average, not a copy
    if best["epoch"] == last["epoch"]:  # best.pt holds the average
        assert set(best["model"]) == set(average) and torch.equal(best["model"][key], average[key])
    # a last.pt stands for its average everywhere but --resume: export, eval and teachers load the EMA
    from fer_edge.train.checkpoint import model_from_checkpoint
    assert torch.equal(model_from_checkpoint(last).state_dict()[key], average[key])

    # killed after epoch 1 and resumed: the average carries on as if nothing happened
    real_save = trainer.save_atomic

    def killed_after_epoch_1(obj, path):
        real_save(obj, path)
        if path.name == "last.pt":
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_atomic", killed_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        trainer.main(trainer.TrainConfig(out=str(tmp_path / "b"), **cfg), log=lambda *_: None)
    monkeypatch.setattr(trainer, "save_atomic", real_save)
    trainer.main(trainer.TrainConfig(out=str(tmp_path / "b"), device="cpu", threads=1), resume=True, log=lambda *_: None)
    resumed = torch.load(tmp_path / "b" / "last.pt")
    for k in last["ema"]:
        torch.testing.assert_close(resumed["ema"][k], last["ema"][k], rtol=1e-5, atol=1e-6)


def test_a_weight_soup_averages_a_checkpoint_and_its_fine_tune(trained_run, tmp_path, csv_data):
    fine = tmp_path / "fine"
    result = runner.invoke(app, train_args(csv_data, fine, "--epochs", "1", "--ema", "0.5", "--init", str(trained_run / "best.pt")))
    assert result.exit_code == 0, result.output
    out = tmp_path / "soup.pt"
    made = runner.invoke(app, ["train", "soup", str(out), str(trained_run / "best.pt"), str(fine / "last.pt"), "--weights", "1,3"])
    assert made.exit_code == 0, made.output
    said = made.stdout
    assert "0.25 x" in said and "0.75 x" in said and "(EMA)" in said
    start, last, mixed = torch.load(trained_run / "best.pt"), torch.load(fine / "last.pt"), torch.load(out)
    ema = {k.removeprefix("module."): v for k, v in last["ema"].items() if k.startswith("module.")}
    floats = [k for k, v in start["model"].items() if v.is_floating_point()]
    assert any(k.endswith("running_var") for k in floats)  # BatchNorm statistics are averaged too
    for k in floats:
        torch.testing.assert_close(mixed["model"][k], 0.25 * start["model"][k] + 0.75 * ema[k], rtol=1e-5, atol=1e-6)
    assert [s["weight"] for s in mixed["config"]["soup"]] == [0.25, 0.75]
    assert [s["ema"] for s in mixed["config"]["soup"]] == [False, True]
    # a best.pt of an --ema run already holds the average: named as such, its weights taken as they are
    assert runner.invoke(app, ["train", "soup", str(tmp_path / "b.pt"), str(trained_run / "best.pt"), str(fine / "best.pt")]).exit_code == 0
    assert [s["ema"] for s in torch.load(tmp_path / "b.pt")["config"]["soup"]] == [False, True]

    # it is a checkpoint like any other: it exports and warm-starts
    onnx_out = tmp_path / "soup.onnx"
    exported = runner.invoke(app, ["export", str(onnx_out), "--checkpoint", str(out), "--data", str(csv_data)])
    assert exported.exit_code == 0, exported.output
    import onnx
    meta = {p.key: p.value for p in onnx.load(str(onnx_out)).metadata_props}
    assert json.loads(meta["soup"]) == mixed["config"]["soup"] and meta["val_accuracy_checkpoint"] == ""
    again = runner.invoke(app, train_args(csv_data, tmp_path / "again", "--epochs", "1", "--init", str(out)))
    assert again.exit_code == 0, again.output
    assert "(a weight soup of 2 checkpoints)" in again.output and "val acc 0.00%" not in again.output
    from_last = runner.invoke(app, train_args(csv_data, tmp_path / "from-last", "--epochs", "1", "--init", str(fine / "last.pt")))
    assert from_last.exit_code == 0 and "its EMA weights" in from_last.output, from_last.output


def test_a_plateaued_student_grows_a_grid_head_that_starts_from_its_own_function(csv_data, tmp_path, monkeypatch):
    """train/grow.py: a fernet-t2 becomes a fernet-t2g (3x3 head) computing the same logits, which exports,
    reads back and trains; a grow that would change the function is refused in one line."""
    from fer_edge.train import models
    from fer_edge.train.checkpoint import model_from_checkpoint

    torch.manual_seed(0)
    net = models.build_model("fernet-t2").train()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        for _ in range(3):
            net(torch.randn(16, 1, 48, 48) * 2 + 0.5)
    source = tmp_path / "t2.pt"
    torch.save({"model": net.state_dict(), "config": {"arch": "fernet-t2", "data_sha256": "", "ema": 0},
                "labels": list(LABELS), "epoch": 4, "best_acc": 0.5}, source)
    grown = tmp_path / "t2g.pt"
    made = runner.invoke(app, ["train", "grow", str(grown), str(source), "--arch", "fernet-t2g"])
    assert made.exit_code == 0, made.output
    assert "a fernet-t2g grown from fernet-t2" in made.stdout
    ckpt = torch.load(grown)
    assert ckpt["config"]["arch"] == "fernet-t2g" and ckpt["model"]["head.3.weight"].shape == (7, 192 * 9)
    faces = torch.randn(32, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(model_from_checkpoint(ckpt)(faces), net.eval()(faces), atol=1e-5, rtol=1e-5)

    # the grid head exports, and its export reads back into a trainable fernet-t2g
    exported = tmp_path / "t2g.onnx"
    result = runner.invoke(app, ["export", str(exported), "--checkpoint", str(grown), "--data", str(csv_data)])
    assert result.exit_code == 0, result.output
    # in the graph the pool is a depthwise conv and the cells flatten channels-last (export/grid_head.py): same logits
    import onnx

    from fer_edge.export.grid_head import export_form

    grown_net = model_from_checkpoint(ckpt).eval()
    with torch.no_grad():
        torch.testing.assert_close(export_form(grown_net)(faces), grown_net(faces), atol=1e-5, rtol=1e-5)
    ops = [n.op_type for n in onnx.load(str(exported)).graph.node]
    assert "AveragePool" not in ops and "GlobalAveragePool" not in ops
    meta = {p.key: p.value for p in onnx.load(str(exported)).metadata_props}
    assert meta["params"] == str(models.count_params(grown_net))  # what was trained, not the export form
    back = runner.invoke(app, ["train", "from-onnx", str(tmp_path / "back.pt"), str(exported), "--data", str(csv_data)])
    assert back.exit_code == 0 and "a trainable fernet-t2g" in back.stdout, back.output
    back = torch.load(tmp_path / "back.pt")["model"]
    torch.testing.assert_close(back["head.3.weight"], ckpt["model"]["head.3.weight"])  # back in (channel, cell) order
    fine = tmp_path / "fine"
    args = train_args(csv_data, fine, "--epochs", "1", "--init", str(grown))
    result = runner.invoke(app, [a if a != "fernet-t" else "fernet-t2g" for a in args])
    assert result.exit_code == 0, result.output
    assert "warm start from" in result.output and (fine / "best.pt").exists()

    monkeypatch.setitem(models.FERNET_SIZES, "fernet-t2-grid4", models.FerNetSpec((8, 32, 96, 192), (1, 1, 2, 3), 0.2, 4))
    cases = [
        ([str(tmp_path / "m.pt"), str(source), "--arch", "fernet-m"], "only the head's grid can grow"),
        ([str(tmp_path / "g4.pt"), str(source), "--arch", "fernet-t2-grid4"], "does not split evenly"),
        ([str(tmp_path / "x.pt"), str(exported), "--arch", "fernet-t2g"], "an .onnx source needs --data"),
        ([str(tmp_path / "x.onnx"), str(source), "--arch", "fernet-t2g"], "name the checkpoint .pt"),
    ]
    for argv, message in cases:
        refused = runner.invoke(app, ["train", "grow", *argv])
        assert refused.exit_code == 2, refused.output
        err = refused.stderr
        assert message in err and err.count("\n") == 1, err
    assert not any((tmp_path / n).exists() for n in ("m.pt", "g4.pt", "x.pt", "x.onnx"))


def test_a_soup_of_different_models_or_bad_weights_is_one_line(trained_run, tmp_path, csv_data):
    mlp = tmp_path / "mlp"
    assert runner.invoke(app, train_args(csv_data, mlp, "--arch", "mlp", "--epochs", "1")).exit_code == 0
    best = str(trained_run / "best.pt")
    cases = [
        ([str(tmp_path / "s.pt"), best, str(mlp / "best.pt")], "cannot average different architectures: fernet-t, mlp"),
        ([str(tmp_path / "s.pt"), best, best, "--weights", "1"], "--weights has 1 numbers for 2 checkpoints"),
        ([str(tmp_path / "s.pt"), best, best, "--weights", "a,b"], "give 2 comma-separated numbers"),
        ([str(tmp_path / "s.pt"), best, best, "--weights", "0,0"], "they cannot all be 0"),
        ([str(tmp_path / "s.pt"), best], "a soup needs at least two checkpoints"),
        ([str(tmp_path / "s.onnx"), best, best], "name it .pt"),
    ]
    for argv, message in cases:
        refused = runner.invoke(app, ["train", "soup", *argv])
        assert refused.exit_code == 2, refused.output
        err = refused.stderr
        assert message in err and err.count("\n") == 1, err
    missing = runner.invoke(app, ["train", "soup", str(tmp_path / "s.pt"), best, str(tmp_path / "missing.pt")])
    assert missing.exit_code == 1 and "no such checkpoint" in missing.stderr
    other = second_run(csv_data, tmp_path, data=write_csv(tmp_path / "other.csv", seed=11))
    mixed = runner.invoke(app, ["train", "soup", str(tmp_path / "s.pt"), best, str(other / "best.pt")])
    assert mixed.exit_code == 1 and "trained on different data" in mixed.stderr
    assert not (tmp_path / "s.pt").exists()




def test_train_options_are_the_config_fields_and_a_config_file_reruns_a_run(csv_data, tmp_path):
    """Each TrainConfig field is declared once (train/config.py) and is an option of `fer-edge train`; a run's
    config.json given to --config trains the same recipe, with the options given beside it on top."""
    from dataclasses import fields

    from fer_edge.train.config import TrainConfig

    shown = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "400"}).output
    for f in fields(TrainConfig):
        if f.metadata.get("cli", True):
            flag = (f.metadata.get("flags") or (f"--{f.name.replace('_', '-')}",))[0].split("/")[0]
            assert f"{flag} " in shown, flag
    assert "--data-sha256" not in shown and "--extra-data" not in shown

    first = tmp_path / "a"
    made = runner.invoke(app, train_args(csv_data, first, "--epochs", "1", "--rotate", "7", "--corruptions", "blur,noise",
                                         "--data", f"{csv_data}@2"))
    assert made.exit_code == 0, made.output
    saved = json.loads((first / "config.json").read_text())
    assert saved["extra_data"] == [f"{csv_data}@2"] and saved["corruptions"] == ["blur", "noise"] and saved["rotate"] == 7
    again = runner.invoke(app, ["train", "--config", str(first / "config.json"), "--out", str(tmp_path / "b"), "--seed", "5"])
    assert again.exit_code == 0, again.output
    rerun = json.loads((tmp_path / "b" / "config.json").read_text())
    assert rerun["seed"] == 5 and rerun["out"] == str(tmp_path / "b")
    assert {k: v for k, v in rerun.items() if k not in ("seed", "out")} == {k: v for k, v in saved.items() if k not in ("seed", "out")}

    (tmp_path / "typo.json").write_text(json.dumps({"epoch": 3}))
    typo = runner.invoke(app, ["train", "--config", str(tmp_path / "typo.json"), "--out", str(tmp_path / "c")])
    assert typo.exit_code == 2 and "unknown option 'epoch'" in typo.stderr and typo.stderr.count("\n") == 1
    bad = runner.invoke(app, train_args(csv_data, tmp_path / "d", "--corruptions", "blur,fog"))
    assert bad.exit_code == 2 and "unknown 'fog'" in bad.stderr and not (tmp_path / "d").exists()
