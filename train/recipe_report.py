"""What a recipe made: `recipe.json` beside the exported models, and one table on stdout.

`train/recipes/default.sh` ends with this. It gathers the stages the recipe ran (their seconds, from
`stages.tsv`), each training run's summary, and each exported model's metadata, and judges the exported
files on every set the runs were judged on: FER2013's held-out faces against FER2013's own labels and
against the FER+ majority, and each extra source's held-out faces (the performers, cropped by each detector).

    python -m fer_edge.train.recipe_report RUNS [--start scratch|shipped] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import onnx

from fer_edge.atomic import write_bytes
from fer_edge.errors import FerEdgeError

from .evaluate_onnx import onnx_probs
from .eval_sets import JudgedSet, judged_set
from .report import make_report
from .sources import parse_source

MODELS = {"default": "fer-edge.onnx", "fast": "fer-edge-fast.onnx"}
RUNS = ("base", "default", "fast")


def read_stages(runs: Path) -> list[dict]:
    """The stages in the order they last ran: {stage, seconds, output}."""
    stages: dict[str, dict] = {}
    log = runs / "stages.tsv"
    if log.is_file():
        for line in log.read_text().splitlines():
            name, seconds, out = line.split("\t")
            stages.pop(name, None)
            stages[name] = {"stage": name, "seconds": int(seconds), "output": out}
    return list(stages.values())


def judged_sets(config: dict) -> dict[str, JudgedSet]:
    """The held-out sets of a run's config: its FER2013 CSV twice (FER+ majority, FER2013 labels), then each
    extra source's validation split."""
    sets = {}
    if config.get("ferplus"):
        sets["fer2013 held-out, FER+ majority"] = judged_set(config["data"], "val", ferplus=config["ferplus"])
    sets["fer2013 held-out, FER2013 labels"] = judged_set(config["data"], "val")
    for spec in config.get("extra_data", []):
        path, _ = parse_source(spec)
        sets[f"{Path(path).stem} held-out"] = judged_set(path, "val")
    return sets


def model_entry(path: Path, sets: dict[str, JudgedSet]) -> dict:
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    figures = {}
    for name, s in sets.items():
        rep = make_report(s.y, onnx_probs(path, s.x).argmax(1))
        figures[name] = {"faces": rep.samples, "accuracy": round(rep.accuracy, 5), "macro_f1": round(rep.macro_f1, 5),
                         "recall": {k: round(v["recall"], 4) for k, v in rep.per_class.items()}}
    return {"file": str(path), "bytes": path.stat().st_size, "arch": meta.get("arch"),
            "quantization": meta.get("quantization"), "temperature": meta.get("temperature"),
            "gated": "gate" in meta, "figures": figures}


def build(runs: Path, start: str, seed: int) -> dict:
    report: dict = {"start": start, "seed": seed, "stages": read_stages(runs), "runs": {}, "models": {}}
    for name in RUNS:
        if (runs / name / "summary.json").is_file():
            report["runs"][name] = json.loads((runs / name / "summary.json").read_text())
    # the default's run names the sets the models are judged on (the base's when it is all there is)
    configs = [runs / n / "config.json" for n in ("default", "base") if (runs / n / "config.json").is_file()]
    config = json.loads(configs[0].read_text()) if configs else None
    sets = judged_sets(config) if config else {}
    for name, file in MODELS.items():
        if (runs / file).is_file():
            report["models"][name] = model_entry(runs / file, sets)
    report["total_minutes"] = round(sum(s["seconds"] for s in report["stages"]) / 60, 1)
    return report


def table(report: dict) -> str:
    lines = [f"{'stage':<40} {'minutes':>8}"]
    lines += [f"{s['stage']:<40} {s['seconds'] / 60:8.1f}" for s in report["stages"]]
    lines.append(f"{'total':<40} {report['total_minutes']:8.1f}")
    for name, m in report["models"].items():
        lines.append(f"\n{name}: {m['file']} ({m['arch']}, {m['bytes'] / 1e6:.2f} MB)")
        for set_name, f in m["figures"].items():
            worst = min(f["recall"].items(), key=lambda kv: kv[1])
            lines.append(f"  {set_name:<38} {100 * f['accuracy']:6.2f}%  macro-F1 {100 * f['macro_f1']:6.2f}%  "
                         f"lowest recall {worst[0]} {100 * worst[1]:.1f}%  ({f['faces']} faces)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fer_edge.train.recipe_report", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("--start", default="scratch")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        if not args.runs.is_dir():
            raise FerEdgeError(f"{args.runs}: no such recipe folder")
        report = build(args.runs, args.start, args.seed)
        write_bytes(args.runs / "recipe.json", (json.dumps(report, indent=2) + "\n").encode())
    except FerEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(table(report))
    print(f"wrote {args.runs / 'recipe.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
