"""ONNX: opset honoured, checker and shape inference, runs in onnxruntime; calibration methods."""
from __future__ import annotations

import numpy as np


def test_onnx_opset_and_shapes(trained_cnn, digits, tmp_path):
    import onnx

    from edgekit.export import ExportConfig, export
    from edgekit.runtimes.ort import OrtRunner

    res = export(trained_cnn[0], digits, ["onnx"], tmp_path, config=ExportConfig(opset=13))
    proto = onnx.load(str(res.path("onnx")))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [13]
    info = res.outputs["onnx"].info
    assert info["opset"] == 13 and info["inputs"][0]["shape"][1:] == [28, 28, 1]
    assert info["outputs"][0]["shape"][-1] == 10
    assert info["onnxruntime_output_shape"] == [2, 10]  # ran once in onnxruntime at export time
    probs = OrtRunner(res.path("onnx")).predict(digits.x_test[:300])  # dynamic batch: runs in batches
    ref = trained_cnn[0].predict(digits.x_test[:300], verbose=0)
    assert np.abs(probs - ref).max() < 1e-4


def test_onnx_int8_entropy_calibration(trained_cnn, digits):
    import onnx

    from edgekit.export.onnx import keras_to_onnx, quantize_onnx
    from edgekit.runtimes.ort import OrtRunner

    proto = keras_to_onnx(trained_cnn[0], (28, 28, 1))
    data = quantize_onnx(proto, digits.representative(40), "entropy")
    q = onnx.load_from_string(data)
    assert sum(n.op_type == "QuantizeLinear" for n in q.graph.node) >= 4
    p = OrtRunner(data).predict(digits.x_test)
    ref = trained_cnn[0].predict(digits.x_test, verbose=0)
    assert (p.argmax(1) == ref.argmax(1)).mean() >= 0.95
