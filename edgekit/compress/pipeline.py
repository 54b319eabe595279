"""The compression stage: prune -> cluster -> quantize, each a short fine-tune on a fresh
copy, measured after every stage, written as model.keras + compression.json/.md."""
from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from edgekit.artifacts import gzip_size, prepare_out_dir
from edgekit.compress import channels as narrowing
from edgekit.compress import cluster as clustering
from edgekit.compress import metrics as M
from edgekit.compress import prune as pruning
from edgekit.compress import quantize as quantization
from edgekit.compress import resolution
from edgekit.compress.bn_adapt import adapt_batchnorm
from edgekit.compress.config import CompressConfig
from edgekit.compress.layers import check_plain_keras, clone
from edgekit.data import Dataset
from edgekit.errors import AccuracyLost, UsageError
from edgekit.interrupt import interruptible
from edgekit.progress import counted, prefixed

COMPRESS_FILES = ("model.keras", "compression.json", "compression.md")
Progress = Callable[[str], None]


@dataclasses.dataclass
class CompressResult:
    """What :func:`compress` returns: the compressed model, the config and the measurements."""

    model: Any  # the QAT model after --quantize qat, else the stripped float model
    config: CompressConfig
    metrics: dict[str, Any]
    out_dir: Path | None = None

    @property
    def technique(self) -> str:
        return self.config.technique

    @property
    def final(self) -> dict[str, Any]:
        return self.metrics["final"]


@dataclasses.dataclass(frozen=True)
class Plan:
    """What each stage will do, resolved against the model before anything runs."""

    prune_targets: dict[str, float]
    cluster_counts: dict[str, int]
    prune_steps: int
    channels: narrowing.ChannelPlan | None = None
    stem: str | None = None  # the Conv2D whose stride doubles (config.downsample)


def plan(model, dataset: Dataset, config: CompressConfig) -> Plan:
    """Check the config against the model (names, layer types, schedule); raise before any work."""
    chans = narrowing.plan_channels(model, config.channels, config.skip_layers) if config.narrows else None
    if chans is not None and not chans.keep:
        raise UsageError("Channel pruning is on but removes no channel: every layer is skipped, feeds the "
                         f"output or keeps all its channels at that ratio. Received: channels={config.channels!r}.")
    targets = pruning.layer_targets(model, config)
    counts = clustering.layer_clusters(model, config)
    if config.prunes and not targets:
        raise UsageError("Pruning is on but every prunable layer is skipped or has target 0.")
    if config.clusters and not counts:
        raise UsageError("Clustering is on but every clusterable layer is skipped.")
    stem = resolution.stem(model) if config.downsamples else None
    if not targets and not counts and chans is None and stem is None and config.quantize == "none":
        raise UsageError("Nothing to do: set --downsample, --channels, --prune, --prune-layer, --cluster, --cluster-layer or --quantize.")
    if config.qat:
        quantization.check_quantizable(model)
    steps = 0
    if targets:
        from edgekit.train.trainer import batch_size_for

        tc = config.train_config("prune")
        steps = math.ceil(len(dataset.x_train) / batch_size_for(tc, len(dataset.x_train))) * tc.epochs
        pruning.schedule_steps(config, steps)
    return Plan(targets, counts, steps, chans, stem)


def compress(
    model_or_path,
    dataset: Dataset,
    config: CompressConfig | Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
    measure: bool = True,
) -> CompressResult:
    """Compress a trained model; with ``out``, write model.keras, compression.json/.md and the manifest.

    The input model (object and file) is never modified: every stage works on a copy.
    ``measure=False`` records only the Keras accuracy, parameters and seconds of each stage (no
    .tflite conversions, sizes or latencies), for callers that export and measure the result
    themselves (``edgekit.optimize``); it writes nothing, so ``out`` must be None.
    """
    from edgekit.models import ModelHandle, check_fits, load
    from edgekit.models.summary import model_summary
    from edgekit.train import fit, seed_everything
    from edgekit.train.distill import Distillation

    if config is None:
        config = CompressConfig()
    elif not isinstance(config, CompressConfig):
        config = CompressConfig.from_dict(config)
    if not isinstance(model_or_path, (str, os.PathLike, ModelHandle)):
        check_plain_keras(model_or_path)  # an object that is no tf_keras model: say so in compress's words
    handle = load(model_or_path)
    model = handle.keras_model("compress")
    check_plain_keras(model)
    check_fits(handle, dataset)
    p = plan(model, dataset, config)
    if not measure and out is not None:
        raise UsageError("compress(measure=False) writes no reports: call it without out. Received: out.")
    out_dir = prepare_out_dir(out, force, expect=COMPRESS_FILES) if out is not None else None
    say = progress or (lambda msg: None)
    seed_everything(config.seed)

    n_rep = config.representative_samples
    current = clone(model)
    t0 = time.perf_counter()
    base_acc = M.accuracy(current, dataset)
    inputs, input_row = _input_figures(current, dataset, base_acc, n_rep, t0) if measure else (
        {"accuracy": base_acc, "params": int(current.count_params()), "seconds": time.perf_counter() - t0},
        {"stage": "input", "accuracy": base_acc, "accuracy_drop_pt": 0.0, "seconds": 0.0})
    say(f"input: accuracy {base_acc:.4f}" + (f", float32 .tflite {inputs['tflite_float32_bytes']:,} B, int8 .tflite "
                                            f"{inputs['tflite_int8_bytes']:,} B" if measure else ""))
    stages = [input_row]
    deploy = current
    # the uncompressed input model teaches the fine-tunes that distill (its outputs computed once per image)
    structure = "channels" if p.channels is not None else "resolution" if p.stem else None  # one fine-tune
    stages_run = [name for name, on in ((structure, structure), ("prune", p.prune_targets),
                                        ("cluster", p.cluster_counts), ("quantize", config.qat)) if on]
    teacher = (Distillation(model, config.distill_alpha, config.temperature)
               if any(map(config.distills, stages_run)) else None)

    ran: dict[str, int] = {}  # epochs each fine-tune ran (fewer than its cap when it stopped early)

    def tune(stage: str, m, callbacks=None) -> None:
        tc = config.train_config(stage)
        with interruptible():  # Keras fit stops cleanly on Ctrl-C
            rows = fit(m, dataset, tc, epochs=tc.epochs, callbacks=callbacks,
                       distill=teacher if config.distills(stage) else None,
                       progress=prefixed(say, f"[{stage}] ") if progress else None)
        ran[stage] = len(rows)
        if config.stops_early(stage) and len(rows) < tc.epochs:
            say(f"{stage}: validation loss stopped improving; {len(rows)} of at most {tc.epochs} epochs, "
                "the best kept")

    def adapt(stage: str, m) -> None:
        """BatchNorm statistics of ``m`` re-estimated after ``stage`` changed the weights."""
        if config.bn_adapt:
            n = adapt_batchnorm(m, dataset.x_train, seed=config.seed)
            if n:
                say(f"{stage}: BatchNorm statistics re-estimated on training images ({n} layers)")

    def record(stage: str, deploy_model, float_model, seconds: float, **extra: Any) -> None:
        if measure:
            row = M.stage_metrics(stage, deploy_model, float_model, dataset, base_acc, seconds, n_rep)
        else:
            acc = M.accuracy(deploy_model, dataset)
            row = {"stage": stage, "accuracy": acc, "accuracy_drop_pt": (base_acc - acc) * 100.0, "seconds": seconds}
        summary = model_summary(float_model)
        row.update(params=summary["params"], macs=summary["macs"], **extra)
        if stage in ran:
            row["epochs"] = ran[stage]
        stages.append(row)
        say(f"{stage}: accuracy {row['accuracy']:.4f} (drop {row['accuracy_drop_pt']:+.2f} pt)" + (
            f", sparsity {row['sparsity']:.3f}, int8 .tflite {row['tflite_int8_bytes']:,} B / gzip "
            f"{row['tflite_int8_gzip_bytes']:,} B" if measure else "") + f", {seconds:.1f}s")

    n_stages = len(stages_run)
    done = iter(range(1, n_stages + 1))

    def step(text: str) -> str:
        """``[i/n] text``: a counted message (a progress bar on a terminal)."""
        i = next(done)
        return counted("compress", i, n_stages, f"[{i}/{n_stages}] {text}")

    if structure:
        t = time.perf_counter()
        strided = f"{p.stem} strides {config.downsample}x further" if p.stem else ""
        removed = p.channels.removed() if p.channels is not None else {}
        say(step(f"{structure}: " + "; ".join(x for x in (strided, "remove " + ", ".join(
            f"{k} {v}/{p.channels.sizes[k]}" for k, v in removed.items()) if removed else "") if x)))
        if p.stem:
            current = resolution.downsample(current, config.downsample)
        if p.channels is not None:
            current = narrowing.apply_channels(current, p.channels)
        deploy = current
        tune(structure, current)
        adapt(structure, current)
        record(structure, deploy, current, time.perf_counter() - t,
               **({"method": "L1 filter norm", "channels_removed": removed} if removed else {}),
               **({"stem": p.stem, "downsample": config.downsample} if p.stem else {}))
    if p.prune_targets:
        t = time.perf_counter()
        say(step(f"prune: {', '.join(f'{k}={v:g}' for k, v in p.prune_targets.items())} ({config.prune_schedule}"
                 f"{', ' + config.prune_structure if config.prune_structure else ''})"))
        wrapped = pruning.apply_pruning(current, p.prune_targets, config, p.prune_steps)
        tune("prune", wrapped, pruning.callbacks())
        current = deploy = pruning.strip(wrapped)
        adapt("prune", current)
        dense = pruning.unprunable_layers(current)  # e.g. DepthwiseConv2D: tfmot prunes none of its weights
        if dense:
            say(f"prune: left dense (tfmot prunes no weight of): {', '.join(dense)}")
        # a small layer (first conv, classifier) pruned hard loses whole filters: say so, it is where accuracy goes
        emptied = M.emptied_channels(current)
        if emptied:
            say(f"prune: {pruning.describe_emptied(emptied)}")
        record("prune", deploy, current, time.perf_counter() - t, method=config.prune_schedule,
               **({"left_dense": dense} if dense else {}), **({"emptied_channels": emptied} if emptied else {}))
    counts = dict(p.cluster_counts)  # what clustering really applies (fewer after a hard prune)
    if p.cluster_counts:
        t = time.perf_counter()
        refit: dict[str, str] = {}
        if p.prune_targets:  # a layer pruned to a few weights cannot hold its clusters on both sides of zero
            counts, refit = clustering.fit_sparse_clusters(current, counts)
        say(step(f"cluster: {', '.join(f'{k}={v}' for k, v in counts.items()) or 'no layer'} "
                 f"({config.cluster_init}{', sparsity-preserving' if p.prune_targets else ''})"))
        if refit:
            say(f"cluster: fewer clusters than asked after pruning: {'; '.join(refit.values())}")
        if counts:
            wrapped = clustering.apply_clustering(current, counts, config, preserve_sparsity=bool(p.prune_targets))
            tune("cluster", wrapped)
            current = deploy = clustering.strip(wrapped)
            adapt("cluster", current)
        record("cluster", deploy, current, time.perf_counter() - t, method=config.cluster_init,
               **({"clusters_refit": refit} if refit else {}))
    if config.qat:
        t = time.perf_counter()
        scheme = quantization.scheme_name(bool(p.prune_targets), bool(counts))
        say(step(f"quantize: {scheme}"))
        wrapped = quantization.apply_qat(current, bool(p.prune_targets), bool(counts),
                                         calibration=dataset.representative(n_rep) if config.qat_calibrate else None)
        # no BatchNorm adaptation after QAT: the int8 converter folds BatchNorm into the conv kernels, whose
        # learned fake-quant ranges fit the statistics QAT ran with (re-estimated here: 100% -> 62.5% int8
        # agreement on a tiny MobileNetV1); the stages before it leave the statistics settled
        tune("quantize", wrapped)
        deploy, current = quantization.finish_qat(wrapped, current, bool(counts))
        record("quantize", deploy, current, time.perf_counter() - t, method=scheme)
    elif config.quantize == "ptq":
        record("quantize", deploy, current, 0.0, method="ptq (at export)")

    final = dict(stages[-1])
    metrics = {
        "technique": config.technique,
        "input": inputs,
        "stages": stages,
        "final": final,
        "per_layer": M.per_layer(current, p.prune_targets, counts),
        "ratios": M.ratios(inputs, final) if measure else {},
    }
    metrics["validation"] = validation_drop(model, deploy, dataset, config.max_drop)
    result = CompressResult(deploy, config, metrics, out_dir)
    if out_dir is not None:
        write_run(result, dataset)
    check_drop(result)
    return result


def validation_drop(model, deploy, dataset: Dataset, limit: float | None) -> dict[str, Any]:
    """The input and compressed models' accuracy on the validation split (the holdout when there is
    none) and the drop in points, against ``limit``."""
    x, y, split = (dataset.x_val, dataset.y_val, "validation") if len(dataset.x_val) else \
        (dataset.x_test, dataset.y_test, "holdout")
    before, after = M.accuracy_on(model, x, y), M.accuracy_on(deploy, x, y)
    return {"split": split, "images": int(len(y)), "input_accuracy": before, "accuracy": after,
            "drop_pt": (before - after) * 100.0, "max_drop_pt": limit}


def check_drop(result: CompressResult) -> None:
    """AccuracyLost when the compressed model lost more than ``max_drop`` points: the run is written,
    but it is no usable model. The likely cause is the stage that lost the most."""
    v = result.metrics["validation"]
    if v["max_drop_pt"] is None or not v["drop_pt"] > v["max_drop_pt"]:
        return
    rows = result.metrics["stages"]  # the input row first, at drop 0
    losses = [(b, b.get("accuracy_drop_pt", 0.0) - a.get("accuracy_drop_pt", 0.0)) for a, b in zip(rows, rows[1:])]
    worst, lost = max(losses, key=lambda pair: pair[1]) if losses else (None, 0.0)
    cause = f"the {worst['stage']} stage lost the most ({lost:+.2f} pt on the holdout)" if worst else ""
    err = AccuracyLost(
        f"The compressed model lost {v['drop_pt']:.2f} pt of {v['split']} accuracy ({v['input_accuracy']:.4f} -> "
        f"{v['accuracy']:.4f} on {v['images']} images), over the limit of {v['max_drop_pt']:g} pt; {cause}. "
        "Fine-tune longer (--epochs-per-stage, or that stage's own epochs), compress that stage less, or raise "
        "--max-drop"
        + (f"; the results are in {result.out_dir}" if result.out_dir is not None else "") + ".")
    err.result = result  # type: ignore[attr-defined]
    raise err


def _input_figures(model, dataset: Dataset, base_acc: float, n_rep: int, t0: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """The input model's figures (float32 and int8 .tflite sizes, accuracy, deploy figures) and its stage row."""
    from edgekit.models.summary import model_summary

    f32 = M.tflite_bytes(model, dataset, "float32")
    input_row = M.stage_metrics("input", model, model, dataset, None, 0.0, n_rep)
    inputs = {
        "accuracy": base_acc,
        "tflite_float32_bytes": len(f32),
        "tflite_float32_gzip_bytes": gzip_size(f32),
        "tflite_int8_bytes": input_row["tflite_int8_bytes"],
        "tflite_int8_gzip_bytes": input_row["tflite_int8_gzip_bytes"],
        "tflite_int8_accuracy": input_row["tflite_int8_accuracy"],
        "keras_bytes": input_row["keras_bytes"],
        **{k: input_row[k] for k in ("tflm_arena_bytes", "litert_us", "tflm_us")},
        "params": int(model.count_params()),
        "macs": model_summary(model)["macs"],
        "seconds": time.perf_counter() - t0,
    }
    return inputs, input_row


def write_run(result: CompressResult, dataset: Dataset) -> dict[str, Any]:
    """Write model.keras, compression.json and compression.md; merge the stage into the manifest.

    The manifest is marked incomplete before the first file is replaced and written last, so a
    run killed in between leaves a folder readers refuse rather than a mix of old and new files."""
    from edgekit.compress.report import write_reports
    from edgekit.manifest import begin_stage, write_stage
    from edgekit.models import save_model

    out = result.out_dir
    begin_stage(out, "compress")
    save_model(result.model, out / "model.keras")
    write_reports(out, result.metrics, result.config)
    files = [("model.keras", "keras-qat" if result.config.qat else "keras"),
             ("compression.json", "report"), ("compression.md", "report")]
    return write_stage(out, "compress", files, config=result.config, metrics=result.metrics, dataset=dataset.info,
                       extra={"technique": result.technique})
