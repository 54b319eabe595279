"""``edgekit run``: train -> compress -> export + validate -> gates -> report, with stage reuse.

The stages are in :mod:`edgekit.stages`; this module runs them in order through a
:class:`~edgekit.stages.base.StageCache`. Each stage writes into its own folder (``train/``,
``compress/``, ``export/``) and records a key: the hash of its recipe section, the data
section and the sha256 of its input model. A stage whose key is unchanged and whose files still match their manifest is
reused, so a re-run after editing only ``gates`` is instant. The run folder's
``manifest.json`` merges the stages' manifests (paths relative to the run folder); the
resolved ``recipe.yaml``, ``report.md``/``report.html`` and ``gates.junit.xml`` sit beside it.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgekit import vocab
from edgekit.artifacts import write_text
from edgekit.errors import GateFailed, InputError
from edgekit.recipe.schema import Recipe
from edgekit.stages import RunContext, StageCache, stages_for
from edgekit.stages.base import Progress


@dataclasses.dataclass
class RunResult:
    """What a run did: per stage ``ran``/``reused``/``skipped`` and seconds; the gate outcome."""

    out_dir: Path
    recipe: Recipe
    stages: dict[str, dict[str, Any]]
    model_path: Path | None
    gates: Any = None  # GateReport or None
    report: tuple[Path, Path] | None = None

    @property
    def passed(self) -> bool:
        return self.gates is None or self.gates.passed


def run(recipe: Recipe, out: str | Path, *, force: bool = False, progress: Progress | None = None,
        raise_on_gate_failure: bool = True) -> RunResult:
    """Run ``recipe`` into ``out``. Raises GateFailed (after writing the report) when a gate
    fails and ``raise_on_gate_failure``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file, not a folder.")
    out.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(recipe, out, force, progress or (lambda m: None))
    write_text(out / "recipe.yaml", recipe.to_yaml())
    StageCache(out, force).run_all(stages_for(recipe), ctx)
    gates = ctx.results.get(vocab.STAGE_GATES)
    if gates is not None and not gates.passed and raise_on_gate_failure:
        raise GateFailed(gates.summary())
    return RunResult(out, recipe, ctx.records, ctx.model, gates, ctx.results[vocab.STAGE_REPORT])


def describe(result: RunResult) -> str:
    """One line per stage: status and seconds."""
    rows = [f"{name:<9} {info['status']:<8} {info.get('seconds', 0.0):6.1f}s" for name, info in result.stages.items()]
    return "\n".join(rows)


__all__ = ["run", "RunResult", "describe"]
