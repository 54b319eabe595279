"""The validation charts: raw vs gzip size bars, and accuracy drop against size and latency.

Each ``*_figure`` function returns the matplotlib figure (tests measure its text boxes); the
plain-named functions return PNG bytes. Drops are in percentage points on an axis that
includes 0 and spans at least :data:`MIN_DROP_SPAN_PT`, so a small drop looks small; log axes
carry few, plainly formatted ticks; point labels are moved until they overlap nothing.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from edgekit.manifest import finite as _num
from edgekit.report.plots import PALETTE, png_bytes, pyplot

MIN_DROP_SPAN_PT = 2.0
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# label offsets (points) tried in turn: right/left of the point, then further up and down
OFFSETS = [(8, 4), (8, -12), (-8, 4), (-8, -12), (8, 16), (8, -24), (-8, 16), (-8, -24), (8, 28), (8, -36),
           (-8, 28), (-8, -36), (8, 40), (-8, 40), (8, -48), (-8, -48)]


def size_bars(items: Sequence[dict[str, Any]], title: str = "Flash (raw) and download (gzip) size") -> bytes:
    """PNG of :func:`size_figure`."""
    return png_bytes(size_figure(items, title))


def size_figure(items: Sequence[dict[str, Any]], title: str = "Flash (raw) and download (gzip) size"):
    """Horizontal bars, raw and gzip side by side per item (``label``, ``raw``, ``gzip`` bytes)."""
    plt = pyplot()
    rows = [i for i in items if _num(i.get("raw")) and i["raw"] > 0]
    fig, ax = plt.subplots(figsize=(5.6, max(2.6, 0.9 + 0.5 * len(rows))))
    if not rows:
        ax.text(0.5, 0.5, "no sizes recorded", ha="center", va="center", transform=ax.transAxes, color="#888")
        ax.set_axis_off()
        return fig
    top = max(max(r["raw"], r.get("gzip") or 0) for r in rows)
    h = 0.38
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        ax.barh(y + h / 2, r["raw"], h, color=PALETTE[0], label="raw (flash)" if i == 0 else None)
        ax.text(r["raw"] + top * 0.01, y + h / 2, f"{int(r['raw']):,} B", va="center", fontsize=7)
        if _num(r.get("gzip")) and r["gzip"] > 0:
            ax.barh(y - h / 2, r["gzip"], h, color="#9ecae1", label="gzip (download)" if i == 0 else None)
            ax.text(r["gzip"] + top * 0.01, y - h / 2, f"{int(r['gzip']):,} B  (÷{r['raw'] / r['gzip']:.1f})",
                    va="center", fontsize=7)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([str(r["label"]) for r in reversed(rows)], fontsize=8)
    ax.set_xlim(0, top * 1.55)
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.set_xticks([t * 1024 for t in MaxNLocator(4).tick_values(0, top * 1.55 / 1024) if 0 <= t * 1024 <= top * 1.55])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v / 1024:,.0f}"))
    ax.set_xlabel("size (KiB; bar labels in bytes, ÷ = gzip gain)")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def drop_scatter(points: Sequence[dict[str, Any]], x_key: str, x_label: str, title: str,
                 extra: Sequence[dict[str, Any]] = (), extra_label: str = "") -> bytes:
    """PNG of :func:`drop_figure`."""
    return png_bytes(drop_figure(points, x_key, x_label, title, extra, extra_label))


def drop_figure(points: Sequence[dict[str, Any]], x_key: str, x_label: str, title: str,
                extra: Sequence[dict[str, Any]] = (), extra_label: str = ""):
    """Accuracy drop (pt, y) against ``x_key`` (log x): one marker per point, coincident points drawn
    as concentric markers and labelled together. ``points``: ``label``, ``drop`` (pt), ``x_key``,
    optional ``color`` and ``x_err`` ((low, high)); ``extra`` points are hollow grey diamonds."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    draw_drop(ax, points, x_key, x_label, title, extra, extra_label)
    fig.subplots_adjust(left=0.13, right=0.97, top=0.92, bottom=0.13)
    place_labels(fig, [ax])
    return fig


def latency_figure(points: Sequence[dict[str, Any]], host: Sequence[dict[str, Any]] = ()):
    """Drop against p50 latency (bar to p90). ``host`` points (TFLite Micro run on the host with its
    reference kernels) get their own axis: their time says nothing about LiteRT or a microcontroller."""
    plt = pyplot()
    label = "batch-1 latency p50 (µs, log scale; bar to p90)"
    if not host:
        fig, ax = plt.subplots(figsize=(5.6, 4.0))
        draw_drop(ax, points, "latency", label, "Latency vs accuracy drop")
        fig.subplots_adjust(left=0.13, right=0.97, top=0.92, bottom=0.13)
        place_labels(fig, [ax])
        return fig
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8.4, 4.0), gridspec_kw={"width_ratios": [2, 1]}, sharey=True)
    draw_drop(ax, points, "latency", label, "Latency vs accuracy drop")
    draw_drop(ax2, host, "latency", "p50 (µs, log; bar to p90)", "TFLite Micro, host-emulated\n(not comparable)")
    ax2.set_ylabel("")
    ylo, yhi = drop_limits([p.get("drop") for p in [*points, *host]])
    ax.set_ylim(ylo, yhi)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.88, bottom=0.13, wspace=0.12)
    place_labels(fig, [ax, ax2])
    return fig


def latency_chart(points: Sequence[dict[str, Any]], host: Sequence[dict[str, Any]] = ()) -> bytes:
    """PNG of :func:`latency_figure`."""
    return png_bytes(latency_figure(points, host))


def draw_drop(ax, points: Sequence[dict[str, Any]], x_key: str, x_label: str, title: str,
              extra: Sequence[dict[str, Any]] = (), extra_label: str = "") -> None:
    """Draw the points on ``ax`` and fix its limits and ticks; labels are placed by :func:`place_labels`."""
    good = [p for p in points if _num(p.get(x_key)) and p[x_key] > 0 and _num(p.get("drop"))]
    more = [p for p in extra if _num(p.get(x_key)) and p[x_key] > 0 and _num(p.get("drop"))]
    ax.set_xlabel(x_label, fontsize=9)
    ax.set_ylabel("accuracy drop vs reference (pt)", fontsize=9)
    ax.set_title(title, fontsize=10)
    if not good and not more:
        ax.text(0.5, 0.5, "no measured artifacts", ha="center", va="center", transform=ax.transAxes, color="#888")
        return
    ax.axhline(0, color="#888888", lw=0.8, ls="--", zorder=0)
    ax._edgekit_labels = []  # (text, x, y, color): placed after the limits are final
    for group in _groups(good, x_key):
        for j, (i, p) in enumerate(group):  # concentric: the first drawn largest, each next smaller on top
            color = p.get("color") or PALETTE[i % len(PALETTE)]
            ms = 7 + 4 * (len(group) - 1 - j)
            x, y = p[x_key], p["drop"]
            err = p.get("x_err")
            if err and all(_num(e) for e in err):
                ax.errorbar([x], [y], xerr=[[max(x - err[0], 0)], [max(err[1] - x, 0)]], fmt="none", ecolor=color,
                            capsize=3, lw=1, zorder=2)
            ax.plot([x], [y], MARKERS[i % len(MARKERS)], ms=ms, color=color, mec="white", mew=1.0, zorder=3 + j,
                    label=str(p["label"]))
        x, y = group[0][1][x_key], group[0][1]["drop"]
        ax._edgekit_labels.append((" = ".join(str(p["label"]) for _, p in group), x, y, "#222222", 8))
    for k, p in enumerate(more):
        ax.plot([p[x_key]], [p["drop"]], "D", ms=6, mfc="none", color="#666666", zorder=2,
                label=extra_label if k == 0 and extra_label else None)
    for group in _groups(more, x_key):
        x, y = group[0][1][x_key], group[0][1]["drop"]
        ax._edgekit_labels.append((" = ".join(str(p["label"]) for _, p in group), x, y, "#555555", 7))
    xs = [p[x_key] for p in [*good, *more]] + [e for p in good for e in (p.get("x_err") or ()) if _num(e) and e > 0]
    lo, hi = min(xs), max(xs)
    ax.set_xscale("log")
    ax.set_xlim(lo / 1.8, hi * 1.8)
    ax.set_ylim(*drop_limits([p["drop"] for p in [*good, *more]]))
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.xaxis.set_major_locator(FixedLocator(log_ticks(lo / 1.8, hi * 1.8)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}" if v >= 10 else f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3, which="major")
    if good or extra_label:
        ax.legend(fontsize=7, loc="upper right", framealpha=0.85)


def drop_limits(drops: Sequence[Any]) -> tuple[float, float]:
    """y limits that include 0 and span at least :data:`MIN_DROP_SPAN_PT`, with a margin."""
    ys = [float(d) for d in drops if _num(d)] + [0.0]
    lo, hi = min(ys), max(ys)
    if hi - lo < MIN_DROP_SPAN_PT:
        hi = lo + MIN_DROP_SPAN_PT
    pad = 0.12 * (hi - lo)
    return lo - pad, hi + pad


def log_ticks(lo: float, hi: float, max_ticks: int = 5) -> list[float]:
    """Few round ticks between ``lo`` and ``hi``: powers of ten, else 1-2-5, else 1-2-3-5 steps;
    at most ``max_ticks`` and at least two where the range allows."""
    def ticks(subs: tuple[float, ...]) -> list[float]:
        out = []
        for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
            out += [s * 10.0 ** k for s in subs if lo <= s * 10.0 ** k <= hi]
        return out

    options = [ticks(s) for s in ((1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0), (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0))]
    for want in (3, 2, 1):
        for t in options:
            if want <= len(t) <= max_ticks:
                return t
    return options[0][::max(1, math.ceil(len(options[0]) / max_ticks))] or [lo]


def place_labels(fig, axes: Sequence[Any]) -> None:
    """Annotate each axis's points, trying :data:`OFFSETS` in turn until a label overlaps no other
    label, marker or tick label and stays inside its axes (else the least-overlapping spot)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    taken = [t.get_window_extent(renderer) for ax in axes for t in ax.get_xticklabels() + ax.get_yticklabels()
             if t.get_text() and t.get_visible()]
    for ax in axes:
        taken += [_marker_box(ax, x, y) for _t, x, y, _c, _s in getattr(ax, "_edgekit_labels", [])]
        leg = ax.get_legend()
        if leg is not None:
            taken.append(leg.get_window_extent(renderer))
    for ax in axes:
        box = ax.get_window_extent(renderer)
        for text, x, y, color, size in getattr(ax, "_edgekit_labels", []):
            best = None
            for dx, dy in OFFSETS:
                ann = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=size,
                                  color=color, ha="left" if dx > 0 else "right", va="bottom" if dy > 0 else "top",
                                  annotation_clip=False)
                bb = ann.get_window_extent(renderer)
                cost = sum(_overlap(bb, t) for t in taken if not _is_own_marker(t, ax, x, y)) + _outside(bb, box)
                if best is None or cost < best[0]:
                    if best is not None:
                        best[1].remove()
                    best = (cost, ann, bb)
                else:
                    ann.remove()
                if cost == 0:
                    break
            taken.append(best[2])


def _marker_box(ax, x: float, y: float, half: float = 6.0):
    from matplotlib.transforms import Bbox

    px, py = ax.transData.transform((x, y))
    return Bbox.from_extents(px - half, py - half, px + half, py + half)


def _is_own_marker(box, ax, x: float, y: float) -> bool:
    px, py = ax.transData.transform((x, y))
    return abs((box.x0 + box.x1) / 2 - px) < 0.5 and abs((box.y0 + box.y1) / 2 - py) < 0.5


def _overlap(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _outside(bb, box) -> float:
    return bb.width * bb.height - _overlap(bb, box)


def _groups(points: Sequence[dict[str, Any]], x_key: str) -> list[list[tuple[int, dict[str, Any]]]]:
    """Points at the same spot (x within 2 %, drop within 0.02 pt) grouped, in input order."""
    groups: list[list[tuple[int, dict[str, Any]]]] = []
    for i, p in enumerate(points):
        for g in groups:
            q = g[0][1]
            if abs(math.log(p[x_key] / q[x_key])) < 0.02 and abs(p["drop"] - q["drop"]) < 0.02:
                g.append((i, p))
                break
        else:
            groups.append([(i, p)])
    return groups
