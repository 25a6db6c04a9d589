"""The Ray Data engine: work items -> map_batches over an actor pool (one Recognizer per actor, so the models
load once per actor, not once per file) -> results streamed back in order -> FileResults, as the local
engine yields them. Files must be readable by every node (a shared filesystem); a worker that cannot read
a path says so in that file's error row.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from fer_edge.batch import FileResult
from fer_edge.errors import FerEdgeError, Interrupted, UsageError

from .merge import OrderedMerge
from .plan import CHUNK_SAMPLES, WorkItem, plan_work

ACTOR_START_TIMEOUT_S = 600  # a cold node pulling its environment can take minutes
ACTOR_CPUS = 0.5  # a fractional CPU: a pool holding every CPU starves Ray Data's own tasks


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        from fer_edge.install import extra_hint

        raise UsageError(f"--engine ray needs Ray Data: {extra_hint('ray')}") from None
    return ray


@contextmanager
def _signal_handlers_kept():
    """Ray's start and stop set the process's SIGTERM handler (to exit 15 at once, then to the default): keep
    the caller's, which ends a run cleanly. A SIGTERM that Ray's own handler meets meanwhile ends the run as
    the caller's would have."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except SystemExit as e:
        if e.code == signal.SIGTERM:
            raise Interrupted(signal.SIGTERM) from None
        raise
    finally:
        for s, handler in kept.items():
            signal.signal(s, handler)


def _configure(ctx) -> None:
    ctx.execution_options.preserve_order = True  # mostly in order; the reorder buffer below makes it exact
    # start the whole pool before the first batch: otherwise the first actor up takes the work while the others
    # load their models; actors that cannot start fail the run in one line instead of leaving it to crawl.
    # (Ray Data's default scheduling strategy, SPREAD, already puts the actors on different nodes.)
    ctx.wait_for_min_actors_s = ACTOR_START_TIMEOUT_S
    ctx.enable_progress_bars = False  # fer-edge draws its own
    ctx.print_on_execution_start = False
    with warnings.catch_warnings():  # deprecated in Ray 2.60 ("managed internally"), still obeyed until 2027
        warnings.simplefilter("ignore", DeprecationWarning)
        # the blocks are a few bytes of JSON (the pixels come from the shared filesystem), so block locality
        # buys nothing, and it would hand every block to the actors on the driver's node
        ctx.execution_options.actor_locality_enabled = False


def _check_room(workers: int, on_gpu: bool, resources: dict) -> None:
    """Refuse a pool the cluster cannot hold now, in one line, rather than wait for nodes that may never come."""
    cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    if workers * ACTOR_CPUS > cpus:
        raise UsageError(f"--workers {workers} needs {workers * ACTOR_CPUS:g} CPUs ({ACTOR_CPUS:g} an actor) and the "
                         f"cluster has {cpus:g}; pass --workers {max(1, int(cpus / ACTOR_CPUS))} or fewer, or add nodes")
    if on_gpu and workers > gpus:
        raise UsageError(f"--workers {workers} with --device cuda needs a GPU an actor and the cluster has {gpus:g}"
                         + ("" if gpus else "; leave out --device cuda to run on the CPUs"))


class _ClassifyActor:
    """One per actor: a Recognizer built once, then every batch of work items through it."""

    def __init__(self, recognizer_kwargs: dict, detect: bool | None, video_every: float):
        import ray

        from fer_edge.recognizer import Recognizer

        self.recognizer = Recognizer(**recognizer_kwargs)
        self.detect, self.video_every = detect, video_every
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .worker import run_item

        outs = []
        for text in batch["item"]:
            item = WorkItem(**json.loads(text))
            if not Path(item.path).exists() and not Path(item.path).is_symlink():
                out = {"results": [{"path": item.path, "error": f"no such file on worker node {self.node[:12]} (is it on a "
                                    "filesystem every node can read?)", "frame": None, "time": None, "faces": []}]}
            else:
                out = run_item(self.recognizer, item, self.detect, self.video_every)
            outs.append(json.dumps(out))
        return {"seq": batch["seq"], "out": np.array(outs, dtype=object), "node": np.array([self.node] * len(outs), dtype=object)}


class RayClassifier:
    """Iterate FileResults for `paths`, computed on a Ray cluster; `nodes` says which nodes did the work."""

    def __init__(self, recognizer_kwargs: dict, address: str | None = None, workers: int = 0, batch_size: int = 8,
                 chunk_samples: int = CHUNK_SAMPLES):
        self.ray = _ray()
        self.recognizer_kwargs = recognizer_kwargs
        self.address, self.workers, self.batch_size, self.chunk_samples = address, workers, batch_size, chunk_samples
        self.nodes: set[str] = set()
        self.started_here = False

    def _connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        # Ray and Ray Data talk a lot on stderr (INFO lines, C++ warnings); fer-edge prints its own progress
        os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)
        quiet = dict(logging_level=logging.ERROR, log_to_driver=False, include_dashboard=False)
        try:
            with _signal_handlers_kept():
                if self.address:
                    ray.init(address=self.address, **quiet)
                else:  # a local Ray on this machine, for this run
                    ray.init(num_cpus=os.cpu_count() or 1, **quiet)
                    self.started_here = True
        except Exception as e:  # ConnectionError, a refused token, a version mismatch: one line
            text = " ".join(str(e).split())[:300]
            raise FerEdgeError(f"cannot reach the Ray cluster at {self.address or 'a local Ray'} ({text})") from None

    def classify(self, paths: list[Path], detect: bool | None = None, video_every: float = 0.5) -> Iterator[FileResult]:
        self._connect()
        ray = self.ray
        _configure(ray.data.DataContext.get_current())
        items = plan_work(paths, video_every, self.chunk_samples)
        if not items:
            return
        resources = ray.cluster_resources()
        on_gpu = self.recognizer_kwargs.get("device") in ("cuda", "tensorrt")
        cpus = int(resources.get("CPU", 1))
        # one actor per GPU on a GPU run (each holds one), else one per CPU
        workers = self.workers or max(1, int(resources.get("GPU", 0)) if on_gpu else cpus)
        _check_room(workers, on_gpu, resources)
        kwargs = dict(self.recognizer_kwargs)
        if not kwargs.get("threads"):  # one onnxruntime thread per actor unless asked: the actors share the cores
            kwargs["threads"] = max(1, cpus // workers)
        ds = ray.data.from_items([{"seq": it.seq, "item": json.dumps(it.to_dict())} for it in items],
                                 override_num_blocks=max(1, min(len(items), 4 * workers)))
        with warnings.catch_warnings():
            # Ray 2.60 deprecates passing max_restarts this way and names no replacement yet
            warnings.simplefilter("ignore", DeprecationWarning)
            ds = ds.map_batches(
                _ClassifyActor, fn_constructor_kwargs={"recognizer_kwargs": kwargs, "detect": detect, "video_every": video_every},
                batch_size=self.batch_size, compute=ray.data.ActorPoolStrategy(size=workers), batch_format="numpy",
                num_cpus=ACTOR_CPUS, num_gpus=1 if on_gpu else 0,
                # no restarts: a failed actor fails the run with its reason, a restart would hide it
                max_restarts=0,
            )
        merge = OrderedMerge()
        waiting: dict[int, str] = {}  # results that came before an earlier item's: held until it is in
        next_seq = 0
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for seq, out, node in zip(batch["seq"], batch["out"], batch["node"]):
                    self.nodes.add(str(node))
                    waiting[int(seq)] = out
                while next_seq in waiting:  # written as they arrive, in the order of the files
                    yield from merge.feed(items[next_seq], json.loads(waiting.pop(next_seq)))
                    next_seq += 1
        except FerEdgeError:
            raise
        except Exception as e:  # a worker that died, a lost node: one line, the rows so far are written
            cause = getattr(e, "cause", None) or e
            raise FerEdgeError(f"the Ray job failed ({type(cause).__name__}: {' '.join(str(cause).split())[:300]})") from None

    def close(self) -> None:
        if self.started_here and self.ray.is_initialized():
            with _signal_handlers_kept():  # ray.shutdown() puts SIGTERM back to the default: killed, no cleanup
                self.ray.shutdown()
