"""The report's plots as PNG bytes (matplotlib, Agg backend, no files written)."""
from __future__ import annotations

import io
import math
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


def tradeoff_scatter(points: list[dict[str, Any]], x_key: str, x_label: str, title: str,
                     extra: list[dict[str, Any]] | None = None, extra_label: str = "") -> bytes:
    """Accuracy (y, percent) against ``x_key`` (log x) with one labelled point per artifact.

    ``points``: dicts with ``label``, ``accuracy`` (fraction), ``x_key`` and optional
    ``x_err`` ((low, high) for an error bar, e.g. p50..p90). ``extra`` points (e.g. the
    compression stages) are drawn hollow and grey.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    drawn = 0
    labels: dict[tuple[float, float], list[str]] = {}  # nearby points share one annotation
    for i, p in enumerate(points):
        x, acc = p.get(x_key), p.get("accuracy")
        if not _num(x) or not _num(acc) or x <= 0:
            continue
        color = p.get("color") or PALETTE[i % len(PALETTE)]
        err = p.get("x_err")
        if err and all(_num(e) for e in err):
            ax.errorbar([x], [100 * acc], xerr=[[max(x - err[0], 0)], [max(err[1] - x, 0)]], fmt="o", ms=8,
                        color=color, capsize=3, label=p["label"])
        else:
            ax.plot([x], [100 * acc], "o", ms=8, color=color, label=p["label"])
        labels.setdefault(_cell(x, acc), []).append(p["label"])
        drawn += 1
    xs = [p[x_key] for p in points + (extra or []) if _num(p.get(x_key)) and p[x_key] > 0]
    groups = sorted((next((p[x_key], p["accuracy"]) for p in points if p["label"] == names[0]), names)
                    for names in labels.values())
    accs = [p["accuracy"] for p in points + (extra or []) if _num(p.get("accuracy"))]
    span = (max(accs) - min(accs)) if accs else 0.0
    below, prev = False, None
    for (x, acc), names in groups:
        right_edge = x >= max(xs)  # label the rightmost point on its left so it is not clipped
        # neighbours at (nearly) the same accuracy alternate above/below so their labels do not collide
        below = (not below) if prev is not None and abs(acc - prev) <= 0.05 * span else False
        prev = acc
        dy = -14 if below else 6
        ax.annotate(", ".join(names), (x, 100 * acc), textcoords="offset points", xytext=(-7 if right_edge else 7, dy),
                    ha="right" if right_edge else "left", fontsize=8)
    shown = False
    for p in extra or []:
        x, acc = p.get(x_key), p.get("accuracy")
        if not _num(x) or not _num(acc) or x <= 0:
            continue
        ax.plot([x], [100 * acc], "D", ms=6, mfc="none", color="#666666",
                label=extra_label if not shown and extra_label else None)
        shown = True
        drawn += 1
    extra_labels: dict[tuple[float, float], list[str]] = {}
    for p in extra or []:
        x, acc = p.get(x_key), p.get("accuracy")
        if _num(x) and _num(acc) and x > 0:
            extra_labels.setdefault(_cell(x, acc), []).append((x, acc, str(p["label"])))
    for group in extra_labels.values():
        x, acc, _ = group[0]
        ax.annotate(", ".join(g[2] for g in group), (x, 100 * acc), textcoords="offset points", xytext=(6, -12),
                    fontsize=7, color="#555555")
    if drawn:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _tick(v, x_key)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize=7, loc="best")
    else:
        ax.text(0.5, 0.5, "no measured artifacts", ha="center", va="center", transform=ax.transAxes, color="#888")
    ax.set_xlabel(x_label)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3, which="both")
    ax.margins(x=0.25, y=0.15)
    fig.subplots_adjust(left=0.13, right=0.97, top=0.92, bottom=0.13)  # fixed: tight_layout is slow on log axes
    return png_bytes(fig)


def _tick(v: float, key: str) -> str:
    if key == "bytes":
        for unit, div in (("MB", 1e6), ("KB", 1e3)):
            if v >= div:
                return f"{v / div:g} {unit}"
        return f"{v:g} B"
    return f"{v:g}"


def _cell(x: float, acc: float) -> tuple[float, float]:
    """A coarse bucket (log10 size/latency, accuracy) so overlapping labels are merged."""
    return (round(math.log10(x) / 0.08), round(100 * acc / 0.04))

