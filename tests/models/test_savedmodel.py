"""The SavedModel format: signatures, layout, the reference predict, the TF graph, and refusal of
corrupt or unsafe SavedModels (built inside the test with tf.saved_model.save)."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit import vocab
from edgekit.errors import InputError, UsageError
from edgekit.models.loading import load
from tests.models.savedmodel_builders import save_module as _save
from tests.models.savedmodel_builders import tiny_module as _module


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    base = tmp_path_factory.mktemp("sm")
    m = _module()
    return m, _save(base / "default", m), _save(base / "two", m, "two")


def test_loads_untrusted_with_probe_and_predicts(saved):
    m, path, _ = saved
    h = load(path)  # untrusted: op scan + child-process probe
    assert (h.format, h.framework, h.layout) == ("savedmodel", "tensorflow", vocab.NHWC)
    assert h.input_shape == (8, 8, 1) and h.num_outputs == 3
    assert h.info["signature"] == "serving_default" and h.info["output_key"] == "probs"
    x = np.random.default_rng(0).uniform(0, 1, (300, 8, 8, 1)).astype(np.float32)  # > one batch of 256
    np.testing.assert_allclose(h.predict(x), m.call(x)["probs"].numpy(), atol=1e-6)


def test_signature_choice(saved):
    m, _, two = saved
    x = np.random.default_rng(1).uniform(0, 1, (4, 8, 8, 1)).astype(np.float32)
    default = load(two, trust=True)
    other = load(two, trust=True, signature="logits")
    assert default.info["signature"] == "serving_default" and other.info["signature"] == "logits"
    np.testing.assert_allclose(other.predict(x), 2 * default.predict(x), atol=1e-6)
    with pytest.raises(UsageError, match="no signature 'nope'.*Available: logits, serving_default"):
        load(two, trust=True, signature="nope")


def test_without_signatures_says_how_to_export(tmp_path):
    with pytest.raises(InputError, match="has no signatures to run; export one with model.export") as e:
        load(_save(tmp_path / "none", _module(), "none"))
    assert "\n" not in str(e.value)


def test_corrupt_saved_model_pb_is_input_error(tmp_path, saved):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(saved[1], bad)
    pb = bad / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:100] + b"\xff\xfe garbage")
    with pytest.raises(InputError, match="is not a valid SavedModel: saved_model.pb does not parse"):
        load(bad)


def test_nchw_input_is_detected_and_transposed(tmp_path):
    m = _module(nchw=True)
    h = load(_save(tmp_path / "nchw", m, shape=(None, 1, 8, 8)), trust=True)
    assert h.layout == vocab.NCHW and h.input_shape == (8, 8, 1) and "(N, C, H, W)" in h.info["layout_note"]
    x = np.random.default_rng(2).uniform(0, 1, (3, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(h.predict(x), m.call(x.transpose(0, 3, 1, 2))["probs"].numpy(), atol=1e-6)
    g = h.tf_graph()
    np.testing.assert_allclose(g(x).numpy(), h.predict(x), atol=1e-6)


def test_rank_problem_is_one_line(tmp_path):
    import tensorflow as tf

    m = tf.Module()
    m.f = tf.function(lambda x: {"out": tf.reduce_mean(x, -1)}, input_signature=[tf.TensorSpec((None, 8, 8))])
    tf.saved_model.save(m, str(tmp_path / "r3"), signatures=m.f)
    with pytest.raises(InputError, match=r"takes float32 \[None, 8, 8\]; edgekit needs float32 images of rank 4"):
        load(tmp_path / "r3", trust=True)


def test_file_ops_in_the_signature_are_refused_untrusted(tmp_path):
    target = tmp_path / "written.txt"
    path = _save(tmp_path / "evil", _module(write_to=str(target)))
    with pytest.raises(InputError, match=r"uses ops edgekit does not run from an untrusted model: WriteFile \(in function"):
        load(path)
    assert not target.exists()


def test_tf_graph_converts_to_tflite(saved):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    _, path, _ = saved
    h = load(path, trust=True)
    g = h.tf_graph()
    data = tf.lite.TFLiteConverter.from_concrete_functions([g.concrete(batch_size=2)], g.trackable).convert()
    it = Interpreter(model_content=data)
    it.allocate_tensors()
    x = np.random.default_rng(3).uniform(0, 1, (2, 8, 8, 1)).astype(np.float32)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    np.testing.assert_allclose(it.get_tensor(it.get_output_details()[0]["index"]), h.predict(x), atol=1e-5)
