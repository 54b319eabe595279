"""Training curves as a PNG (matplotlib, headless)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from edgekit.artifacts import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: Sequence[dict], path: str | Path, title: str = "") -> Path:
    """Loss, accuracy and learning rate per epoch, side by side."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, key in zip(axes[:2], ("loss", "accuracy")):
        ax.plot(epochs, [r.get(key) for r in history], "o-", label="train")
        if any(f"val_{key}" in r for r in history):
            ax.plot(epochs, [r.get(f"val_{key}") for r in history], "s--", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
        ax.grid(alpha=0.3)
    axes[2].plot(epochs, [r.get("lr") for r in history], "o-")
    axes[2].set_title("learning rate")
    axes[2].set_xlabel("epoch")
    axes[2].grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return Path(path)


def plot_val_curves(runs: dict[str, Sequence[dict]], path: str | Path, title: str = "") -> Path:
    """Validation accuracy per epoch of several runs in one plot."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, history in runs.items():
        ax.plot([r["epoch"] for r in history], [r.get("val_accuracy") for r in history], "o-", label=name, ms=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title or "validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return Path(path)
