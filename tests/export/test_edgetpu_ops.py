"""Operator versions edgetpu_compiler 16 parses: the table, real TF converter output, patched flatbuffers."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.export.edgetpu import SUPPORTED, analyze_edgetpu
from edgekit.export.edgetpu_ops import CPU_OP_MAX_VERSIONS, MAX_VERSIONS, max_version, version_issue
from edgekit.formats.tflite_flatbuffer import read_tflite

# coral.ai/docs/edgetpu/models-intro "Supported operations", as Coral names them -> TFLite builtin
CORAL_LIST = {
    "Add": "ADD", "AveragePool2d": "AVERAGE_POOL_2D", "Concatenation": "CONCATENATION", "Conv2d": "CONV_2D",
    "DepthwiseConv2d": "DEPTHWISE_CONV_2D", "ExpandDims": "EXPAND_DIMS", "FullyConnected": "FULLY_CONNECTED",
    "L2Normalization": "L2_NORMALIZATION", "Logistic": "LOGISTIC", "LSTM": "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "Maximum": "MAXIMUM", "MaxPool2d": "MAX_POOL_2D", "Mean": "MEAN", "Minimum": "MINIMUM", "Mul": "MUL",
    "Pack": "PACK", "Pad": "PAD", "PReLU": "PRELU", "Quantize": "QUANTIZE", "ReduceMax": "REDUCE_MAX",
    "ReduceMin": "REDUCE_MIN", "ReLU": "RELU", "ReLU6": "RELU6", "ReLUN1To1": "RELU_N1_TO_1", "Reshape": "RESHAPE",
    "ResizeBilinear": "RESIZE_BILINEAR", "ResizeNearestNeighbor": "RESIZE_NEAREST_NEIGHBOR", "Rsqrt": "RSQRT",
    "Slice": "SLICE", "Softmax": "SOFTMAX", "SpaceToDepth": "SPACE_TO_DEPTH", "Split": "SPLIT",
    "Squeeze": "SQUEEZE", "StridedSlice": "STRIDED_SLICE", "Sub": "SUB", "Sum": "SUM",
    "Squared-difference": "SQUARED_DIFFERENCE", "Tanh": "TANH", "Transpose": "TRANSPOSE",
    "TransposeConv": "TRANSPOSE_CONV",
}


def test_table_covers_every_supported_operation():
    assert len(CORAL_LIST) == 40
    assert set(MAX_VERSIONS) == set(CORAL_LIST.values()) == set(SUPPORTED)
    assert all(isinstance(v, int) and v >= 1 for v in MAX_VERSIONS.values())
    assert not set(MAX_VERSIONS) & set(CPU_OP_MAX_VERSIONS)
    # the refusals reported against compiler 16.0.384591198 (#631, #845, #879, libedgetpu#71)
    for op, refused in (("CONV_2D", 6), ("TRANSPOSE_CONV", 4), ("QUANTIZE", 3), ("EXP", 2)):
        assert max_version(op) == refused - 1, op
    assert version_issue("CONV_2D", 6) == (
        "CONV_2D version 6 > 5, the highest edgetpu_compiler 16 accepts (it refuses the whole model: "
        "\"Didn't find op for builtin opcode\")")
    assert version_issue("CONV_2D", 5) is None and version_issue("NOT_TABLED_OP", 99) is None


def _int8(model, shape, n=8) -> bytes:
    from edgekit.export.convert import to_tflite

    x = np.random.default_rng(0).random((n, *shape), dtype=np.float32)
    return to_tflite(model, "int8", x, batch_size=1)


def _versions(data: bytes) -> dict[str, int]:
    return {op.op: op.version for op in read_tflite(data).ops}


def _conv_model(groups: int = 1):
    from edgekit._lazy import keras

    k = keras()
    k.utils.set_random_seed(0)
    i = k.Input((8, 8, 4))
    x = k.layers.Conv2D(4, 3, groups=groups, activation="relu")(i)
    x = k.layers.DepthwiseConv2D(3)(x)
    x = k.layers.Flatten()(x)
    return k.Model(i, k.layers.Dense(3, activation="softmax")(x))


def test_tf_converter_versions_of_a_plain_int8_cnn_are_accepted():
    """TF 2.21 writes int8 CONV_2D v3, DEPTHWISE_CONV_2D v3, FULLY_CONNECTED v4: all parse."""
    data = _int8(_conv_model(), (8, 8, 4))
    assert _versions(data) == {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "RESHAPE": 1, "FULLY_CONNECTED": 4,
                               "SOFTMAX": 2}
    a = analyze_edgetpu(data)
    assert a.fully_mapped and [v.version for v in a.ops] == [3, 3, 1, 4, 2]


def test_grouped_conv_gets_conv_2d_v6_which_compiler_16_refuses():
    """google-coral/edgetpu#631: a grouped Conv2D converts to CONV_2D version 6."""
    data = _int8(_conv_model(groups=2), (8, 8, 4))
    assert _versions(data)["CONV_2D"] == 6
    a = analyze_edgetpu(data)
    assert not a.fully_mapped and a.partition_index == 0 and a.mapped_ops == 0
    assert a.ops[0].reason.startswith("CONV_2D version 6 > 5, the highest edgetpu_compiler 16 accepts")
    assert a.ops[1].supported and not a.ops[1].mapped and "refuses the model (op #0)" in a.ops[1].reason
    assert a.model_issues == (f"edgetpu_compiler 16.0 refuses the model: op #0 {a.ops[0].reason}",)
    assert a.summary().startswith("not compilable for the Edge TPU: edgetpu_compiler 16.0 refuses the model")
    assert a.partition()["op"] == "CONV_2D" and "| 0 | CONV_2D | 6 |" in a.to_markdown()


def test_int8_exp_is_a_cpu_op_whose_version_still_refuses_the_model():
    """libedgetpu#71: EXP v2 (int8) is not an Edge TPU op, yet the compiler cannot even parse it."""
    from edgekit._lazy import keras, tf

    k = keras()
    i = k.Input((4, 4, 2))
    x = k.layers.Conv2D(2, 1)(i)
    data = _int8(k.Model(i, k.layers.Lambda(lambda t: tf().exp(t))(x)), (4, 4, 2))
    assert _versions(data) == {"CONV_2D": 3, "EXP": 2}
    a = analyze_edgetpu(data)
    assert a.partition_index == 1 and a.ops[1].reason.startswith("EXP version 2 > 1")
    assert not a.ops[0].mapped and any("refuses the model: op #1 EXP" in m for m in a.model_issues)


def test_gelu_is_newer_than_the_compiler_knows():
    """TF 2.21 converts an int8 Activation("gelu") to the GELU builtin (150), added in TF 2.9."""
    from edgekit._lazy import keras

    k = keras()
    i = k.Input((4, 4, 2))
    data = _int8(k.Model(i, k.layers.Activation("gelu")(k.layers.Conv2D(2, 1)(i))), (4, 4, 2))
    assert _versions(data) == {"CONV_2D": 3, "GELU": 2}
    a = analyze_edgetpu(data)
    assert a.partition_index == 1 and a.mapped_ops == 0
    assert a.ops[1].reason.startswith("GELU (builtin 150) is newer than edgetpu_compiler 16 knows")
    assert version_issue("HASHTABLE_SIZE", 1) is None and version_issue("REDUCE_ALL", 1) is not None
    assert version_issue("CUSTOM:TFLite_Detection_PostProcess", 1) is None


def _patched(data: bytes, op_name: str, version: int) -> bytes:
    """``data`` with the operator code of ``op_name`` set to ``version`` (re-serialised flatbuffer)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    from edgekit.formats.tflite_flatbuffer import _op_names

    model = s.ModelT.InitFromObj(s.Model.GetRootAs(data, 0))
    names = _op_names()
    hits = [c for c in model.operatorCodes if names[max(c.builtinCode, c.deprecatedBuiltinCode)] == op_name]
    assert hits, op_name
    for c in hits:
        c.version = version
    b = flatbuffers.Builder(len(data) + 1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


@pytest.mark.parametrize("op, version, cut", [("FULLY_CONNECTED", 10, True), ("FULLY_CONNECTED", 9, False),
                                              ("SOFTMAX", 4, True), ("DEPTHWISE_CONV_2D", 6, False)])
def test_patched_operator_versions(op, version, cut):
    data = _int8(_conv_model(), (8, 8, 4))
    a = analyze_edgetpu(_patched(data, op, version))
    index = [v.op for v in a.ops].index(op)
    assert a.ops[index].version == version
    if cut:
        assert a.partition_index == index and not a.fully_mapped and a.mapped_ops == 0
        assert a.ops[index].reason.startswith(f"{op} version {version} > {MAX_VERSIONS[op]}, the highest")
    else:
        assert a.fully_mapped and a.partition_index is None
