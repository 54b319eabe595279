"""``optimize()``: the accuracy-constrained search for the smallest artifact, end to end."""
from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from edgekit.artifacts import check_out_dir, prepare_out_dir, sha256_file
from edgekit.data import Dataset
from edgekit.errors import OutputExistsError, UsageError
from edgekit.optimize import output
from edgekit.optimize.config import OptimizeConfig
from edgekit.optimize.evaluate import CANDIDATES, Evaluator, measure_artifact
from edgekit.optimize.pareto import pareto_front
from edgekit.optimize.search import best, missed, run_search
from edgekit.optimize.sensitivity import LayerSensitivity, measure
from edgekit.optimize.space import BASELINE, space_of
from edgekit.optimize.state import STATE_FILE, open_state

Progress = Callable[[str], None]
INPUT_MODEL = "input_model.keras"  # the input model saved here when it was given as an object
STAGE = "optimize"  # its manifest stage
EPOCH_SAMPLE = 2048  # training images predicted to estimate the time of one epoch


@dataclasses.dataclass
class OptimizeResult:
    """What :func:`optimize` found: every candidate, the front, the winner and its holdout figure."""

    out_dir: Path
    report: dict[str, Any]

    @property
    def met(self) -> bool:
        return bool(self.report["met"])

    @property
    def winner(self) -> dict[str, Any] | None:
        return self.report["winner"]

    @property
    def candidates(self) -> list[dict[str, Any]]:
        return self.report["candidates"]

    @property
    def recipe_path(self) -> Path:
        return self.out_dir / "recipe.yaml"

    @property
    def missed(self) -> list[str]:
        return list(self.winner["missed"]) if self.winner else []

    def summary(self) -> str:
        return output.summary(self.report)


def optimize(model_or_path: Any, dataset: Dataset, config: OptimizeConfig | Mapping[str, Any] | None = None,
             out: str | os.PathLike = "optimize", *, force: bool = False, resume: bool | None = None,
             data: Mapping[str, Any] | None = None, progress: Progress | None = None, workers: int = 1,
             ray_address: str | None = None, worker_threads: int | None = None) -> OptimizeResult:
    """Search compression settings of a trained tf_keras model for ``config.target`` under the constraints.

    ``out`` keeps the resume state, every candidate's files and the reports; a folder holding this
    search's state (same model, dataset and config) is continued (``resume``: None continues
    automatically, True requires a state), another search's is refused, ``force`` starts over.
    ``data``: the recipe's data section (spec, seed, splits, limit, preprocess) the winner's
    recipe.yaml loads the dataset with (default: from ``dataset.info``, without a limit).
    ``workers`` > 1 or ``ray_address`` (``RAY_ADDRESS``): candidates run as Ray tasks, up to
    ``workers`` members of each batch the search asks at once; the batches do not depend on the
    workers, so with the same ``worker_threads`` (TensorFlow threads per candidate; default: the
    cores shared between the workers) it asks the same candidates and picks the same winner.
    """
    if config is None:
        config = OptimizeConfig()
    elif not isinstance(config, OptimizeConfig):
        config = OptimizeConfig.from_dict(config)
    if len(dataset.y_val) == 0:
        raise UsageError("optimize chooses on the validation split and reports the holdout: the dataset has no "
                         "validation images. Use --val-split > 0. Received: val_split=0.")
    say = progress or (lambda m: None)
    from edgekit.parallel import make_executor, threads_per_job
    from edgekit.parallel.executor import pin_threads

    if workers == 1 and not (ray_address or os.environ.get("RAY_ADDRESS")) and worker_threads is not None:
        pin_threads(threads_per_job(1, worker_threads))  # this process runs the candidates
    pool = make_executor(workers, ray_address, worker_threads, say)
    try:
        out_dir = _prepare(Path(out), force, resume)
        return _optimize(model_or_path, dataset, config, out_dir, resume, data, say, pool)
    finally:
        pool.close()


def _optimize(model_or_path: Any, dataset: Dataset, config: OptimizeConfig, out_dir: Path, resume: bool | None,
              data: Mapping[str, Any] | None, say: Progress, pool: Any) -> OptimizeResult:
    from edgekit.manifest import config_hash
    from edgekit.models import load, save_model

    handle = load(model_or_path)
    model = handle.keras_model("optimize")
    model_path = _model_file(model_or_path, handle, model, out_dir, save_model)
    data = dict(data) if data is not None else data_section(dataset)
    identity = {"config": config.to_dict(), "model_sha256": sha256_file(model_path),
                "dataset_sha256": dataset.info.sha256, "data": data}
    state = open_state(out_dir, config_hash(identity), identity, resume)
    if state.resumed:
        say(f"resuming: {len(state.results)} candidate(s) measured before, {state.spent_s / 60:.1f} min spent")
    from edgekit.export import load_targets

    runtime = load_targets().get(config.target).runtime
    x_val, y_val = dataset.x_val, dataset.y_val
    t0 = time.perf_counter()
    ref_labels = handle.predict(x_val).argmax(1)
    if state.baseline is None:
        ref = float((ref_labels == y_val).mean())
        t1 = time.perf_counter()
        n_train, n_timed = len(dataset.y_train), min(len(dataset.y_train), EPOCH_SAMPLE)
        handle.predict(dataset.x_train.take(np.arange(n_timed)))  # a view: read a batch at a time
        # forward + backward of one epoch, roughly (timed on a sample of the training split)
        epoch_s = 3.0 * (time.perf_counter() - t1) * n_train / max(n_timed, 1)
        state.baseline = {"reference_val_accuracy": ref, "epoch_estimate_s": epoch_s,
                          "predict_s": time.perf_counter() - t0}
    note = margin_note(config, int(len(y_val)))
    if note:
        say(note)
    ev = Evaluator(model_path, dataset, config, out_dir, state, state.baseline["reference_val_accuracy"], ref_labels,
                   runtime, say)
    if pool.remote:
        from edgekit.optimize.remote import shared_inputs

        ev.pool, ev.shared = pool, pool.share(shared_inputs(model_path, dataset, config, runtime))
    eval_s = ev(BASELINE)["seconds"]  # export + measure: what every candidate does after its fine-tunes
    space = space_of(model)
    if state.sensitivity is None:
        say("sensitivity: one layer at a time, no fine-tune, on the validation split")
        state.sensitivity = [s.to_dict() for s in measure(model, dataset, space, progress=say)]
        ev.save()
    sens = [LayerSensitivity(**s) for s in state.sensitivity]
    epochs = config.channels_epochs + config.qat_epochs
    ev.first_estimate_s = eval_s * 2 + epochs * state.baseline["epoch_estimate_s"]  # + loading and saving
    if not any(not r["candidate"]["baseline"] for r in state.results.values()) and \
            ev.first_estimate_s > ev.remaining():
        raise UsageError(
            f"--budget-minutes {config.budget_minutes:g} is too small to evaluate one candidate: the baseline took "
            f"{eval_s:.0f}s and a compressed candidate needs about {ev.first_estimate_s:.0f}s "
            f"({max(ev.remaining(), 0):.0f}s left). Give at least {(ev.spent() + ev.first_estimate_s) / 60:.1f} minutes. "
            f"Received: {config.budget_minutes:g}.")

    def narrowed_params(channels: Mapping[str, float]) -> Mapping[str, int]:
        from edgekit.compress import channels as narrowing
        from edgekit.compress.layers import layer_params

        return layer_params(narrowing.prune_channels(model, channels)[0]) if channels else space.params

    run_search(ev, space, sens, config, narrowed_params, progress=say)
    report = _report(ev, config, dataset, handle, sens, space, model_or_path, model_path, data, runtime)
    report["seconds"] = ev.spent()
    ev.save()
    output.write(out_dir, report, _recipe_yaml(report, config, data, model_path), dataset.info, config)
    say(output.summary(report))
    return OptimizeResult(out_dir, report)


def _prepare(out: Path, force: bool, resume: bool | None) -> Path:
    """The output folder, marked incomplete until the search's results are written (so the previous
    winner never stands beside a new search's state): started over with ``force``; a finished
    search or foreign files refused. A folder a search was interrupted in (still marked, its reports
    possibly written already) is continued."""
    from edgekit.manifest import begin_stage

    if force and out.is_dir():
        begin_stage(out, STAGE)
        _clear(out)
        return prepare_out_dir(out, True)
    interrupted = _interrupted(out)
    if (out / "optimize.json").exists() and not interrupted:
        raise OutputExistsError(f"Output folder {str(out)!r} already holds a finished search (optimize.json). Use "
                                "--force to search again, or choose another --out.")
    if out.is_dir() and not (out / STATE_FILE).exists() and not interrupted:
        check_out_dir(out, False)  # foreign files: refused without force
    prepare_out_dir(out, True)
    begin_stage(out, STAGE)
    return out


def _interrupted(out: Path) -> bool:
    """Whether ``out``'s manifest is marked incomplete for this stage (a search killed before its
    results were all written): the folder is this command's, to continue."""
    from edgekit.errors import InputError
    from edgekit.manifest import INCOMPLETE, MANIFEST, load_manifest

    if not (out / MANIFEST).is_file():
        return False
    try:
        mark = load_manifest(out, allow_incomplete=True).get(INCOMPLETE)
    except InputError:
        return False
    return isinstance(mark, dict) and isinstance(mark.get("stages"), list) and STAGE in mark["stages"]


def _clear(out: Path) -> None:
    """Remove an earlier search from ``out``: its state, candidates, reports, winner files and manifest stage."""
    from edgekit.manifest import drop_stage

    winner = [p for p in drop_stage(out, STAGE) + _winner_files(out) if "/" not in p and p != INPUT_MODEL]
    for name in (STATE_FILE, CANDIDATES, *output.FILES, *winner):
        p = out / name
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)


def _winner_files(out: Path) -> list[str]:
    """The winner's copies an earlier search's optimize.json names (none when it is unreadable)."""
    from edgekit.artifacts import read_json

    try:
        report = read_json(out / "optimize.json")
    except (OSError, ValueError):
        return []
    names = [report.get(k) for k in ("winner_artifact", "winner_model")] if isinstance(report, dict) else []
    return [n for n in names if isinstance(n, str) and n]


def _model_file(model_or_path: Any, handle: Any, model: Any, out: Path, save_model: Callable) -> Path:
    """The input model as a file (compress and the recipe read it): its own path, or saved into ``out``."""
    path = model_or_path if isinstance(model_or_path, (str, os.PathLike)) else getattr(handle, "path", None)
    if path and Path(path).is_file():
        return Path(path).resolve()
    dest = out / INPUT_MODEL
    if not dest.exists():
        save_model(model, dest)
    return dest.resolve()


def margin_note(config: OptimizeConfig, samples: int) -> str | None:
    """One line, before the search, when the automatic margin of a candidate that disagrees with
    the input model on a single validation image already exceeds the accuracy limit."""
    if config.accuracy_margin != "auto" or not samples:
        return None
    one = config.margin_pt(1, samples)
    if one < config.max_accuracy_drop:
        return None
    return (f"note: the validation split has {samples} images, so a candidate that disagrees with the input model "
            f"on even one of them carries a margin of {one:.2f} pt, above the {config.max_accuracy_drop:g} pt limit: "
            f"only candidates that agree on every validation image can meet it. Give a larger --val-split (or "
            f"--limit), or a fixed --accuracy-margin.")


def data_section(dataset: Dataset) -> dict[str, Any]:
    """The recipe data section that loads ``dataset`` again (no limit: pass ``data=`` when one was used)."""
    i = dataset.info
    return {"spec": i.spec, "seed": i.seed, "test_split": i.test_split, "val_split": i.val_split, "limit": None,
            "preprocess": i.preprocess}


def _report(ev: Evaluator, config: OptimizeConfig, dataset: Dataset, handle: Any, sens: list[LayerSensitivity],
            space: Any, model_or_path: Any, model_path: Path, data: Mapping[str, Any], runtime: str) -> dict[str, Any]:
    from edgekit.devices.isa import describe_cpu, host_cpu

    results = [dict(ev.state.results[k], missed=missed(ev.state.results[k], config)) for k in ev.order]
    feasible = [r for r in results if not r["missed"]] or results  # the front marks what a user may pick
    front = [feasible[i]["key"] for i in pareto_front(feasible)]
    winner, met = best(results, config)
    holdout = None
    if winner is not None and winner.get("node"):  # measured on a worker: latency as on this machine too
        from edgekit.runtimes import make_runner

        lat = make_runner(runtime, ev.out / winner["artifact"], threads=1).latency(dataset.x_val[:1],
                                                                                  runs=config.latency_runs)
        winner = dict(winner, worker_latency_us=winner["latency_us"], latency_us=float(lat["p50_ms"]) * 1e3)
    if winner is not None:
        ref = float((handle.predict(dataset.x_test).argmax(1) == dataset.y_test).mean())
        m = measure_artifact(ev.out / winner["artifact"], runtime, dataset.x_test, dataset.y_test, 1)
        holdout = {"accuracy": m["accuracy"], "reference_accuracy": ref, "drop_pt": 100.0 * (ref - m["accuracy"]),
                   "samples": int(len(dataset.y_test)),
                   "met": 100.0 * (ref - m["accuracy"]) <= config.max_accuracy_drop + 1e-9}
    return {
        "format": "edgekit-optimize/1",
        "model": str(model_or_path) if isinstance(model_or_path, (str, os.PathLike)) else model_path.name,
        "model_path": str(model_path), "config": config.to_dict(), "data": dict(data),
        "reference_val_accuracy": ev.reference_accuracy, "validation_samples": int(len(dataset.y_val)),
        "margin_note": margin_note(config, int(len(dataset.y_val))),
        "latency_note": f"LiteRT, batch 1, 1 thread, median of {config.latency_runs} runs on {describe_cpu(host_cpu())}",
        "space": space.to_dict(), "sensitivity": [s.to_dict() for s in sens], "candidates": results,
        "pareto_front": front, "winner": winner, "met": met, "holdout": holdout,
        "failed": list(ev.state.failed.values()),
        "recipe": str(ev.out / "recipe.yaml"),
    }


def _recipe_yaml(report: Mapping[str, Any], config: OptimizeConfig, data: Mapping[str, Any], model_path: Path) -> str:
    """The winner as a recipe ``edgekit run`` rebuilds (validated by parsing it back)."""
    from edgekit.recipe.schema import Recipe

    w = report["winner"]
    compress = None
    if w is not None and not w["candidate"]["baseline"]:
        from edgekit.optimize.space import Candidate

        compress = Candidate.from_dict(w["candidate"]).compress_config(config).to_dict()
    gates: dict[str, Any] = {"targets": [config.target], "max_accuracy_drop": config.max_accuracy_drop}
    if config.max_size is not None:
        gates["max_size"] = config.max_size
    d = {"name": f"optimize-{model_path.stem}",
         "description": (f"edgekit optimize winner: {w['key']}" if w else "edgekit optimize: nothing measured"),
         "data": dict(data), "model": {"path": str(model_path)}, "compress": compress,
         "export": {"targets": [config.target], "representative_samples": config.representative_samples},
         "gates": gates}
    return Recipe.from_dict(d).to_yaml()
