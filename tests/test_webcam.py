"""`fer-edge webcam` on a video made here from a public-domain face, plus its stages one by one."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import astronaut_face
from fer_edge.cli.app import app
from fer_edge.contract import LABELS
from fer_edge.errors import UsageError
from fer_edge.realtime import capture
from fer_edge.realtime.capture import SourceSpec, VideoSource, parse_source
from fer_edge.realtime.loop import LoopOptions, Pipeline, run
from fer_edge.realtime.smooth import EmotionSmoother
from fer_edge.realtime.track import IoUTracker, iou
from fer_edge.recognizer import Recognizer

runner = CliRunner()
FRAMES, ENTER, LEAVE = 36, 12, 24  # face B is in view for frames [ENTER, LEAVE)
SIZE = (640, 360)


def make_video(path: Path, astronaut: np.ndarray) -> Path:
    """Face A glides left to right for the whole clip; face B enters at ENTER and leaves at LEAVE."""
    face = cv2.resize(astronaut_face(astronaut), (150, 150))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, SIZE)
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    for i in range(FRAMES):
        frame = np.full((SIZE[1], SIZE[0], 3), 95, np.uint8)
        frame += rng.integers(0, 6, frame.shape, dtype=np.uint8)
        ax = 10 + 4 * i
        frame[30:180, ax : ax + 150] = face
        if ENTER <= i < LEAVE:
            frame[190:340, 460:610] = cv2.flip(face, 1)
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory, astronaut) -> Path:
    return make_video(tmp_path_factory.mktemp("video") / "two_faces.avi", astronaut)


def webcam(video: Path, model: Path, *extra) -> object:
    args = ["webcam", "--source", str(video), "--model", str(model), "--no-display", "--device", "cpu",
            "--detect-every", "1", "--detect-size", "480", *map(str, extra)]
    return runner.invoke(app, args)


# ------------------------------------------------------------------------------------------- end to end


def test_records_tracks_video_and_summary(video, tiny_model, tmp_path):
    jsonl, csv_path, out = tmp_path / "faces.jsonl", tmp_path / "faces.csv", tmp_path / "annotated.mp4"
    result = webcam(video, tiny_model, "--jsonl", jsonl, "--csv", csv_path, "--output", out)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == len(records)

    # one record per face per frame
    per_frame: dict[int, list[dict]] = {}
    for r in records:
        per_frame.setdefault(r["frame"], []).append(r)
    # B's track is held for about half a second after it leaves (13 rounds at 25 fps), but its box is on no
    # face any more: no record is written for it
    expected = {i: 2 if ENTER <= i < LEAVE else 1 for i in range(FRAMES)}
    assert {i: len(v) for i, v in per_frame.items()} == expected
    assert not [r for r in records if r["frame"] >= LEAVE and r["x"] >= 460]
    assert all(r["detected"] for r in records if r["frame"] < LEAVE)  # --detect-every 1: every box detected

    # a stable id for A while it moves; a new id for B; A keeps its id after B leaves
    track_a = {r["track"] for r in records if r["x"] < 460}
    track_b = {r["track"] for r in records if r["x"] >= 460 and ENTER <= r["frame"]}
    assert len(track_a) == 1 and len(track_b) == 1 and track_a != track_b
    first = [r for r in records if r["track"] in track_a]
    assert first[-1]["x"] - first[0]["x"] > 100  # it really moved

    for field in ("time", "frame", "track", "x", "y", "w", "h", "label", "confidence"):
        assert field in records[0]
    assert all(f"p_{n}" in records[0] and f"raw_{n}" in records[0] for n in LABELS)
    assert abs(sum(records[0][f"p_{n}"] for n in LABELS) - 1) < 1e-3
    assert records[1]["time"] == pytest.approx(1 / 25, abs=1e-3)

    # the annotated video decodes, with every frame
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == FRAMES

    # summary: frames per track, the dominant emotion
    (a,) = track_a
    (b,) = track_b
    out_text = result.stderr
    assert f"{FRAMES} frames" in out_text and "end of video" in out_text
    lines = {line.split("│")[1].strip(): line for line in out_text.splitlines() if line.count("│") > 3}
    assert lines[str(a)].split("│")[2].strip() == str(FRAMES)
    assert lines[str(b)].split("│")[2].strip() == str(LEAVE - ENTER)
    dominant_a = max(LABELS, key=lambda lab: sum(r["label"] == lab for r in records if r["track"] == a))
    assert lines[str(a)].split("│")[3].strip() == dominant_a


def test_max_frames_and_detect_every(video, tiny_model, tmp_path):
    jsonl = tmp_path / "f.jsonl"
    result = webcam(video, tiny_model, "--jsonl", jsonl, "--max-frames", "10", "--detect-every", "3")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert sorted({r["frame"] for r in records}) == list(range(10))
    assert "--max-frames 10" in result.stderr


def test_loop_reports_each_frame_for_progress(video, tiny_model):
    rec = Recognizer(tiny_model, "haar", device="cpu", detect_size=480)
    src = VideoSource(parse_source(str(video)))
    seen = []
    result = run(src, Pipeline(rec, 2), LoopOptions(2, max_frames=20), on_frame=lambda f: seen.append(f.index))
    src.close()
    assert result.frames == 20 and seen == list(range(20))


def test_ctrl_c_keeps_outputs_and_prints_the_summary(video, tiny_model, tmp_path, monkeypatch):
    real = Pipeline.classify
    calls = {"n": 0}

    def interrupt_at_frame_8(self, image, tracks):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return real(self, image, tracks)

    monkeypatch.setattr(Pipeline, "classify", interrupt_at_frame_8)
    jsonl, out = tmp_path / "f.jsonl", tmp_path / "a.avi"
    result = webcam(video, tiny_model, "--jsonl", jsonl, "--output", out)
    assert result.exit_code == 130, result.output  # ended cleanly, and says it was interrupted
    assert "Ctrl-C" in result.stderr and "7 frames" in result.stderr
    assert len(jsonl.read_text().splitlines()) == 7
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 7  # the video was closed properly, so it is readable


def test_outputs_whose_folder_vanished_during_the_run_are_reported(video, tiny_model, tmp_path, monkeypatch):
    """Writes into a file whose folder was removed go nowhere, without an error on any write: the end of the
    run says so, after the summary, with exit 1; an output that survived is not named."""
    import shutil

    from fer_edge.realtime import job

    real_run = job.run
    doomed, kept = tmp_path / "doomed", tmp_path / "kept"
    doomed.mkdir()
    kept.mkdir()

    def run_then_lose_the_folder(*args, **kwargs):
        result = real_run(*args, **kwargs)
        shutil.rmtree(doomed)  # as a user cleaning up in another terminal while the run writes
        return result

    monkeypatch.setattr(job, "run", run_then_lose_the_folder)
    result = webcam(video, tiny_model, "--jsonl", doomed / "f.jsonl", "--output", doomed / "a.avi", "--csv", kept / "f.csv")
    assert result.exit_code == 1, result.output
    said = " ".join(result.stderr.split())
    assert "fer-edge webcam:" in said and "Traceback" not in said  # the summary first
    assert f"{doomed / 'f.jsonl'}: gone at the end of the run" in said and f"{doomed / 'a.avi'}: gone" in said
    assert "f.csv: gone" not in said and len((kept / "f.csv").read_text().splitlines()) > 1


def test_closed_window_stops_cleanly(video, tiny_model):
    class FakeWindow:
        def __init__(self):
            self.n = 0

        def show(self, image):
            self.n += 1
            return "closed" if self.n == 5 else None

        def close(self):
            pass

    rec = Recognizer(tiny_model, device="cpu", detect_size=480)
    src = VideoSource(parse_source(str(video)))
    result = run(src, Pipeline(rec, 1), LoopOptions(), window=FakeWindow())
    src.close()
    assert result.stopped_by == "window closed" and result.frames == 5


def test_no_display_is_explained(video, tiny_model, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = runner.invoke(app, ["webcam", "--source", str(video), "--model", str(tiny_model)])
    assert result.exit_code == 1 and "--no-display" in result.stderr


def test_webcam_never_imports_torch(video, tiny_model):
    code = (
        "import sys\nfrom fer_edge.cli.app import main\n"
        f"sys.argv = ['fer-edge', 'webcam', '--source', {str(video)!r}, '--model', {str(tiny_model)!r}, "
        "'--no-display', '--max-frames', '5', '--device', 'cpu']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'torch' not in sys.modules\nprint('NO_TORCH_OK')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "NO_TORCH_OK" in proc.stdout, proc.stderr


# ----------------------------------------------------------------------------------------- bad sources


def test_bad_sources_get_clear_errors(tmp_path, tiny_model):
    result = runner.invoke(app, ["webcam", "--source", str(tmp_path / "missing.mp4"), "--no-display", "--model", str(tiny_model)])
    assert result.exit_code == 2 and "no such video file" in result.stderr
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video")
    result = runner.invoke(app, ["webcam", "--source", str(fake), "--no-display", "--model", str(tiny_model)])
    assert result.exit_code == 1 and "not a video" in result.stderr
    result = runner.invoke(app, ["webcam", "--source", "97", "--no-display", "--model", str(tiny_model)])
    assert result.exit_code == 1 and "cannot open camera 97" in result.stderr and "/dev/video97" in result.stderr


def test_parse_source():
    assert parse_source("0") == SourceSpec("camera", 0, "0")
    assert parse_source("/dev/video2").kind == "camera"
    assert parse_source("rtsp://cam.local/stream").kind == "stream"
    with pytest.raises(UsageError):
        parse_source("/no/such/file.mp4")


class FakeCapture:
    """Stands in for cv2.VideoCapture on a live stream: yields `good` frames, then fails or blocks."""

    def __init__(self, good: int, then: str):
        self.good, self.then, self.reads = good, then, 0
        self.released = threading.Event()

    def isOpened(self):
        return True

    def get(self, prop):
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def set(self, *args):
        return True

    def read(self):
        self.reads += 1
        if self.reads <= self.good:
            time.sleep(0.005)
            return True, np.zeros((48, 64, 3), np.uint8)
        if self.then == "block":
            self.released.wait(5)
        return False, None

    def release(self):
        self.released.set()


def test_stalled_stream_ends_with_a_message(monkeypatch):
    monkeypatch.setattr(capture, "_open_capture", lambda *a: FakeCapture(3, "block"))
    messages = []
    src = VideoSource(SourceSpec("stream", "rtsp://x", "rtsp://x"), stall_timeout=0.3, notify=messages.append)
    got = 0
    while src.read() is not None:
        got += 1
    src.close()
    assert 1 <= got <= 3
    assert "stalled" in src.error and messages


def test_dropped_camera_is_retried_with_backoff(monkeypatch):
    opened = []

    def reopen(*a):
        opened.append(time.perf_counter())
        return FakeCapture(3 if len(opened) == 1 else 0, "fail")  # a few frames, then the camera is gone

    monkeypatch.setattr(capture, "_open_capture", reopen)
    messages = []
    src = VideoSource(SourceSpec("camera", 0, "0"), retries=2, stall_timeout=5, notify=messages.append)
    frames = 0
    while src.read() is not None:
        frames += 1
    src.close()
    assert frames == 3
    assert len(opened) == 3  # the first open, then one per retry
    assert opened[2] - opened[1] >= 0.9  # backoff: 0.5 s, then 1 s
    assert "reconnecting in 0.5s (attempt 1/2)" in messages[0] and "reconnecting in 1.0s" in messages[1]
    assert "giving up" in src.error


# ---------------------------------------------------------------------------------------------- stages


def test_smoothing_suppresses_a_flicker_and_follows_a_real_change():
    sm = EmotionSmoother(alpha=0.25, margin=0.15)
    happy, sad = np.eye(7)[LABELS.index("happy")], np.eye(7)[LABELS.index("sad")]
    shown = [LABELS[sm.update(1, p).label] for p in [happy] * 10 + [sad] + [happy] * 5]
    assert set(shown) == {"happy"}  # a one-frame flicker never shows
    shown = [LABELS[sm.update(2, p).label] for p in [happy] * 10 + [sad, sad] + [happy] * 5]
    assert set(shown) == {"happy"}  # nor a two-frame blip
    shown = [LABELS[sm.update(3, p).label] for p in [happy] * 10 + [sad] * 10]
    switch = shown.index("sad") - 10 + 1
    assert switch == sm.switch_delay == 3  # a lasting change shows within the set delay
    assert shown[-1] == "sad"


def test_smoothing_with_noisy_probabilities():
    rng = np.random.default_rng(0)
    sm = EmotionSmoother()
    base = np.array([0.05, 0.02, 0.08, 0.45, 0.1, 0.05, 0.25])
    shown, raw = [], []
    for _ in range(200):
        p = np.clip(base + rng.normal(0, 0.12, 7), 0.001, None)
        raw.append(int(np.argmax(p)))
        shown.append(sm.update(1, p / p.sum()).label)
    flicker = sum(a != b for a, b in zip(raw, raw[1:]))
    changes = sum(a != b for a, b in zip(shown, shown[1:]))
    assert flicker > 30 and changes <= 2  # the raw argmax flickers; the shown label does not


def test_tracker_keeps_ids_and_drops_lost_tracks():
    tr = IoUTracker(iou_threshold=0.25, max_missed=2)
    a = tr.update([(10, 10, 50, 50)])
    assert [t.id for t in a] == [1]
    both = tr.update([(300, 10, 50, 50), (14, 12, 50, 50)])  # A moved a little, B appeared
    assert [t.id for t in both] == [2, 1]
    for _ in range(3):
        tr.update([(302, 10, 50, 50)])  # A is gone for 3 rounds > max_missed
    assert tr.ids() == {2}
    again = tr.update([(12, 10, 50, 50), (303, 11, 50, 50)])
    assert [t.id for t in again] == [3, 2]  # A comes back as a new face
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_tracker_carries_a_moving_face_between_detections():
    tr = IoUTracker()
    true = lambda f: (100 + 6 * f, 80 + 2 * f, 60, 60)  # noqa: E731 - 6 px a frame right, 2 down
    errors = []
    for frame in range(30):
        if frame % 3 == 0:  # --detect-every 3
            [t] = tr.update([true(frame)])
        else:
            [t] = tr.predict()
            errors.append(abs(t.box[0] - true(frame)[0]) + abs(t.box[1] - true(frame)[1]))
    assert t.id == 1
    assert errors[0] >= 6  # before any motion is known the box stands still
    assert max(errors[-6:]) <= 1  # once it is, the box follows the face between detections

    still = IoUTracker()
    for frame in range(12):  # a still face whose detections jitter by a pixel or two
        jitter = (0, 2, -1, 1)[frame % 4]
        [t] = still.update([(200 + jitter, 100, 60, 60)]) if frame % 2 == 0 else still.predict()
        assert abs(t.box[0] - 200) <= 3


def test_pipeline_batches_all_faces_of_a_frame(tiny_model, astronaut, monkeypatch):
    from helpers import group_photo

    rec = Recognizer(tiny_model, device="cpu")
    pipe = Pipeline(rec, detect_every=1)
    calls = []
    real = rec.classifier.predict_probs
    monkeypatch.setattr(rec.classifier, "predict_probs", lambda x, **k: calls.append(len(x)) or real(x, **k))
    img = group_photo(astronaut)
    faces = pipe.classify(img, pipe.detect(img))
    assert len(faces) == 3 and calls == [3]
    assert len({f.track for f in faces}) == 3


class _DroppingDetector:
    """Stands in for the recognizer: three faces moving steadily, each missed by the detector in runs of up
    to `longest` frames (a turned head, motion blur), as a real detector misses them."""

    provider = "CPU"

    def __init__(self, frames: int, longest: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.missing = np.zeros((frames, 3), bool)
        for face in range(3):
            f = 5
            while f < frames:
                run = int(rng.integers(1, longest + 1))
                self.missing[f : f + run, face] = True
                f += run + int(rng.integers(4, 20))
        self.frame = 0

    @staticmethod
    def truth(frame: int) -> list[tuple[int, int, int, int]]:
        return [(40 + 3 * frame, 60, 80, 80), (400 - 2 * frame, 200, 70, 70), (250, 40 + frame, 60, 60)]

    def detect(self, image):
        from fer_edge.detect import Detection

        boxes = [b for b, gone in zip(self.truth(self.frame), self.missing[self.frame]) if not gone]
        return [Detection(*b, 0.9) for b in boxes]

    def face_probs(self, image, boxes, tilts=None):
        return np.full((len(boxes), 7), 1 / 7)


def _faces_frame(boxes, shown=(True, True, True)) -> np.ndarray:
    """A frame with a distinct textured patch (a stand-in face) at each shown box, on a plain background."""
    image = np.full((480, 640, 3), 90, np.uint8)
    for k, ((x, y, w, h), show) in enumerate(zip(boxes, shown)):
        if show:
            texture = np.random.default_rng(k).integers(0, 255, (12, 12, 3), dtype=np.uint8)
            image[y : y + h, x : x + w] = cv2.resize(texture, (w, h), interpolation=cv2.INTER_LINEAR)
    return image


def test_tracks_last_through_detector_misses_of_up_to_half_a_second():
    frames = 150
    det = _DroppingDetector(frames, longest=12)  # misses of up to 0.4 s at 30 fps
    pipe = Pipeline(det, detect_every=2, fps=30)
    ids, detected_flags, held_seen = set(), [], False
    for f in range(frames):
        det.frame = f
        image = _faces_frame(det.truth(f))
        faces = pipe.classify(image, pipe.detect(image))
        assert len(faces) == 3, f  # every face is on screen in every frame: held ones too
        ids |= {face.track for face in faces}
        detected_flags += [face.detected for face in faces]
        held_seen |= any(face.held for face in faces)
        for face in faces:  # held boxes follow the face: still on it
            assert max(iou(face.box, t) for t in det.truth(f)) > 0.5
    assert ids == {1, 2, 3}  # one id per face, never a new one after a miss
    assert held_seen and 0.2 < np.mean(detected_flags) < 0.5  # detect every 2nd frame, minus the misses

    gone = Pipeline(_DroppingDetector(60, longest=1), detect_every=2, fps=30)  # a face that leaves for good
    gone.recognizer.missing[20:, 0] = True
    for f in range(60):
        gone.recognizer.frame = f
        image = _faces_frame(gone.recognizer.truth(f), (f < 20, True, True))
        faces = gone.classify(image, gone.detect(image))
        if f >= 20:  # its box is never classified once its face is gone, held or not
            assert sorted(face.track for face in faces) == [2, 3], f
    assert {t.id for t in gone.tracker.tracks} == {2, 3}  # and its track ended after about half a second


def test_a_held_box_that_drifts_off_its_face_is_not_classified():
    """The detector loses a face that stops dead while its track predicts it still moving: the box carried on
    the old motion would slide off; the follower finds the face where it stopped."""
    det = _DroppingDetector(40, longest=1)
    det.missing[:] = False
    det.missing[10:, 0] = True
    pipe = Pipeline(det, detect_every=2, fps=30)
    for f in range(40):
        det.frame = f
        boxes = [det.truth(min(f, 10))[0], *det.truth(f)[1:]]  # the first face stops at frame 10
        image = _faces_frame(boxes)
        for face in pipe.classify(image, pipe.detect(image)):
            assert max(iou(face.box, b) for b in boxes) > 0.5, (f, face)


def test_a_shot_cut_ends_every_track_and_detects_at_once():
    det = _DroppingDetector(60, longest=1)
    det.missing[:] = False
    pipe = Pipeline(det, detect_every=5, fps=30, steady_every=5)  # the cadence alone: no steady-scene waits
    calls = []
    real = det.detect
    det.detect = lambda image: calls.append(det.frame) or real(image)
    for f in range(60):
        det.frame = f
        boxes = det.truth(f)
        image = _faces_frame(boxes) if f < 33 else 255 - _faces_frame(boxes)  # a cut at frame 33
        faces = pipe.classify(image, pipe.detect(image))
        assert len(faces) == 3
        tracks = {face.track for face in faces}
        if f == 32:
            before = tracks
    assert 33 in calls and 38 in calls  # detection on the cut's frame, then every 5th from it
    assert before == {1, 2, 3} and tracks == {4, 5, 6}  # new faces after the cut, with new ids


def test_a_steady_scene_waits_longer_for_the_detector_and_motion_brings_it_back():
    """While every face is found again closely and nothing moves elsewhere, the detector runs every 3x
    detect_every frames; a change away from the faces (someone coming in) brings back every detect_every."""
    det = _DroppingDetector(60, longest=1)
    det.missing[:] = False
    pipe = Pipeline(det, detect_every=3, fps=30)
    calls = []
    real = det.detect
    det.detect = lambda image: calls.append(det.frame) or real(image)
    for f in range(60):
        det.frame = f
        image = _faces_frame(det.truth(f))
        if f >= 30:  # something moves along the bottom of the frame, away from every face
            image[400:470, 540 - 4 * (f - 30) : 600 - 4 * (f - 30)] = 255
        assert len(pipe.classify(image, pipe.detect(image))) == 3
    still, moving = [c for c in calls if c < 30], [c for c in calls if c >= 30]
    # the faces move, but once the tracker has their motion they are found again closely: every 9th frame
    assert len(still) < 10 and list(np.diff(still)[-2:]) == [9, 9], still  # every 3rd: 10
    assert moving[0] <= 33 and set(np.diff(moving)) == {3}, moving  # the motion is seen at once


def test_records_say_whether_the_box_was_detected_and_held_boxes_are_dashed(video, tiny_model, tmp_path):
    from fer_edge.render import draw_face

    jsonl = tmp_path / "faces.jsonl"
    result = webcam(video, tiny_model, "--jsonl", jsonl, "--detect-every", "3")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    flags = {r["frame"] % 3 == 0: set() for r in records}
    for r in records:
        flags[r["frame"] % 3 == 0].add(r["detected"])
    assert flags[False] == {False} and True in flags[True]  # detected on detection frames only

    solid, dashed = np.zeros((200, 200, 3), np.uint8), np.zeros((200, 200, 3), np.uint8)
    draw_face(solid, (50, 50, 100, 100), "happy", 0.9)
    draw_face(dashed, (50, 50, 100, 100), "happy", 0.9, held=True)
    top_solid, top_dashed = solid[50, 50:150].any(-1), dashed[50, 50:150].any(-1)
    assert top_solid.all() and 0.3 < top_dashed.mean() < 0.8  # the held box's edge has gaps


def test_staged_loop_writes_the_records_of_the_unstaged_one(video, tiny_model):
    """Capture and detection run ahead in their own threads; every frame is still processed, in order, and
    each record is the one the one-thread loop writes (time aside: it is the wall clock's)."""

    class Rows:
        def __init__(self):
            self.rows = []

        def write(self, rec):
            self.rows.append({k: v for k, v in rec.items() if k != "time"})

    out = {}
    for staged in (False, True):
        rec = Recognizer(tiny_model, detector="haar", device="cpu", detect_size=480)
        src = VideoSource(parse_source(str(video)))
        rows = Rows()
        result = run(src, Pipeline(rec, 3, fps=src.fps), LoopOptions(3, staged=staged), [rows])
        src.close()
        assert result.frames == FRAMES and result.stopped_by == "end of video"
        out[staged] = rows.rows
    assert out[True] == out[False] and len(out[True]) > FRAMES


def test_a_failing_detector_stops_the_staged_loop_with_its_error(video, tiny_model):
    rec = Recognizer(tiny_model, detector="haar", device="cpu")
    calls = []

    def broken(image):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("detector broke")
        return []

    rec.detect = broken
    src = VideoSource(parse_source(str(video)))
    with pytest.raises(RuntimeError, match="detector broke"):
        run(src, Pipeline(rec, 1), LoopOptions(1))
    src.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("fer-edge-de")]
