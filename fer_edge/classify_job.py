"""One `fer-edge classify` run as a library object: the files, the locks on its outputs, resuming an
interrupted run, the engine (this process or a Ray cluster), the rows and their copies, annotated copies and
their error rows, the order of a resumed file, and the report. The CLI declares options and prints what the
job tells it; a program can run the same job with its own callbacks.

    job = ClassifyJob(JobOptions(paths=[Path("photos")], out=Path("rows.csv")), RecognizerOptions())
    with job:                       # locks the outputs, loads the model, reads what a resumed run finished
        stats = job.run(on_file=print_problem, on_step=advance_bar)
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fer_edge.batch import BatchStats, FileResult, classify_files, iter_input_paths
from fer_edge.errors import FerEdgeError, UsageError
from fer_edge.lock import exclusive
from fer_edge.native_stderr import kept_apart
from fer_edge.records import RecordWriter, ReportRows, open_output
from fer_edge.recognizer import Recognizer, RecognizerOptions
from fer_edge.resume import finished_paths, restore_order
from fer_edge.videoio import is_video, samples_in
from fer_edge.writers import CLASSIFY_COLUMNS, AnnotatedCopies, classify_records


@dataclass
class JobOptions:
    paths: list[Path]
    out: Path | None = None  # None: rows go to stdout
    fmt: str = "csv"
    recursive: bool = False
    detect: bool | None = None
    annotate_dir: Path | None = None
    video_every: float = 0.5
    resume: bool = False
    file_timeout: float = 60.0
    engine: str = "local"  # or "ray"
    address: str | None = None
    workers: int = 0
    batch_size: int = 8
    chunk_samples: int = 240
    report: Path | None = None


@dataclass
class Problem:
    """A file the run could not (fully) classify or annotate: it has its error row; the run went on."""
    kind: str  # "skipped", "incomplete" (a video that failed part-way) or "not annotated"
    path: Path
    error: str
    kept_up_to: int | None = None  # incomplete: the last frame whose rows are kept


@dataclass
class JobResult:
    stats: BatchStats
    ray_nodes: int | None = None  # with the Ray engine: the nodes that worked
    report: Path | None = None


class ClassifyJob:
    def __init__(self, options: JobOptions, recognizer: RecognizerOptions):
        o = options
        if o.resume and o.out is None:
            raise UsageError("--resume needs --out FILE: the file an interrupted run was writing")
        if o.engine not in ("local", "ray"):
            raise UsageError(f"engine must be local or ray, not {o.engine!r}")
        if o.engine == "ray" and o.annotate_dir is not None:
            raise UsageError("--annotate works with the local engine only (the images would have to travel back from the workers)")
        if o.report is not None:
            from fer_edge.report.make import preflight

            preflight(o.report)
        self.options, self.recognizer_options = o, recognizer
        self.files = iter_input_paths(o.paths, recursive=o.recursive)
        self.input_order = [str(p) for p in self.files]
        self.recognizer: Recognizer | None = None
        self.appending = False
        self.already_done = 0  # files a resumed run finished before
        self._held = ExitStack()

    # ---- start: locks, model, resume

    def __enter__(self) -> "ClassifyJob":
        o = self.options
        try:
            # the decoders' own stderr lines go into their file's error row instead of between ours; the ones
            # outside any file (counting a video's frames) are `native_lines` once the job is over
            self._native = self._held.enter_context(kept_apart())
            if o.out is not None:  # one writer per output, for the whole run: a second run fails at once
                self._held.callback(exclusive(o.out, "--out"))
            if o.annotate_dir is not None:
                try:
                    o.annotate_dir.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise UsageError(f"{o.annotate_dir}: cannot create the --annotate folder ({e.strerror or e})") from None
                self._held.callback(exclusive(o.annotate_dir, "--annotate folder"))
            self.appending = o.resume and o.out.exists()
            self.recognizer = Recognizer.from_options(self.recognizer_options)
            if self.appending:
                done = finished_paths(o.out, o.fmt, CLASSIFY_COLUMNS)
                todo = [p for p in self.files if str(p) not in done]
                self.already_done, self.files = len(self.files) - len(todo), todo
        except BaseException:
            self._held.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._held.close()

    @property
    def native_lines(self) -> list[str]:
        return list(self._native.other) if hasattr(self, "_native") else []

    def banner(self) -> str:
        return self.recognizer.describe()

    def steps(self) -> int:
        """Progress steps: one per image or sampled video frame, so that hours of video move a bar too."""
        every = self.options.video_every
        return sum(samples_in(p, every) or 1 if is_video(p) else 1 for p in self.files)

    # ---- the run

    def run(self, on_problem: Callable[[Problem], None] = lambda p: None,
            on_step: Callable[[], None] = lambda: None, on_note: Callable[[str], None] = lambda s: None) -> JobResult:
        o = self.options
        stats = BatchStats()
        result = JobResult(stats)
        with ExitStack() as stack:
            if o.out is not None:
                stream = stack.enter_context(open_output(o.out, o.fmt, append=self.appending))
            else:
                stream = sys.stdout
                stream.reconfigure(errors="surrogateescape")
            writers = [RecordWriter(stream, o.fmt, CLASSIFY_COLUMNS, header=not self.appending)]
            rows = ReportRows(stack, o.report, o.out, o.fmt, CLASSIFY_COLUMNS)  # rows on stdout: a copy kept aside
            writers += [rows.writer] if rows.writer is not None else []
            copies = AnnotatedCopies(o.annotate_dir, o.video_every) if o.annotate_dir is not None else None
            if copies is not None:
                stack.callback(copies.close)  # annotated videos stay playable after an error or Ctrl-C
            results, cluster = self._results(stack)
            previous = None
            for r in results:
                for record in classify_records(r, o.fmt):
                    for w in writers:
                        w.write(record)
                if r.error:
                    part_way = previous is not None and previous.path == r.path and previous.frame is not None
                    on_problem(Problem("incomplete" if part_way else "skipped", r.path, r.error,
                                       previous.frame if part_way else None))
                elif copies is not None:
                    try:
                        copies.add(r)
                    except FerEdgeError as e:  # that file's error row; the run goes on
                        failed = FileResult(r.path, error=str(e), frame=r.frame, time=r.time)
                        for record in classify_records(failed, o.fmt):
                            for w in writers:
                                w.write(record)
                        on_problem(Problem("not annotated", r.path, str(e)))
                        stats.errors += 1
                stats.add(r)
                on_step()
                previous = r
            if cluster is not None:
                result.ray_nodes = len(cluster.nodes)
            if o.report is not None:
                from fer_edge.report.make import records

                stream.flush()
                records(rows.ready(), o.report, name=str(o.out) if o.out is not None else " ".join(map(str, o.paths)))
                result.report = o.report
                on_note(f"report written: {o.report}")
        if self.appending:  # the redone files were appended: back to the order an uninterrupted run writes
            restore_order(o.out, o.fmt, CLASSIFY_COLUMNS, self.input_order)
        return result

    def _results(self, stack: ExitStack):
        o, rec = self.options, self.recognizer
        if o.engine == "ray":
            from fer_edge.cluster.ray_engine import RayClassifier

            det, r = rec.detector, self.recognizer_options
            # the driver's choices travel: every node uses the same detector (a store is per machine)
            cluster = RayClassifier(
                dict(model=r.model, detector=det.name, detector_model=str(det.model_path) if det.model_path else None,
                     device=r.device, threads=r.threads, detect_size=r.detect_size, min_face=r.min_face),
                address=o.address, workers=o.workers, batch_size=o.batch_size, chunk_samples=o.chunk_samples)
            stack.callback(cluster.close)
            return cluster.classify(self.files, detect=o.detect, video_every=o.video_every), cluster
        return classify_files(rec, self.files, detect=o.detect, keep_images=o.annotate_dir is not None,
                              video_every=o.video_every, file_timeout=o.file_timeout), None
