"""The sweep stage: train every model x optimizer x schedule of the recipe's sweep section."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgekit import vocab
from edgekit.stages.base import Entry, RunContext, stage_key


class SweepStage:
    name = vocab.STAGE_SWEEP
    gives_model = False

    def skip(self, ctx: RunContext) -> tuple[Any, Entry] | None:
        return None  # a recipe without a sweep section has no sweep stage (stages_for)

    def key(self, ctx: RunContext) -> str:
        d = ctx.recipe.to_dict()
        return stage_key(ctx, {"sweep": d["sweep"], "train": d["train"]}, [])

    def run(self, ctx: RunContext) -> tuple[Path, Entry]:
        from edgekit.manifest import write_stage
        from edgekit.train import sweep

        folder, sw = ctx.folder(self), ctx.recipe.sweep
        rows = sweep(ctx.recipe.train, ctx.dataset, models=sw.models, optimizers=sw.optimizers,
                     schedules=sw.schedules, target_accuracy=sw.target_accuracy, out=folder, force=True,
                     progress=ctx.progress)
        write_stage(folder, self.name, [("sweep.md", "table"), ("sweep.csv", "table"), ("val_curves.png", "plot")],
                    config=dataclasses.asdict(sw), metrics={"runs": rows}, dataset=ctx.dataset.info)
        return folder / "sweep.md", {}
