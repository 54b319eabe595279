"""The export stage: export the model to every target and validate each artifact on its runtime."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit import vocab
from edgekit.manifest import MANIFEST
from edgekit.stages.base import Entry, RunContext, stage_key


class ExportStage:
    name = vocab.STAGE_EXPORT
    gives_model = False

    def skip(self, ctx: RunContext) -> tuple[None, Entry] | None:
        return (None, {}) if ctx.recipe.export is None else None

    def key(self, ctx: RunContext) -> str:
        section = {"targets": list(ctx.recipe.export.targets), "options": export_config(ctx.recipe).to_dict()}
        return stage_key(ctx, section, [ctx.model])

    def run(self, ctx: RunContext) -> tuple[Path, Entry]:
        folder = ctx.folder(self)
        export_and_validate(ctx.model, ctx.dataset, list(ctx.recipe.export.targets), folder,
                            config=export_config(ctx.recipe), progress=ctx.progress)
        return folder / MANIFEST, {}


def export_config(recipe: Any) -> Any:
    """The recipe's export options with its validate section folded in."""
    v = recipe.validate
    return recipe.export.options.replace(validate=v.enabled, max_diff=v.max_diff, threads=v.threads, runs=v.runs)


def export_and_validate(model: Path, dataset: Any, targets: list[str], out: Path, *, config: Any,
                        progress: Any) -> None:
    """Export ``model`` to ``targets`` in ``out`` and validate every artifact there (the one
    place the run calls export: ``edgekit.export.export`` validates too)."""
    from edgekit.export import export

    export(model, dataset, targets, out, force=True, config=config, progress=progress)
