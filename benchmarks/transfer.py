"""Transfer learning vs training from scratch on a small task, and the int8 export of the result.

Task A: digits 0-4 (the embedded scikit-learn digits, 28x28 gray), MobileNetV2 alpha 0.35 trained from
scratch and its backbone saved as a weights file (the "pretrained" model). Task B: digits 5-9 from
PER_CLASS training images per class. Same epochs and batch size: from scratch, vs --pretrained with
--freeze-backbone then --fine-tune-from block_13_expand. Then tflite-int8 of the transfer model,
validated on B's holdout.

    python benchmarks/transfer.py [PER_CLASS ...]
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(per_class=(8, 20)) -> None:
    from edgekit.data import load_dataset
    from edgekit.data.sources import digits
    from edgekit.models import backbones
    from edgekit.train import TrainConfig, train
    from edgekit.validate import ValidateConfig
    from edgekit.validate.step import export_and_validate

    tmp = Path(tempfile.mkdtemp())
    x, y = digits()["all"]
    np.savez(tmp / "a.npz", x=x[y < 5], y=y[y < 5])
    t0 = time.perf_counter()
    a = train(TrainConfig(model="mobilenet-v2", epochs=5, batch_size=32, lr=0.003),
              load_dataset(f"npz:{tmp / 'a.npz'}", val_split=0.1))
    weights = backbones.save_backbone_weights(a.model, "mobilenet-v2", tmp / "a.h5")
    print(f"task A (digits 0-4): test accuracy {a.test_accuracy:.4f}, {time.perf_counter() - t0:.0f} s")
    xb, yb = x[y >= 5], y[y >= 5] - 5
    for n in per_class:
        rng = np.random.default_rng(0)
        tr = np.sort(np.concatenate([rng.permutation(np.flatnonzero(yb == c))[:n] for c in range(5)]))
        te = np.setdiff1d(np.arange(len(yb)), tr)
        np.savez(tmp / "b.npz", x_train=xb[tr], y_train=yb[tr], x_test=xb[te], y_test=yb[te])
        data = load_dataset(f"npz:{tmp / 'b.npz'}", val_split=0.2)
        t0 = time.perf_counter()
        scratch = train(TrainConfig(model="mobilenet-v2", epochs=12, batch_size=8, lr=0.003), data)
        t1 = time.perf_counter()
        out = tmp / f"run{n}"
        tl = train(TrainConfig(model="mobilenet-v2", pretrained=str(weights), freeze_backbone=True, epochs=6,
                               batch_size=8, lr=0.01, fine_tune_from="block_13_expand", fine_tune_lr=0.001,
                               fine_tune_epochs=6), data, out=out)
        t2 = time.perf_counter()
        shutil.rmtree(tmp / "export", ignore_errors=True)
        v = export_and_validate(out / "model.keras", load_dataset(f"npz:{tmp / 'b.npz'}", val_split=0.2,
                                                                  preprocess="symmetric"),
                                ["tflite-int8"], tmp / "export", validate_config=ValidateConfig(min_agreement=1))
        t = v.validation.targets["tflite-int8"]
        print(f"task B, {n}/class ({data.info.sizes}): scratch {scratch.test_accuracy:.4f} ({t1 - t0:.0f} s), "
              f"transfer {tl.test_accuracy:.4f} ({t2 - t1:.0f} s); tflite-int8 agreement {t['agreement_pct']:.2f}% "
              f"accuracy {t['accuracy']:.4f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or (8, 20))
