"""`fer-edge classify`, `info` and `--help` through typer's runner, plus the no-torch boundary."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import ASTRONAUT, group_photo
from fer_edge.cli.app import app
from fer_edge.contract import LABELS
from fer_edge.writers import CLASSIFY_COLUMNS

runner = CliRunner()
REQUIRED = ["path", "face", "x", "y", "w", "h", "det_score", "label", "confidence", *LABELS]


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def photos(tmp_path, astronaut) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    cv2.imwrite(str(d / "one.jpg"), astronaut)
    cv2.imwrite(str(d / "group.PNG"), group_photo(astronaut))  # upper-case extension
    cv2.imwrite(str(d / "blank.bmp"), np.full((200, 300, 3), 128, np.uint8))
    cv2.imwrite(str(d / "crop.png"), cv2.resize(cv2.cvtColor(astronaut[30:84, 85:139], cv2.COLOR_BGR2GRAY), (48, 48)))
    (d / "notes.txt").write_text("not an image, and not picked up from a folder")
    return d


def test_help_lists_every_command():
    result = run("--help")
    assert result.exit_code == 0
    for name in ("classify", "info", "train", "eval", "export", "data"):
        assert name in result.output


def test_csv_columns_and_rows(photos, tiny_model):
    result = run("classify", photos, "--model", tiny_model, "--device", "cpu", "--quiet")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    header = result.stdout.splitlines()[0].split(",")
    assert header[: len(REQUIRED)] == REQUIRED and header == CLASSIFY_COLUMNS
    by_file = {}
    for r in rows:
        by_file.setdefault(Path(r["path"]).name, []).append(r)
    assert set(by_file) == {"one.jpg", "group.PNG", "blank.bmp", "crop.png"}
    assert len(by_file["group.PNG"]) == 3 and [r["face"] for r in by_file["group.PNG"]] == ["0", "1", "2"]
    assert by_file["blank.bmp"] == [{**{c: "" for c in CLASSIFY_COLUMNS}, "path": str(photos / "blank.bmp")}]
    (crop,) = by_file["crop.png"]  # a 48x48 crop: classified whole, no detection
    assert (crop["x"], crop["y"], crop["w"], crop["h"], crop["det_score"]) == ("0", "0", "48", "48", "1.0")
    for r in by_file["one.jpg"] + by_file["group.PNG"]:
        probs = [float(r[k]) for k in LABELS]
        assert abs(sum(probs) - 1) < 1e-3 and r["label"] == LABELS[int(np.argmax(probs))]
        assert float(r["confidence"]) == max(probs)


def test_jsonl_records(photos, tiny_model, tmp_path):
    out = tmp_path / "out.jsonl"
    result = run("classify", photos, "--model", tiny_model, "--format", "jsonl", "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 1 + 3 + 1 + 1
    face = next(r for r in records if r["path"].endswith("one.jpg"))
    assert list(face)[: len(REQUIRED)] == REQUIRED
    blank = next(r for r in records if r["path"].endswith("blank.bmp"))
    assert blank["label"] == "" and blank["face"] is None
    assert "faces/s" in result.stderr  # the summary table goes to stderr


def test_no_detect_forces_whole_image(photos, tiny_model):
    result = run("classify", photos / "one.jpg", "--model", tiny_model, "--no-detect", "--device", "cpu", "-q")
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["w"], row["h"]) == ("256", "256")


def test_recursive(photos, tiny_model):
    nested = photos.parent / "nested"
    (nested / "deep").mkdir(parents=True)
    cv2.imwrite(str(nested / "deep" / "a.jpg"), cv2.imread(str(ASTRONAUT)))
    assert run("classify", nested, "--model", tiny_model, "-q").exit_code == 2
    result = run("classify", nested, "--model", tiny_model, "--recursive", "-q", "--device", "cpu")
    assert result.exit_code == 0 and "a.jpg" in result.stdout


@pytest.fixture
def bad_files(tmp_path, astronaut) -> Path:
    d = tmp_path / "bad"
    d.mkdir()
    cv2.imwrite(str(d / "good.jpg"), astronaut)
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.png").write_text("hello, I am not a PNG")
    good = (d / "good.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (d / "corrupt.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(range(256)) * 4)
    big = np.zeros((3000, 3000), np.uint8)  # 9 MP: over the limit the test sets
    cv2.imwrite(str(d / "huge.png"), big)
    return d


def test_bad_files_become_error_rows_and_good_rows_survive(bad_files, tiny_model, monkeypatch):
    monkeypatch.setattr("fer_edge.imageio.MAX_PIXELS", 4_000_000)
    result = run("classify", bad_files, "--model", tiny_model, "--device", "cpu")
    assert result.exit_code == 0, result.output
    rows = {Path(r["path"]).name: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["good.jpg"]["label"] in LABELS and rows["good.jpg"]["error"] == ""
    assert "empty file" in rows["empty.jpg"]["error"]
    assert "not a decodable image" in rows["text.png"]["error"]
    assert "not a decodable image" in rows["corrupt.webp"]["error"]
    assert "pixel limit" in rows["huge.png"]["error"]
    # OpenCV 4.x's libjpeg gives up on a JPEG cut at a third: an error row, not a half-grey photo
    assert "not a decodable image" in rows["truncated.jpg"]["error"] and rows["truncated.jpg"]["label"] == ""
    assert "skipped" in result.stderr and "Traceback" not in result.output


def test_strict_exits_1_when_a_file_failed(bad_files, tiny_model):
    result = run("classify", bad_files / "good.jpg", bad_files / "empty.jpg", "--model", tiny_model, "--strict", "-q")
    assert result.exit_code == 1
    assert "failed (--strict)" in result.stderr


def test_unreadable_file_is_reported(tmp_path, tiny_model, monkeypatch):
    img = tmp_path / "locked.jpg"
    img.write_bytes(b"x")

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("fer_edge.imageio.np.fromfile", deny)  # CI runs as root, where chmod 000 still reads
    result = run("classify", img, "--model", tiny_model, "-q")
    assert result.exit_code == 0 and "permission denied" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["/no/such/folder"], "no such file or folder"),
        (["EMPTY"], "no images"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, tiny_model, args, message):
    (tmp_path / "EMPTY").mkdir()
    args = [str(tmp_path / a) if a == "EMPTY" else a for a in args]
    result = run("classify", *args, "--model", tiny_model)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


def test_missing_and_invalid_model(photos, tmp_path):
    result = run("classify", photos, "--model", tmp_path / "nope.onnx")
    assert result.exit_code == 1 and "no such model file" in result.stderr
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    result = run("classify", photos, "--model", bad)
    assert result.exit_code == 1 and "cannot load" in result.stderr


def interrupt_after(monkeypatch, n: int) -> None:
    """Ctrl-C after n results."""
    import fer_edge.classify_job as job

    real = job.classify_files

    def interrupted(*args, **kwargs):
        for i, result in enumerate(real(*args, **kwargs)):
            if i == n:
                raise KeyboardInterrupt
            yield result

    monkeypatch.setattr(job, "classify_files", interrupted)


def test_rows_already_written_survive_an_interruption(photos, tiny_model, tmp_path, monkeypatch):
    interrupt_after(monkeypatch, 2)
    out = tmp_path / "partial.csv"
    result = run("classify", photos, "--model", tiny_model, "--out", out, "-q", "--device", "cpu")
    assert result.exit_code != 0
    rows = list(csv.DictReader(out.open()))
    names = {Path(r["path"]).name for r in rows}
    assert len(names) == 2  # the two files finished before Ctrl-C, complete and parseable
    assert "run the same command with --resume" in result.stderr


def test_annotate_writes_copies(photos, tiny_model, tmp_path):
    ann = tmp_path / "ann"
    result = run("classify", photos / "group.PNG", "--model", tiny_model, "--annotate", ann, "-q", "--device", "cpu")
    assert result.exit_code == 0
    out = cv2.imread(str(ann / "group.annotated.png"))
    src = cv2.imread(str(photos / "group.PNG"))
    assert out.shape == src.shape and np.abs(out.astype(int) - src).sum() > 0


def write_clip(path: Path, frame: np.ndarray, frames: int = 60, fps: float = 30) -> Path:
    """An MJPG clip of one still frame: OpenCV writes and reads it everywhere, with no codec to install."""
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (frame.shape[1], frame.shape[0]))
    for _ in range(frames):
        out.write(frame)
    out.release()
    return path


@pytest.fixture
def media(tmp_path, astronaut) -> Path:
    d = tmp_path / "media"
    d.mkdir()
    cv2.imwrite(str(d / "one.jpg"), astronaut)
    write_clip(d / "clip.avi", astronaut)  # 2 s at 30 fps
    return d


def test_videos_in_a_folder_are_sampled(media, tiny_model):
    result = run("classify", media, "--model", tiny_model, "--device", "cpu")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    image = [r for r in rows if r["path"].endswith("one.jpg")]
    clip = [r for r in rows if r["path"].endswith("clip.avi")]
    assert len(image) == 1 and image[0]["frame"] == image[0]["time"] == ""
    # one frame every 0.5 s: frames 0, 15, 30, 45, each with the astronaut's face found and classified
    assert [(r["frame"], r["time"]) for r in clip] == [("0", "0.0"), ("15", "0.5"), ("30", "1.0"), ("45", "1.5")]
    assert all(r["label"] in LABELS and r["face"] == "0" for r in clip)
    assert clip[0]["label"] == image[0]["label"] and clip[0]["x"] == image[0]["x"]  # the same pipeline per frame
    summary = " ".join(result.stderr.split())
    assert "videos │ 1" in summary and "video frames sampled │ 4" in summary


def test_video_every_frame_and_jsonl(media, tiny_model, tmp_path):
    out = tmp_path / "v.jsonl"
    args = ("--model", tiny_model, "--device", "cpu", "-q", "--format", "jsonl", "--out", out)
    assert run("classify", media / "clip.avi", "--video-every", "0", *args).exit_code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(60))
    assert records[3]["time"] == 0.1 and list(records[0])[: len(REQUIRED)] == REQUIRED
    assert run("classify", media / "one.jpg", *args).exit_code == 0
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert "frame" not in record and "time" not in record  # images carry no video fields


def test_truncated_and_broken_videos_keep_good_rows(media, tiny_model):
    data = (media / "clip.avi").read_bytes()
    (media / "cut.avi").write_bytes(data[: len(data) // 2])  # the header still announces 60 frames
    (media / "fake.mp4").write_bytes(b"not a video at all")
    result = run("classify", media, "--model", tiny_model, "--device", "cpu")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    cut = [r for r in rows if r["path"].endswith("cut.avi")]
    assert [r["frame"] for r in cut[:-1]] == ["0", "15"] and all(r["label"] in LABELS for r in cut[:-1])
    assert "stops at frame" in cut[-1]["error"] and "of the 60" in cut[-1]["error"]
    (fake,) = [r for r in rows if r["path"].endswith("fake.mp4")]
    assert "not a video OpenCV can decode" in fake["error"]
    assert len([r for r in rows if r["path"].endswith("clip.avi")]) == 4  # the good video is untouched
    assert "incomplete" in result.stderr and "rows up to frame 15 are kept" in " ".join(result.stderr.split())
    strict = run("classify", media, "--model", tiny_model, "--device", "cpu", "-q", "--strict")
    assert strict.exit_code == 1 and "2 of 4 file(s) failed" in strict.stderr


def test_annotate_writes_a_video_of_the_sampled_frames(media, tiny_model, tmp_path):
    ann = tmp_path / "ann"
    result = run("classify", media, "--model", tiny_model, "--annotate", ann, "-q", "--device", "cpu")
    assert result.exit_code == 0, result.output
    cap = cv2.VideoCapture(str(ann / "clip.annotated.mp4"))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 4 and cap.get(cv2.CAP_PROP_FPS) == pytest.approx(2.0)
    src = cv2.imread(str(media / "one.jpg"))
    assert frames[0].shape == src.shape and np.abs(frames[0].astype(int) - src).mean() > 1  # boxes drawn
    assert (ann / "one.annotated.png").is_file()


def test_info(tiny_model):
    result = run("info", "--model", tiny_model, "--device", "cpu")
    assert result.exit_code == 0, result.output
    for text in ("onnxruntime", "opencv", "numpy", "labels", "runs on", "CPU", "detector: haar",
                 "shipped models", "fer-edge-fast.onnx", "fernet-t", "NVIDIA", "fer-edge home"):
        assert text in result.stdout


def test_info_json_is_machine_readable(tiny_model, tmp_path, monkeypatch):
    import onnxruntime as ort

    monkeypatch.setenv("FER_EDGE_HOME", str(tmp_path / "home"))
    result = run("info", "--model", tiny_model, "--json")
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["versions"]["onnxruntime"] == ort.__version__
    prov = facts["providers"]
    assert prov["available"] == ort.get_available_providers() and prov["active"][-1] == "CPUExecutionProvider"
    assert prov["runs_on"] in ("CPU", "CUDA") and prov["summary"].startswith(prov["runs_on"])
    if prov["runs_on"] == "CPU" and "CUDAExecutionProvider" in prov["available"]:
        assert prov["why_not"]  # onnxruntime-gpu without a working GPU: the reason is machine-readable too
    assert isinstance(facts["gpu"]["driver"], bool) and facts["home"] == str(tmp_path / "home")
    assert facts["shipped_models"]["fast"]["arch"] == "fernet-t2g" and facts["model"]["path"] == str(tiny_model)


def test_classify_never_imports_torch(photos, tiny_model):
    code = (
        "import sys\n"
        "from fer_edge.cli.app import main\n"
        f"sys.argv = ['fer-edge', 'classify', {str(photos)!r}, '--model', {str(tiny_model)!r}, '-q', '--device', 'cpu']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('NO_TORCH_OK')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "NO_TORCH_OK" in proc.stdout


# ------------------------------------------------------------------------------------------------ --resume


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_resume_finishes_an_interrupted_run_as_if_it_had_not_stopped(photos, tiny_model, tmp_path, monkeypatch, fmt):
    args = ("classify", photos, "--model", tiny_model, "--device", "cpu", "--format", fmt, "-q")
    full = tmp_path / f"full.{fmt}"
    assert run(*args, "--out", full).exit_code == 0
    out = tmp_path / f"part.{fmt}"
    with monkeypatch.context() as m:
        interrupt_after(m, 2)  # stops after the 2nd of 4 files: blank.bmp and crop.png are written
        assert run(*args, "--out", out).exit_code == 130
    with out.open("a") as f:
        f.write(out.read_text().splitlines()[-1][:25])  # as if killed in the middle of writing a row
    result = run(*args[:-1], "--out", out, "--resume")
    assert result.exit_code == 0, result.output
    assert out.read_text() == full.read_text()  # nothing lost, nothing twice, the cut row gone
    # the last file written is redone: it may have been cut off between two faces
    assert "1 file(s) already done, 3 to classify" in " ".join(result.stderr.split())
    again = run(*args, "--out", out, "--resume")  # a finished file: only the last file is redone
    assert again.exit_code == 0 and out.read_text() == full.read_text()
    for start in ("", "path,fa", '{"path": "x'):  # killed before the first complete line
        out.write_text(start)
        assert run(*args, "--out", out, "--resume").exit_code == 0
        assert out.read_text() == full.read_text()


def test_resume_retries_files_that_failed(tmp_path, tiny_model, astronaut):
    d = tmp_path / "in"
    d.mkdir()
    cv2.imwrite(str(d / "a.jpg"), astronaut)
    (d / "b.jpg").write_text("not yet an image")
    cv2.imwrite(str(d / "c.jpg"), astronaut)
    cv2.imwrite(str(d / "d.jpg"), astronaut)
    out = tmp_path / "out.csv"
    args = ("classify", d, "--model", tiny_model, "--device", "cpu", "-q", "--out", out)
    assert run(*args).exit_code == 0
    assert "not a decodable image" in out.read_text()
    cv2.imwrite(str(d / "b.jpg"), astronaut)  # fixed
    assert run(*args, "--resume").exit_code == 0
    rows = list(csv.DictReader(out.open()))
    # b (an error row) and d (the last file) were redone and appended: b is back in its place
    assert [Path(r["path"]).name for r in rows] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert all(r["error"] == "" and r["label"] in LABELS for r in rows)
    fresh = tmp_path / "fresh.csv"
    assert run(*args[:-1], fresh).exit_code == 0
    assert out.read_bytes() == fresh.read_bytes()  # the file an uninterrupted run writes


def test_resume_refuses_a_foreign_file_and_needs_out(photos, tiny_model, tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("id,score\n1,2\n")
    result = run("classify", photos, "--model", tiny_model, "--out", other, "--resume")
    assert result.exit_code == 1 and "columns are not those of `fer-edge classify`" in result.stderr
    assert other.read_text() == "id,score\n1,2\n"  # untouched
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"path": "x"}\nnot json\n{"path": "y"}\n')
    result = run("classify", photos, "--model", tiny_model, "--format", "jsonl", "--out", bad, "--resume")
    assert result.exit_code == 1 and "line 2" in result.stderr
    assert run("classify", photos, "--model", tiny_model, "--resume").exit_code == 2
    fresh = tmp_path / "new.csv"  # nothing to resume: a normal run
    assert run("classify", photos, "--model", tiny_model, "--device", "cpu", "-q", "--out", fresh, "--resume").exit_code == 0
    assert fresh.read_text().startswith("path,face,")


def test_readme_classify_example_matches_the_shipped_model():
    """The README shows `fer-edge classify tests/data/` on the shipped model: its header and row must hold."""
    import re

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"\$ fer-edge classify tests/data/\n[^\n]*\n(path,[^\n]*)\n(tests/data/astronaut\.jpg,[^\n]*)\n", readme)
    assert shown, "README lost its classify example"
    header, row = shown.group(1), next(csv.DictReader(io.StringIO(shown.group(1) + "\n" + shown.group(2) + "\n")))
    proc = subprocess.run([sys.executable, "-m", "fer_edge", "classify", "tests/data/", "--device", "cpu", "-q"],
                          cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == header == ",".join(CLASSIFY_COLUMNS)
    (got,) = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert (got["path"], got["face"], got["label"]) == (row["path"], row["face"], row["label"])
    for key in ("x", "y", "w", "h"):  # the detector is deterministic; allow a pixel for OpenCV builds
        assert abs(int(got[key]) - int(row[key])) <= 1
    for key in ("confidence", *LABELS):  # int8 kernels differ a little between CPUs
        assert abs(float(got[key]) - float(row[key])) < 0.02, key


def test_annotate_folder_that_cannot_be_made_is_a_usage_error(photos, tiny_model, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should go")
    result = run("classify", photos, "--model", tiny_model, "--annotate", blocker / "ann", "--device", "cpu")
    assert result.exit_code == 2 and "cannot create the --annotate folder" in result.stderr
    assert "Traceback" not in result.output


def test_status_lines_stay_one_line_in_a_pipe():
    """stderr piped into a log or a grep: the banner is one line, not hard-wrapped at 80 columns, and a missing
    camera gives the banner and the error, one line each."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "fer_edge", "classify", "tests/data/", "--device", "cpu"],
                          cwd=root, capture_output=True, text=True, timeout=120)
    banner = proc.stderr.splitlines()[0]
    assert banner.startswith("model ") and "; detector haar (" in banner and len(banner) > 80
    cam = subprocess.run([sys.executable, "-m", "fer_edge", "webcam", "--source", "47", "--no-display", "--device", "cpu"],
                         cwd=root, capture_output=True, text=True, timeout=120)
    lines = [line for line in cam.stderr.splitlines() if line.strip()]
    assert cam.returncode == 1 and len(lines) == 2, cam.stderr
    assert lines[0].startswith("model ") and "every 3 frame(s)" in lines[0]
    assert lines[1].startswith("error: cannot open camera 47")


def test_an_output_deleted_mid_run_stops_the_run_with_one_line(tmp_path, tiny_model, astronaut):
    import shutil
    import subprocess
    import sys
    import time

    d = tmp_path / "photos"
    d.mkdir()
    for i in range(400):
        cv2.imwrite(str(d / f"{i:03d}.png"), np.roll(astronaut, i, axis=1))
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "rows.csv"
    proc = subprocess.Popen([sys.executable, "-m", "fer_edge", "classify", str(d), "--out", str(out), "--model",
                             str(tiny_model), "--device", "cpu", "--threads", "1"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 5):
        time.sleep(0.05)
    shutil.rmtree(folder)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "the output file was deleted" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1


def test_a_run_stopped_before_its_first_row_leaves_no_output_file(tmp_path):
    from fer_edge.records import RecordWriter, open_output

    for fmt in ("csv", "jsonl"):
        path = tmp_path / f"rows.{fmt}"
        with pytest.raises(KeyboardInterrupt):
            with open_output(path, fmt) as f:
                RecordWriter(f, fmt, ["a", "b"])
                raise KeyboardInterrupt  # a signal before the first row: no header-only file under the name
        assert not path.exists()
        with pytest.raises(KeyboardInterrupt):
            with open_output(path, fmt) as f:
                RecordWriter(f, fmt, ["a", "b"]).write({"a": 1, "b": 2})
                raise KeyboardInterrupt
        assert path.read_text().strip().splitlines()[-1] in ("1,2", '{"a": 1, "b": 2}')  # a row: kept
        with pytest.raises(KeyboardInterrupt):
            with open_output(path, fmt) as f:  # a file that was there before is the user's: never removed
                raise KeyboardInterrupt
        assert path.exists()
