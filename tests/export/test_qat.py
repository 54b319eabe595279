"""A quantization-aware model (as the compression stage saves it) converts to int8 directly."""
from __future__ import annotations


def test_qat_model_exports_to_int8_and_matches(trained_cnn, small_digits, digits, tmp_path):
    import tensorflow_model_optimization as tfmot

    from edgekit._lazy import keras
    from edgekit.export import ExportConfig
    from edgekit.formats.tflite_flatbuffer import read_tflite
    from edgekit.models import save_model
    from edgekit.models.qat import is_qat
    from edgekit.validate import ValidateConfig, export_and_validate

    base = trained_cnn[0]
    clone = keras().models.clone_model(base)
    clone.set_weights(base.get_weights())  # tfmot wrappers share weights: never wrap the fixture
    qat = tfmot.quantization.keras.quantize_model(clone)
    qat.compile("adam", "sparse_categorical_crossentropy")
    qat.fit(small_digits.x_train, small_digits.y_train, epochs=1, batch_size=64, verbose=0)
    path = save_model(qat, tmp_path / "qat.keras")
    assert is_qat(qat) and not is_qat(base)

    res = export_and_validate(path, digits, ["tflite-int8", "tflite"], tmp_path / "out",
                              export_config=ExportConfig(representative_samples=20),
                              validate_config=ValidateConfig(runs=5, probe=False))
    g = read_tflite(res.path("tflite-int8"))
    assert g.input_tensors[0].dtype == "int8" and g.dtypes(constant=False) == {"int8"}
    v = res.validation.targets
    # the int8 flatbuffer reproduces the QAT model's own fake-quantized forward pass
    assert v["tflite-int8"]["agreement_pct"] >= 99.0 and abs(v["tflite-int8"]["accuracy_drop_pt"]) <= 0.6
    # float artifacts of a QAT model match it to quantization precision only: reported, not failed
    assert v["tflite"]["exact"] is False and v["tflite"]["status"] == "ok"
    assert v["tflite"]["agreement_pct"] >= 99.0
