"""Where a small backbone's int8 latency goes: keras.applications MobileNetV2 alpha 0.35 at 96x96 (untrained
weights, a 10-class head) against alpha 0.1 (every layer narrower), its stem at stride 4 (what
``--downsample 2`` builds) and a 48x48 input; int8 .tflite (PTQ on random calibration images), LiteRT,
batch 1, one thread, rounds alternating between the variants.

    python benchmarks/resolution_latency.py [--rounds 3]

Prints a table with the CPU it ran on (docs/compress.md, "Resolution").
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.pop("TF_USE_LEGACY_KERAS", None)  # Keras 3, as users build these models
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, md_table  # noqa: E402


def build(res: int = 96, alpha: float = 0.35, stem_stride: int = 2):
    import keras

    base = keras.applications.MobileNetV2(input_shape=(res, res, 3), alpha=alpha, include_top=False,
                                          weights=None, pooling="avg")
    if stem_stride != 2:
        def stride(layer):
            cfg = layer.get_config()
            if layer.name == "Conv1":
                cfg["strides"] = (stem_stride, stem_stride)
            return type(layer).from_config(cfg)
        base = keras.models.clone_model(base, clone_function=stride)
    inp = keras.Input((res, res, 3))
    return keras.Model(inp, keras.layers.Dense(10, activation="softmax")(base(inp)))


def int8(model) -> bytes:
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    shape = model.input_shape[1:]
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.representative_dataset = lambda: ([rng.random((1, *shape), dtype=np.float32)] for _ in range(20))
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type = c.inference_output_type = tf.int8
    return c.convert()


def latency_us(flat: bytes, runs: int = 300) -> float:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=flat, num_threads=1)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    x = np.zeros(d["shape"], d["dtype"])
    for _ in range(20):
        it.set_tensor(d["index"], x)
        it.invoke()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        it.set_tensor(d["index"], x)
        it.invoke()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    variants = {"as built (stem stride 2)": {}, "alpha 0.1": {"alpha": 0.1},
                "stem at stride 4 (--downsample 2)": {"stem_stride": 4}, "48x48 input": {"res": 48}}
    flats = {k: int8(build(**kw)) for k, kw in variants.items()}
    got: dict[str, list[float]] = {k: [] for k in flats}
    for _ in range(args.rounds):
        for k, f in flats.items():
            got[k].append(latency_us(f))
    ref = statistics.median(got["as built (stem stride 2)"])
    rows = [{"variant": k, "int8 B": len(flats[k]), "latency us (median of rounds)": statistics.median(v),
             "range": f"{min(v):.0f}-{max(v):.0f}", "speed-up": ref / statistics.median(v)} for k, v in got.items()]
    print(f"Machine: {machine()}\n")
    print(md_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
