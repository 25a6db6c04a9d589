"""One `fer-edge webcam` run as a library object: its outputs checked before anything opens, the source, the
record files (and the report's copy of the records), the annotated video, the loop, and the report. The CLI
declares the options, shows progress and prints the summary; `serve`'s live page and tests can run it too."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fer_edge.errors import UsageError
from fer_edge.native_stderr import kept_apart
from fer_edge.realtime.capture import VideoSource, parse_source
from fer_edge.realtime.loop import RECORD_COLUMNS, LoopOptions, Pipeline, run
from fer_edge.realtime.summary import LoopResult
from fer_edge.realtime.window import Window
from fer_edge.realtime.smooth import EmotionSmoother
from fer_edge.recognizer import Recognizer, RecognizerOptions
from fer_edge.records import RecordWriter, ReportRows, open_output
from fer_edge.videoio import VideoSink, stops_short


@dataclass
class WebcamOptions:
    source: str = "0"
    width: int | None = None
    height: int | None = None
    display: bool = True
    output: Path | None = None  # the annotated video
    jsonl: Path | None = None
    csv: Path | None = None
    max_frames: int = 0
    duration: float = 0.0
    realtime: bool = False
    detect_every: int = 3
    smoothing: float = 0.25
    stall_timeout: float = 5.0
    report: Path | None = None


@dataclass
class WebcamResult:
    loop: LoopResult
    truncated: str = ""  # a video file that ends before the frames its header announces: what to say
    report: Path | None = None  # drawn
    lost: tuple[Path, ...] = ()  # outputs written to, then gone by the end: their folder was removed or renamed


class WebcamJob:
    def __init__(self, options: WebcamOptions, recognizer: RecognizerOptions):
        o = self.options = options
        self.spec = parse_source(o.source)
        if o.report is not None:
            from fer_edge.report.make import preflight

            preflight(o.report)
        if o.output is not None:
            VideoSink.check(o.output, "--output ")  # before the models load
        outputs = [p for p in (o.output, o.jsonl, o.csv) if p is not None]
        if len(set(outputs)) != len(outputs):
            raise UsageError("--output, --jsonl and --csv must be different files")
        self.recognizer = Recognizer.from_options(recognizer)
        self.detect_size = recognizer.detect_size

    def banner(self) -> str:
        return (f"{self.recognizer.describe()}; detection at {self.detect_size or 'full'} px, "
                f"every {self.options.detect_every} frame(s)")

    def run(self, log: Callable[[str], None], warn: Callable[[str], None], on_start: Callable[[VideoSource], None],
            on_frame: Callable[[], None], native_lines: Callable[[list[str]], None]) -> WebcamResult:
        """Open everything, run the loop to its end, draw the report. on_start(source) once the source is open
        (its frame count known); native_lines(lines) gets the decoders' own stderr lines at the end."""
        o, spec = self.options, self.spec
        with ExitStack() as stack:
            window = Window() if o.display else None  # before opening anything: a missing display fails fast
            # the decoders' own stderr lines (FFmpeg's, libjpeg's) are kept off ours and summed up at the end
            native = stack.enter_context(kept_apart())
            stack.callback(lambda: native_lines(native.other))
            src = VideoSource(spec, o.width, o.height, realtime=o.realtime, stall_timeout=o.stall_timeout, notify=warn)
            stack.callback(src.close)
            written = o.jsonl or o.csv
            rows = ReportRows(stack, o.report, written, "jsonl", RECORD_COLUMNS)
            writers = [RecordWriter(stack.enter_context(open_output(path, fmt)), fmt, RECORD_COLUMNS)
                       for path, fmt in ((o.jsonl, "jsonl"), (o.csv, "csv")) if path is not None]
            writers += [rows.writer] if rows.writer is not None else []
            video = VideoSink(o.output, src.fps) if o.output is not None else None
            log(f"source {spec.text} ({spec.kind}, {src.fps:.0f} fps{f', {src.frame_count} frames' if src.frame_count else ''})")
            pipeline = Pipeline(self.recognizer, o.detect_every, EmotionSmoother(alpha=o.smoothing), fps=src.fps)
            on_start(src)
            loop = run(src, pipeline, LoopOptions(o.detect_every, o.max_frames, o.duration), writers, video, window,
                       log=log, on_frame=lambda frame: on_frame())
            result = WebcamResult(loop, lost=_gone(o.jsonl, o.csv, o.output if video is not None and video.frames else None))
            if spec.kind == "file" and loop.stopped_by == "end of video" and stops_short(loop.frames, src.frame_count or 0):
                result.truncated = (f"{spec.text}: the video stops at frame {loop.frames} of the {src.frame_count} its "
                                    "header announces (truncated or corrupt); the records up to there are kept")
            if o.report is not None and loop.tracks:
                from fer_edge.report.make import records

                records(rows.ready(), o.report, video=Path(str(spec.target)) if spec.kind == "file" else None, name=spec.text)
                result.report = o.report
        return result


def _gone(*outputs: Path | None) -> tuple[Path, ...]:
    """The outputs that no longer exist. A file whose folder is removed or renamed while the run writes to it
    takes its writes with it, without an error on any write: the end of the run is where it shows."""
    return tuple(Path(p) for p in outputs if p is not None and not Path(p).exists())
