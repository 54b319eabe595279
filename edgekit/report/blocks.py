"""The report's content as plain blocks, rendered to markdown and HTML by ``render``.

Both outputs come from the same blocks, so report.md and report.html say the same thing.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Union

from edgekit.manifest import finite as _num
from edgekit.report.units import fmt_bytes, fmt_bytes_kib, ms_as_us, us_text


@dataclasses.dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    align: list[str] | None = None  # "l" or "r" per column; default: first left, rest right
    highlight: list[str] | None = None  # per row: "" | "pass" | "fail" | "best"

    def aligns(self) -> list[str]:
        return self.align or ["l"] + ["r"] * (len(self.columns) - 1)


@dataclasses.dataclass
class Figure:
    title: str
    png: bytes
    alt: str


@dataclasses.dataclass
class Paragraph:
    text: str
    kind: str = ""  # "" | "note" | "warn" | "ok"


@dataclasses.dataclass
class KeyValues:
    items: list[tuple[str, str]]


@dataclasses.dataclass
class Details:
    summary: str
    table: Table


@dataclasses.dataclass
class Figures:
    """Figures shown side by side in HTML."""

    figures: list[Figure]


Block = Union[Table, Figure, Paragraph, KeyValues, Details, Figures]


@dataclasses.dataclass
class Section:
    title: str
    anchor: str
    blocks: list[Block] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Report:
    title: str
    subtitle: str
    cards: list[tuple[str, str, str]]  # (label, value, kind "" | "pass" | "fail")
    sections: list[Section]
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)


# -- value formatting shared by both renderers ---------------------------------------------
def human_bytes(n: Any) -> str:
    """``36200`` -> ``36,200 B (35.4 KiB)``; ``–`` when there is no number."""
    return fmt_bytes_kib(n) if _num(n) else "–"


def fmt_value(key: str, v: Any) -> str:
    """Format a manifest number by what its key says it is."""
    if v is None or v == "":
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        return v
    if not _num(v):
        text = "(too large)" if isinstance(v, int) and not isinstance(v, bool) else str(v)
        return text if len(text) <= 80 else text[:77] + "..."
    k = key.lower()
    if "bytes" in k and "per" not in k:
        return fmt_bytes(v)
    if k.endswith("_pt") or k.endswith("_drop") or k == "accuracy_fall":
        return f"{v:.2f} pt"
    if k.endswith("_pct") or k.startswith("agreement"):
        return f"{v:.2f} %"
    if "accuracy" in k or k in ("sparsity",) or k.endswith("_sparsity"):
        return f"{100 * v:.2f} %"
    if k.endswith("_ms"):
        return ms_as_us(v)  # one unit for latency everywhere: µs
    if k.endswith("_us"):
        return us_text(v)
    if k.endswith("seconds") or k == "seconds":
        return f"{v:.1f} s"
    if k in ("lr", "learning_rate") or "diff" in k or "loss" in k:
        return f"{v:.3g}"
    if isinstance(v, int) or float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:.4g}"

