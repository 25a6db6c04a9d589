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


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, tiny_model):
    bomb = png_bomb(tmp_path / "bomb.png", 20000)  # 400 MP: 400 MB once decoded
    code = (
        "import resource, sys\n"
        "from fer_edge.cli.app import main\n"
        f"sys.argv = ['fer-edge', 'classify', {str(bomb)!r}, '--model', {str(tiny_model)!r}, '--device', 'cpu', '-q']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('PEAK_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "pixel limit" in done.stdout and "20000x20000" in done.stdout, done.stdout + done.stderr
    peak = int(done.stderr.split("PEAK_MB")[1].split()[0])
    assert peak < 350, f"peak RSS {peak} MB: the image was decoded"


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
    from conftest import astronaut_face

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
