"""``edgekit run``: train -> compress -> export + validate -> gates -> report, with stage reuse.

Each stage writes into its own folder (``train/``, ``compress/``, ``export/``) and records a
key: the hash of its recipe section, the dataset's content hash and the sha256 of its input
model. A stage whose key is unchanged and whose files still match their manifest is
reused, so a re-run after editing only ``gates`` is instant. The run folder's
``manifest.json`` merges the stages' manifests (paths relative to the run folder); the
resolved ``recipe.yaml``, ``report.md``/``report.html`` and ``gates.junit.xml`` sit beside it.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

from edgekit.artifacts import read_json, sha256_file, write_json, write_text
from edgekit.errors import GateFailed, InputError
from edgekit.interrupt import checkpoint
from edgekit.manifest import FORMAT, MANIFEST, config_hash, library_versions, verify_manifest
from edgekit.recipe.schema import Recipe

STATE = "stages.json"
Progress = Callable[[str], None]


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


class _Runner:
    def __init__(self, recipe: Recipe, out: Path, force: bool, progress: Progress):
        self.recipe, self.out, self.force, self.say = recipe, out, force, progress
        self.state: dict[str, Any] = {} if force else _read_state(out / STATE)
        self.stages: dict[str, dict[str, Any]] = {}
        self._dataset = None

    @property
    def dataset(self):
        if self._dataset is None:
            self._dataset = self.recipe.data.load()
        return self._dataset

    def stage(self, name: str, section: Any, inputs: list[Path], produce: Callable[[Path], Path]) -> Path:
        """Run or reuse one stage; returns the path of its output model/artifact folder file."""
        folder = self.out / name
        key = config_hash({"section": section, "dataset": self.recipe.data.__dict__,
                           "inputs": [sha256_file(p) for p in inputs]})
        prev = self.state.get(name, {})
        if prev.get("key") == key and _intact(folder):
            self.stages[name] = {"status": "reused", "seconds": 0.0, "key": key}
            self.say(f"[{name}] reused (inputs unchanged)")
            return self.out / prev["output"]
        checkpoint()  # a Ctrl-C swallowed inside the previous stage stops here
        self.say(f"[{name}] running")
        t0 = time.perf_counter()
        self.state.pop(name, None)  # an interrupted stage is never taken as complete
        write_json(self.out / STATE, self.state)
        output = produce(folder)
        secs = time.perf_counter() - t0
        self.state[name] = {"key": key, "output": str(output.relative_to(self.out)), "seconds": secs}
        write_json(self.out / STATE, self.state)
        self.stages[name] = {"status": "ran", "seconds": secs, "key": key}
        self.say(f"[{name}] done in {secs:.1f}s")
        return output


def run(recipe: Recipe, out: str | Path, *, force: bool = False, progress: Progress | None = None,
        raise_on_gate_failure: bool = True) -> RunResult:
    """Run ``recipe`` into ``out``. Raises GateFailed (after writing the report) when a gate
    fails and ``raise_on_gate_failure``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file, not a folder.")
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda m: None)
    r = _Runner(recipe, out, force, say)
    write_text(out / "recipe.yaml", recipe.to_yaml())

    if recipe.sweep is not None:
        section = {"sweep": recipe.to_dict()["sweep"], "train": recipe.to_dict()["train"]}
        r.stage("sweep", section, [], lambda d: _sweep(r, d))
    model_path = _train_stage(r)
    if recipe.compress is not None:
        model_path = r.stage("compress", recipe.compress.to_dict(), [model_path], lambda d: _compress(r, model_path, d))
    else:
        r.stages["compress"] = {"status": "skipped", "seconds": 0.0}
    if recipe.export is not None:
        section = {"targets": list(recipe.export.targets), "options": _export_key(recipe)}
        r.stage("export", section, [model_path], lambda d: _export(r, model_path, d))
    else:
        r.stages["export"] = {"status": "skipped", "seconds": 0.0}

    _merge_manifests(r)
    gates = None
    t0 = time.perf_counter()
    if recipe.gates is not None:
        from edgekit.gate import run_gates, write_junit
        from edgekit.manifest import update_manifest

        gates = run_gates(out / MANIFEST, recipe.gates)
        update_manifest(out, "gates", config=recipe.gates, metrics=gates.to_dict())
        write_junit(gates, out / "gates.junit.xml")
        say(f"[gates] {gates.summary()}")
        r.stages["gates"] = {"status": "ran", "seconds": time.perf_counter() - t0, "passed": gates.passed}
    else:
        r.stages["gates"] = {"status": "skipped", "seconds": 0.0}

    from edgekit.report import write_report

    t0 = time.perf_counter()
    report = write_report(out, force=True)
    r.stages["report"] = {"status": "ran", "seconds": time.perf_counter() - t0}
    say(f"[report] {report[1]}")
    result = RunResult(out, recipe, r.stages, model_path, gates, report)
    if gates is not None and not gates.passed and raise_on_gate_failure:
        raise GateFailed(gates.summary())
    return result


def _train_stage(r: _Runner) -> Path:
    recipe = r.recipe
    if recipe.model.path is not None:
        p = Path(recipe.model.path)
        if not p.is_file():
            raise InputError(f"model.path {str(p)!r} does not exist.")
        r.stages["train"] = {"status": "skipped", "seconds": 0.0, "model": str(p)}
        return p

    def produce(folder: Path) -> Path:
        from edgekit.train import train

        from edgekit.train.resume import can_resume

        # an interrupted train stage continues from its last completed epoch
        resume = not r.force and can_resume(folder, recipe.train.to_dict(), r.dataset.info.sha256)
        if resume:
            r.say("  resuming the interrupted training from its last completed epoch")
        train(recipe.train, r.dataset, out=folder, force=not resume, resume=resume, progress=lambda m: r.say(f"  {m}"))
        return folder / "model.keras"

    return r.stage("train", recipe.train.to_dict(), [], produce)


def _sweep(r: _Runner, folder: Path) -> Path:
    from edgekit.artifacts import collect
    from edgekit.manifest import update_manifest
    from edgekit.train import sweep

    sw = r.recipe.sweep
    rows = sweep(r.recipe.train, r.dataset, models=sw.models, optimizers=sw.optimizers, schedules=sw.schedules,
                 target_accuracy=sw.target_accuracy, out=folder, force=True, progress=lambda m: r.say(f"  {m}"))
    arts = collect(folder, [("sweep.md", "table"), ("sweep.csv", "table"), ("val_curves.png", "plot")])
    update_manifest(folder, "sweep", config=dataclasses.asdict(sw), metrics={"runs": rows}, artifacts=arts,
                    dataset=r.dataset.info)
    return folder / "sweep.md"


def _compress(r: _Runner, model_path: Path, folder: Path) -> Path:
    from edgekit.compress import compress

    compress(model_path, r.dataset, r.recipe.compress, out=folder, force=True, progress=lambda m: r.say(f"  {m}"))
    return folder / "model.keras"


def _export_config(recipe: Recipe):
    return recipe.export.options


def _export_key(recipe: Recipe) -> dict:
    """The export stage's options as keyed before export and validate were split (keys unchanged)."""
    v = recipe.validate
    return {**_export_config(recipe).to_dict(), "validate": v.enabled, "max_diff": v.max_diff, "threads": v.threads,
            "runs": v.runs}


def _export(r: _Runner, model_path: Path, folder: Path) -> Path:
    from edgekit.export import export
    from edgekit.validate.step import export_and_validate

    kw = dict(force=True, progress=lambda m: r.say(f"  {m}"))
    if r.recipe.validate.enabled:
        export_and_validate(model_path, r.dataset, list(r.recipe.export.targets), folder, **kw,
                            export_config=_export_config(r.recipe), validate_config=r.recipe.validate.settings())
    else:
        export(model_path, r.dataset, list(r.recipe.export.targets), folder, config=_export_config(r.recipe), **kw)
    return folder / MANIFEST


def _intact(folder: Path) -> bool:
    """The stage folder's manifest exists and every file it lists is unchanged."""
    try:
        return (folder / MANIFEST).is_file() and not verify_manifest(folder / MANIFEST)
    except InputError:
        return False


def _read_state(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _merge_manifests(r: _Runner) -> dict[str, Any]:
    """The run folder's manifest: every stage folder's manifest, paths made relative to the run."""
    out = r.out
    man: dict[str, Any] = {"format": FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                           "recipe": r.recipe.name, "recipe_hash": r.recipe.hash(), "versions": library_versions(),
                           "stages": {}, "artifacts": [], "run": r.stages}
    if r.recipe.model.path is not None:
        man["stages"]["train"] = {"config": {"path": r.recipe.model.path}, "metrics": {}}
    for name in ("sweep", "train", "compress", "export"):
        path = out / name / MANIFEST
        if r.stages.get(name, {}).get("status") not in ("ran", "reused") or not path.is_file():
            continue
        sub = read_json(path)
        for key in ("dataset", "machine"):
            if key in sub:
                man[key] = sub[key]
        for stage, entry in sub.get("stages", {}).items():
            man["stages"][stage] = _prefix_paths(entry, name, out)
        for a in sub.get("artifacts", []):
            man["artifacts"].append({**a, "path": f"{name}/{a['path']}"})
    man["artifacts"].append(_recipe_artifact(out))
    write_json(out / MANIFEST, man)
    return man


def _recipe_artifact(out: Path) -> dict[str, Any]:
    from edgekit.artifacts import Artifact

    return {**Artifact.from_file(out / "recipe.yaml", "recipe", out).to_dict(), "stage": "run"}


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


def describe(result: RunResult) -> str:
    """One line per stage: status and seconds."""
    rows = [f"{name:<9} {info['status']:<8} {info.get('seconds', 0.0):6.1f}s" for name, info in result.stages.items()]
    return "\n".join(rows)


__all__ = ["run", "RunResult", "describe"]
