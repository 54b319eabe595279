"""The report stage: report.md and report.html from the run manifest."""
from __future__ import annotations

from pathlib import Path

from edgekit import vocab
from edgekit.stages.base import Entry, RunContext
from edgekit.stages.run_manifest import run_manifest


class ReportStage:
    name = vocab.STAGE_REPORT
    gives_model = False

    def skip(self, ctx: RunContext) -> None:
        return None

    def key(self, ctx: RunContext) -> None:
        return None  # reads only the manifest: always written again

    def run(self, ctx: RunContext) -> tuple[tuple[Path, Path], Entry]:
        from edgekit.report import write_report

        run_manifest(ctx)
        report = write_report(ctx.out, force=True)
        ctx.say(f"[{self.name}] {report[1]}")
        return report, {}
