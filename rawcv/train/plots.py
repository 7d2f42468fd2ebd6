"""PNG plots of training curves and confusion matrices.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no global backend switch), so
plotting works headless and never disturbs an interactive session. Files are written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    from ..io.atomic import atomic_path

    path = Path(path)
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _metric_names(history: Sequence[dict]) -> list:
    """Metric names (``loss`` first) that appear as ``train_X`` or ``val_X`` in the rows."""
    names = []
    for row in history:
        for k in row:
            for prefix in ("train_", "val_"):
                if k.startswith(prefix) and k[len(prefix):] not in names:
                    names.append(k[len(prefix):])
    return sorted(names, key=lambda n: (n != "loss", names.index(n)))


def plot_history(history: Sequence[dict], path, *, title: str = "") -> Path:
    """One panel per metric (loss first), training and validation curves against the epoch.

    Parameters
    ----------
    history : list of dict
        Rows with ``epoch`` and ``train_<metric>`` / ``val_<metric>`` values (the Trainer's history).
    path : path
        The PNG to write.
    """
    names = _metric_names(history) or ["loss"]
    fig = _figure(4.2 * len(names), 3.4)
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        for prefix, style in (("train_", "-o"), ("val_", "-s")):
            key = prefix + name
            pts = [(e, row[key]) for e, row in zip(epochs, history) if row.get(key) is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, style, markersize=3, label=prefix.rstrip("_"))
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
        if name == "loss":
            vals = [row[k] for row in history for k in ("train_loss", "val_loss") if row.get(k) is not None]
            if vals and min(vals) > 0 and max(vals) / min(vals) > 30:
                ax.set_yscale("log")    # a loss falling by orders of magnitude
        ax.legend(loc="best", fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion_matrix(matrix, classes: Sequence[str], path, *, title: str = "confusion matrix",
                          normalize: bool = True) -> Path:
    """A confusion matrix (rows: true class, columns: predicted) as a PNG heat map with counts.

    ``normalize`` colours each row by its fraction of the true class; the printed numbers are
    always the counts.
    """
    cm = np.asarray(matrix, dtype=np.float64)
    n = len(classes)
    size = max(4.0, 0.55 * n + 2.5)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot(1, 1, 1)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(cm.max(), 1))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class" if normalize else "count")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(classes, rotation=45, ha="right")
    ax.set_yticklabels(classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize="small",
                    color="white" if shown[i, j] > 0.5 * (1 if normalize else cm.max()) else "black")
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


__all__ = ["plot_history", "plot_confusion_matrix"]
