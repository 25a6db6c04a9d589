"""The realtime loop: it only wires the stages together.

    capture -> detect (every N frames, on a small copy) -> track -> follow -> classify (one batch) -> smooth
            -> draw -> display / write video / write records

Capture and detection run ahead in their own threads (stages.py); the rest runs here, in order.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from fer_edge.contract import LABELS
from fer_edge.realtime.capture import Frame, VideoSource
from fer_edge.realtime.follow import STEADY_MATCH, CutDetector, FaceFollower
from fer_edge.realtime.smooth import EmotionSmoother
from fer_edge.realtime.stages import StagedFrames
from fer_edge.realtime.overlay import draw_frame, hud_lines
from fer_edge.realtime.summary import STAGES, LoopResult, Timings, TrackedFace, TrackSummary
from fer_edge.realtime.track import IoUTracker
from fer_edge.realtime.window import Window
from fer_edge.recognizer import Recognizer
from fer_edge.videoio import VideoSink
from fer_edge.records import RecordWriter

RECORD_COLUMNS = [
    "time", "frame", "track", "x", "y", "w", "h", "detected", "label", "confidence",
    *(f"p_{name}" for name in LABELS), *(f"raw_{name}" for name in LABELS),
]


@dataclass
class LoopOptions:
    detect_every: int = 2
    max_frames: int = 0  # 0: no bound
    duration: float = 0.0  # seconds; 0: no bound
    snapshot_dir: Path = Path(".")
    staged: bool = True  # capture and detection run ahead in their own threads (stages.py); same records


@dataclass(frozen=True)
class TrackView:
    """A track as one frame saw it: detection hands these on while it moves on to the next frame."""
    id: int
    box: tuple[int, int, int, int]
    angle: float
    detected_now: bool
    held: bool


class Seen(list):
    """This frame's tracks whose boxes are on a face, and the ids of every live track (held ones too)."""

    def __init__(self, views: list[TrackView], live: set[int]):
        super().__init__(views)
        self.live = live


class Pipeline:
    """detect -> track -> follow -> classify -> smooth for one frame; holds the per-stream state.

    Every box it returns is on a face: found by the detector on this frame, or found again near its
    predicted place by the track's template (FaceFollower). A box that no longer looks like its face is
    left out, and a shot cut ends every track and brings the next detection forward to the cut's frame."""

    def __init__(self, recognizer: Recognizer, detect_every: int = 2, smoother: EmotionSmoother | None = None,
                 tracker: IoUTracker | None = None, fps: float = 30.0, hold_seconds: float = 0.5,
                 steady_every: int | None = None):
        self.recognizer = recognizer
        self.detect_every = max(1, detect_every)
        # while the scene is steady (every face found again closely, nothing moving elsewhere) the detector
        # waits up to this many frames instead of detect_every: 3x by default (at 30 fps and every 3rd frame,
        # a face that comes into a still scene is found at most 0.2 s later; it had to move to get there)
        self.steady_every = max(self.detect_every, 3 * self.detect_every if steady_every is None else steady_every)
        self.smoother = smoother or EmotionSmoother()
        # a face the detector misses keeps its id for about hold_seconds, counted in detection rounds
        rounds = max(1, math.ceil(hold_seconds * (fps if fps > 0 else 30.0) / self.detect_every))
        self.tracker = tracker or IoUTracker(max_missed=rounds)
        self.follower = FaceFollower()
        self.cuts = CutDetector()
        self._since = self.steady_every  # frames since the last detection: the first frame is detected
        self._steady = False

    def _due(self, cut: bool) -> bool:
        if cut or self._since >= self.steady_every:
            return True
        return self._since >= self.detect_every and not self._steady

    def detect(self, image: np.ndarray) -> list:
        cut = self.cuts.is_cut(image)
        if cut:
            self.tracker.reset()  # detect on the cut's frame; the rhythm restarts from it
        if self._due(cut):
            dets = self.recognizer.detect(image)
            tracks = self.tracker.update([d.box for d in dets], [d.score for d in dets], [d.angle for d in dets])
            self.follower.forget(self.tracker.ids())
            self._since, self._steady = 1, False
        else:  # between detections the tracker carries the boxes along their motion
            tracks = self.tracker.predict()
            self._since += 1
        on_faces = []
        for t in tracks:
            if t.detected_now:
                self.follower.remember(t.id, image, t.box)
            else:
                found = self.follower.find(t.id, image, t.box)
                if found is None:
                    continue  # kept for its id, not classified: nothing there looks like its face
                self.tracker.follow(t, found)
            on_faces.append(TrackView(t.id, tuple(int(v) for v in t.box), t.angle, t.detected_now, t.held))
        if not any(t.detected_now for t in tracks):  # a frame between detections: is the scene steady?
            # steady: no face lost by the detector, each found again closely, nothing moving elsewhere
            self._steady = (not any(t.held for t in tracks)
                            and all(self.follower.scores.get(t.id, 0.0) >= STEADY_MATCH for t in tracks)
                            and self.cuts.quiet_outside([v.box for v in on_faces], image.shape))
        return Seen(on_faces, self.tracker.ids())

    def classify(self, image: np.ndarray, tracks: list) -> list[TrackedFace]:
        if isinstance(tracks, Seen):
            self.smoother.forget(tracks.live)
        if not tracks:
            return []
        probs = self.recognizer.face_probs(image, [t.box for t in tracks], tilts=[t.angle for t in tracks])
        faces = []
        for t, p in zip(tracks, probs):
            state = self.smoother.update(t.id, p)
            faces.append(TrackedFace(
                t.id, tuple(int(v) for v in t.box), LABELS[state.label], float(state.probs[state.label]),
                tuple(float(v) for v in state.probs), tuple(float(v) for v in p), t.detected_now, t.held,
            ))
        return faces


def face_records(frame: Frame, faces: list[TrackedFace]) -> list[dict]:
    out = []
    for f in faces:
        x, y, w, h = f.box
        rec = {"time": round(frame.time, 3), "frame": frame.index, "track": f.track, "x": x, "y": y, "w": w, "h": h,
               "detected": f.detected, "label": f.label, "confidence": round(f.confidence, 5)}
        rec.update({f"p_{n}": round(v, 5) for n, v in zip(LABELS, f.probs)})
        rec.update({f"raw_{n}": round(v, 5) for n, v in zip(LABELS, f.raw)})
        out.append(rec)
    return out


class _Controls:
    """The window's keys and what they change: pause, snapshot, recording; and the reason to stop, if any."""

    def __init__(self, video: VideoSink | None, options: LoopOptions, fps: float, log: Callable[[str], None]):
        self.video, self.options, self.fps, self.log = video, options, fps, log
        self.paused = False
        self.recording = video is not None

    def press(self, action: str | None, canvas: np.ndarray, frames: int) -> str | None:
        """Act on a key; the reason to stop when it ends the run."""
        if action in ("quit", "closed"):
            return "window closed" if action == "closed" else "q pressed"
        if action == "pause":
            self.paused = not self.paused
        elif action == "snapshot" and not self.paused:
            path = self.options.snapshot_dir / f"fer-edge-snapshot-{time.strftime('%Y%m%d-%H%M%S')}-{frames}.png"
            cv2.imwrite(str(path), canvas)
            self.log(f"snapshot: {path}")
        elif action == "record" and not self.paused:
            if self.video is None:
                self.video = VideoSink(self.options.snapshot_dir / f"fer-edge-{time.strftime('%Y%m%d-%H%M%S')}.mp4", self.fps)
            self.recording = not self.recording
            self.log(f"recording {'on' if self.recording else 'off'}: {self.video.path}")
        return None


def _next_frame(staged: StagedFrames | None, source: VideoSource, pipeline: Pipeline):
    """(frame, its tracks, capture seconds, detect seconds), or None at the end of the source."""
    if staged is not None:
        ahead = staged.next()
        return None if ahead is None else (ahead.frame, ahead.tracks, ahead.capture_s, ahead.detect_s)
    t0 = time.perf_counter()
    frame = source.read()
    if frame is None:
        return None
    t1 = time.perf_counter()
    active = pipeline.detect(frame.image)
    return frame, active, t1 - t0, time.perf_counter() - t1


def _count(tracks: dict[int, TrackSummary], faces: list[TrackedFace]) -> None:
    for f in faces:
        if f.held:  # the summary counts the frames a face was seen, not the ones it was held through
            continue
        s = tracks.setdefault(f.track, TrackSummary())
        s.frames += 1
        s.counts[f.label] += 1


def run(
    source: VideoSource,
    pipeline: Pipeline,
    options: LoopOptions,
    writers: list[RecordWriter] = (),
    video: VideoSink | None = None,
    window: Window | None = None,
    log: Callable[[str], None] = print,
    on_frame: Callable[[Frame], None] | None = None,
) -> LoopResult:
    timings = Timings()
    tracks: dict[int, TrackSummary] = {}
    provider = pipeline.recognizer.provider
    controls = _Controls(video, options, source.fps, log)
    stopped_by, last_canvas, frames, records, interrupted = "end of video", None, 0, 0, None
    start = time.perf_counter()
    staged = None
    try:
        staged = StagedFrames(source, pipeline.detect) if options.staged else None
        while True:
            if options.max_frames and frames >= options.max_frames:
                stopped_by = f"--max-frames {options.max_frames}"
                break
            if options.duration and time.perf_counter() - start >= options.duration:
                stopped_by = f"--duration {options.duration:g}s"
                break
            if controls.paused and window is not None and last_canvas is not None:
                stop = controls.press(window.show(last_canvas), last_canvas, frames)
                if stop:
                    stopped_by = stop
                    break
                time.sleep(0.01)
                continue

            got = _next_frame(staged, source, pipeline)
            if got is None:
                stopped_by = source.error or "end of video"
                break
            frame, active, capture_s, detect_s = got
            t2 = time.perf_counter()
            faces = pipeline.classify(frame.image, active)
            t3 = time.perf_counter()
            drawn = window is not None or controls.video is not None  # headless with no video: nothing to draw
            canvas = draw_frame(frame.image, faces, hud_lines(timings, provider, controls.recording, controls.paused)) if drawn else None
            t4 = time.perf_counter()
            for stage, seconds in zip(STAGES, (capture_s, detect_s, t3 - t2, t4 - t3)):
                timings.add(stage, seconds)
            timings.tick(t4, frame.captured)
            frames += 1

            _count(tracks, faces)
            for rec in face_records(frame, faces):
                for w in writers:
                    w.write(rec)
                records += 1
            if controls.video is not None and controls.recording:
                controls.video.write(canvas)
            if on_frame is not None:
                on_frame(frame)
            if window is not None:
                last_canvas = canvas
                stop = controls.press(window.show(canvas), canvas, frames)
                if stop:
                    stopped_by = stop
                    break
    except KeyboardInterrupt as e:
        interrupted = e
        stopped_by = f"{e.args[0]}" if e.args else "Ctrl-C"
    finally:
        if staged is not None:
            staged.close()
        if controls.video is not None:
            controls.video.close()
        if window is not None:
            window.close()
    return LoopResult(frames, time.perf_counter() - start, stopped_by, tracks, timings.mean_ms(), provider, records,
                      interrupted)
