"""Make the "pretrained" backbone tests/train/test_transfer.py and benchmarks/transfer.py transfer from.

MobileNetV2 alpha 0.35 trained from scratch on the shared MNIST set (../shared/data/mnist beside the
repo root: the 10k t10k images, 7,200 train / 800 val / 2,000 holdout), 12 epochs, batch 64, Adam
0.005 with a cosine schedule, random-shift augmentation, seed 0, TF op determinism; its backbone
(no head) is written as tests/fixtures/mobilenet_v2_035_mnist.h5 in float16 (~1 MB; loaded as float32)
with a .json beside it saying how it was made and how good it is. The source task is large and
related (MNIST, all 10 digits); the tests' target is small and shifted (scikit-learn's 8x8 digits,
upscaled: another writing style and resolution).

    python benchmarks/make_transfer_fixture.py [MNIST_DIR] [OUT.h5]      # ~1-2 min on 2 CPU cores
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
OUT = ROOT / "tests" / "fixtures" / "mobilenet_v2_035_mnist.h5"
CONFIG = dict(model="mobilenet-v2", epochs=12, batch_size=64, lr=0.005, schedule="cosine", augment=True, seed=0,
              deterministic=True)


def main(mnist: Path = MNIST, out: Path = OUT) -> dict:
    import numpy as np

    from edgekit.data import load_dataset
    from edgekit.data.sources import digits
    from edgekit.models import backbones
    from edgekit.train import TrainConfig, train

    data = load_dataset(f"idx:{mnist}", seed=0, val_split=0.1)
    t0 = time.perf_counter()
    res = train(TrainConfig(**CONFIG), data)
    seconds = time.perf_counter() - t0
    backbones.save_backbone_weights(res.model, "mobilenet-v2", out, half=True)
    x, y = digits()["all"]  # how far the target domain is: the MNIST model on scikit-learn's digits as they are
    zero_shot = float((res.model.predict(x[..., None].astype("float32") / 127.5 - 1, verbose=0).argmax(1) == y).mean())
    info = {"made_by": "benchmarks/make_transfer_fixture.py", "source": "MNIST t10k (idx:../shared/data/mnist)",
            "sizes": data.info.sizes, "config": CONFIG, "mnist_holdout_accuracy": round(float(res.test_accuracy), 4),
            "sklearn_digits_zero_shot_accuracy": round(zero_shot, 4), "train_seconds": round(seconds, 1),
            "bytes": out.stat().st_size, "sha256": hashlib.sha256(out.read_bytes()).hexdigest()}
    out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    return info


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:3]))
