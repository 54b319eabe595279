"""Training throughput: `edgekit.train` vs the seed's plain compile()/fit(), same data, epochs
and batch, in one process (alternating order, best of N), plus the seed configuration's
holdout accuracy on the shared MNIST set.

    python benchmarks/train_throughput.py [--epochs 3] [--repeats 2] [--accuracy-epochs 10] [--seeds 3]
"""
from __future__ import annotations

import argparse
import time

from _common import machine, md_table, mnist_spec_or_exit, save


def plain_fit(ds, epochs: int, batch: int, seed: int) -> float:
    """The seed notebook's way: compile + fit on NumPy arrays. Returns images/s."""
    import tf_keras as keras

    from edgekit.models import build_model

    keras.utils.set_random_seed(seed)
    model = build_model("cnn", ds.info.input_shape, ds.info.num_classes)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(ds.x_train, ds.y_train, epochs=epochs, batch_size=batch, validation_data=(ds.x_val, ds.y_val), verbose=0)
    return len(ds.x_train) * epochs / (time.perf_counter() - t0)


def edgekit_fit(ds, epochs: int, batch: int, seed: int) -> float:
    from edgekit.train import TrainConfig, train

    res = train(TrainConfig(model="cnn", optimizer="adam", epochs=epochs, batch_size=batch, seed=seed), ds)
    return len(ds.x_train) * epochs / res.metrics["train_seconds"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--accuracy-epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    import edgekit  # noqa: F401  (sets TF_USE_LEGACY_KERAS)
    from edgekit.data import load_dataset
    from edgekit.train import TrainConfig, train

    spec = mnist_spec_or_exit()
    ds = load_dataset(spec, seed=0)
    plain, ours = [], []
    for i in range(args.repeats):
        runs = [("plain", plain_fit, plain), ("edgekit", edgekit_fit, ours)]
        for name, fn, acc in (runs if i % 2 == 0 else runs[::-1]):
            acc.append(fn(ds, args.epochs, 64, i))
            print(f"  repeat {i + 1} {name}: {acc[-1]:.0f} images/s", flush=True)
    rows = [
        {"pipeline": "plain model.compile + model.fit", "images/s (best)": max(plain), "ratio": 1.0},
        {"pipeline": "edgekit train", "images/s (best)": max(ours), "ratio": max(ours) / max(plain)},
    ]
    text = (f"Training throughput, seed CNN, adam, batch 64, {args.epochs} epochs on {ds.info.sizes['train']} "
            f"MNIST images, best of {args.repeats} ({machine()})\n\n"
            + md_table(rows, ["pipeline", "images/s (best)", "ratio"]))

    acc_ds = load_dataset(spec, seed=0, val_split=0.0)  # 8,000 train / 2,000 holdout
    acc_rows = []
    for augment in (False, True):
        accs = []
        for seed in range(args.seeds):
            cfg = TrainConfig(model="cnn", optimizer="adam", epochs=args.accuracy_epochs, batch_size=64, seed=seed,
                              augment=augment)
            accs.append(train(cfg, acc_ds).metrics["test_accuracy"])
            print(f"  accuracy augment={augment} seed {seed}: {accs[-1]:.4f}", flush=True)
        acc_rows.append({"config": "cnn, adam, 10 epochs, batch 64" + (" + --augment" if augment else ""),
                         "holdout accuracy per seed": ", ".join(f"{a:.2%}" for a in accs),
                         "mean": f"{sum(accs) / len(accs):.2%}"})
    text += (f"\nSeed configuration on the shared MNIST set ({acc_ds.info.sizes['train']:,} train / "
             f"{acc_ds.info.sizes['test']:,} holdout, seeds 0..{args.seeds - 1}):\n\n"
             + md_table(acc_rows, ["config", "holdout accuracy per seed", "mean"]))
    print(text)
    save("train_throughput.md", text)


if __name__ == "__main__":
    main()
