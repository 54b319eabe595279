"""The run folder's ``manifest.json``: the stage folders' manifests merged, paths made relative to the run."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgekit import vocab
from edgekit.artifacts import Artifact, read_json, write_json
from edgekit.manifest import FORMAT, MANIFEST, library_versions
from edgekit.stages.base import RunContext

FOLDER_STAGES = (vocab.STAGE_SWEEP, vocab.STAGE_TRAIN, vocab.STAGE_OPTIMIZE, vocab.STAGE_COMPRESS, vocab.STAGE_EXPORT,
                 vocab.STAGE_DIAGNOSE)


def run_manifest(ctx: RunContext) -> Path:
    """The run manifest's path, merged from the stage folders on first use (gates, report)."""
    if ctx.manifest is None:
        merge_manifests(ctx)
        ctx.manifest = ctx.out / MANIFEST
    return ctx.manifest


def merge_manifests(ctx: RunContext) -> dict[str, Any]:
    """Write the run folder's manifest: every stage folder's manifest, paths made relative to the run."""
    out, recipe = ctx.out, ctx.recipe
    man: dict[str, Any] = {"format": FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                           "recipe": recipe.name, "recipe_hash": recipe.hash(), "versions": library_versions(),
                           "stages": {}, "artifacts": [],
                           "run": {n: r for n, r in ctx.records.items() if n in FOLDER_STAGES}}
    if recipe.model.path is not None:
        man["stages"][vocab.STAGE_TRAIN] = {"config": {"path": recipe.model.path}, "metrics": {}}
    for name in FOLDER_STAGES:
        path = out / name / MANIFEST
        if ctx.records.get(name, {}).get("status") not in ("ran", "reused") or not path.is_file():
            continue
        sub = read_json(path)
        for key in ("dataset", "machine"):
            if key in sub:
                man[key] = sub[key]
        for stage, entry in sub.get("stages", {}).items():
            man["stages"][stage] = _prefix_paths(entry, name, out)
        for a in sub.get("artifacts", []):
            man["artifacts"].append({**a, "path": f"{name}/{a['path']}"})
    man["artifacts"].append({**Artifact.from_file(out / "recipe.yaml", "recipe", out).to_dict(), "stage": "run"})
    write_json(out / MANIFEST, man)
    return man


def _prefix_paths(entry: Any, folder: str, out: Path) -> Any:
    """Make the ``path`` values inside a stage entry relative to the run folder: files of
    the stage folder get its name as prefix, absolute paths inside the run are made
    relative, other paths (a reference model elsewhere) stay as they are."""
    if isinstance(entry, dict):
        return {k: (_run_relative(v, folder, out) if k == "path" and isinstance(v, str)
                    else _prefix_paths(v, folder, out)) for k, v in entry.items()}
    if isinstance(entry, list):
        return [_prefix_paths(v, folder, out) for v in entry]
    return entry


def _run_relative(path: str, folder: str, out: Path) -> str:
    p = Path(path)
    if p.is_absolute():
        try:
            return p.resolve().relative_to(out.resolve()).as_posix()
        except ValueError:
            return path
    return f"{folder}/{path}" if (out / folder / p).is_file() else path
