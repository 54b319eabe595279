"""Fixtures of the runtime tests: a tiny conv model with its artifacts, and the session-wide export."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tests.export.conftest import export_all_once


@pytest.fixture(scope="session")
def exported_all(trained_cnn, digits, tmp_path_factory):
    return export_all_once(trained_cnn, digits, tmp_path_factory)


@dataclasses.dataclass
class Tiny:
    model: object
    x: np.ndarray  # float32 images in [0, 1]
    ref: np.ndarray  # Keras probabilities on x
    keras: Path
    tflite: Path  # float32, dynamic batch
    tflite_int8: Path  # full int8, batch 1 (what TFLite Micro runs)
    onnx: Path  # float32


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Tiny:
    """An 8x8x1 -> conv(4) -> dense(3) softmax model with fixed weights, on every runtime's format."""
    from edgekit._lazy import keras
    from edgekit.export.convert import to_tflite
    from edgekit.export.onnx import keras_to_onnx

    k = keras()
    model = k.Sequential([k.Input((8, 8, 1)), k.layers.Conv2D(4, 3, activation="relu"), k.layers.Flatten(),
                          k.layers.Dense(3, activation="softmax")])
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])
    x = rng.uniform(0, 1, (16, 8, 8, 1)).astype(np.float32)
    out = tmp_path_factory.mktemp("tiny")
    model.save(out / "tiny.keras")
    (out / "tiny.tflite").write_bytes(to_tflite(model, "float32"))
    rep = rng.uniform(0, 1, (64, 8, 8, 1)).astype(np.float32)
    (out / "tiny_int8.tflite").write_bytes(to_tflite(model, "int8", rep, batch_size=1))
    (out / "tiny.onnx").write_bytes(keras_to_onnx(model, (8, 8, 1)).SerializeToString())
    ref = np.asarray(model.predict(x, verbose=0), np.float32)
    return Tiny(model, x, ref, out / "tiny.keras", out / "tiny.tflite", out / "tiny_int8.tflite", out / "tiny.onnx")


# a stand-in for the TFLM arena worker: the real trial, but every size that fails ends the child with
# SIGSEGV (what TFLM does on some too-small arenas, e.g. MobileNetV1-0.25 at 8,192 bytes)
CRASHING_WORKER = """
import os, signal, sys
from pathlib import Path
from edgekit.runtimes.base import serve_lines
from edgekit.runtimes.tflite_micro import _runs, _zero_input
model = Path(sys.argv[1]).read_bytes()
sample = _zero_input(model)
def handle(line):
    if not _runs(model, int(line), sample)[0]:
        with open(sys.argv[2], "a") as log:
            log.write(line + chr(10))
        os.kill(os.getpid(), signal.SIGSEGV)
    return "ok"
serve_lines(handle)
"""


def crashing_worker(tmp: Path):
    """(a ``command`` for find_arena_size that segfaults on every size too small, the count of its crashes)."""
    import sys

    log = tmp / "crashes.log"

    def command(path: Path) -> list[str]:
        return [sys.executable, "-c", CRASHING_WORKER, str(path), str(log)]

    return command, lambda: len(log.read_text().split()) if log.is_file() else 0
