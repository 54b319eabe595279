"""Training throughput: `edgekit.train` vs a plain compile()/fit(), same data, epochs
and batch, in one process (alternating order, best of N), plus the reference configuration's
holdout accuracy on the shared MNIST set.

    python benchmarks/train_throughput.py [--epochs 3] [--repeats 4] [--accuracy-epochs 10] [--seeds 3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from _common import machine, md_table, mnist_spec_or_exit, save


def _epoch_timer():
    import tf_keras as keras

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._t0)

    return EpochTimer()


def plain_fit(ds, epochs: int, batch: int, seed: int) -> list[float]:
    """The plain Keras way: compile + fit on NumPy arrays. Returns seconds per epoch."""
    import tf_keras as keras

    from edgekit.models import build_model

    keras.utils.set_random_seed(seed)
    model = build_model("cnn", ds.info.input_shape, ds.info.num_classes)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = _epoch_timer()
    model.fit(ds.x_train, ds.y_train, epochs=epochs, batch_size=batch, validation_data=(ds.x_val, ds.y_val),
              verbose=0, callbacks=[timer])
    return timer.seconds


def edgekit_fit(ds, epochs: int, batch: int, seed: int) -> list[float]:
    """``edgekit.train`` (op determinism on, as by default). Returns seconds per epoch."""
    from edgekit.train import TrainConfig, train

    res = train(TrainConfig(model="cnn", optimizer="adam", epochs=epochs, batch_size=batch, seed=seed), ds)
    return [r["seconds"] for r in res.history]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--accuracy-epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    import edgekit  # noqa: F401  (sets TF_USE_LEGACY_KERAS)
    from edgekit.data import load_dataset
    from edgekit.train import TrainConfig, train

    spec = mnist_spec_or_exit()
    ds = load_dataset(spec, seed=0)
    n = len(ds.x_train)
    plain, ours = [], []  # steady-state epochs (the first epoch of each run traces the graph)
    for i in range(args.repeats):
        runs = [("plain", plain_fit, plain), ("edgekit", edgekit_fit, ours)]
        for name, fn, acc in (runs if i % 2 == 0 else runs[::-1]):
            secs = fn(ds, args.epochs, 64, i)
            acc.extend(n / s for s in secs[1:])
            print(f"  repeat {i + 1} {name}: " + ", ".join(f"{n / s:.0f}" for s in secs) + " images/s", flush=True)
    med = lambda v: float(np.median(v))
    rows = [
        {"pipeline": "plain model.compile + model.fit (NumPy arrays)", "images/s (median)": med(plain),
         "images/s (best)": max(plain), "ratio (median)": 1.0},
        {"pipeline": "edgekit train", "images/s (median)": med(ours), "images/s (best)": max(ours),
         "ratio (median)": med(ours) / med(plain)},
    ]
    text = (f"Training throughput, reference CNN, adam, batch 64, on {n:,} MNIST images: {args.repeats} interleaved "
            f"runs of {args.epochs} epochs each, steady-state epochs (all but the first of a run) "
            f"({machine()})\n\n" + md_table(rows, ["pipeline", "images/s (median)", "images/s (best)", "ratio (median)"]))

    acc_ds = load_dataset(spec, seed=0, val_split=0.0)  # 8,000 train / 2,000 holdout
    acc_rows = []
    configs = [
        ("cnn, adam, 10 epochs, batch 64 (the reference CNN as-is)", {}),
        ("+ --augment", {"augment": True}),
        ("+ --augment --schedule cosine --lr 0.002", {"augment": True, "schedule": "cosine", "lr": 0.002}),
    ]
    for label, extra in configs:
        accs = []
        for seed in range(args.seeds):
            cfg = TrainConfig(model="cnn", optimizer="adam", epochs=args.accuracy_epochs, batch_size=64, seed=seed,
                              **extra)
            accs.append(train(cfg, acc_ds).metrics["test_accuracy"])
            print(f"  accuracy {label} seed {seed}: {accs[-1]:.4f}", flush=True)
        acc_rows.append({"config": label, "holdout accuracy per seed": ", ".join(f"{a:.2%}" for a in accs),
                         "mean": f"{sum(accs) / len(accs):.2%}"})
    text += (f"\nSeed configuration on the shared MNIST set ({acc_ds.info.sizes['train']:,} train / "
             f"{acc_ds.info.sizes['test']:,} holdout, seeds 0..{args.seeds - 1}):\n\n"
             + md_table(acc_rows, ["config", "holdout accuracy per seed", "mean"]))
    print(text)
    save("train_throughput.md", text)


if __name__ == "__main__":
    main()
