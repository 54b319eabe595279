"""The run report: ``report.md`` (CI job summaries) and one self-contained ``report.html``.

    >>> from edgekit.report import write_report
    >>> md_path, html_path = write_report("run")          # reads run/manifest.json

Only the manifest and the files it lists are read; plots are drawn with matplotlib (Agg)
and embedded as base64 PNGs, so report.html needs nothing else to display.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from edgekit.artifacts import prepare_out_dir, write_text
from edgekit.report.blocks import Report
from edgekit.report.build import build_report
from edgekit.report.render import to_html, to_markdown

REPORT_FILES = ("report.md", "report.html")


def write_report(
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` for the run in ``run_dir`` (into ``out``, default ``run_dir``).

    Existing report files are kept unless ``force`` (OutputExistsError); both files are
    written atomically. A missing or foreign manifest raises InputError. Returns the paths.
    """
    src = Path(run_dir)
    report = build_report(src, progress=progress)  # reads and checks the manifest before touching outputs
    dest = Path(out) if out is not None else (src if src.is_dir() else src.parent)
    prepare_out_dir(dest, force, expect=REPORT_FILES)
    md = write_text(dest / "report.md", to_markdown(report))
    html = write_text(dest / "report.html", to_html(report))
    return md, html


__all__ = ["Report", "build_report", "to_html", "to_markdown", "write_report", "REPORT_FILES"]
