"""The report's one unit convention: latency in µs, sizes in bytes with thousands separators
(plus KiB where a size is read on its own), percentages and percentage points."""
from __future__ import annotations

from typing import Any

from edgekit.manifest import finite as _num

NA = "n/a"


def fmt_bytes(n: Any) -> str:
    """``36200`` -> ``36,200 B``; anything not a finite number -> ``n/a``."""
    return f"{int(n):,} B" if _num(n) else NA


def fmt_bytes_kib(n: Any) -> str:
    """``36200`` -> ``36,200 B (35.4 KiB)``: exact bytes, and KiB/MiB to read the order of magnitude."""
    if not _num(n):
        return NA
    n = int(n)
    if abs(n) >= 2**20:
        return f"{n:,} B ({n / 2**20:.2f} MiB)"
    if abs(n) >= 1024:
        return f"{n:,} B ({n / 1024:.1f} KiB)"
    return f"{n:,} B"


def us_text(us: Any) -> str:
    """A latency in microseconds: ``18.6 µs``, ``1,266 µs``."""
    if not _num(us):
        return NA
    us = float(us)
    if abs(us) < 10:
        return f"{us:.2f} µs"
    if abs(us) < 1000:
        return f"{us:.1f} µs"
    return f"{us:,.0f} µs"


def ms_as_us(ms: Any) -> str:
    """A latency the manifest records in milliseconds, shown in µs (``0.01859`` -> ``18.6 µs``)."""
    return us_text(1000 * float(ms)) if _num(ms) else NA


def pct(fraction: Any) -> str:
    """An accuracy fraction as ``97.22 %``."""
    return f"{100 * fraction:.2f} %" if _num(fraction) else NA


def pt(v: Any) -> str:
    """Percentage points: ``0.28 pt`` (a negative drop is a gain)."""
    return f"{v:.2f} pt" if _num(v) else NA
