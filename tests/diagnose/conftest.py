"""A trained model with one planted bad layer, its int8 export, and its diagnosis (built once)."""
from __future__ import annotations

import pytest

from tests.diagnose import planted


@pytest.fixture(scope="session")
def planted_model(digits):
    """The planted CNN trained on digits; layer ``bad`` is ruined by int8 weight quantization."""
    return planted.trained_planted(digits)


@pytest.fixture(scope="session")
def planted_int8(planted_model, digits, tmp_path_factory):
    """(model path, int8 artifact path) of the planted model."""
    from edgekit.export.convert import to_tflite

    d = tmp_path_factory.mktemp("planted")
    planted_model.save(d / "model.keras")
    (d / "model_int8.tflite").write_bytes(to_tflite(planted_model, "int8", digits.representative(200)))
    return d / "model.keras", d / "model_int8.tflite"


@pytest.fixture(scope="session")
def planted_diagnosis(planted_model, planted_int8, digits):
    from edgekit.diagnose import diagnose

    return diagnose(planted_model, planted_int8[1], digits, samples=300, representative_samples=200)


@pytest.fixture(scope="session")
def planted_onnx(planted_int8, digits, tmp_path_factory):
    """(float .onnx, onnx-int8 .onnx) of the planted model (edgekit export, 200 calibration images)."""
    from edgekit.export import ExportConfig, export

    d = tmp_path_factory.mktemp("planted_onnx")
    export(planted_int8[0], digits, ["onnx", "onnx-int8"], d, force=True,
           config=ExportConfig(representative_samples=200))
    return d / "model_float32.onnx", d / "model_int8.onnx"
