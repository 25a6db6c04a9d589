"""One work item through one Recognizer, with the local engine's own code; results travel as JSON."""

from __future__ import annotations

from pathlib import Path

from fer_edge.batch import FileResult, classify_files
from fer_edge.errors import FerEdgeError, ModelError
from fer_edge.imageio import check_regular_file
from fer_edge.recognizer import Face, Recognizer
from fer_edge.videoio import FrameScan

from .plan import WorkItem


def encode(r: FileResult) -> dict:
    return {"path": str(r.path), "error": r.error, "frame": r.frame, "time": r.time,
            "faces": [[list(f.box), f.det_score, f.label, f.confidence, list(f.probs)] for f in r.faces]}


def decode(d: dict) -> FileResult:
    faces = tuple(Face(tuple(box), score, label, conf, tuple(probs)) for box, score, label, conf, probs in d["faces"])
    return FileResult(Path(d["path"]), faces, d["error"], frame=d["frame"], time=d["time"])


def run_item(recognizer: Recognizer, item: WorkItem, detect: bool | None, video_every: float) -> dict:
    """{"results": [...]} for an image; for a video chunk also how the scan ended. {"fatal": ...} when the
    model itself fails: the driver stops the run, as the local engine does."""
    path = Path(item.path)
    try:
        if not item.video:
            return {"results": [encode(r) for r in classify_files(recognizer, [path], detect=detect)]}
        return _run_chunk(recognizer, item, path, detect, video_every)
    except ModelError as e:
        return {"fatal": str(e)}


def _run_chunk(recognizer: Recognizer, item: WorkItem, path: Path, detect: bool | None, every: float) -> dict:
    results = []
    scan = FrameScan(path, every, item.start, item.stop, item.due)
    try:
        check_regular_file(path)
        for f in scan:
            faces = tuple(recognizer.predict(f.image, detect=detect))
            results.append(encode(FileResult(path, faces, frame=f.index, time=round(f.time, 3))))
    except ModelError:
        raise
    except FerEdgeError as e:
        return {"results": results, "error": str(e).removeprefix(f"{path}: ")}
    return {"results": results, "hit_end": scan.hit_end, "last": scan.last, "yielded": scan.yielded,
            "announced": scan.announced}
