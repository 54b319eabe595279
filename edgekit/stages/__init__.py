"""The stages of ``edgekit run``: sweep, train, optimize, compress, export (+ validate), diagnose, gates, report.

A :class:`Stage` has a name, a cache key computed from its inputs, and ``run(ctx) ->
(result, entry)``; :class:`StageCache` runs the stages in order and reuses those whose key
and files are unchanged. Every stage imports TensorFlow only inside ``run``.
"""
from __future__ import annotations

from edgekit.registry import Registry
from edgekit.stages.base import RunContext, Stage, StageCache
from edgekit.stages.compress import CompressStage
from edgekit.stages.diagnose import DiagnoseStage
from edgekit.stages.export import ExportStage
from edgekit.stages.gates import GatesStage
from edgekit.stages.optimize import OptimizeStage
from edgekit.stages.report import ReportStage
from edgekit.stages.sweep import SweepStage
from edgekit.stages.train import TrainStage

STAGES: Registry[Stage] = Registry("stage")  # in run order
for _stage in (SweepStage(), TrainStage(), OptimizeStage(), CompressStage(), ExportStage(), DiagnoseStage(),
               GatesStage(), ReportStage()):
    STAGES.add(_stage.name, _stage)


def stages_for(recipe) -> list[Stage]:
    """The stages of ``recipe`` in run order; the sweep only when the recipe has a sweep section."""
    return [s for name, s in STAGES.items() if name != SweepStage.name or recipe.sweep is not None]


__all__ = ["Stage", "StageCache", "RunContext", "STAGES", "stages_for"]
