"""Every consumer of a Dataset reads its splits a batch at a time: none materialises a whole split.

The splits of digits are wrapped in Images over a source that records the size of every read, and
``np.asarray`` of an Images (the one way a whole split becomes a float32 array) raises. Validate (a
float and an int8 .tflite, the artifact run in a child process), compress's metrics and BatchNorm
adaptation, diagnose's accuracy path, ModelHandle.predict (Keras and a predict_fn format),
distillation's teacher outputs and the sensitivity probe's accuracy then run on it: every read is at
most one batch, and every number equals the one computed on plain float32 arrays.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgekit.data.store import Images
from edgekit.runtimes.base import PREDICT_BATCH

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


class CountingSource:
    """The pixels of an array; remembers how many images each read asked for."""

    def __init__(self, array: np.ndarray):
        self.array = array
        self.shape = tuple(int(d) for d in array.shape)
        self.dtype = array.dtype
        self.reads: list[int] = []

    def read(self, index: np.ndarray) -> np.ndarray:
        self.reads.append(len(index))
        return np.asarray(self.array[index])


def _floats(x: Images) -> np.ndarray:
    """The float32 images of a split, computed here (not through Images) as the array path's input."""
    raw = x.source.array[x.index]
    return raw.astype(np.float32) / np.float32(255.0) if raw.dtype == np.uint8 else raw.astype(np.float32)


@pytest.fixture()
def counted(digits, monkeypatch):
    """(dataset whose splits read through a CountingSource, that source, {split: float32 array})."""
    assert digits.info.preprocess in ("unit", None) and len(digits.x_test) > PREDICT_BATCH
    src = CountingSource(digits.x_test.source.array)
    arrays = {k: _floats(getattr(digits, f"x_{k}")) for k in ("train", "val", "test")}
    ds = dataclasses.replace(digits, **{f"x_{k}": Images(src, getattr(digits, f"x_{k}").index, None)
                                        for k in ("train", "val", "test")})

    def whole(self, *a, **kw):
        raise AssertionError(f"np.asarray of a whole split ({len(self)} images) was requested")

    monkeypatch.setattr(Images, "__array__", whole)
    return ds, src, arrays


def _assert_batchwise(src: CountingSource, limit: int = PREDICT_BATCH) -> None:
    assert src.reads, "nothing was read"
    assert max(src.reads) <= limit, f"a read of {max(src.reads)} images (limit {limit})"
    src.reads.clear()


def test_model_handle_and_keras_consumers_read_a_batch_at_a_time(counted, trained_small):
    from edgekit.compress import metrics as M
    from edgekit.models import load
    from edgekit.optimize.sensitivity import accuracy as sensitivity_accuracy
    from edgekit.train.distill import Distillation

    ds, src, arrays = counted
    model = trained_small[0]
    with pytest.raises(AssertionError, match="whole split"):
        np.asarray(ds.x_test)  # the guard holds
    want = np.asarray(model.predict(arrays["test"], batch_size=256, verbose=0), np.float32)
    got = load(model).predict(ds.x_test)
    _assert_batchwise(src)
    assert got.shape == (len(ds.y_test), 10) and np.array_equal(got, want)
    acc = M.accuracy(model, ds)
    _assert_batchwise(src)
    assert acc == pytest.approx(float((want.argmax(1) == ds.y_test).mean()), abs=0) and acc > 0.5
    assert sensitivity_accuracy(model, ds.x_val, ds.y_val) == M.accuracy_on(model, arrays["val"], ds.y_val)
    _assert_batchwise(src)
    teacher = Distillation(model)
    t = teacher.teacher_log_probs(ds.x_val)
    _assert_batchwise(src)
    np.testing.assert_array_equal(t, teacher.teacher_log_probs(arrays["val"]))
    assert t.shape == (len(ds.y_val), 10) and np.all(t <= 0)


def test_predict_fn_format_reads_a_batch_at_a_time(counted, tmp_path):
    from edgekit._lazy import keras
    from edgekit.export.onnx import keras_to_onnx
    from edgekit.models import load

    ds, src, arrays = counted
    k = keras()
    model = k.Sequential([k.Input(ds.info.input_shape), k.layers.Conv2D(4, 3, strides=2, activation="relu"),
                          k.layers.Flatten(), k.layers.Dense(10, activation="softmax")])
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    (tmp_path / "m.onnx").write_bytes(keras_to_onnx(model, ds.info.input_shape).SerializeToString())
    handle = load(tmp_path / "m.onnx")
    assert handle.predict_fn is not None
    src.reads.clear()
    got = handle.predict(ds.x_test)
    _assert_batchwise(src)
    np.testing.assert_array_equal(got, handle.predict(arrays["test"]))
    np.testing.assert_allclose(got, model.predict(arrays["test"], verbose=0), atol=1e-5)


def test_compress_metrics_and_bn_adapt_read_a_batch_at_a_time(counted, trained_small):
    from edgekit._lazy import keras
    from edgekit.compress import metrics as M
    from edgekit.compress.bn_adapt import BATCH, adapt_batchnorm
    from edgekit.compress.layers import clone
    from edgekit.runtimes.litert import LiteRTRunner

    ds, src, arrays = counted
    model = trained_small[0]
    tfl = M.tflite_bytes(model, ds, "int8", n=200)  # calibration: 200 of the training images, read once
    assert max(src.reads) <= 200
    src.reads.clear()
    acc = M.tflite_accuracy(tfl, ds)
    _assert_batchwise(src)
    want = LiteRTRunner(tfl).predict(arrays["test"])
    assert acc == float((want.argmax(1) == ds.y_test).mean()) and acc > 0.5
    k = keras()
    bn = k.Sequential([k.Input(ds.info.input_shape), k.layers.Conv2D(4, 3, strides=2), k.layers.BatchNormalization(),
                       k.layers.ReLU(), k.layers.Flatten(), k.layers.Dense(10, activation="softmax")])
    a, b = clone(bn), clone(bn)
    assert adapt_batchnorm(a, ds.x_train, seed=0) == 1
    _assert_batchwise(src, BATCH)
    adapt_batchnorm(b, arrays["train"], seed=0)
    moving = [w for w in a.weights if "moving" in w.name]
    assert moving and not np.allclose(moving[0].numpy(), 0.0)  # the statistics moved from their initial values
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_validate_reads_a_batch_at_a_time(counted, trained_small, tmp_path):
    from edgekit.export.convert import to_tflite
    from edgekit.runtimes.litert import LiteRTRunner
    from edgekit.validate import validate

    ds, src, arrays = counted
    model = trained_small[0]
    (tmp_path / "f.tflite").write_bytes(to_tflite(model, "float32"))
    (tmp_path / "q.tflite").write_bytes(to_tflite(model, "int8", _floats(ds.x_train)[:200]))
    src.reads.clear()
    res = validate({"tflite": tmp_path / "f.tflite", "tflite-int8": tmp_path / "q.tflite"}, model, ds,
                   tmp_path / "out", runs=5, check=False)
    _assert_batchwise(src)
    ref = np.asarray(model.predict(arrays["test"], batch_size=256, verbose=0), np.float32)
    assert res.reference["accuracy"] == float((ref.argmax(1) == ds.y_test).mean()) > 0.5
    for name, f in (("tflite", "f.tflite"), ("tflite-int8", "q.tflite")):
        probs = LiteRTRunner(tmp_path / f).predict(arrays["test"])
        m = res.targets[name]
        assert m["samples"] == len(ds.y_test)
        assert m["accuracy"] == float((probs.argmax(1) == ds.y_test).mean())
        assert m["agreement_pct"] == pytest.approx(100.0 * float((probs.argmax(1) == ref.argmax(1)).mean()))
        assert m["max_abs_diff"] == pytest.approx(float(np.abs(probs.astype(np.float64) - ref).max()))
    assert res.targets["tflite"]["max_abs_diff"] < 1e-4


def test_diagnose_accuracy_path_reads_a_batch_at_a_time(counted, trained_small, tmp_path):
    from edgekit.diagnose import diagnose
    from edgekit.diagnose.layers import CHUNK
    from edgekit.export.convert import to_tflite
    from edgekit.runtimes.litert import LiteRTRunner

    ds, src, arrays = counted
    model = trained_small[0]
    (tmp_path / "q.tflite").write_bytes(to_tflite(model, "int8", _floats(ds.x_train)[:200]))
    samples = 300
    src.reads.clear()
    res = diagnose(model, tmp_path / "q.tflite", ds, samples=samples, leave_one_out=False)
    _assert_batchwise(src)
    assert CHUNK <= PREDICT_BATCH and res.samples == samples
    x, y = arrays["test"][:samples], ds.y_test[:samples]
    float_acc = float((model.predict(x, verbose=0).argmax(1) == y).mean())
    int8_acc = float((LiteRTRunner(tmp_path / "q.tflite").predict(x).argmax(1) == y).mean())
    assert res.float_accuracy == float_acc > 0.5
    assert res.artifact_accuracy == int8_acc > 0.5
    assert res.layers and all(np.isfinite(r.snr_db) for r in res.layers)
