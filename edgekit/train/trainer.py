"""The training loop: build, compile, fit, measure, and write the run's files."""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekit._lazy import keras, tf
from edgekit.artifacts import prepare_out_dir, write_json
from edgekit.data import Dataset
from edgekit.errors import UsageError
from edgekit.manifest import write_stage
from edgekit.models import build_model, model_summary, save_model
from edgekit.models.backbones import is_backbone
from edgekit.progress import counted
from edgekit.train import resume as resume_state
from edgekit.train import transfer
from edgekit.train.checkpoints import peer_failures, remove_empty_backup, restart_callbacks
from edgekit.train.config import TrainConfig
from edgekit.train.optimizers import FULL_BATCH, make_optimizer
from edgekit.train.schedules import make_schedule
from edgekit.train.precision import policy_for_strategy, precision_policy, to_float32, with_float32_output
from edgekit.train.strategy import make_strategy, will_be_chief
from edgekit.train.xla import allow_xla, check_jit_strategy

TRAIN_FILES = ("model.keras", "history.json", "curves.png")
# train steps per call into the graph: measured +14% steady-state images/s for the reference CNN
# on 2 cores (benchmarks/train_throughput.py), same weights as one step per call
STEPS_PER_EXECUTION = 16
# ...but a backbone's graph (150+ layers) traces ~2x longer with 16 (MobileNetV2 0.35 at 32x32: first
# epoch 29 s vs 15 s on 2 shared cores) and gains nothing per step, so backbones run one step per call
BACKBONE_STEPS_PER_EXECUTION = 1
Progress = Callable[[str], None]


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns: the model, per-epoch history and the run's metrics."""

    model: Any
    config: TrainConfig
    history: list[dict[str, float]]
    metrics: dict[str, Any]
    summary: dict[str, Any]
    out_dir: Path | None = None
    transfer: dict[str, Any] | None = None  # pretrained weights and phases (edgekit.train.transfer)

    @property
    def test_accuracy(self) -> float:
        return self.metrics["test_accuracy"]


def _epoch_log_class():
    K = keras()

    class _EpochLog(K.callbacks.Callback):
        """Records per epoch: metrics, the learning rate actually used, seconds, images/s."""

        def __init__(self, n_images: int, progress: Progress | None, epochs: int,
                     rows: list[dict[str, float]] | None = None):
            super().__init__()
            self.n_images, self.progress, self.epochs = n_images, progress, epochs
            self.rows: list[dict[str, float]] = rows if rows is not None else []

        def on_epoch_begin(self, epoch, logs=None):
            self._lr = current_lr(self.model.optimizer)
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            dt = time.perf_counter() - self._t0
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
            row.update(lr=self._lr, seconds=dt, images_per_second=self.n_images / dt if dt > 0 else 0.0)
            self.rows.append(row)
            if self.progress:
                self.progress(counted(
                    "epoch", epoch + 1, self.epochs,
                    f"epoch {epoch + 1}/{self.epochs}  loss {row.get('loss', 0):.4f}  acc {row.get('accuracy', 0):.4f}"
                    f"  val_acc {row.get('val_accuracy', float('nan')):.4f}  lr {self._lr:.3g}  {dt:.1f}s",
                    **{k: row[k] for k in ("loss", "accuracy", "val_accuracy") if k in row}))

    return _EpochLog


def current_lr(opt) -> float:
    """The rate the optimizer's next step will use (the schedule evaluated at ``iterations``)."""
    K = keras()
    lr = getattr(opt, "_learning_rate", opt.learning_rate)
    if isinstance(lr, K.optimizers.schedules.LearningRateSchedule):
        return float(lr(opt.iterations))
    return float(K.backend.get_value(lr))


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow: the same seed gives the same weights on CPU.

    ``deterministic`` also turns on TensorFlow's op determinism (an error for any op that
    has no deterministic kernel, e.g. XLA's MaxPool gradient). On CPU the zoo models train
    bit-identically without it (tested across processes), and it costs about 3-5% of
    training throughput, so it is off unless asked for; each call sets it either way.
    """
    from tensorflow.python.framework import config as tf_config

    keras().utils.set_random_seed(seed)
    if deterministic:
        tf().config.experimental.enable_op_determinism()
    elif tf_config.is_op_determinism_enabled():
        tf_config.disable_op_determinism()


def batch_size_for(config: TrainConfig, n_train: int) -> int:
    return n_train if config.optimizer in FULL_BATCH else min(config.batch_size, n_train)


def compile_for_training(model, config: TrainConfig, steps_per_epoch: int, epochs: int | None = None,
                         steps_per_execution: int = 1, loss: Any = "sparse_categorical_crossentropy",
                         metrics: list | None = None) -> None:
    """Compile ``model`` with the config's optimizer, schedule and loss.

    ``steps_per_execution`` > 1 runs that many train steps per call into the graph (less
    Python dispatch per step); per-batch callbacks then see only every n-th batch."""
    lr = make_schedule(config.schedule, config.learning_rate, steps_per_epoch, epochs or config.epochs, config)
    model.compile(
        optimizer=make_optimizer(config.optimizer, lr),
        loss=loss,
        metrics=metrics or ["accuracy"],
        jit_compile=config.jit,
        steps_per_execution=steps_per_execution,
    )


def fit(
    model,
    dataset: Dataset,
    config: TrainConfig,
    *,
    epochs: int | None = None,
    verbose: int = 0,
    progress: Progress | None = None,
    callbacks: list | None = None,
    compile: bool = True,
    steps_per_execution: int = 1,
    rows: list[dict[str, float]] | None = None,
    epoch_var=None,
    distill=None,
) -> list[dict[str, float]]:
    """Fit ``model`` on the dataset's train split, validating on ``val``; returns per-epoch rows.

    Keep ``steps_per_execution`` at 1 when a callback must see every batch (pruning). Rows are
    appended to ``rows`` as epochs end, so a caller keeps them when fit is interrupted.
    ``distill`` (:class:`edgekit.train.distill.Distillation`) trains on a teacher's outputs too."""
    epochs = epochs or config.epochs
    loss, metrics, batch_map = "sparse_categorical_crossentropy", None, None
    if distill is not None:
        dataset, loss, metrics, batch_map = distill.setup(model, dataset, per_batch=config.augment)
    n = len(dataset.x_train)
    bs = batch_size_for(config, n)
    steps = math.ceil(n / bs)
    if compile:
        compile_for_training(model, config, steps, epochs, steps_per_execution, loss, metrics)
    log = _epoch_log_class()(n, progress, epochs, rows)
    cbs = [log, *(callbacks or [])]
    if config.early_stopping:
        cbs.append(keras().callbacks.EarlyStopping(
            monitor="val_loss", patience=config.early_stopping, restore_best_weights=True))
    if epoch_var is None and not tf().distribute.has_strategy():
        epoch_var = data_epoch_variable()
    if epoch_var is not None:  # each epoch's batch order is keyed by its number (exact resume)
        cbs.insert(0, keras().callbacks.LambdaCallback(on_epoch_begin=lambda e, logs=None: epoch_var.assign(e)))
    train_data = dataset.tf_data("train", bs, shuffle=True, seed=config.seed, epoch=epoch_var)
    if config.augment:
        from edgekit.train.augment import augment_dataset

        train_data = augment_dataset(train_data, config.seed)
    val_data = dataset.tf_data("val", max(bs, 256))
    if batch_map is not None:
        train_data, val_data = batch_map(train_data), batch_map(val_data)
    model.fit(
        train_data,
        validation_data=val_data,
        epochs=epochs,
        verbose=verbose,
        callbacks=cbs,
    )
    return log.rows


def data_epoch_variable():
    """The int64 variable that keys each epoch's batch order; create it outside any
    distribution-strategy scope (a plain local variable that input pipelines can read)."""
    return tf().Variable(0, dtype=tf().int64, trainable=False, name="data_epoch")


def test_metrics(model, dataset: Dataset, batch_size: int = 256) -> dict[str, float]:
    """Loss and accuracy of ``model`` on the holdout split (read a batch at a time)."""
    y = dataset.y_test
    probs = model.predict(dataset.tf_data("test", batch_size), verbose=0)
    loss = float(keras().losses.sparse_categorical_crossentropy(y, probs).numpy().mean())
    return {"test_accuracy": float((probs.argmax(1) == y).mean()), "test_loss": loss}


def train(
    config: TrainConfig | None = None,
    dataset: Dataset | None = None,
    *,
    out: str | Path | None = None,
    force: bool = False,
    resume: bool = False,
    verbose: int = 0,
    progress: Progress | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train a zoo model on ``dataset`` (default: embedded digits) and, with ``out``, write
    ``model.keras``, ``history.json``, ``curves.png`` and ``manifest.json`` there.

    A backbone (edgekit/models/backbones.py) reads the data under its pixel convention;
    ``config.pretrained`` loads weights into it, ``freeze_backbone`` trains the head first and
    ``fine_tune_from`` adds phase 2 (edgekit/train/transfer.py). A two-phase run keeps no epoch
    backup: it cannot be resumed, only started over.

    With ``out``, the state of every completed epoch is kept under ``OUT/backup`` until the
    model is written; ``resume=True`` continues an interrupted run from there (same config
    and data), ``force=True`` starts over. SIGINT/SIGTERM raise :class:`TrainingInterrupted`
    (see :mod:`edgekit.train.resume`)."""
    config = (config or TrainConfig()).replace(**overrides) if overrides else (config or TrainConfig())
    if dataset is None:
        from edgekit.data import load_dataset

        dataset = load_dataset("digits", seed=config.seed)
    dataset = transfer.backbone_dataset(config, dataset, progress)
    # a missing or wrong weights file (or no network for imagenet) fails before anything is written
    weights_file = transfer.weights_file(config, dataset.info.input_shape, progress)
    two_phase = config.two_phase
    if two_phase and resume:
        raise UsageError("--resume: a two-phase run (--fine-tune-from) keeps no epoch backup, so it cannot be "
                         "resumed; start it over with --force.")
    distill = _distillation(config, dataset)  # a wrong teacher fails before anything is written
    # only the chief writes artifacts (always true outside multi-worker training)
    chief = will_be_chief(config.strategy)
    out_existed = out is not None and Path(out).exists()
    # the backup checks come before anything is touched
    saved = resume_state.precheck(out, resume, force) if out is not None and chief else None
    out_dir = prepare_out_dir(out, force or resume, expect=TRAIN_FILES + ("manifest.json",)) \
        if out and chief else None
    previous: list[dict[str, float]] = []
    if out_dir is not None and two_phase:
        resume_state.finish(out_dir)  # an old backup must not look resumable
    elif out_dir is not None:
        if resume_state.check_resume(out_dir, saved, config.to_dict(), dataset.info.sha256):
            previous = resume_state.saved_history(out_dir)
        else:
            resume_state.write_run_file(out_dir, config.to_dict(), dataset.info.sha256)
    check_jit_strategy(config.strategy, config.jit)  # before any worker connects
    strategy = make_strategy(config.strategy, progress=progress)  # first: multiworker configures the runtime
    seed_everything(config.seed, config.deterministic)
    if config.jit:
        allow_xla(progress)  # op determinism rejects XLA's MaxPool gradient (see edgekit/train/xla.py)
    policy = policy_for_strategy(strategy) if config.mixed_precision else None
    # --batch-size is per replica: the global batch is batch_size x replicas (see docs/acceleration.md)
    replicas = int(strategy.num_replicas_in_sync)
    run_config = config.replace(batch_size=config.batch_size * replicas) if replicas > 1 else config
    epoch_var = data_epoch_variable()  # before strategy.scope(): not a distributed variable
    with precision_policy(policy):
        with strategy.scope():
            model = build_model(config.model, dataset.info.input_shape, dataset.info.num_classes, l2=config.l2,
                                **config.model_options)
            transferred = transfer.prepare(model, config, weights_file)
            if policy:
                model = with_float32_output(model)
        t0 = time.perf_counter()
        rows: list[dict[str, float]] = []
        # the rows are saved before the epoch's checkpoint: a resume cuts rows past the restored epoch
        callbacks = [resume_state.history_saver(out_dir, previous)(lambda: rows)] \
            if out_dir is not None and not two_phase else []
        callbacks += restart_callbacks(out) if not two_phase else []
        total = config.epochs + (config.fine_tune_config().epochs if two_phase else 0)
        stopped = lambda sig: (f"Training stopped by {sig} after {len(resume_state.merge_history(previous, rows))} "
                               f"of {total} epochs; "
                               + ("nothing was saved (a two-phase run keeps no epoch backup)." if two_phase else
                                  f"the last completed epoch is saved in {resume_state.backup_dir(out)}."
                                  if out is not None else "nothing was saved (no output folder)."))
        phases: list[dict[str, Any]] = []
        spe = BACKBONE_STEPS_PER_EXECUTION if is_backbone(config.model) else STEPS_PER_EXECUTION
        with peer_failures(config.strategy, out), resume_state.stop_on_signals(stopped):
            if transferred is not None:
                phases.append({"phase": transfer.HEAD if config.freeze_backbone else "all", "lr": config.learning_rate,
                               "epochs": config.epochs, "trainable_params": transfer.trainable_params(model)})
            fit(model, dataset, run_config, verbose=verbose, progress=progress, callbacks=callbacks,
                steps_per_execution=spe, rows=rows, epoch_var=epoch_var, distill=distill)
            if config.freeze_backbone:
                rows[:] = transfer.tag_rows(rows, transfer.HEAD)
            if two_phase:
                with strategy.scope():
                    phases.append(transfer.start_fine_tune(model, config))
                if progress:
                    p = phases[-1]
                    progress(f"phase 2: fine-tuning from layer {p['from_layer']} (model.layers[{p['from_index']}]) "
                             f"at lr {p['lr']:.3g} for {p['epochs']} epochs, {p['trainable_params']:,} trainable "
                             "weights (BatchNorm stays frozen)")
                done = len(rows)
                more: list[dict[str, float]] = []
                fit(model, dataset, run_config.fine_tune_config(), verbose=verbose, progress=progress,
                    steps_per_execution=spe, rows=more, epoch_var=epoch_var)
                rows.extend(transfer.tag_rows(more, transfer.FINE_TUNE, done))
        history = resume_state.merge_history(previous, rows)
        # a resumed run counts the seconds of the epochs it restored, too
        train_seconds = time.perf_counter() - t0 + sum(r.get("seconds", 0.0) for r in history[:len(history) - len(rows)])
    remove_empty_backup(out, out_existed or chief)
    if policy or config.strategy != "default":
        # a local float32 copy: artifacts are ordinary models, and evaluating or saving
        # a distributed model would need every worker to join in
        model = to_float32(model)
        n = len(dataset.x_train)
        compile_for_training(model, run_config, math.ceil(n / batch_size_for(run_config, n)))
    summary = model_summary(model)
    steady = [r["images_per_second"] for r in history[1:]] or [history[0]["images_per_second"]]
    metrics = {
        **test_metrics(model, dataset),
        "final_val_accuracy": history[-1].get("val_accuracy"),
        "epochs_run": len(history),
        "train_seconds": train_seconds,
        "images_per_second": float(np.median(steady)),
        "params": summary["params"],
        "macs": summary["macs"],
    }
    if replicas > 1 or policy:
        metrics.update(replicas=replicas, global_batch_size=run_config.batch_size, precision=policy or "float32")
    if transferred is not None:
        metrics.update(pretrained_layers=transferred["layers"])
        transferred["preprocess"] = dataset.info.preprocess
        transferred["phases"] = [{**p, "epochs_run": sum(1 for r in history if r.get("phase", p["phase"]) == p["phase"])}
                                 for p in phases]
    result = TrainResult(model, config, history, metrics, summary, out_dir, transferred)
    if out_dir is not None:
        write_run(result, dataset)
        resume_state.finish(out_dir)  # the final model is on disk: the epoch backup can go
    return result


def _distillation(config: TrainConfig, dataset: Dataset):
    """The Distillation of ``config.teacher`` (loaded as an untrusted model, checked against the data), or None."""
    if config.teacher is None:
        return None
    from edgekit.models import load_model
    from edgekit.train.distill import Distillation, check_teacher

    teacher = load_model(config.teacher)
    check_teacher(teacher, dataset.info.input_shape, (dataset.info.num_classes,))
    return Distillation(teacher, config.distill_alpha, config.temperature)


def write_run(result: TrainResult, dataset: Dataset) -> dict[str, Any]:
    """Write the training run's files and merge the ``train`` stage into the manifest."""
    from edgekit.train.plots import plot_curves

    out = result.out_dir
    save_model(result.model, out / "model.keras")
    write_json(out / "history.json", result.history)
    plot_curves(result.history, out / "curves.png", title=f"{result.config.model} / {result.config.optimizer}")
    return write_stage(out, "train", [("model.keras", "keras"), ("history.json", "history"), ("curves.png", "plot")],
                       config=result.config, metrics=result.metrics, dataset=dataset.info,
                       extra={"summary": result.summary, **({"transfer": result.transfer} if result.transfer else {})})
