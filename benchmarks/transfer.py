"""Transfer learning vs training from scratch on a small, shifted task, and the int8 export of the result.

Source: MobileNetV2 alpha 0.35 trained on MNIST (10k images; the committed fixture
tests/fixtures/mobilenet_v2_035_mnist.h5, made by benchmarks/make_transfer_fixture.py). Target:
scikit-learn's digits (8x8 scans upscaled to 28x28: the same ten classes in another writing style and
resolution) from PER_CLASS training images per class (80% train, 20% val), 500 other images as the
holdout. Same 13 epochs, batch size 10 and cosine schedule both ways: from scratch (Adam 0.003; the
best of 0.001/0.003/0.01) vs --pretrained with --freeze-backbone (3 head epochs, lr 0.01) then
--fine-tune-from expanded_conv_depthwise (10 epochs, lr 0.001; BatchNorm stays frozen). Then
tflite-int8 of both (calibrated on the training split), validated on the holdout. Seeds 0, 1, 2
(the image draw and training).

    python benchmarks/transfer.py [PER_CLASS ...]      # default 10 30
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "tests" / "fixtures" / "mobilenet_v2_035_mnist.h5"
HEAD = dict(epochs=3, lr=0.01)
FINE_TUNE = dict(fine_tune_from="expanded_conv_depthwise", fine_tune_lr=0.001, fine_tune_epochs=10)
COMMON = dict(model="mobilenet-v2", batch_size=10, schedule="cosine")
SCRATCH_LR = 0.003
HOLDOUT = 500


def target_task(path: Path, per_class: int, seed: int = 0) -> Path:
    """scikit-learn digits: ``per_class`` training images of each digit, ``HOLDOUT`` others as the test split."""
    from edgekit.data.sources import digits

    x, y = digits()["all"]
    rng = np.random.default_rng(seed)
    tr = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in range(10)]))
    te = np.sort(rng.permutation(np.setdiff1d(np.arange(len(y)), tr))[:HOLDOUT])
    np.savez(path, x_train=x[tr], y_train=y[tr], x_test=x[te], y_test=y[te])
    return path


def int8(run: Path, spec: str, seed: int, out: Path) -> dict:
    from edgekit.data import load_dataset
    from edgekit.validate import ValidateConfig
    from edgekit.validate.step import export_and_validate

    shutil.rmtree(out, ignore_errors=True)
    data = load_dataset(spec, val_split=0.2, seed=seed, preprocess="symmetric")
    v = export_and_validate(run / "model.keras", data, ["tflite-int8"], out,
                            validate_config=ValidateConfig(min_agreement=1)).validation
    return v.targets["tflite-int8"]


def main(per_class=(10, 30), seeds=(0, 1, 2)) -> None:
    from edgekit.data import load_dataset
    from edgekit.train import TrainConfig, train

    tmp = Path(tempfile.mkdtemp())
    for n in per_class:
        rows = []
        for seed in seeds:
            spec = f"npz:{target_task(tmp / f'b{n}_{seed}.npz', n, seed)}"
            data = load_dataset(spec, val_split=0.2, seed=seed)
            t0 = time.perf_counter()
            s = train(TrainConfig(**COMMON, epochs=HEAD["epochs"] + FINE_TUNE["fine_tune_epochs"], lr=SCRATCH_LR,
                                  seed=seed), data, out=tmp / "scratch", force=True)
            t1 = time.perf_counter()
            t = train(TrainConfig(**COMMON, **HEAD, **FINE_TUNE, pretrained=str(WEIGHTS), freeze_backbone=True,
                                  seed=seed), data, out=tmp / "transfer", force=True)
            t2 = time.perf_counter()
            qs, qt = int8(tmp / "scratch", spec, seed, tmp / "xs"), int8(tmp / "transfer", spec, seed, tmp / "xt")
            rows.append((s.test_accuracy, t.test_accuracy, qs["agreement_pct"], qt["agreement_pct"], qt["accuracy"]))
            print(f"{n}/class seed {seed} ({data.info.sizes}): scratch {s.test_accuracy:.3f} ({t1 - t0:.0f} s, int8 "
                  f"agreement {qs['agreement_pct']:.1f}%), transfer {t.test_accuracy:.3f} ({t2 - t1:.0f} s, int8 "
                  f"agreement {qt['agreement_pct']:.1f}%, int8 accuracy {qt['accuracy']:.3f})", flush=True)
        a = np.asarray(rows)
        print(f"{n}/class over seeds {list(seeds)}: scratch {a[:, 0].mean():.3f} +- {a[:, 0].std():.3f}, transfer "
              f"{a[:, 1].mean():.3f} +- {a[:, 1].std():.3f}; int8 agreement scratch {a[:, 2].mean():.1f}% "
              f"(min {a[:, 2].min():.1f}), transfer {a[:, 3].mean():.1f}% (min {a[:, 3].min():.1f})", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or (10, 30))
