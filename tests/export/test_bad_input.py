"""Every bad input of the export stage: one clear line, the right error type, nothing written."""
from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import InputError, OutputExistsError, UsageError
from edgekit.export import ExportConfig, export

NO_VALIDATE = ExportConfig(representative_samples=20)


def _nothing_written(out) -> bool:
    return not out.exists() or not any(p.is_file() for p in out.rglob("*"))


def test_unknown_target_lists_the_real_ones(trained_cnn, digits, tmp_path):
    with pytest.raises(UsageError) as e:
        export(trained_cnn[1], digits, ["tflite-int9"], tmp_path / "o", config=NO_VALIDATE)
    msg = str(e.value)
    assert "Unknown target 'tflite-int9'" in msg and "tflite-int8" in msg and "micro" in msg and "\n" not in msg
    assert _nothing_written(tmp_path / "o")


def test_missing_model_file(digits, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        export(tmp_path / "nope.keras", digits, ["tflite"], tmp_path / "o", config=NO_VALIDATE)
    assert _nothing_written(tmp_path / "o")


@pytest.mark.parametrize("name,content", [("corrupt.keras", b"PK\x03\x04 not really a zip"),
                                          ("notes.txt", b"hello")])
def test_corrupt_or_foreign_model_file(digits, tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(InputError) as e:
        export(p, digits, ["tflite"], tmp_path / "o", config=NO_VALIDATE)
    assert "\n" not in str(e.value)
    assert _nothing_written(tmp_path / "o")


def test_dataset_that_does_not_fit_the_model(trained_cnn, tmp_path):
    from edgekit.data import load_dataset

    rng = np.random.default_rng(0)
    f = tmp_path / "small.npz"
    np.savez(f, x=rng.integers(0, 255, (60, 16, 16), dtype=np.uint8), y=np.arange(60) % 10)
    ds = load_dataset(f"npz:{f}")
    with pytest.raises(InputError, match="does not fit"):
        export(trained_cnn[1], ds, ["tflite"], tmp_path / "o", config=NO_VALIDATE)
    assert _nothing_written(tmp_path / "o")


@pytest.mark.parametrize("target", ["onnx-int8", "tflite-int8", "micro", "edgetpu"])
def test_int8_targets_without_calibration_data(trained_cnn, tmp_path, target):
    with pytest.raises(UsageError, match="calibration data"):
        export(trained_cnn[1], None, [target], tmp_path / "o", config=NO_VALIDATE)
    assert _nothing_written(tmp_path / "o")


def test_calibration_options_are_checked():
    with pytest.raises(UsageError, match="representative_samples"):
        ExportConfig(representative_samples=0)
    with pytest.raises(UsageError, match="Unknown calibration method 'kl'"):
        ExportConfig(calibration="kl")
    with pytest.raises(UsageError, match="opset"):
        ExportConfig(opset=42)
    with pytest.raises(UsageError, match="arena_size"):
        ExportConfig(arena_size=0)


def test_existing_outputs_need_force(trained_cnn, tmp_path):
    out = tmp_path / "o"
    export(trained_cnn[0], None, ["tflite"], out, config=NO_VALIDATE)
    before = (out / "model_float32.tflite").stat().st_mtime_ns
    with pytest.raises(OutputExistsError, match="--force"):
        export(trained_cnn[0], None, ["tflite"], out, config=NO_VALIDATE)
    assert (out / "model_float32.tflite").stat().st_mtime_ns == before
    export(trained_cnn[0], None, ["tflite"], out, force=True, config=NO_VALIDATE)
    export(trained_cnn[0], None, ["tflite-fp16"], out, config=NO_VALIDATE)  # other targets share the folder
    assert (out / "model_fp16.tflite").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".export-")]  # staging removed


def test_export_config_round_trips():
    c = ExportConfig(opset=13, calibration="entropy", arena_size=65536)
    assert ExportConfig.from_dict(c.to_dict()) == c
    with pytest.raises(UsageError, match="Unknown export option"):
        ExportConfig.from_dict({"opsett": 13})


def test_exports_into_one_folder_merge_in_the_manifest(trained_cnn, tmp_path):
    from edgekit.manifest import load_manifest

    out = tmp_path / "o"
    export(trained_cnn[1], None, ["tflite"], out, config=NO_VALIDATE)
    export(trained_cnn[1], None, ["tflite-fp16"], out, config=NO_VALIDATE)
    man = load_manifest(out)
    assert man["stages"]["export"]["targets"] == ["tflite", "tflite-fp16"]
    assert set(man["stages"]["export"]["metrics"]) == {"tflite", "tflite-fp16"}
    assert {a["target"] for a in man["artifacts"]} == {"tflite", "tflite-fp16"}


def test_int8_calibration_with_inf_is_one_line_not_a_converter_segfault():
    """TF 2.21's int8 converter segfaults on a -inf calibration pixel (tensorflow#120295): refused first."""
    from edgekit._lazy import keras
    from edgekit.export.convert import to_tflite

    k = keras()
    m = k.Sequential([k.Input((4, 4, 1)), k.layers.Conv2D(2, 3, activation="relu"), k.layers.Flatten(),
                      k.layers.Dense(2)])
    rep = np.random.default_rng(0).random((4, 4, 4, 1)).astype(np.float32)
    rep[0, 0, 0, 0], rep[1, 1, 1, 0] = -np.inf, np.nan
    with pytest.raises(InputError, match="hold 2 NaN or infinite values") as e:
        to_tflite(m, "int8", rep, batch_size=1)
    assert "\n" not in str(e.value)
