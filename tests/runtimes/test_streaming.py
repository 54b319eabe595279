"""Every runner's predict takes a dataset split (Images) and reads it a batch at a time, with the
outputs it gives on the same images as one float32 array."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.data.store import Images
from edgekit.runtimes.base import PREDICT_BATCH

N = 2 * PREDICT_BATCH + 37  # three batches, the last one short


class CountingSource:
    def __init__(self, array: np.ndarray):
        self.array, self.shape, self.dtype = array, tuple(array.shape), array.dtype
        self.reads: list[int] = []

    def read(self, index: np.ndarray) -> np.ndarray:
        self.reads.append(len(index))
        return np.asarray(self.array[index])


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (N, 8, 8, 1), dtype=np.uint8)


@pytest.mark.parametrize("kind", ["keras", "litert", "litert-int8", "ort", "ort-fixed-batch", "micro", "isolated"])
def test_predict_reads_a_split_a_batch_at_a_time(kind, tiny, pixels, tmp_path, monkeypatch):
    from edgekit.runtimes import IsolatedRunner, KerasRunner, LiteRTRunner, MicroRunner, OrtRunner
    from edgekit.vocab import LITERT

    src = CountingSource(pixels)
    x = Images(src)
    want_x = pixels.astype(np.float32) / np.float32(255.0)
    monkeypatch.setattr(Images, "__array__", lambda *a, **k: pytest.fail("a whole split was materialised"))
    if kind == "ort-fixed-batch":  # a model exported at batch 1: runs one image at a time, reads still batched
        import onnx

        proto = onnx.load(str(tiny.onnx))
        proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
        (tmp_path / "b1.onnx").write_bytes(proto.SerializeToString())
    runner = {"keras": lambda: KerasRunner(tiny.model), "litert": lambda: LiteRTRunner(tiny.tflite),
              "litert-int8": lambda: LiteRTRunner(tiny.tflite_int8), "ort": lambda: OrtRunner(tiny.onnx),
              "ort-fixed-batch": lambda: OrtRunner(tmp_path / "b1.onnx"),
              "micro": lambda: MicroRunner(tiny.tflite_int8),
              "isolated": lambda: IsolatedRunner(LITERT, tiny.tflite)}[kind]()
    if kind == "ort-fixed-batch":
        assert runner.batch == 1
    got = runner.predict(x)
    assert src.reads and max(src.reads) <= PREDICT_BATCH and sum(src.reads) == N
    want = runner.predict(want_x)
    assert got.shape == (N, 3) and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=0.02)  # softmax outputs: real numbers
    if kind == "isolated":
        runner.close()


def test_predict_of_an_empty_split(tiny):
    from edgekit.runtimes import OrtRunner

    x = Images(CountingSource(np.zeros((0, 8, 8, 1), np.uint8)))
    assert OrtRunner(tiny.onnx).predict(x).shape == (0, 3)
