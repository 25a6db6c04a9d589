"""Experiment tracking beside the run folder: none (the folder is the record) or MLflow's offline file store."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from fer_edge.errors import FerEdgeError

from .config import TrainConfig


class NoTracker:
    def log_metrics(self, row: dict, step: int) -> None:
        pass

    def finish(self, out: Path, summary: dict) -> None:
        pass


class MlflowTracker:
    """Logs to a local file store (./mlruns by default, or MLFLOW_TRACKING_URI); works offline."""

    def __init__(self, cfg: TrainConfig, out: Path):
        import mlflow

        self.mlflow = mlflow
        mlflow.set_experiment("fer-edge")
        self.run = mlflow.start_run(run_name=out.name)
        mlflow.log_params({k: str(v)[:250] for k, v in asdict(cfg).items()})

    def log_metrics(self, row: dict, step: int) -> None:
        self.mlflow.log_metrics({k: float(v) for k, v in row.items() if k != "epoch"}, step=step)

    def finish(self, out: Path, summary: dict) -> None:
        self.mlflow.log_metrics({k: float(v) for k, v in summary.items() if isinstance(v, (int, float))})
        for name in ("config.json", "metrics.csv", "summary.json", "best.pt"):
            if (out / name).exists():
                self.mlflow.log_artifact(str(out / name))
        self.mlflow.end_run()


def make_tracker(cfg: TrainConfig, out: Path):
    if cfg.tracker == "none":
        return NoTracker()
    if cfg.tracker != "mlflow":
        raise FerEdgeError(f"unknown --tracker {cfg.tracker!r}; use none or mlflow")
    try:
        return MlflowTracker(cfg, out)
    except ImportError:
        raise FerEdgeError("the mlflow tracker needs mlflow: pip install mlflow (the run folder is the record otherwise)") from None
