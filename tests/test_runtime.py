"""Runtime: model contract, providers, detection, cropping, Recognizer. No torch anywhere."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import group_photo, make_tiny_model
from fer_edge.classifier import ExpressionClassifier
from fer_edge.contract import LABELS
from fer_edge.crop import crop_face, square_box
from fer_edge.detect import HaarDetector, YuNetDetector, make_detector
from fer_edge.errors import FerEdgeError, UsageError
from fer_edge.providers import (
    COREML, CPU, CUDA, DIRECTML, OPENVINO, TENSORRT, ProviderReport, select_providers,
)
from fer_edge.recognizer import SHIPPED_MODELS, Recognizer, default_model_path, resolve_model

# ----------------------------------------------------------------------------------------- providers


def names(chain):
    return [p for p, _ in chain]


LINUX_GPU_WHEEL = [TENSORRT, CUDA, CPU]  # what onnxruntime-gpu lists, whether or not CUDA can start
MACOS_WHEEL = [COREML, "AzureExecutionProvider", CPU]
WINDOWS_DIRECTML = [DIRECTML, CPU]
OPENVINO_WHEEL = [OPENVINO, CPU]


def test_select_providers_cpu_only_build():
    assert names(select_providers("auto", [CPU])) == [CPU]
    assert names(select_providers("cpu", LINUX_GPU_WHEEL)) == [CPU]


@pytest.mark.parametrize("available, expected", [
    (LINUX_GPU_WHEEL, [CUDA, CPU]),  # TensorRT only when asked: its first start builds an engine
    (MACOS_WHEEL, [COREML, CPU]),
    (WINDOWS_DIRECTML, [DIRECTML, CPU]),
    (OPENVINO_WHEEL, [OPENVINO, CPU]),
    ([OPENVINO, CUDA, CPU], [CUDA, OPENVINO, CPU]),  # the documented order, not the build's
])
def test_auto_takes_the_best_listed_provider_in_the_documented_order(available, expected):
    assert names(select_providers("auto", available)) == expected


def test_explicit_devices_and_tensorrt_caches_its_engines(tmp_path):
    assert names(select_providers("cuda", LINUX_GPU_WHEEL)) == [CUDA, CPU]
    assert names(select_providers("coreml", MACOS_WHEEL)) == [COREML, CPU]
    chain = select_providers("tensorrt", LINUX_GPU_WHEEL, cache_dir=tmp_path)
    assert names(chain) == [TENSORRT, CUDA, CPU]
    opts = chain[0][1]
    assert opts["trt_engine_cache_enable"] and opts["trt_fp16_enable"]
    assert opts["trt_engine_cache_path"] == str(tmp_path / "tensorrt")


def test_select_providers_missing_provider_is_an_error_with_the_install_hint():
    with pytest.raises(FerEdgeError, match=r"no CUDA provider.*fer-edge\[cuda\]"):
        select_providers("cuda", [CPU])
    with pytest.raises(FerEdgeError, match="no CoreML provider.*macOS"):
        select_providers("coreml", LINUX_GPU_WHEEL)
    with pytest.raises(FerEdgeError, match="onnxruntime-openvino"):
        select_providers("openvino", MACOS_WHEEL)
    with pytest.raises(UsageError):
        select_providers("tpu", [CPU])


def test_provider_report_says_when_it_fell_back_and_why():
    r = ProviderReport("auto", (CUDA, CPU), (CPU,), "no NVIDIA driver or GPU: x")
    assert r.name == "CPU" and r.fell_back
    assert r.describe() == "CPU (CUDA was tried but could not start: no NVIDIA driver or GPU: x)"
    ok = ProviderReport("auto", (CUDA, CPU), (CUDA, CPU))
    assert ok.name == "CUDA" and not ok.fell_back and ok.describe() == "CUDA"
    assert ProviderReport("auto", (COREML, CPU), (COREML, CPU)).name == "CoreML"


def test_sessions_do_not_spin_between_calls_and_take_the_thread_count(tiny_model):
    """Idle onnxruntime threads spinning for the next call took the cores OpenCV detects on (docs/performance.md)."""
    from fer_edge.providers import make_session

    session, _ = make_session(str(tiny_model), "cpu", threads=1)
    options = session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 1


def test_why_cuda_did_not_start_tells_driver_from_libraries(monkeypatch):
    from fer_edge import gpu

    monkeypatch.setattr(gpu, "driver_status", lambda: (False, "the NVIDIA driver's library (libcuda) is not installed"))
    assert gpu.why_cuda_did_not_start().startswith("no NVIDIA driver or GPU")
    monkeypatch.setattr(gpu, "driver_status", lambda: (True, "1 GPU(s), driver supports CUDA 13.0"))
    monkeypatch.setattr(gpu, "preload_cuda_libraries", lambda: ("libcudart.so.13", "libcudnn.so.9"))
    why = gpu.why_cuda_did_not_start()
    assert why == 'CUDA/cuDNN libraries missing (libcudart.so.13, libcudnn.so.9): pip install "fer-edge[cuda]"'
    monkeypatch.setattr(gpu, "preload_cuda_libraries", lambda: ())
    assert "driver" in gpu.why_cuda_did_not_start() and "TensorRT" in gpu.why_cuda_did_not_start("TensorRT")


def test_this_machine_reports_its_real_cuda_state(tiny_model):
    """No test fakes anything here: on a machine without a GPU, auto falls back and says why, in one line."""
    import onnxruntime as ort

    from fer_edge import gpu

    clf = ExpressionClassifier.from_path(tiny_model, device="auto")
    ok, detail = gpu.driver_status()
    if CUDA not in ort.get_available_providers():
        assert clf.providers.name == "CPU" and not clf.providers.fell_back
    elif not ok:
        assert clf.providers.name == "CPU" and "no NVIDIA driver or GPU" in clf.providers.describe()
    elif clf.providers.fell_back:  # a GPU with its libraries missing: the hint says how to get them
        assert "fer-edge[cuda]" in clf.providers.describe() or "could not start" in clf.providers.describe()
    assert "\n" not in clf.providers.describe()


def test_classifier_reports_what_really_runs(tiny_model):
    clf = ExpressionClassifier.from_path(tiny_model, device="cpu")
    assert clf.providers.active[0] == CPU
    assert clf.providers.name == "CPU"


# ------------------------------------------------------------------------------------------ contract


def test_classifier_batches_and_probabilities(tiny_model):
    clf = ExpressionClassifier.from_path(tiny_model, device="cpu")
    faces = np.random.default_rng(0).integers(0, 256, (300, 48, 48), dtype=np.uint8)
    probs = clf.predict_probs(faces, batch=64)
    assert probs.shape == (300, 7)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(probs, clf.predict_probs(faces, batch=300), atol=1e-6)  # batching changes nothing
    assert clf.predict_probs(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)
    preds = clf.predict(faces[:3])
    assert [p.label for p in preds] == [LABELS[i] for i in probs[:3].argmax(1)]
    bound = ExpressionClassifier.from_path(tiny_model, device="cpu", io_binding=True)
    np.testing.assert_array_equal(bound.predict_probs(faces, batch=64), probs)  # I/O binding changes nothing


def test_classifier_reorders_foreign_label_order(tmp_path):
    order = ["neutral", "happy", "sad", "anger", "fear", "Disgust", "surprise"]  # another order, a synonym, a capital
    foreign = make_tiny_model(tmp_path / "foreign.onnx", labels=order, seed=3)
    ours = make_tiny_model(tmp_path / "ours.onnx", seed=3)
    faces = np.random.default_rng(1).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    p_foreign = ExpressionClassifier.from_path(foreign, device="cpu").predict_probs(faces)
    p_ours = ExpressionClassifier.from_path(ours, device="cpu").predict_probs(faces)
    # same weights, columns permuted: the classifier must map column k of `order` back to its FER2013 index
    perm = [[n.lower() for n in order].index({"angry": "anger"}.get(name, name)) for name in LABELS]
    # same weights, other column names: FER2013 class i must come from the model's column perm[i]
    np.testing.assert_allclose(p_foreign, p_ours[:, perm], atol=1e-6)
    assert ExpressionClassifier.from_path(foreign, device="cpu").info.order == tuple(perm)


def test_float_input_with_channel_axis_and_logits(tmp_path):
    path = make_tiny_model(tmp_path / "f.onnx", input_dims=(1, 48, 48), input_type="float", output="logits")
    clf = ExpressionClassifier.from_path(path, device="cpu")
    assert clf.info.channel_axis and clf.info.input_dtype == "float32" and clf.info.output == "logits"
    probs = clf.predict_probs(np.full((2, 48, 48), 128, np.uint8))
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_dims": (64, 64)}, "expected \\[N, 48, 48\\]"),
        ({"metadata": {"labels": None}}, "no 'labels' metadata"),
        ({"width": 8, "labels": list(LABELS) + ["contempt"]}, "not the 7 FER2013 classes"),
        ({"width": 6, "labels": LABELS[:6]}, "not the 7 FER2013 classes"),
        ({"metadata": {"labels": "angry,disgust"}}, "not valid JSON"),
        ({"input_type": "float", "metadata": {"preprocessing": "{}"}}, "needs preprocessing metadata"),
    ],
)
def test_models_that_break_the_contract_are_refused(tmp_path, kwargs, message):
    path = make_tiny_model(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(FerEdgeError, match=message):
        ExpressionClassifier.from_path(path, device="cpu")


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(FerEdgeError, match="no such model file"):
        ExpressionClassifier.from_path(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not protobuf" * 10)
    with pytest.raises(FerEdgeError, match="cannot load"):
        ExpressionClassifier.from_path(junk, device="cpu")


# ------------------------------------------------------------------------------------------ detection


def test_haar_finds_the_astronaut(astronaut):
    dets = HaarDetector().detect(astronaut)
    assert len(dets) == 1
    d = dets[0]
    # the face spans roughly x 85..140, y 30..85 in the 256x256 photo
    assert 70 < d.x + d.w / 2 < 150 and 35 < d.y + d.h / 2 < 85 and 35 < d.w < 90
    assert d.score > 0


def test_yunet_finds_the_astronaut(astronaut, yunet_model):
    dets = YuNetDetector(yunet_model).detect(astronaut)
    assert len(dets) == 1 and 0.5 < dets[0].score <= 1
    assert 70 < dets[0].x + dets[0].w / 2 < 150


@pytest.mark.parametrize("name", ["haar", "yunet"])
def test_detectors_find_every_face_of_a_group(astronaut, name, request):
    model = request.getfixturevalue("yunet_model") if name == "yunet" else None
    dets = make_detector(name, model).detect(group_photo(astronaut))
    centres = sorted(d.x + d.w // 2 for d in dets)
    assert len(dets) == 3, dets
    assert [c // 260 for c in centres] == [0, 1, 2]


def test_detection_maps_boxes_back_from_a_downscaled_copy(astronaut):
    big = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_CUBIC)  # 8x: detected at 640, mapped back
    (d,) = HaarDetector(max_side=640).detect(big)
    (ref,) = HaarDetector().detect(astronaut)
    assert abs(d.x - 8 * ref.x) < 40 and abs(d.w - 8 * ref.w) < 60


@pytest.mark.parametrize("kind", ["gray", "bgra", "uint16", "float"])
def test_detection_takes_any_image_format(astronaut, kind):
    img = {
        "gray": lambda: cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY),
        "bgra": lambda: cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA),
        "uint16": lambda: astronaut.astype(np.uint16) * 257,
        "float": lambda: astronaut.astype(np.float32) / 255,
    }[kind]()
    assert len(HaarDetector().detect(img)) == 1


@pytest.mark.parametrize("name", ["haar", "yunet"])
def test_face_touching_the_border_is_found_and_clipped(astronaut, name, request):
    model = request.getfixturevalue("yunet_model") if name == "yunet" else None
    corner = astronaut[28:, 83:]  # the face now touches the top-left corner
    dets = make_detector(name, model).detect(corner)
    assert len(dets) == 1, dets
    d = dets[0]
    assert d.x < 15 and d.y < 15 and d.x >= 0 and d.y >= 0
    crop = crop_face(corner, d.box, margin=0.4)  # the margin runs past the corner: padded, still square
    assert crop.shape == (48, 48) and crop.dtype == np.uint8


def test_tiny_and_blank_images_give_no_faces():
    det = HaarDetector()
    assert det.detect(np.zeros((10, 10), np.uint8)) == []
    assert det.detect(np.full((480, 640, 3), 127, np.uint8)) == []


def test_yunet_needs_a_model_file(tmp_path):
    with pytest.raises(UsageError, match="--detector-model"):
        make_detector("yunet", None)
    with pytest.raises(FerEdgeError, match="no such YuNet"):
        make_detector("yunet", tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(FerEdgeError, match="cannot load"):
        make_detector("yunet", bad)


# ------------------------------------------------------------------------------------------------ crop


def test_square_box_adds_the_margin_around_the_centre():
    x0, y0, side = square_box((100, 100, 40, 60), margin=0.25)
    assert side == 90 and (x0 + side / 2, y0 + side / 2) == (120, 130)


def test_crop_is_48x48_gray_from_any_input(astronaut):
    box = (85, 30, 54, 54)
    ref = crop_face(astronaut, box)
    assert ref.shape == (48, 48) and ref.dtype == np.uint8
    bgra = cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA)
    np.testing.assert_array_equal(crop_face(bgra, box), ref)
    deep = crop_face(astronaut.astype(np.uint16) * 257, box)
    assert np.abs(deep.astype(int) - ref).max() <= 1


def test_crop_outside_the_image_replicates_the_border():
    img = np.zeros((100, 100), np.uint8)
    img[:, :50] = 200
    crop = crop_face(img, (-30, 0, 60, 100), margin=0)
    assert crop.shape == (48, 48)
    assert crop[:, :5].min() == 200  # left of the image: the border column repeated


# ------------------------------------------------------------------------------------------ recognizer


def test_recognizer_classifies_all_faces_in_one_call(tiny_model, astronaut, monkeypatch):
    rec = Recognizer(tiny_model, device="cpu")
    calls = []
    original = rec.classifier.session.run
    monkeypatch.setattr(rec.classifier.session, "run", lambda *a, **k: calls.append(a[1]["faces"].shape) or original(*a, **k))
    faces = rec.predict(group_photo(astronaut))
    assert len(faces) == 3 and calls == [(3, 48, 48)]
    f = faces[0]
    assert f.label in LABELS and len(f.probs) == 7 and abs(sum(f.probs) - 1) < 1e-4
    assert f.confidence == max(f.probs)
    assert json.dumps(f.as_dict())


def test_recognizer_skips_detection_for_48x48_crops(tiny_model):
    rec = Recognizer(tiny_model, device="cpu")
    crop = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    (face,) = rec.predict(crop)
    assert face.box == (0, 0, 48, 48) and face.det_score == 1.0
    direct = rec.classifier.predict_probs(crop[None])[0]
    np.testing.assert_allclose(face.probs, direct, atol=1e-6)  # the crop reaches the model untouched


def test_default_model_path_points_into_the_package():
    assert default_model_path().parent.name == "assets"


def test_shipped_models_are_found_by_name(tmp_path, monkeypatch):
    assert resolve_model(None) == default_model_path()
    for name, filename in SHIPPED_MODELS.items():
        path = resolve_model(name)
        assert path.name == filename and path.parent == default_model_path().parent and path.is_file()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fast").write_bytes(b"")
    assert resolve_model("fast") == Path("fast")  # a file of that name wins over the shipped model
    assert resolve_model("elsewhere/model.onnx") == Path("elsewhere/model.onnx")


# ---------------------------------------------------------------------------------- the documented API


def test_readme_python_api_example_runs():
    """The README's Python block, run as written from the repository root, on the shipped model."""
    import re
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    text = (root / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S)
    assert block, "README lost its Python API example"
    code = block.group(1) + "\nimport sys\nassert 'torch' not in sys.modules\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    from fer_edge import Recognizer

    # the first line is what really runs, as this process's own session reports it on this machine
    assert out.splitlines()[0] == Recognizer(device="auto").classifier.providers.describe()
    assert re.search(r"^\(\d+, \d+, \d+, \d+\) happy [01]\.\d\d ", out, re.M), out  # the astronaut smiles
    assert "astronaut.jpg None None ['happy']" in out


def test_top_level_names_load_lazily():
    import subprocess
    import sys

    code = (
        "import sys, fer_edge\n"
        "assert 'onnxruntime' not in sys.modules and 'cv2' not in sys.modules\n"
        "from fer_edge import LABELS, Recognizer, FerEdgeError\n"
        "assert Recognizer.__module__ == 'fer_edge.recognizer' and len(LABELS) == 7\n"
        "try:\n    fer_edge.nope\nexcept AttributeError as e:\n    assert 'nope' in str(e)\nelse:\n    raise SystemExit(1)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_a_regular_install_ships_both_models_and_the_training_packages(tmp_path):
    """Build the wheel, install it into a bare folder, and use it from there: what `pip install .` gives."""
    import subprocess
    import sys
    import zipfile

    import importlib.util
    import shutil

    root = Path(__file__).resolve().parents[1]
    # With setuptools at hand, build offline; without it, pip fetches it into an isolated build env.
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    # Build from a copy: setuptools builds in-tree, and a stale build/ could carry files the source lost.
    source = tmp_path / "source"
    shutil.copytree(root, source, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "runs", "*.egg-info", "__pycache__", ".pytest_cache", ".cache", ".carry", ".whl"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, str(source), "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("fer_edge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in SHIPPED_MODELS.values():
        assert f"fer_edge/assets/{name}" in names
    assert "fer_edge/train/trainer.py" in names and "fer_edge/export/__init__.py" in names
    assert not [n for n in names if n.split("/")[0] in ("train", "export", "tests", "benchmarks")]

    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:  # a wheel is a zip laid out as site-packages
        z.extractall(site)
    code = (
        "import fer_edge.recognizer as r, fer_edge.train, fer_edge.export\n"
        "assert r.__file__.startswith(%r), r.__file__\n"
        "from fer_edge.classifier import ExpressionClassifier\n"
        "for name in r.SHIPPED_MODELS:\n"
        "    p = r.shipped_model_path(name)\n"
        "    assert str(p).startswith(%r), p\n"
        "    ExpressionClassifier.from_path(p, device='cpu')\n"
        "print('INSTALLED_OK')\n"
    ) % (str(site), str(site))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)},
                          capture_output=True, text=True, timeout=120)
    assert "INSTALLED_OK" in proc.stdout, proc.stderr[-2000:]
    assert len(names) == len(set(names))  # nothing twice (fer_edge/assets is also a link in the source tree)
    # from the repository root the source package shadows the install: it must work there too
    shadowed = subprocess.run([sys.executable, "-c", "import fer_edge.recognizer as r, fer_edge.train\n"
                               "assert r.shipped_model_path('default').is_file()\nprint('ROOT_OK')"],
                              cwd=root, env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=120)
    assert "ROOT_OK" in shadowed.stdout, shadowed.stderr[-2000:]


def test_min_face_skips_smaller_faces_for_both_detectors(tiny_model, astronaut, yunet_model):
    from helpers import group_photo

    photo = group_photo(astronaut)  # three 180 px heads, faces about 100 px
    for name, model in (("haar", None), ("yunet", yunet_model)):
        assert len(Recognizer(tiny_model, name, model, device="cpu", detect_size=0).predict(photo)) == 3
        assert Recognizer(tiny_model, name, model, device="cpu", detect_size=0, min_face=200).predict(photo) == []


def test_tilted_faces_are_levelled_before_cropping(tiny_model, astronaut, yunet_model):
    """YuNet's eye landmarks give the tilt; a face turned 30 degrees is cropped level (closer to the upright
    crop than the plain crop is), and a face within ALIGN_MIN_TILT is left as it is."""
    from fer_edge.crop import ALIGN_MIN_TILT

    big = cv2.resize(astronaut, (768, 768))
    det = YuNetDetector(yunet_model, max_side=0)
    upright = det.detect(big)[0]
    assert abs(upright.angle) < ALIGN_MIN_TILT
    ref = crop_face(big, upright.box, det.margin)
    turned = cv2.warpAffine(big, cv2.getRotationMatrix2D((384, 384), 30, 1.0), (768, 768), borderMode=cv2.BORDER_REFLECT)
    d = det.detect(turned)[0]
    assert d.angle < -ALIGN_MIN_TILT  # turned counter-clockwise: the eye line falls to the left
    plain = crop_face(turned, d.box, det.margin)
    level = crop_face(turned, d.box, det.margin, angle=d.angle)
    assert np.abs(level.astype(int) - ref).mean() < 0.9 * np.abs(plain.astype(int) - ref).mean()

    rec = Recognizer(tiny_model, "yunet", yunet_model, device="cpu", detect_size=0)
    calls = []
    real = rec.classifier.predict_probs
    rec.classifier.predict_probs = lambda crops, **k: calls.append(crops) or real(crops, **k)
    rec.predict(turned)
    np.testing.assert_array_equal(calls[-1][0], level)  # the recognizer crops it level
    rec.predict(big)
    np.testing.assert_array_equal(calls[-1][0], ref)  # and leaves a near-upright face alone


def test_op_profile_sums_onnxruntime_kernel_time_per_operator(tmp_path, capsys, monkeypatch):
    """benchmarks/op_profile.py: the per-operator table that found the slow uint8 first pool."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("op_profile", Path(__file__).parents[1] / "benchmarks" / "op_profile.py")
    op_profile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(op_profile)
    model = make_tiny_model(tmp_path / "tiny.onnx")
    times = op_profile.kernel_times(model, threads=1, batch=4, runs=5)
    assert times and all(t > 0 for t in times.values())
    assert {"Softmax"} <= set(times)  # the tiny model's last op ran and was timed
    monkeypatch.setattr(sys, "argv", ["op_profile.py", str(model), "--runs", "3", "--batch", "2"])
    op_profile.main()
    out = capsys.readouterr().out
    assert "tiny.onnx" in out and "Softmax" in out and "total" in out


def test_one_thread_budget_splits_the_cores_between_onnxruntime_and_opencv(tiny_model):
    import cv2

    from fer_edge.threads import machine_cores, plan

    assert machine_cores() >= 1
    assert (plan(cores=1).onnxruntime, plan(cores=1).opencv) == (1, 1)
    assert (plan(cores=2).onnxruntime, plan(cores=2).opencv) == (1, 2)
    assert (plan(cores=8).onnxruntime, plan(cores=8).opencv) == (4, 8)
    assert plan(3).chosen_by == "--threads 3" and plan(3).cores == 3
    rec = Recognizer(tiny_model, device="cpu", threads=1)
    assert cv2.getNumThreads() == 1 and rec.threads.onnxruntime == 1
    opts = rec.classifier.session.get_session_options()
    assert opts.intra_op_num_threads == 1
    Recognizer(tiny_model, device="cpu", threads=2)
    assert cv2.getNumThreads() == 2


def test_folder_mode_reads_ahead_in_a_pool_and_gives_the_one_by_one_results_in_order(tiny_model, astronaut, tmp_path):
    from fer_edge.batch import classify_files

    files = []
    for i in range(23):
        image = group_photo(astronaut) if i % 3 == 0 else np.roll(astronaut, 7 * i, axis=1)
        if i % 5 == 4:
            image = np.full((120, 160, 3), 128, np.uint8)  # no face
        files.append(tmp_path / f"{i:02d}.png")
        cv2.imwrite(str(files[-1]), image)
    (tmp_path / "07.png").write_bytes(b"not a png")  # an unreadable one in the middle
    video = tmp_path / "12.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (800, 260))
    for _ in range(12):
        writer.write(group_photo(astronaut))
    writer.release()
    files.insert(12, video)
    rec = Recognizer(tiny_model, device="cpu")
    one = list(classify_files(rec, files, workers=1))
    pooled = list(classify_files(rec, files, workers=3))
    def key(r):
        return r.path, r.frame, r.error, [(f.box, f.label) for f in r.faces]

    assert [key(r) for r in pooled] == [key(r) for r in one]
    probs = [np.array([f.probs for f in r.faces]).reshape(-1, 7) for r in (*one, *pooled)]
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(probs[: len(one)], probs[len(one) :]))
    assert sum(len(r.faces) for r in one) > 20 and sum(r.error is not None for r in one) == 1
    assert [r.path for r in pooled if r.frame is None] == [f for f in files if f != video]


def test_an_image_whose_decoder_hangs_becomes_an_error_row_and_the_run_goes_on(tiny_model, astronaut, tmp_path, monkeypatch):
    import threading

    from fer_edge import batch

    files = []
    for i in range(8):
        files.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(files[-1]), np.roll(astronaut, 11 * i, axis=1))
    release = threading.Event()
    real = batch.read_image

    def sometimes_stuck(path):
        if path.name == "3.png":
            release.wait(30)  # a decoder that never returns, until the test lets it go
        return real(path)

    monkeypatch.setattr(batch, "read_image", sometimes_stuck)
    monkeypatch.setattr(batch, "stuck_threads", 0)
    rec = Recognizer(tiny_model, device="cpu")
    try:
        results = list(batch.classify_files(rec, files, workers=2, file_timeout=1.0))
    finally:
        release.set()
    assert [r.path for r in results] == files
    assert [r.path.name for r in results if r.error] == ["3.png"] and "stuck" in results[3].error
    assert all(r.faces for r in results if not r.error) and batch.stuck_threads == 1
