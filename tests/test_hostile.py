"""Hostile files, kills and first-time mistakes: each test fails without its fix (the reliability issue)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fer_edge.cli.app import app
from fer_edge.contract import LABELS

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def rows_of(text: str) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in csv.DictReader(io.StringIO(text))}


def png_bomb(path: Path, side: int) -> Path:
    """A valid grayscale PNG of side x side zeros: a few hundred KB on disk, side**2 bytes decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, tiny_model):
    bomb = png_bomb(tmp_path / "bomb.png", 20000)  # 400 MP: 400 MB once decoded
    code = (
        "import sys\n"
        "from fer_edge.cli.app import main\n"
        f"sys.argv = ['fer-edge', 'classify', {str(bomb)!r}, '--model', {str(tiny_model)!r}, '--device', 'cpu', '-q']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        # VmHWM: this process's own peak (ru_maxrss would carry over the forking pytest's)
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print('PEAK_MB', int(hwm) // 1024, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "pixel limit" in done.stdout and "20000x20000" in done.stdout, done.stdout + done.stderr
    peak = int(done.stderr.split("PEAK_MB")[1].split()[0])
    assert peak < 300, f"peak RSS {peak} MB: the image was decoded (400 MB)"


def test_opencv_gets_the_pixel_limit_before_it_is_imported():
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    done = subprocess.run([sys.executable, "-c", "import fer_edge.imageio, os; print(os.environ['OPENCV_IO_MAX_IMAGE_PIXELS'])"],
                          capture_output=True, text=True, env={**env, "FER_EDGE_MAX_PIXELS": "1234567"})
    assert done.stdout.strip() == "1234567"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_is_skipped_not_waited_on(tmp_path, tiny_model, astronaut):
    d = tmp_path / "in"
    d.mkdir()
    cv2.imwrite(str(d / "a.jpg"), astronaut)
    os.mkfifo(d / "y.png")
    os.symlink(d / "nowhere.jpg", d / "broken.jpg")
    result = subprocess.run([sys.executable, "-m", "fer_edge", "classify", str(d), str(d / "y.png"), "--model", str(tiny_model),
                             "--device", "cpu", "-q"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    by = {Path(r["path"]).name: r for r in rows}
    assert by["a.jpg"]["label"] in LABELS
    assert "not a regular file (a pipe)" in by["y.png"]["error"]  # named directly: an error row, no hang
    assert "broken symbolic link" in by["broken.jpg"]["error"]  # inside a folder: an error row too
    assert sum(Path(r["path"]).name == "y.png" for r in rows) == 1  # the folder scan leaves the pipe out


def exif_jpeg(image: np.ndarray, orientation: int) -> bytes:
    """A JPEG whose APP1 Exif says `orientation` (what a phone writes instead of turning the pixels)."""
    ok, buf = cv2.imencode(".jpg", image)
    data = buf.tobytes()
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(tiff)) + b"Exif\x00\x00" + tiff
    return data[:2] + app1 + data[2:]


@pytest.mark.parametrize("gray", [False, True])
def test_exif_orientation_is_honoured(tmp_path, astronaut, gray):
    from fer_edge.imageio import read_image

    upright = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY) if gray else astronaut
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # the sensor's way up
    path = tmp_path / "phone.jpg"
    path.write_bytes(exif_jpeg(stored, 6))  # 6: turn 90 degrees clockwise to view
    back = read_image(path)
    assert back.shape == upright.shape
    assert np.abs(back.astype(int) - upright).mean() < 6  # JPEG noise only


def test_exif_rotated_phone_photo_finds_its_face(tmp_path, astronaut, tiny_model):
    photo = cv2.resize(astronaut, (512, 512))
    path = tmp_path / "phone.jpg"
    path.write_bytes(exif_jpeg(cv2.rotate(photo, cv2.ROTATE_90_CLOCKWISE), 8))
    result = run("classify", path, "--model", tiny_model, "--device", "cpu", "--detector", "haar")
    assert result.exit_code == 0
    assert rows_of(result.stdout)["phone.jpg"]["label"] in LABELS  # sideways, Haar would find no face


def test_header_reader_knows_the_common_formats(tmp_path, astronaut):
    from fer_edge import imageheader

    small = astronaut[:37, :53]
    for ext in (".png", ".jpg", ".bmp", ".webp", ".tif"):
        ok, buf = cv2.imencode(ext, small)
        assert imageheader.dimensions(buf.tobytes()) == (53, 37), ext
        assert imageheader.orientation(buf.tobytes()) == 1
    assert imageheader.dimensions(b"garbage") is None and imageheader.orientation(b"\xff\xd8\xff") == 1


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_terminated_webcam_run_closes_its_files_and_prints_the_summary(tmp_path, tiny_model, astronaut, sig, code):
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    from helpers import astronaut_face

    face = cv2.resize(astronaut_face(astronaut), (120, 120))
    for i in range(900):  # 30 s at --realtime: the signal comes long before the end
        frame = np.full((240, 320, 3), 90, np.uint8)
        frame[40:160, 20 + i % 150 : 140 + i % 150] = face
        writer.write(frame)
    writer.release()
    out, jsonl = tmp_path / "out.mp4", tmp_path / "f.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "fer_edge", "webcam", "--source", str(clip), "--no-display", "--realtime",
                             "--model", str(tiny_model), "--device", "cpu", "--output", str(out), "--jsonl", str(jsonl)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while (not jsonl.exists() or len(jsonl.read_text().splitlines()) < 20) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and f"stopped by {signal.Signals(sig).name}" in " ".join(err.split())
    assert "dominant" in err and "neutral" in err  # the summary, its columns whole in a pipe
    cap = cv2.VideoCapture(str(out))  # playable: the mp4 got its index (moov atom)
    n = 0
    while cap.read()[0]:
        n += 1
    assert n >= 20
    assert all(json.loads(line) for line in jsonl.read_text().splitlines())  # every record complete


def test_ctrl_c_in_classify_exits_130_and_sigterm_143(tmp_path, tiny_model, astronaut):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(400):
        cv2.imwrite(str(d / f"{i:03d}.jpg"), astronaut)
    out = tmp_path / "o.csv"
    proc = subprocess.Popen([sys.executable, "-m", "fer_edge", "classify", str(d), "--out", str(out), "--model", str(tiny_model),
                             "--device", "cpu", "--detect-size", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while (not out.exists() or len(out.read_text().splitlines()) < 5) and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "--resume" in err and "Traceback" not in err
    assert out.read_text().endswith("\n")  # no half row


def test_two_runs_on_one_output_the_second_fails_at_once(tmp_path, tiny_model, astronaut):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(300):
        cv2.imwrite(str(d / f"{i:03d}.jpg"), astronaut)
    out = tmp_path / "o.csv"
    first = subprocess.Popen([sys.executable, "-m", "fer_edge", "classify", str(d), "--out", str(out), "--model", str(tiny_model),
                              "--device", "cpu", "--detect-size", "0", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while (not out.exists() or len(out.read_text().splitlines()) < 3) and time.time() < deadline:
        time.sleep(0.1)
    other = tmp_path / "other"
    other.mkdir()
    cv2.imwrite(str(other / "x.jpg"), astronaut)
    second = run("classify", other, "--out", out, "--model", tiny_model, "--device", "cpu")
    assert second.exit_code == 1 and f"pid {first.pid}" in second.stderr and "another fer-edge run" in second.stderr
    first.communicate(timeout=120)
    assert first.returncode == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 300 and "\x00" not in out.read_text()  # the first run's file, whole
    assert not list(tmp_path.glob(".o.csv.lock"))  # the lock is gone with its run
    again = run("classify", other, "--out", out, "--model", tiny_model, "--device", "cpu")
    assert again.exit_code == 0  # free again


def test_file_names_that_are_not_utf8_or_hold_a_carriage_return_round_trip(tmp_path, tiny_model, astronaut):
    d = tmp_path / "odd"
    d.mkdir()
    ok, jpg = cv2.imencode(".jpg", astronaut)
    names = [os.fsencode(d) + b"/bad\xffname.jpg", os.fsencode(d) + b"/line\rbreak.jpg", os.fsencode(d) + b"/plain.jpg"]
    for n in names:
        open(n, "wb").write(jpg.tobytes())
    out = tmp_path / "o.csv"
    result = run("classify", d, "--out", out, "--model", tiny_model, "--device", "cpu")
    assert result.exit_code == 0, result.output
    with open(out, encoding="utf-8", errors="surrogateescape", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(os.fsencode(r["path"]) for r in rows) == sorted(names)  # one row each, names exact
    before = out.read_bytes()
    resumed = run("classify", d, "--out", out, "--model", tiny_model, "--device", "cpu", "--resume")
    assert resumed.exit_code == 0 and out.read_bytes() == before  # resume recognises every name: no duplicates
    js = run("classify", d, "--format", "jsonl", "--model", tiny_model, "--device", "cpu", "-q")
    assert js.exit_code == 0 and len([json.loads(line) for line in js.stdout.splitlines()]) == 3


def test_data_stats_takes_a_folder_with_a_name_that_is_not_utf8(tmp_path, astronaut):
    pytest.importorskip("torch", reason="data stats is in the train extra")
    for split in ("train", "test"):
        (tmp_path / split / "happy").mkdir(parents=True)
        cv2.imwrite(str(tmp_path / split / "happy" / "a.png"), cv2.resize(astronaut, (48, 48)))
        open(os.fsencode(tmp_path / split / "happy") + b"/b\xff.png", "wb").write(cv2.imencode(".png", astronaut)[1].tobytes())
    result = run("data", "stats", tmp_path)
    assert result.exit_code == 0, result.output


def test_a_failed_annotated_copy_is_that_files_error_row_and_the_run_goes_on(tmp_path, tiny_model, astronaut):
    d = tmp_path / "in"
    d.mkdir()
    long_name = "x" * 240 + ".jpg"  # fits the file system, but not with ".annotated.png" added
    cv2.imwrite(str(d / long_name), astronaut)
    cv2.imwrite(str(d / "b.jpg"), astronaut)
    ann = tmp_path / "ann"
    result = run("classify", d, "--annotate", ann, "--model", tiny_model, "--device", "cpu")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {Path(r["path"]).name for r in rows if r["label"]} == {long_name, "b.jpg"}
    assert len(list(ann.glob("*.annotated.png"))) == 2  # the long name was shortened, not refused

    full = tmp_path / "full"
    full.mkdir()
    (full / "b.annotated.png").mkdir()  # something in the way of the copy: it cannot be written
    cv2.imwrite(str(d / "c.jpg"), astronaut)
    result = run("classify", d / "b.jpg", d / "c.jpg", "--annotate", full, "--model", tiny_model, "--device", "cpu")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    errors = [r for r in rows if r["error"]]
    assert len(errors) == 1 and Path(errors[0]["path"]).name == "b.jpg" and "annotated copy" in errors[0]["error"]
    assert "disk full" not in errors[0]["error"] and "directory" in errors[0]["error"].lower()
    assert (full / "c.annotated.png").is_file()  # the next file was still classified and annotated


# ------------------------------------------------------------------------------------ models and outputs


def test_fixed_batch_models_run_and_huge_ones_are_refused(tmp_path):
    from helpers import make_tiny_model

    from fer_edge.classifier import ExpressionClassifier
    from fer_edge.errors import FerEdgeError

    faces = np.random.default_rng(0).integers(0, 256, (10, 48, 48), dtype=np.uint8)
    dynamic = ExpressionClassifier.from_path(make_tiny_model(tmp_path / "n.onnx"), device="cpu").predict_probs(faces)
    for b in (1, 4):
        fixed = ExpressionClassifier.from_path(make_tiny_model(tmp_path / f"b{b}.onnx", batch=b), device="cpu")
        np.testing.assert_allclose(fixed.predict_probs(faces), dynamic, atol=1e-6)  # padded chunks, same answers
    with pytest.raises(FerEdgeError, match="fixed at 1,000,000"):
        ExpressionClassifier.from_path(make_tiny_model(tmp_path / "huge.onnx", batch=1_000_000), device="cpu")


def test_outputs_that_are_not_probabilities_are_refused(tmp_path, astronaut):
    from helpers import make_tiny_model

    nan = make_tiny_model(tmp_path / "nan.onnx", bias=float("nan"))
    logits = make_tiny_model(tmp_path / "logits.onnx", output="logits", bias=-300.0, metadata={"output": None})
    for model, text in ((nan, "not finite"), (logits, "not probabilities")):
        result = run("classify", REPO / "tests" / "data", "--model", model, "--device", "cpu", "--format", "jsonl")
        assert result.exit_code == 1 and text in result.stderr and "NaN," not in result.stdout, result.output


def test_a_checkpoint_or_an_unknown_name_as_model_says_what_to_do(tmp_path):
    (tmp_path / "best.pt").write_bytes(b"x")
    pt = run("classify", REPO / "tests" / "data", "--model", tmp_path / "best.pt")
    assert pt.exit_code == 2 and "fer-edge export" in pt.stderr
    name = run("classify", REPO / "tests" / "data", "--model", "fastest")
    assert name.exit_code == 2 and "default, fast" in name.stderr


def test_predict_refuses_none_and_empty_arrays(tiny_model):
    from fer_edge import FerEdgeError, Recognizer

    rec = Recognizer(tiny_model, device="cpu")
    for bad in (None, np.zeros((0, 0, 3), np.uint8), np.zeros(5, np.uint8)):
        with pytest.raises(FerEdgeError):
            rec.predict(bad)


def test_onnxruntime_errors_keep_their_cause(tmp_path):
    import onnx

    from helpers import make_tiny_model

    path = make_tiny_model(tmp_path / "ir.onnx")
    m = onnx.load(str(path))
    m.ir_version = 99  # newer than onnxruntime reads
    onnx.save(m, str(path))
    result = run("classify", REPO / "tests" / "data", "--model", path, "--device", "cpu")
    assert result.exit_code == 1 and "99" in result.stderr and len(result.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------- usage and messages


def cli(*args, env=None):
    """The installed entry point, as a user runs it (signals, OpenCV's logs and usage errors included)."""
    return subprocess.run([sys.executable, "-m", "fer_edge", *map(str, args)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_usage_errors_are_one_line_and_exit_2(tmp_path):
    for args in (["classify", REPO / "tests" / "data", "--threads", "-1"], ["webcam", "--detect-size", "-5"],
                 ["classify"], ["nosuch"], ["webcam", "--output", tmp_path / "x.gif", "--source", "9"]):
        done = cli(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error: "), (args, done.stderr)


def test_a_missing_camera_is_one_line_without_opencv_warnings():
    done = cli("webcam", "--source", "7", "--no-display")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower() or "WARN" in line]
    assert len(errors) == 1 and errors[0].startswith("error: cannot open camera 7"), done.stderr


def test_version_and_short_help():
    import fer_edge

    assert cli("--version").stdout.strip() == f"fer-edge {fer_edge.__version__}"
    short = cli("classify", "-h")
    assert short.returncode == 0 and "--video-every" in short.stdout and "<bool>" not in short.stdout


def test_every_option_has_help():
    import click
    import typer

    from fer_edge.cli.app import app

    missing = []

    def walk(cmd, path):
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.help and p.name not in ("help",):
                missing.append(f"{path} {p.opts[0]}")
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "fer-edge")
    assert missing == []


def test_exit_2_for_usage_errors_in_the_model_factory(tmp_path):
    pytest.importorskip("torch", reason="the train extra")
    from synthetic import write_csv

    data = write_csv(tmp_path / "fer.csv")
    (tmp_path / "m.onnx").write_bytes(b"x")
    for args in (["eval", tmp_path / "m.onnx", "--data", tmp_path / "nosuch.csv"], ["data", "stats", tmp_path / "nosuch"],
                 ["train", "--data", data, "--arch", "nosuch", "--out", tmp_path / "r"], ["eval", tmp_path, "--data", data],
                 ["export", tmp_path, "--checkpoint", tmp_path / "x.pt"], ["data", "preview", data, "--out", tmp_path]):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)


def test_bad_datasets_are_one_clear_line(tmp_path):
    pytest.importorskip("torch", reason="the train extra")
    from synthetic import write_csv

    bom = tmp_path / "bom.csv"
    plain = write_csv(tmp_path / "fer.csv")
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    stats = run("data", "stats", bom)
    assert stats.exit_code == 0, stats.output  # a byte-order mark is not part of "emotion"
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros((3, 48, 48), np.uint8), y_train=np.array([0, 9, 1]))
    nine = run("train", "--data", bad, "--out", tmp_path / "r", "--val-fraction", "0.3", "--epochs", "1")
    assert nine.exit_code == 1 and "label 9" in nine.stderr
    empty = tmp_path / "empty.npz"
    np.savez(empty, source_sha256=np.array("x"))
    assert run("data", "stats", empty).exit_code == 1


def test_a_foreign_checkpoint_is_refused_in_one_line(tmp_path):
    torch = pytest.importorskip("torch", reason="the train extra")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Evil(), "config": {}}, path)
    result = run("eval", path, "--data", tmp_path / "x.csv")
    (tmp_path / "x.csv").write_text("emotion,pixels\n")
    result = run("export", tmp_path / "o.onnx", "--checkpoint", path)
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "not a fer-edge checkpoint" in result.stderr and "weights_only=False" not in result.stderr


def test_eval_json_into_a_folder_writes_inside_it(tmp_path, tiny_model):
    pytest.importorskip("torch", reason="the train extra")
    from synthetic import write_csv

    data = write_csv(tmp_path / "fer.csv")
    folder = tmp_path / "reports"
    folder.mkdir()
    result = run("eval", tiny_model, "--data", data, "--json", folder)
    assert result.exit_code == 0, result.output
    assert (folder / "tiny.json").is_file() and not (tmp_path / "reports.json").exists()


def test_outputs_to_a_full_disk_are_one_line(tmp_path, tiny_model):
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    done = cli("classify", REPO / "tests" / "data", "--model", tiny_model, "--device", "cpu", "--out", "/dev/full")
    assert done.returncode == 1 and "Traceback" not in done.stderr and "cannot write" in done.stderr, done.stderr
    clip = tmp_path / "c.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256))
    for _ in range(5):
        writer.write(cv2.imread(str(REPO / "tests" / "data" / "astronaut.jpg")))
    writer.release()
    done = cli("webcam", "--source", clip, "--model", tiny_model, "--device", "cpu", "--no-display", "--csv", "/dev/full")
    assert done.returncode == 1 and "Traceback" not in done.stderr and "cannot write" in done.stderr, done.stderr


def test_webcam_warns_of_a_truncated_video_as_classify_does(tmp_path, tiny_model, astronaut):
    from helpers import astronaut_face

    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    face = cv2.resize(astronaut_face(astronaut), (120, 120))
    for i in range(60):
        frame = np.full((240, 320, 3), 90, np.uint8)
        frame[40:160, 20 + i : 140 + i] = face
        writer.write(frame)
    writer.release()
    data = clip.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    result = run("webcam", "--source", cut, "--model", tiny_model, "--device", "cpu", "--no-display")
    assert result.exit_code == 0, result.output
    assert "incomplete" in result.stderr and "of the 60 its header announces" in " ".join(result.stderr.split())
    whole = run("webcam", "--source", clip, "--model", tiny_model, "--device", "cpu", "--no-display")
    assert "incomplete" not in whole.stderr


def test_a_runtime_failure_of_onnxruntime_is_one_line(tiny_model, monkeypatch):
    from fer_edge.classifier import ExpressionClassifier

    clf = ExpressionClassifier.from_path(tiny_model, device="cpu")

    class FailingSession:
        def __init__(self, real):
            self.real = real

        def run(self, *a, **k):
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running "
                               "MatMul node. Name:'mm' Status Message: bad allocation")

        def __getattr__(self, name):
            return getattr(self.real, name)

    clf.session = FailingSession(clf.session)
    from fer_edge.errors import ModelError

    with pytest.raises(ModelError, match="could not run it.*bad allocation"):
        clf.predict_probs(np.zeros((2, 48, 48), np.uint8))


def test_decoder_messages_go_into_their_files_error_rows_not_onto_stderr(tmp_path, tiny_model, astronaut):
    """libpng writes "libpng error: ..." straight to descriptor 2; fer-edge keeps it off its stderr and puts it
    in that file's error row, and keeps every other row."""
    import csv

    d = tmp_path / "photos"
    d.mkdir()
    ok, png = cv2.imencode(".png", astronaut)
    data = bytearray(png.tobytes())
    (d / "half.png").write_bytes(data[: len(data) // 2])
    for k in range(6):
        cv2.imwrite(str(d / f"good{k}.png"), np.roll(astronaut, 9 * k, axis=1))
    out = tmp_path / "rows.csv"
    done = subprocess.run([sys.executable, "-m", "fer_edge", "classify", str(d), "--out", str(out), "--model", str(tiny_model),
                           "--device", "cpu"], capture_output=True, timeout=300)
    stderr = done.stderr.decode("utf-8", errors="replace")
    assert done.returncode == 0, stderr
    assert not [line for line in stderr.splitlines() if line.startswith("libpng")] and "Traceback" not in stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    bad = [r for r in rows if r["path"].endswith("half.png")]
    assert len(bad) == 1 and "decoder: libpng error" in bad[0]["error"], bad
    assert len({r["path"] for r in rows}) == 7 and sum(bool(r["error"]) for r in rows) == 1
    skipped = [line for line in stderr.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1 and "half.png" in skipped[0] and "libpng" in skipped[0]


def test_native_stderr_capture_gives_each_bracket_its_own_lines_and_restores_descriptor_2(capfd):
    import os

    from fer_edge.native_stderr import NativeStderr

    with NativeStderr() as native:
        os.write(2, b"outside\n")
        with native.during() as one:
            os.write(2, b"first \xff\xfe message\n")
        with native.during() as two:
            pass
        with native.during() as three:
            os.write(2, b"third\nthird\n")
    os.write(2, b"after\n")
    assert one.lines == ["first ?? message"] and two.lines == [] and three.summary() == "third"
    assert native.other == ["outside"]
    assert capfd.readouterr().err == "after\n"


def test_a_seeded_slice_of_the_fuzz_harness_ends_every_file_in_a_row(tiny_model):
    """benchmarks/fuzz.py: mutated JPEG, PNG, WebP, TIFF, GIF, HEIC, AVI, MP4 and MKV files through classify;
    each must end in a row, exit 0, no traceback and nothing on stderr but fer-edge's lines."""
    fuzz = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz.py"
    done = subprocess.run([sys.executable, str(fuzz), "--files", "150", "--batch", "150", "--seed", "7", "--model",
                           str(tiny_model)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "150 mutated files" in done.stdout and "failures: 0" in done.stdout


def test_classify_cli_gives_up_on_a_stuck_decoder_writes_every_other_row_and_exits(tmp_path, tiny_model, astronaut):
    import csv

    d = tmp_path / "photos"
    d.mkdir()
    for i in range(6):
        cv2.imwrite(str(d / f"{i}.png"), np.roll(astronaut, 13 * i, axis=1))
    out = tmp_path / "rows.csv"
    code = f"""
import threading, sys
from fer_edge import batch
real = batch.read_image
def read(path):
    if path.name == "2.png":
        threading.Event().wait()  # never returns
    return real(path)
batch.read_image = read
from fer_edge.cli.app import app
sys.argv = ["fer-edge", "classify", {str(d)!r}, "--out", {str(out)!r}, "--model", {str(tiny_model)!r}, "--device", "cpu",
            "--file-timeout", "2"]
app()
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [Path(r["path"]).name for r in rows] == [f"{i}.png" for i in range(6)]
    assert [Path(r["path"]).name for r in rows if r["error"]] == ["2.png"]
    assert "no answer after 2 s" in rows[2]["error"] and "left behind" in done.stderr


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
def test_a_png_chunk_length_that_lies_is_refused_before_opencv_allocates_it(tmp_path, tiny_model, astronaut):
    """Found by benchmarks/fuzz.py: OpenCV's PNG reader allocates a chunk's declared length first, so one
    damaged length field (2 GB in a 50 KB file) took the process to 4 GB."""
    import csv
    import os
    import struct

    ok, png = cv2.imencode(".png", astronaut)
    data = bytearray(png.tobytes())
    idat = data.index(b"IDAT") - 4
    data[idat : idat + 4] = struct.pack(">I", 0x7FFFFF00)
    d = tmp_path / "photos"
    d.mkdir()
    (d / "lying.png").write_bytes(data)
    cv2.imwrite(str(d / "good.png"), astronaut)
    out = tmp_path / "rows.csv"
    code = (
        "import sys\n"
        "from fer_edge.cli.app import main\n"
        f"sys.argv = ['fer-edge', 'classify', {str(d)!r}, '--out', {str(out)!r}, '--model', {str(tiny_model)!r}, '--device', 'cpu']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
        # VmHWM: this process's own peak (ru_maxrss would carry over the forking pytest's, which grows past 1 GB)
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print('PEAK_MB', int(hwm) // 1024, 'EXIT', code, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    peak, exit_code = int(done.stderr.split("PEAK_MB")[1].split()[0]), done.stderr.split("EXIT")[1].split()[0]
    assert exit_code in ("0", "None"), done.stderr[-2000:]
    assert peak < 1000, f"peak RSS {peak} MB: the lying chunk's 2 GB was allocated"
    rows = {Path(r["path"]).name: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert "'IDAT' chunk declares 2,147,483,392 bytes" in rows["lying.png"]["error"] and not rows["good.png"]["error"]
