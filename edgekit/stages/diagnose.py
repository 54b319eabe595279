"""The diagnose stage: per-layer error of the run's int8 artifact (``edgekit diagnose``), written
to ``OUT/diagnose/`` (diagnose.json/.md/.png + manifest), merged into the run manifest for the
report and the gates (``min_layer_snr_db``, ``min_recovered_pt``)."""
from __future__ import annotations

from pathlib import Path

from edgekit import vocab
from edgekit.manifest import MANIFEST
from edgekit.stages.base import Entry, RunContext, SectionStage, stage_key


def artifact_of(ctx: RunContext) -> tuple[str, Path]:
    """(target, path) of the exported artifact the diagnose section names."""
    from edgekit.export import load_targets

    target = ctx.recipe.diagnose.target_of(ctx.recipe.export.targets)
    return target, ctx.out / vocab.STAGE_EXPORT / load_targets().get(target).files[0]


class DiagnoseStage(SectionStage):
    name = vocab.STAGE_DIAGNOSE

    def key(self, ctx: RunContext) -> str:
        target, path = artifact_of(ctx)
        return stage_key(ctx, {"target": target, **ctx.recipe.diagnose.to_dict()}, [ctx.model, path])

    def run(self, ctx: RunContext) -> tuple[Path, Entry]:
        from edgekit.diagnose import diagnose, output, propose_fix

        cfg = ctx.recipe.diagnose
        target, path = artifact_of(ctx)
        res = diagnose(ctx.model, path, ctx.dataset, samples=cfg.samples, leave_one_out=cfg.leave_one_out,
                       representative_samples=cfg.representative_samples, progress=ctx.progress)
        if cfg.fix:
            res.fix = propose_fix(ctx.model, res, ctx.dataset, max_drop_pt=cfg.max_accuracy_drop,
                                  min_agreement=cfg.min_agreement,
                                  representative_samples=cfg.representative_samples, repair=cfg.repair,
                                  progress=ctx.progress)
        folder = ctx.folder(self)
        output.write(res, folder, force=True, dataset=ctx.dataset.info)
        ctx.progress(output.summary(res.to_dict()))
        return folder / MANIFEST, {"target": target, "worst_layer": res.layers[0].name if res.layers else None}
