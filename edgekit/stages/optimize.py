"""The optimize stage: the compression search on the trained model (skipped without an optimize
section); the winning model goes on to export. An interrupted search continues from its state."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from edgekit import vocab
from edgekit.stages.base import Entry, RunContext, SectionStage, stage_key


class OptimizeStage(SectionStage):
    name = vocab.STAGE_OPTIMIZE
    gives_model = True

    def key(self, ctx: RunContext) -> str:
        return stage_key(ctx, ctx.recipe.optimize.to_dict(), [ctx.model])

    def run(self, ctx: RunContext) -> tuple[Path, Entry]:
        from edgekit.errors import OutputExistsError
        from edgekit.optimize import optimize
        from edgekit.optimize.state import StateMismatch

        folder = ctx.folder(self)
        kw = dict(data=dataclasses.asdict(ctx.recipe.data), progress=ctx.progress)
        try:  # the same search interrupted before: continue it
            res = optimize(ctx.model, ctx.dataset, ctx.recipe.optimize, folder, **kw)
        except (OutputExistsError, StateMismatch):  # a finished or another search: this stage's inputs changed
            res = optimize(ctx.model, ctx.dataset, ctx.recipe.optimize, folder, force=True, **kw)
        if not res.met:
            ctx.progress(f"optimize: no candidate meets the constraints; the nearest goes on ({'; '.join(res.missed)})")
        return folder / res.report.get("winner_model", "model.keras"), {"met": res.met, "winner": res.winner["key"] if res.winner else None}
