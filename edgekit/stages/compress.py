"""The compress stage: prune, cluster and/or quantize the model (skipped without a compress section)."""
from __future__ import annotations

from pathlib import Path

from edgekit import vocab
from edgekit.stages.base import Entry, RunContext, SectionStage, stage_key


class CompressStage(SectionStage):
    name = vocab.STAGE_COMPRESS
    gives_model = True

    def key(self, ctx: RunContext) -> str:
        return stage_key(ctx, ctx.recipe.compress.to_dict(), [ctx.model])

    def run(self, ctx: RunContext) -> tuple[Path, Entry]:
        from edgekit.compress import compress

        folder = ctx.folder(self)
        compress(ctx.handle(), ctx.dataset, ctx.recipe.compress, out=folder, force=True, progress=ctx.progress)
        return folder / "model.keras", {}
