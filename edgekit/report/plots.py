"""The report's plots as PNG bytes (matplotlib, Agg backend, no files written)."""
from __future__ import annotations

import io
from typing import Any, Sequence

from edgekit.manifest import finite as _num

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig) -> bytes:
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def training_curves(history: Sequence[dict[str, Any]], title: str = "") -> bytes:
    """Loss, accuracy and learning rate per epoch (train and validation)."""
    plt = pyplot()
    epochs = [r.get("epoch") if _num(r.get("epoch")) else i + 1 for i, r in enumerate(history)]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, key in zip(axes[:2], ("loss", "accuracy")):
        for prefix, style, label in (("", "o-", "train"), ("val_", "s--", "validation")):
            ys = [r.get(prefix + key) for r in history]
            if any(_num(y) for y in ys):
                ax.plot(epochs, [y if _num(y) else float("nan") for y in ys], style, ms=4, label=label)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    lr = [r.get("lr") for r in history]
    if any(_num(v) for v in lr):
        axes[2].plot(epochs, [v if _num(v) else float("nan") for v in lr], "o-", ms=4, color=PALETTE[2])
        vals = [v for v in lr if _num(v)]
        if max(vals) == min(vals) and vals[0] > 0:  # constant: show it against zero, not a 1e-5 band
            axes[2].set_ylim(0, 1.3 * vals[0])
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[2].set_title("learning rate")
    axes[2].set_xlabel("epoch")
    axes[2].grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return png_bytes(fig)
