"""``edgekit optimize``: search compression settings (channels, sparsity, clusters, QAT/PTQ) for the
smallest artifact that meets an accuracy drop (and optionally size and latency) limit, guided by
per-layer sensitivity; every candidate measured as an exported artifact in its runtime.

Modules: config.py (OptimizeConfig), space.py (Candidate, Space), sensitivity.py (per-layer probes),
evaluate.py (build + measure one candidate, budget), search.py (the loop), pareto.py (the front),
state.py (resume), output.py (reports, recipe), api.py (optimize()). TensorFlow is imported only
when a search runs.
"""
from edgekit.optimize.config import OptimizeConfig

__all__ = ["OptimizeConfig", "optimize", "OptimizeResult"]


def __getattr__(name: str):
    if name in ("optimize", "OptimizeResult"):
        from edgekit.optimize import api

        return getattr(api, name)
    raise AttributeError(name)
