"""The stage protocol, what the stages of one run share, and the cache that reuses them.

A cached stage (sweep, train, compress, export) writes its own folder ``OUT/<name>/`` with a
``manifest.json``; its key hashes its recipe section, the data section and the sha256 of its
input files. ``stages.json`` keeps each finished stage's key: the key is removed before the
stage starts and written after it finishes, so an interrupted stage is redone while the
completed ones are reused (when every file of their manifest still has its sha256 and the
manifest is not marked incomplete). Each stage holds its folder's lock while it runs.
Uncached stages (gates, report) are quick and always run.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol

from edgekit.artifacts import read_json, sha256_file, write_json
from edgekit.errors import InputError
from edgekit.interrupt import checkpoint
from edgekit.locking import out_lock
from edgekit.manifest import MANIFEST, config_hash, verify_manifest

if TYPE_CHECKING:
    from edgekit.data import Dataset
    from edgekit.recipe.schema import Recipe

STATE = "stages.json"
Progress = Callable[[str], None]
Entry = dict[str, Any]  # a stage's record in the run: status, seconds, key, and what the stage adds


@dataclasses.dataclass
class RunContext:
    """What the stages of one run share: the recipe, the run folder, the dataset (loaded on
    first use), the model the next stage takes, and each stage's record and result so far."""

    recipe: Recipe
    out: Path
    force: bool
    say: Progress
    model: Path | None = None  # the output of the last stage that gives a model
    records: dict[str, Entry] = dataclasses.field(default_factory=dict)
    results: dict[str, Any] = dataclasses.field(default_factory=dict)
    manifest: Path | None = None  # the run folder's manifest, once merged (stages.run_manifest)
    _dataset: Dataset | None = None
    _handles: dict[str, Any] = dataclasses.field(default_factory=dict)

    def handle(self, path: Path | None = None) -> Any:
        """The :class:`~edgekit.models.ModelHandle` of ``path`` (default: ``model``), loaded once per
        path (a Keras 3 model is proven on the dataset's images; ``model.signature`` picks a
        SavedModel's)."""
        p = path if path is not None else self.model
        key = str(p)
        if key not in self._handles:
            from edgekit.models.loading import load_for

            signature = self.recipe.model.signature if key == str(self.recipe.model.path) else None
            self._handles[key] = load_for(p, self.dataset, signature=signature)
        return self._handles[key]

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = self.recipe.data.load()
        return self._dataset

    def folder(self, stage: Stage) -> Path:
        return self.out / stage.name

    def progress(self, message: str) -> None:
        """A stage's own progress, indented under its ``[name]`` line."""
        self.say(f"  {message}")


class Stage(Protocol):
    """One step of ``edgekit run``."""

    name: str  # a vocab.STAGE_* name: the stage's folder and its record
    gives_model: bool  # its result is the model the next stages take

    def skip(self, ctx: RunContext) -> tuple[Any, Entry] | None:
        """``(result, entry)`` when the recipe turns the stage off; None to run it."""

    def key(self, ctx: RunContext) -> str | None:
        """The cache key computed from the stage's inputs (see :func:`stage_key`); None for a
        stage that always runs."""

    def run(self, ctx: RunContext) -> tuple[Any, Entry]:
        """Do the stage: its result (for a cached stage, a file of its folder) and what it adds
        to its record."""


class SectionStage:
    """A stage that runs only when the recipe has the section named like the stage; without it the
    stage is skipped and passes the model on unchanged (``gives_model``) or gives nothing."""

    name: str
    gives_model = False

    def skip(self, ctx: RunContext) -> tuple[Any, Entry] | None:
        if getattr(ctx.recipe, self.name) is not None:
            return None
        return (ctx.model if self.gives_model else None), {}


def stage_key(ctx: RunContext, section: Any, inputs: list[Path]) -> str:
    """The hash of a stage's recipe section, the data section and the sha256 of its input files."""
    data = {k: v for k, v in ctx.recipe.data.__dict__.items() if not (k == "preprocess" and v == "unit")}
    return config_hash({"section": section, "dataset": data,  # keys of runs before preprocess unchanged
                        "inputs": [sha256_path(p) for p in inputs]})


def sha256_path(path: Path) -> str:
    """The sha256 of a file, or of a folder (a SavedModel): its files' relative paths and sha256s."""
    p = Path(path)
    if not p.is_dir():
        return sha256_file(p)
    files = sorted(f for f in p.rglob("*") if f.is_file())
    return config_hash({str(f.relative_to(p)): sha256_file(f) for f in files})


class StageCache:
    """``OUT/stages.json``: runs each stage or reuses its earlier output (``force``: redo all)."""

    def __init__(self, out: Path, force: bool):
        self.out, self.path = out, out / STATE
        self.state: dict[str, Any] = {} if force else _read_state(self.path)

    def run_all(self, stages: Iterable[Stage], ctx: RunContext) -> None:
        """Run ``stages`` in order: each result goes to ``ctx.results``, and the result of a stage
        that gives a model becomes the model the next stages take."""
        for stage in stages:
            result = ctx.results[stage.name] = self.run(stage, ctx)
            if stage.gives_model:
                ctx.model = result

    def run(self, stage: Stage, ctx: RunContext) -> Any:
        """Skip, reuse or run ``stage``; record it in ``ctx.records``; return its result."""
        skipped = stage.skip(ctx)
        if skipped is not None:
            result, entry = skipped
            ctx.records[stage.name] = {"status": "skipped", "seconds": 0.0, **entry}
            return result
        key = stage.key(ctx)
        if key is None:
            t0 = time.perf_counter()
            result, entry = stage.run(ctx)
            ctx.records[stage.name] = {"status": "ran", "seconds": time.perf_counter() - t0, **entry}
            return result
        return self._cached(stage, key, ctx)

    def _cached(self, stage: Stage, key: str, ctx: RunContext) -> Any:
        name = stage.name
        prev = self.state.get(name, {})
        if prev.get("key") == key and _intact(ctx.folder(stage)):
            ctx.records[name] = {"status": "reused", "seconds": 0.0, "key": key}
            ctx.say(f"[{name}] reused (inputs unchanged)")
            return self.out / prev["output"]
        checkpoint()  # a Ctrl-C swallowed inside the previous stage stops here
        ctx.say(f"[{name}] running")
        t0 = time.perf_counter()
        self.state.pop(name, None)  # an interrupted stage is never taken as complete
        write_json(self.path, self.state)
        with out_lock(ctx.folder(stage), f"run {name}"):  # no other edgekit command writes it meanwhile
            result, entry = stage.run(ctx)
        secs = time.perf_counter() - t0
        self.state[name] = {"key": key, "output": str(Path(result).relative_to(self.out)), "seconds": secs}
        write_json(self.path, self.state)
        ctx.records[name] = {"status": "ran", "seconds": secs, "key": key, **entry}
        ctx.say(f"[{name}] done in {secs:.1f}s")
        return result


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
