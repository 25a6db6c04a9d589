"""The work: one item per image, and per video one item per chunk of sampled frames, so that one 10-hour
file does not sit on one worker. Chunk boundaries come from the header and the sampling rule alone."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from fer_edge.videoio import is_video, probe, sampling_plan

CHUNK_SAMPLES = 240  # sampled frames per video chunk: two minutes of a video sampled twice a second


@dataclass(frozen=True)
class WorkItem:
    seq: int  # position in the output: items are merged back in this order
    path: str
    video: bool = False
    chunk: int = 0
    last_chunk: bool = True
    start: int = 0  # first frame of the chunk (a sampled one)
    stop: int | None = None  # the next chunk's first frame; None: to the end of the file
    due: float = 0.0  # the sampling rule's state at `start` (videoio.sampling_plan)
    announced: int = 0  # the header's frame count

    def to_dict(self) -> dict:
        return asdict(self)


def plan_work(paths: list[Path], video_every: float, chunk_samples: int = CHUNK_SAMPLES) -> list[WorkItem]:
    items: list[WorkItem] = []
    for path in paths:
        if not is_video(path):
            items.append(WorkItem(len(items), str(path)))
            continue
        fps, count = probe(path)
        plan = sampling_plan(fps, count, video_every) if count else []
        if len(plan) <= chunk_samples:  # short, or a header that does not say: one item, the whole scan
            items.append(WorkItem(len(items), str(path), video=True, announced=count))
            continue
        starts = plan[::chunk_samples]
        for k, (start, due) in enumerate(starts):
            last = k == len(starts) - 1
            stop = None if last else starts[k + 1][0]
            items.append(WorkItem(len(items), str(path), True, k, last, start, stop, due, count))
    return items
