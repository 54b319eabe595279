"""Datasets larger than RAM: peak memory and images/s of train, export int8 and validate on a
generated image folder at 1x, 4x and 16x a base size, and the input pipeline side by side with
Keras ``image_dataset_from_directory`` on the same folder.

The folders are made on disk by this script: MNIST test digits (the shared set) in bright colours composited on
random dark gradient backgrounds with noise at 160x160 RGB, saved as JPEG, one sub-folder per class.
At 160x160x3 one image is 300 KiB as float32, so the 16x folder (68,000 images) is 20.9 GB as
float32; the JPEGs take ~0.7 GB.

The models train one epoch (the point is memory and speed, not accuracy: the smallest folder gives
only a few dozen steps), so the int8 agreement floor is turned off (``--min-agreement 0``) and the
agreement is shown instead. Each stage runs as its own ``edgekit`` process; its peak RSS comes from ``os.wait4`` (the
kernel's ``ru_maxrss`` of that process alone).

    python benchmarks/data_scale.py                       # 1x, 4x, 16x (about an hour on 2 cores)
    python benchmarks/data_scale.py --base 400 --scales 1 4 --epochs 1   # a quick look
    python benchmarks/data_scale.py --pipeline-only      # only the input pipeline comparison
"""
from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MNIST_DIR, machine, md_table, mnist_spec_or_exit, save  # noqa: E402

SIZE = 160
BYTES_FLOAT32 = SIZE * SIZE * 3 * 4


def _digits() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(MNIST_DIR / "t10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(MNIST_DIR / "t10k-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return x, y


def make_folder(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` 160x160 JPEGs in ``root/<digit>/``: a digit scaled, placed and coloured (bright) at random
    on a random dark gradient background with noise (every image differs, even when digits repeat)."""
    from PIL import Image

    done = root / ".complete"
    if done.exists() and done.read_text() == f"{n} v2":
        return root
    shutil.rmtree(root, ignore_errors=True)
    x, y = _digits()
    rng = np.random.default_rng(seed)
    for c in range(10):
        (root / str(c)).mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    for i in range(n):
        j = int(rng.integers(len(x)))
        a, b = rng.uniform(0, 110, 3), rng.uniform(0, 110, 3)  # a dark background, bright ink: learnable in an epoch
        t = (yy * rng.uniform(-1, 1) + xx * rng.uniform(-1, 1))[..., None]
        bg = a + (b - a) * (t - t.min()) / (np.ptp(t) + 1e-6)
        bg += rng.normal(0, 12, bg.shape)
        side = int(rng.integers(96, 150))
        digit = np.asarray(Image.fromarray(x[j]).resize((side, side), Image.BILINEAR), np.float32)[..., None] / 255
        top, left = rng.integers(0, SIZE - side + 1, 2)
        ink = rng.uniform(170, 255, 3)
        patch = bg[top:top + side, left:left + side]
        bg[top:top + side, left:left + side] = patch * (1 - digit) + ink * digit
        Image.fromarray(bg.clip(0, 255).astype(np.uint8)).save(root / str(y[j]) / f"{i:06d}.jpg", quality=90)
    done.write_text(f"{n} v2")
    return root


def run(cmd: list[str], log: Path) -> tuple[float, float]:
    """``(seconds, peak RSS in MiB)`` of one edgekit process; exits on failure with its last lines."""
    t0 = time.perf_counter()
    with log.open("w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n" + "\n".join(log.read_text().splitlines()[-15:]))
    return seconds, usage.ru_maxrss / 1024


def _result(work: Path, stage: str) -> str:
    """What the stage measured: the trained model's holdout accuracy, or the int8 artifact's agreement."""
    import json

    try:
        if stage == "train":
            m = json.loads((work / "run" / "manifest.json").read_text())
            acc = next(v for k, v in _walk(m) if k == "test_accuracy")
            return f"holdout accuracy {acc:.3f}"
        v = json.loads((work / ("export" if stage.startswith("export") else "validate") / "validation.json").read_text())
        agree = next(v for k, v in _walk(v) if k == "agreement_pct")
        return f"int8 agreement {agree:.1f}%"
    except (OSError, StopIteration, ValueError):
        return ""


def _walk(obj, key=None):
    """Every (key, value) pair of a JSON tree."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, k)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v, key)
    else:
        yield key, obj


def stages(folder: Path, n: int, work: Path, epochs: int, cache: str) -> list[dict]:
    spec = f"images:{folder},size={SIZE}x{SIZE},cache={cache}"
    run_dir, export_dir = work / "run", work / "export"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows = []
    n_train = int(round(n * 0.8 * 0.9))
    n_test = n - int(round(n * 0.8))
    plan = [
        ("train", ["train", "--model", "mobilenet-v1", "--dataset", spec, "--epochs", str(epochs),
                   "--batch-size", "64", "--out", str(run_dir)], n_train * epochs),
        ("export tflite-int8", ["export", str(run_dir / "model.keras"), "--target", "tflite-int8",
                                "--min-agreement", "0", "--out", str(export_dir)], n_test),
        ("validate", ["validate", str(export_dir / "model_int8.tflite"), "--reference",
                      str(run_dir / "model.keras"), "--min-agreement", "0", "--out", str(work / "validate")], n_test),
    ]
    for name, args, images in plan:
        seconds, rss = run([sys.executable, "-m", "edgekit", *args], work / f"{name.split()[0]}.log")
        rows.append({"stage": name, "images": n, "float32 GB": round(n * BYTES_FLOAT32 / 1e9, 2),
                     "seconds": round(seconds, 1), "images/s": round(images / seconds, 1),
                     "peak RSS (MiB)": round(rss), "result": _result(work, name)})
        print(rows[-1], flush=True)
    return rows


def pipeline_rates(folder: Path, epochs: int = 2, batch: int = 64) -> list[dict]:
    """images/s of edgekit's input pipeline and of Keras image_dataset_from_directory + cache +
    prefetch, same folder, same decode and bilinear resize to 160x160, batch 64, in one process.
    Building the dataset is timed apart from the epochs (edgekit reads every file's header and
    hashes it then; with cache=memory it decodes into the cache); Keras's cache fills in epoch 1."""
    import tensorflow as tf

    from edgekit.data import load_dataset

    def rate(make, n_of) -> tuple[float, list[float]]:
        """Seconds to build the dataset (listing, and for edgekit the header checks and identity hash;
        with a memory cache, the decode into it), then images/s of each epoch."""
        t0 = time.perf_counter()
        ds = make()
        n = n_of(ds)
        build = time.perf_counter() - t0
        out = []
        for _ in range(epochs):
            t0 = time.perf_counter()
            for _ in ds:
                pass
            out.append(n / (time.perf_counter() - t0))
        return build, out

    warm = tf.data.Dataset.range(256).map(lambda i: tf.image.resize(tf.zeros((8, 8, 3)) + tf.cast(i, tf.float32),
                                                                     (16, 16)), num_parallel_calls=tf.data.AUTOTUNE)
    for _ in warm.batch(64):  # TensorFlow's one-time start-up is not charged to the first row
        pass
    rows, holder = [], {}

    def ours(cache: str):
        def make():
            holder["d"] = load_dataset(f"images:{folder},size={SIZE}x{SIZE},cache={cache}", test_split=0.2,
                                       val_split=0)
            return holder["d"].tf_data("train", batch, shuffle=True)
        return make

    def theirs(cache: bool):
        def make():
            ds = tf.keras.utils.image_dataset_from_directory(
                folder, image_size=(SIZE, SIZE), batch_size=batch, interpolation="bilinear", validation_split=0.2,
                subset="training", seed=0)
            holder["n"] = len(ds.file_paths)
            return (ds.cache() if cache else ds).prefetch(tf.data.AUTOTUNE)
        return make

    pairs = (("edgekit images:, cache=none (decodes every epoch)", ours("none"), lambda ds: len(holder["d"].x_train)),
             ("Keras image_dataset_from_directory + prefetch (decodes every epoch)", theirs(False),
              lambda ds: holder["n"]),
             ("edgekit images:, cache=memory (uint8, reshuffled each epoch)", ours("memory"),
              lambda ds: len(holder["d"].x_train)),
             ("Keras image_dataset_from_directory + cache + prefetch (float32, cached batches replayed)",
              theirs(True), lambda ds: holder["n"]))
    for name, make, n_of in pairs:
        build, r = rate(make, n_of)
        rows.append({"pipeline": name, "images": holder.get("n") if "Keras" in name else len(holder["d"].x_train),
                     "build s": round(build, 2), **{f"epoch {i + 1} images/s": round(v) for i, v in enumerate(r)}})
        print(rows[-1], flush=True)
    for i in (0, 2):  # each edgekit row against the Keras row below it
        for col in ("epoch 1", "epoch 2"):
            ratio = rows[i][f"{col} images/s"] / rows[i + 1][f"{col} images/s"]
            rows[i][f"{col} vs Keras"] = rows[i + 1][f"{col} vs Keras"] = ""
            rows[i][f"{col} vs Keras"] = f"{ratio:.2f}x"
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=int, default=4250, help="images in the 1x folder")
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--cache", default="auto")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "edgekit-data-scale")
    ap.add_argument("--pipeline-only", action="store_true")
    args = ap.parse_args()
    mnist_spec_or_exit()
    header = f"Machine: {machine()}.\n\n"
    base = make_folder(args.work / f"x{min(args.scales)}", args.base * min(args.scales))
    pipe = pipeline_rates(base)
    text = header + "## Input pipeline\n\n" + md_table(pipe, list(pipe[0]) + [c for c in pipe[-1] if c not in pipe[0]])
    if not args.pipeline_only:
        rows = []
        for s in args.scales:
            folder = make_folder(args.work / f"x{s}", args.base * s)
            rows += stages(folder, args.base * s, args.work / f"run-x{s}", args.epochs, args.cache)
        text += "\n## Stages\n\n" + md_table(rows, list(rows[0]))
    print(text)
    print("saved", save("data_scale.md", text))


if __name__ == "__main__":
    main()
