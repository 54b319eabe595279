"""export() writes artifacts only; export_and_validate adds the validation (the pipeline step)."""
from __future__ import annotations

import json

import pytest

from edgekit.errors import ValidationError
from edgekit.export import ExportConfig, export
from edgekit.validate import ValidateConfig, export_and_validate

FAST = ValidateConfig(runs=3, probe=False)


def test_export_alone_writes_no_validation(trained_cnn, digits, tmp_path):
    res = export(trained_cnn[1], digits, ["tflite"], tmp_path / "e")
    assert res.validation is None and res.path("tflite").is_file()
    assert not (tmp_path / "e/validation.json").exists()
    assert "validate" not in json.loads((tmp_path / "e/manifest.json").read_text())["stages"]


def test_export_and_validate_writes_the_validation(trained_cnn, digits, tmp_path):
    res = export_and_validate(trained_cnn[1], digits, ["tflite"], tmp_path / "v", validate_config=FAST)
    saved = json.loads((tmp_path / "v/validation.json").read_text())
    assert saved["targets"]["tflite"]["agreement_pct"] == 100.0 == res.validation.targets["tflite"]["agreement_pct"]
    assert saved["reference"]["path"] == str(trained_cnn[1])
    stages = json.loads((tmp_path / "v/manifest.json").read_text())["stages"]
    assert {"export", "validate"} <= set(stages) and stages["validate"]["config"]["runs"] == 3


def test_a_tolerance_miss_raises_after_writing(trained_cnn, digits, tmp_path):
    # float32 kernels differ from Keras by ~1e-7, far above 1e-12: the first failure is raised, results kept
    with pytest.raises(ValidationError) as e:
        export_and_validate(trained_cnn[0], digits, ["tflite"], tmp_path / "f",
                            validate_config=FAST.replace(max_diff=1e-12), export_config=ExportConfig())
    assert e.value.target == "tflite" and e.value.metric == "max_abs_diff"
    assert e.value.result.validation.targets["tflite"]["status"].startswith("failed")
    assert (tmp_path / "f/validation.json").is_file() and (tmp_path / "f/model_float32.tflite").is_file()
