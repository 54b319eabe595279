"""The gates stage: check the run manifest against the recipe's gates; writes gates.junit.xml."""
from __future__ import annotations

from typing import Any

from edgekit import vocab
from edgekit.stages.base import Entry, RunContext, SectionStage
from edgekit.stages.run_manifest import run_manifest


class GatesStage(SectionStage):
    name = vocab.STAGE_GATES

    def key(self, ctx: RunContext) -> None:
        return None  # reads only the manifest: always checked again

    def run(self, ctx: RunContext) -> tuple[Any, Entry]:
        from edgekit.gate import run_gates, write_junit
        from edgekit.manifest import update_manifest

        gates = run_gates(run_manifest(ctx), ctx.recipe.gates)
        update_manifest(ctx.out, self.name, config=ctx.recipe.gates, metrics=gates.to_dict())
        write_junit(gates, ctx.out / "gates.junit.xml")
        ctx.say(f"[{self.name}] {gates.summary()}")
        return gates, {"passed": gates.passed}
