"""CLI commands of the train stage: models, train, evaluate, sweep."""
from __future__ import annotations

import contextlib
import json

import click

from edgekit.cli.common import (
    command_line, dataset_options, force_option, load_checked_dataset, load_dataset_from, load_model_from,
    model_dataset_options, progress_printer, quiet_option, resolve_dataset_options, signature_option, table,
    trust_option,
)
from edgekit.locking import locked_out, out_lock

OPTIMIZER_NAMES = "gd, sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw"
SCHEDULE_NAMES = "constant, exponential, step, cosine"


def train_options(f):
    """Options that build a TrainConfig (shared by train and sweep)."""
    opts = [
        click.option("--lr", type=float, default=None, help="Initial learning rate (default: per optimizer)."),
        click.option("--decay-rate", type=float, default=0.9, show_default=True, help="exponential: factor per epoch."),
        click.option("--step-every", type=int, default=3, show_default=True, help="step: epochs between drops."),
        click.option("--step-factor", type=float, default=0.5, show_default=True, help="step: factor of each drop."),
        click.option("--cosine-alpha", type=float, default=0.0, show_default=True, help="cosine: final lr fraction."),
        click.option("--l2", type=float, default=0.0, show_default=True,
                     help="L2 penalty: loss += l2 * sum(w^2) over conv/dense kernels."),
        click.option("--epochs", type=int, default=10, show_default=True),
        click.option("--batch-size", type=int, default=64, show_default=True),
        click.option("--augment", is_flag=True, help="Random shifts (±2 px) of training images (in the input pipeline, not the model)."),
        click.option("--early-stopping", type=int, default=0, show_default=True,
                     help="Stop after this many epochs without val_loss improvement (0: off)."),
        click.option("--strategy", default="default", show_default=True,
                     help="tf.distribute strategy: auto, default, mirrored, multiworker, tpu."),
        click.option("--deterministic", is_flag=True,
                     help="Turn on TensorFlow op determinism (same seed gives the same result even where "
                          "kernels could differ; a few % slower)."),
        click.option("--mixed-precision", is_flag=True, help="Train in mixed precision."),
        click.option("--jit", is_flag=True, help="Compile the train step with XLA."),
        click.option("--model-option", "model_option", multiple=True, metavar="KEY=VALUE",
                     help="A zoo model's own option, repeatable: --model-option alpha=0.5 (mobilenet-v1)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _config(kw: dict, **fixed):
    from edgekit.train import TrainConfig

    keys = ("lr", "decay_rate", "step_every", "step_factor", "cosine_alpha", "l2", "epochs", "batch_size",
            "early_stopping", "augment", "deterministic", "strategy", "mixed_precision", "jit")
    return TrainConfig(**{k: kw.pop(k) for k in keys}, model_options=_model_options(kw.pop("model_option", ())),
                       **fixed)


def _model_options(pairs) -> dict:
    """``("alpha=0.5",)`` as ``{"alpha": 0.5}`` (values read as JSON numbers/booleans when they parse)."""
    from edgekit.errors import UsageError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--model-option must be KEY=VALUE, e.g. alpha=0.5. Received: {pair!r}.")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


@click.command("models")
@click.option("--input-shape", default="28,28,1", show_default=True, help="H,W,C of the images.")
@click.option("--classes", type=int, default=10, show_default=True)
def models_cmd(input_shape: str, classes: int) -> None:
    """List the model zoo with parameters and MACs per image."""
    from edgekit.errors import UsageError
    from edgekit.models import DESCRIPTIONS, MODELS, build_model, model_summary

    try:
        shape = tuple(int(v) for v in input_shape.split(","))
    except ValueError:
        raise UsageError(f"--input-shape must be H,W,C integers. Received: {input_shape!r}.") from None
    rows = []
    for name in MODELS.names():
        s = model_summary(build_model(name, shape, classes))
        rows.append({"model": name, "params": f"{s['params']:,}", "MACs": f"{s['macs']:,}",
                     "structure": DESCRIPTIONS[name]})
    click.echo(table(rows))
    click.echo(f"Counted at input {'x'.join(map(str, shape))} with {classes} classes; other inputs change both "
               "(e.g. --input-shape 96,96,3 --classes 2 for visual wake words).")


@click.command("train")
@click.option("--model", default="cnn", show_default=True,
              help="Zoo model: cnn, cnn-small, ds-cnn, mlp, resnet8, mobilenet-v1, or a pretrained backbone: "
                   "mobilenet-v2, mobilenet-v3-small, efficientnet-b0, resnet50 (edgekit models lists them).")
@click.option("--optimizer", default="adam", show_default=True, help=f"One of: {OPTIMIZER_NAMES}.")
@click.option("--schedule", default="constant", show_default=True, help=f"One of: {SCHEDULE_NAMES}.")
@train_options
@dataset_options
@click.option("--teacher", default=None, type=click.Path(),
              help="Distill from this trained .keras model (its outputs join the labels in the loss).")
@click.option("--distill-alpha", type=float, default=0.5, show_default=True,
              help="With --teacher: weight of the label loss; 1 - alpha weighs the teacher's (KL at --temperature).")
@click.option("--temperature", type=float, default=4.0, show_default=True,
              help="With --teacher: softmax temperature of the distillation term.")
@click.option("--pretrained", default=None, metavar="imagenet|PATH",
              help="Backbones: start from Keras' ImageNet weights (from ~/.keras/models/, downloaded when online) or "
                   "a weights file of the backbone (.h5, or a trained edgekit .keras model of it).")
@click.option("--freeze-backbone", is_flag=True,
              help="With --pretrained: train only the head (Dropout + Dense) on the frozen backbone.")
@click.option("--fine-tune-from", default=None, metavar="LAYER",
              help="After the --freeze-backbone phase: unfreeze the backbone from this layer (name, or index in "
                   "model.layers) on and train again; BatchNorm layers stay frozen.")
@click.option("--fine-tune-lr", type=float, default=None,
              help="Learning rate of the --fine-tune-from phase (default: --lr / 10).")
@click.option("--fine-tune-epochs", type=int, default=None,
              help="Epochs of the --fine-tune-from phase (default: --epochs).")
@click.option("--out", required=True, type=click.Path(), help="Output folder for model.keras and its reports.")
@click.option("--workers", default=None,
              help="multiworker: every worker's host:port, comma-separated, same list on each (else TF_CONFIG).")
@click.option("--worker-index", type=int, default=None, help="multiworker: this worker's position in --workers.")
@click.option("--resume", is_flag=True,
              help="Continue the interrupted run in --out from its last completed epoch (give the same options).")
@force_option
@quiet_option
def train_cmd(model: str, optimizer: str, schedule: str, out: str, force: bool, quiet: bool,
              workers: str | None, worker_index: int | None, resume: bool, teacher: str | None,
              distill_alpha: float, temperature: float, pretrained: str | None, freeze_backbone: bool,
              fine_tune_from: str | None, fine_tune_lr: float | None, fine_tune_epochs: int | None, **kw) -> None:
    """Train a zoo model and write model.keras, history.json, curves.png, manifest.json.

    Every completed epoch is saved under OUT/backup until the model is written: a run that
    was stopped (Ctrl-C, SIGTERM, SIGKILL) continues with the same command plus --resume
    (not a two-phase --fine-tune-from run: that one starts over).
    """
    from edgekit.artifacts import check_out_dir
    from edgekit.errors import UsageError
    from edgekit.train import train
    from edgekit.train.resume import TrainingInterrupted, precheck
    from edgekit.train.strategy import will_be_chief

    seed = kw["seed"]
    if fine_tune_from is not None and fine_tune_from.strip().lstrip("-").isdigit():
        fine_tune_from = int(fine_tune_from)  # an index in model.layers
    config = _config(kw, model=model, optimizer=optimizer, schedule=schedule, seed=seed, teacher=teacher,
                     distill_alpha=distill_alpha, temperature=temperature, pretrained=pretrained,
                     freeze_backbone=freeze_backbone, fine_tune_from=fine_tune_from, fine_tune_lr=fine_tune_lr,
                     fine_tune_epochs=fine_tune_epochs)
    if resume and config.two_phase:
        raise UsageError("--resume: a two-phase run (--fine-tune-from) keeps no epoch backup, so it cannot be "
                         "resumed; start it over with --force.")
    if resume and force:
        raise UsageError("--resume continues the run in --out and --force starts it over; give one of them.")
    if workers is not None or worker_index is not None:
        from edgekit.train.workers import export_tf_config, resolve

        if config.strategy != "multiworker":
            raise UsageError("--workers/--worker-index need --strategy multiworker. "
                             f"Received: --strategy {config.strategy}.")
        export_tf_config(resolve(workers, worker_index))
    chief = will_be_chief(config.strategy)  # validates TF_CONFIG; only the chief writes (and locks) --out
    with out_lock(out, "train") if chief else contextlib.nullcontext():
        if chief:
            precheck(out, resume, force)  # fail before loading data
            check_out_dir(out, force or resume, expect=("model.keras",))
        dataset = load_dataset_from(kw)
        verbose = 0  # Keras prints no bar of its own: the one progress display shows the epochs
        progress = None if (quiet or verbose) else progress_printer(quiet)
        try:
            res = train(config, dataset, out=out, force=force, resume=resume, verbose=verbose, progress=progress)
        except TrainingInterrupted as e:
            if config.two_phase:
                raise TrainingInterrupted(f"{e} To start over, run: {command_line(add=('--force',))}", e.signum) \
                    from None
            raise TrainingInterrupted(f"{e} To continue, run: {command_line(drop=('--force',), add=('--resume',))}",
                                      e.signum) from None
    m = res.metrics
    if res.out_dir is None:  # a multiworker task other than the chief
        click.echo(f"{config.model}: worker done, test accuracy {m['test_accuracy']:.4f}; "
                   f"the chief writes {out}/model.keras")
        return
    click.echo(
        f"{config.model}: test accuracy {m['test_accuracy']:.4f} on {dataset.info.sizes['test']} holdout images, "
        f"{m['params']:,} params, {m['macs']:,} MACs, {m['train_seconds']:.1f}s "
        f"({m['images_per_second']:.0f} images/s) -> {out}/model.keras"
    )
    if res.transfer:
        t = res.transfer
        phases = ", then ".join(
            f"{p['phase']} {p['epochs_run']} epochs at lr {p['lr']:.3g}"
            + (f" from layer {p['from_layer']}" if "from_layer" in p else "") for p in t["phases"])
        click.echo(f"pretrained: {t['layers']} backbone layers from {t['file']} (matched by {t['matched_by']}); "
                   f"{phases}; pixels read as --preprocess {t['preprocess']}")


@click.command("evaluate")
@click.argument("model_path", metavar="MODEL", type=click.Path())
@model_dataset_options(mismatch_flag=False)
@click.option("--runs", type=int, default=100, show_default=True, help="Timed runs for batch-1 latency.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@signature_option
@trust_option
def evaluate_cmd(model_path: str, runs: int, as_json: bool, **kw) -> None:
    """Accuracy, loss, confusion matrix of MODEL (any format) on the holdout split; Keras latency for Keras models."""
    from edgekit.train import evaluate

    rec = resolve_dataset_options(kw, [model_path], progress_printer(bool(as_json)))
    dataset = load_checked_dataset(kw, rec, calibrates=False)
    r = evaluate(load_model_from(model_path, dataset, kw), dataset, runs=runs)
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    click.echo(f"accuracy {r['test_accuracy']:.4f}  loss {r['test_loss']:.4f}  ({dataset.info.sizes['test']} images, "
               f"{r['format']} on {r['framework']})")
    if "latency_batch1" in r:
        b1, bb = r["latency_batch1"], r["latency_batched"]
        click.echo(f"latency batch-1 p50 {b1['p50_ms'] * 1e3:.1f} us  p90 {b1['p90_ms'] * 1e3:.1f} us")
        click.echo(f"batched ({bb['batch']}) p50 {bb['p50_ms'] * 1e3:.1f} us = {bb['images_per_second']:.0f} images/s")
    click.echo("confusion matrix (rows: true class, columns: predicted):")
    for i, row in enumerate(r["confusion_matrix"]):
        click.echo(f"  {i:>2}: " + " ".join(f"{v:>4}" for v in row))


@click.command("sweep")
@click.option("--models", default="cnn", show_default=True, help="Comma-separated zoo models.")
@click.option("--optimizers", default="sgd,momentum,adam", show_default=True, help="Comma-separated optimizers.")
@click.option("--schedules", default="constant", show_default=True, help="Comma-separated schedules.")
@click.option("--target-accuracy", type=float, default=0.95, show_default=True,
              help="Validation accuracy whose epochs/seconds to reach are reported.")
@train_options
@dataset_options
@click.option("--out", required=True, type=click.Path(), help="Output folder for sweep.md/csv and runs.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs trained at once, as Ray tasks (pip install 'edgekit[ray]'); 1: in this process.")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="Join this Ray cluster (default: $RAY_ADDRESS, else a local one when --workers > 1).")
@click.option("--worker-threads", type=click.IntRange(min=1), default=None,
              help="TensorFlow threads per run on the workers (default: the cores shared between them).")
@force_option
@quiet_option
@locked_out("sweep")
def sweep_cmd(models: str, optimizers: str, schedules: str, target_accuracy: float, out: str, workers: int,
              ray_address: str | None, worker_threads: int | None, force: bool, quiet: bool, **kw) -> None:
    """Train every model x optimizer x schedule combination and compare them."""
    from edgekit.artifacts import check_out_dir
    from edgekit.train import sweep
    from edgekit.train.sweep import to_markdown

    split = lambda s: [v.strip() for v in s.split(",") if v.strip()]
    seed = kw["seed"]
    mods, opts, scheds = split(models), split(optimizers), split(schedules)
    for m in mods:
        for o in opts:
            for s in scheds:
                _config(dict(kw), model=m, optimizer=o, schedule=s, seed=seed)  # validate all up front
    base = _config(kw, seed=seed)
    check_out_dir(out, force)
    dataset = load_dataset_from(kw)
    rows = sweep(base, dataset, models=mods, optimizers=opts, schedules=scheds,
                 target_accuracy=target_accuracy, out=out, force=True, progress=progress_printer(quiet),
                 workers=workers, ray_address=ray_address, worker_threads=worker_threads)
    click.echo(to_markdown(rows, target_accuracy))


COMMANDS = [models_cmd, train_cmd, evaluate_cmd, sweep_cmd]
