"""A fixed number of recognizer workers behind one bounded queue.

A request's encoded image joins the queue or, when the queue is full, is refused at once, before any
decoding (Overloaded: the server answers 503), so that a flood never grows memory or latency without bound
and costs the server little. Each worker holds its own Recognizer (one onnxruntime session, one detector) and
takes up to `batch` queued images at a time: it decodes and finds the faces of each, then classifies all
their crops in one classifier call, which is where batching pays (one call's overhead for many faces).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from fer_edge.detect import Detection
from fer_edge.imageio import decode_image
from fer_edge.crop import crop_faces, level_tilts
from fer_edge.recognizer import Face, Recognizer, face_from, is_face_crop


class Overloaded(Exception):
    """The queue is full: come back later."""


@dataclass
class Job:
    data: bytes  # the encoded image, decoded by the worker
    detect: bool  # False: the whole image is one face crop
    min_face: int  # faces smaller than this (px) are left out
    future: Future


class RecognizerPool:
    def __init__(self, make_recognizer, workers: int = 1, queue_size: int = 32, batch: int = 8):
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=queue_size)
        self._batch = max(1, batch)
        self.recognizers = [make_recognizer() for _ in range(max(1, workers))]
        self._threads = [threading.Thread(target=self._work, args=(r,), name=f"fer-edge-worker-{i}", daemon=True)
                         for i, r in enumerate(self.recognizers)]
        for t in self._threads:
            t.start()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def submit(self, data: bytes, detect: bool = True, min_face: int = 0) -> Future:
        """A future of (the decoded image, its faces); a decoding failure is its FerEdgeError."""
        future: Future = Future()
        try:
            self._queue.put_nowait(Job(data, detect, min_face, future))
        except queue.Full:
            raise Overloaded from None
        return future

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout=10)

    def _take(self) -> list[Job] | None:
        first = self._queue.get()
        if first is None:
            return None
        jobs = [first]
        while len(jobs) < self._batch:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:  # closing: put it back for this worker's next turn
                self._queue.put(None)
                break
            jobs.append(nxt)
        return jobs

    def _work(self, rec: Recognizer) -> None:
        while (jobs := self._take()) is not None:
            found: list[tuple[Job, np.ndarray, list[Detection], float]] = []
            for job in jobs:
                try:
                    image = decode_image(job.data)
                    found.append((job, image, *_detections(rec, image, job)))
                except Exception as e:  # one bad image fails its own request only
                    job.future.set_exception(e)
            try:
                faces = _classify_together(rec, found)
            except Exception as e:
                for job, *_ in found:
                    job.future.set_exception(e)
                continue
            for (job, image, *_), result in zip(found, faces):
                job.future.set_result((image, result))


def _detections(rec: Recognizer, image: np.ndarray, job: Job) -> tuple[list[Detection], float]:
    """The faces to classify and the crop margin: a whole image that is one face crop is cropped as it is."""
    h, w = image.shape[:2]
    if not job.detect or is_face_crop(image):
        return [Detection(0, 0, w, h, 1.0)], 0.0
    return [d for d in rec.detect(image) if min(d.box[2], d.box[3]) >= job.min_face], rec.margin


def _classify_together(rec: Recognizer, found: list[tuple[Job, np.ndarray, list[Detection], float]]) -> list[list[Face]]:
    """Every face of every image in one classifier call; the answers split back per image."""
    crops = [crop_faces(image, [d.box for d in dets], margin, level_tilts([d.angle for d in dets]))
             for _, image, dets, margin in found if dets]
    probs = rec.classifier.predict_probs(np.concatenate(crops)) if crops else np.zeros((0, 7), np.float32)
    out, at = [], 0
    for _, _, dets, _ in found:
        out.append([face_from(d.box, d.score, p) for d, p in zip(dets, probs[at : at + len(dets)])])
        at += len(dets)
    return out
