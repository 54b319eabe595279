"""The export stage: export the model to every target and validate each artifact on its runtime."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit import vocab
from edgekit.manifest import MANIFEST
from edgekit.stages.base import Entry, RunContext, SectionStage, stage_key


class ExportStage(SectionStage):
    name = vocab.STAGE_EXPORT

    def key(self, ctx: RunContext) -> str:
        section = {"targets": list(ctx.recipe.export.targets), "options": export_key(ctx.recipe)}
        return stage_key(ctx, section, [ctx.model])

    def run(self, ctx: RunContext) -> tuple[Path, Entry]:
        from edgekit.export import export
        from edgekit.validate.step import export_and_validate

        folder = ctx.folder(self)
        recipe = ctx.recipe
        kw: dict[str, Any] = dict(force=True, progress=ctx.progress)
        targets = list(recipe.export.targets)
        if recipe.validate.enabled:
            export_and_validate(ctx.handle(), ctx.dataset, targets, folder, **kw,
                                export_config=recipe.export.options, validate_config=recipe.validate.settings())
        else:
            export(ctx.handle(), ctx.dataset, targets, folder, config=recipe.export.options, **kw)
        return folder / MANIFEST, {}


def export_key(recipe: Any) -> dict[str, Any]:
    """The export stage's options as keyed before export and validate were split (keys unchanged,
    so runs made before keep reusing their export stage)."""
    v = recipe.validate
    key = {**recipe.export.options.to_dict(), "validate": v.enabled, "max_diff": v.max_diff, "threads": v.threads,
           "runs": v.runs}
    if v.devices:  # only when set: runs without devices keep their keys
        key["devices"] = list(v.devices)
    return key
