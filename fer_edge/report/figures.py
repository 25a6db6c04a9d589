"""The figures, drawn with matplotlib's object API on the Agg canvas: no display, no global pyplot state."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge.contract import LABELS
from fer_edge.errors import FerEdgeError
from fer_edge.report.records import ClassifyRows, RunCurves, Track

# One colour per class, the same in every figure (and close to the overlay's hues).
COLORS = {"angry": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "happy": "#f2b701", "sad": "#1f77b4",
          "surprise": "#ff7f0e", "neutral": "#9a9a9a"}


def new_figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        from fer_edge.install import extra_hint

        raise FerEdgeError(f"reports are drawn with matplotlib, which is not installed: {extra_hint('report')}") from None
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _with_gaps(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the track was not seen for a while, drop the areas to zero instead of bridging the gap."""
    if len(t) < 3:
        return t, p
    step = float(np.median(np.diff(t))) or 1e-3
    gaps = np.nonzero(np.diff(t) > 4 * step)[0]
    for i in gaps[::-1]:
        t = np.insert(t, i + 1, [t[i] + step / 2, t[i + 1] - step / 2])
        p = np.insert(p, i + 1, np.zeros((2, p.shape[1])), axis=0)
    return t, p


def timelines(tracks: list[Track], thumbs: dict[int, np.ndarray], title: str):
    """One panel per track: smoothed probabilities as stacked areas, the dominant label as a strip below."""
    n = len(tracks)
    fig = new_figure(12, 1.1 + 2.0 * n)
    fig.suptitle(title, fontsize=11)
    grid = fig.add_gridspec(n, 2, width_ratios=[1, 9])
    t_end = max(float(tr.time.max()) for tr in tracks)
    t_start = min(float(tr.time.min()) for tr in tracks)
    for row, tr in enumerate(tracks):
        thumb_ax = fig.add_subplot(grid[row, 0])
        thumb_ax.set_axis_off()
        if tr.id in thumbs:
            thumb_ax.imshow(thumbs[tr.id][:, :, ::-1] if thumbs[tr.id].ndim == 3 else thumbs[tr.id], cmap="gray")
        else:
            thumb_ax.text(0.5, 0.5, f"track {tr.id}", ha="center", va="center", fontsize=10)
        ax = fig.add_subplot(grid[row, 1])
        t, p = _with_gaps(tr.time, tr.probs)
        ax.stackplot(t, p.T, colors=[COLORS[c] for c in LABELS], labels=LABELS, linewidth=0)
        # the dominant label along the time axis: a strip of its colour under the areas
        dom = tr.probs.argmax(1)
        edges = np.concatenate([tr.time[:1], (tr.time[1:] + tr.time[:-1]) / 2, tr.time[-1:]])
        for k in range(len(dom)):
            ax.axvspan(edges[k], edges[k + 1], ymin=0, ymax=0.06, color=COLORS[LABELS[dom[k]]], lw=0)
        ax.set_xlim(t_start, t_end if t_end > t_start else t_start + 1)
        ax.set_ylim(-0.08, 1)
        ax.set_yticks([0, 0.5, 1])
        ax.set_ylabel("probability", fontsize=8)
        shares = tr.shares()
        top = sorted(shares.items(), key=lambda kv: -kv[1])[:3]
        ax.set_title(f"track {tr.id}: {len(tr.time)} frames, {tr.time[-1] - tr.time[0]:.1f} s, mostly {tr.dominant} ("
                     + ", ".join(f"{k} {100 * v:.0f}%" for k, v in top) + ")", fontsize=9, loc="left")
        if row == n - 1:
            ax.set_xlabel("time in the video (s)")
        if row == 0:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return fig


def classify_summary(rows: ClassifyRows, title: str):
    """Label counts per folder (stacked bars) and the confidence distribution per label."""
    fig = new_figure(12, 4.6)
    fig.suptitle(title, fontsize=11)
    left, right = fig.subplots(1, 2, width_ratios=[1.2, 1])
    folders = sorted(set(rows.folders)) or ["(none)"]
    labels, conf = np.array(rows.labels), np.array(rows.confidence)
    fold = np.array(rows.folders)
    bottom = np.zeros(len(folders))
    for name in LABELS:
        counts = np.array([np.sum((fold == f) & (labels == name)) for f in folders])
        left.barh(range(len(folders)), counts, left=bottom, color=COLORS[name], label=name)
        bottom += counts
    left.set_yticks(range(len(folders)), [f if len(f) < 40 else "..." + f[-37:] for f in folders], fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("faces")
    left.set_title(f"labels per folder or video ({len(labels)} faces, {rows.no_face} images without a face, {rows.errors} errors)",
                   fontsize=9, loc="left")
    left.legend(fontsize=8, frameon=False, ncols=7, loc="lower left", bbox_to_anchor=(0, -0.25))
    bins = np.linspace(0, 1, 21)
    present = [n for n in LABELS if np.any(labels == n)]
    if present:
        right.hist([conf[labels == n] for n in present], bins=bins, stacked=True, color=[COLORS[n] for n in present],
                   label=present)
    right.set_xlabel("confidence of the top label")
    right.set_ylabel("faces")
    med = f", median {np.median(conf):.2f}" if len(conf) else ""
    right.set_title(f"confidence{med}", fontsize=9, loc="left")
    return fig


def training_curves(runs: list[RunCurves], title: str):
    """Loss, and accuracy for train and val, per epoch, with the learning rate; several runs overlaid."""
    fig = new_figure(12, 4.4)
    fig.suptitle(title, fontsize=11)
    loss_ax, acc_ax = fig.subplots(1, 2)
    lr_ax = acc_ax.twinx()
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]
    for k, run in enumerate(runs):
        color = palette[k % len(palette)]
        c = run.columns
        loss_ax.plot(run.epoch, c["train_loss"], color=color, lw=1.5, label=f"{run.name} train")
        loss_ax.plot(run.epoch, c["val_loss"], color=color, lw=1.5, ls="--", label=f"{run.name} val")
        acc_ax.plot(run.epoch, 100 * c["train_acc"], color=color, lw=1.5, label=f"{run.name} train")
        acc_ax.plot(run.epoch, 100 * c["val_acc"], color=color, lw=1.5, ls="--", label=f"{run.name} val")
        if np.any(np.isfinite(c["val_acc"])):
            best = int(np.nanargmax(c["val_acc"]))
            acc_ax.plot(run.epoch[best], 100 * c["val_acc"][best], "o", color=color)
            acc_ax.annotate(f"{100 * c['val_acc'][best]:.2f}%", (run.epoch[best], 100 * c["val_acc"][best]),
                            textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8, color=color)
        lr_ax.plot(run.epoch, c["lr"], color=color, lw=0.8, ls=":", alpha=0.8)
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss (solid: train, dashed: val)")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("accuracy % (solid: train, dashed: val)")
    lr_ax.set_ylabel("learning rate (dotted)", fontsize=8)
    loss_ax.legend(fontsize=8, frameon=False)
    from matplotlib.ticker import MaxNLocator

    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def thumbnails(video: Path, tracks: list[Track], size: int = 96) -> dict[int, np.ndarray]:
    """One face crop per track from the source video, at the track's most confident frame."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise FerEdgeError(f"{video}: cannot open it for thumbnails")
    out = {}
    try:
        for tr in tracks:
            k = int(tr.probs.max(1).argmax())
            frame_no, (x, y, w, h) = int(tr.frame[k]), tr.boxes[k]
            if frame_no < 0 or w <= 0 or h <= 0:
                continue
            cap.set(cv2.CAP_PROP_POS_FRAMES, frame_no)
            ok, frame = cap.read()
            if not ok:
                continue
            crop = frame[max(y, 0) : y + h, max(x, 0) : x + w]
            if crop.size:
                out[tr.id] = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    finally:
        cap.release()
    return out
