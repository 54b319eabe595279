"""Training plots written as PNG files (drawn by edgekit.report.plots, written atomically)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from edgekit.artifacts import write_bytes
from edgekit.report.plots import png_bytes, pyplot, training_curves


def plot_curves(history: Sequence[dict], path: str | Path, title: str = "") -> Path:
    """Loss, accuracy and learning rate per epoch, side by side (the report's figure)."""
    return write_bytes(path, training_curves(history, title))


def plot_val_curves(runs: dict[str, Sequence[dict]], path: str | Path, title: str = "") -> Path:
    """Validation accuracy per epoch of several runs in one plot."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, history in runs.items():
        ax.plot([r["epoch"] for r in history], [r.get("val_accuracy") for r in history], "o-", label=name, ms=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title or "validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return write_bytes(path, png_bytes(fig))
