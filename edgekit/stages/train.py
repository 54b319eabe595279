"""The train stage: train the recipe's model (skipped when the recipe brings one in ``model.path``)."""
from __future__ import annotations

from pathlib import Path

from edgekit import vocab
from edgekit.errors import InputError
from edgekit.stages.base import Entry, RunContext, stage_key


class TrainStage:
    name = vocab.STAGE_TRAIN
    gives_model = True

    def skip(self, ctx: RunContext) -> tuple[Path, Entry] | None:
        if ctx.recipe.model.path is None:
            return None
        p = Path(ctx.recipe.model.path)
        if not p.exists():
            raise InputError(f"model.path {str(p)!r} does not exist.")
        return p, {"model": str(p), "format": ctx.handle(p).format}

    def key(self, ctx: RunContext) -> str:
        pretrained = ctx.recipe.train.pretrained  # a weights file: its content is part of the key
        return stage_key(ctx, ctx.recipe.train.to_dict(), [Path(pretrained)] if pretrained not in (None, "imagenet") else [])

    def run(self, ctx: RunContext) -> tuple[Path, Entry]:
        from edgekit.train import train
        from edgekit.train.resume import can_resume

        folder, config = ctx.folder(self), ctx.recipe.train
        # an interrupted train stage continues from its last completed epoch
        resume = not ctx.force and can_resume(folder, config.to_dict(), ctx.dataset.info.sha256)
        if resume:
            ctx.progress("resuming the interrupted training from its last completed epoch")
        train(config, ctx.dataset, out=folder, force=not resume, resume=resume, progress=ctx.progress)
        return folder / "model.keras", {}
