"""The standard edge architectures (MLPerf Tiny ResNet-8, MobileNetV1 0.25, DS-CNN) in tiny
versions on 16x16 RGB data: train a few steps -> compress (PCQAT / PQAT / CQAT, whose runs
hold the prune and cluster stages too; plain QAT and every scheme alone are in
tests/compress/test_batchnorm_qat.py) -> export tflite-int8 from the saved QAT file ->
validate on LiteRT. Each must succeed; the int8 kernels keep the sparsity and shared values
through the BatchNorm fold."""
from __future__ import annotations

import pytest

from tests.models.synthetic import write_npz

CASES = {
    "resnet8": ({}, dict(prune=0.5, cluster=8, quantize="qat"), "PCQAT"),
    "mobilenet-v1": ({"alpha": 0.25}, dict(prune=0.5, quantize="qat"), "PQAT"),
    "ds-cnn": ({}, dict(cluster=8, quantize="qat"), "CQAT"),
}


@pytest.fixture(scope="module")
def rgb16(tmp_path_factory):
    from edgekit.data import load_dataset

    spec = write_npz(tmp_path_factory.mktemp("rgb16") / "blocks.npz", 160, 16, 3)
    return load_dataset(spec, test_split=0.25)


@pytest.mark.parametrize("name", list(CASES))
def test_standard_model_trains_compresses_and_exports(name, rgb16, tmp_path):
    from edgekit.compress import CompressConfig, compress
    from edgekit.compress.metrics import int8_kernels
    from edgekit.export import ExportConfig
    from edgekit.models import save_model
    from edgekit.train import TrainConfig, train
    from edgekit.validate import ValidateConfig, export_and_validate

    options, kw, scheme = CASES[name]
    trained = train(TrainConfig(model=name, model_options=options, epochs=2, batch_size=32, seed=0), rgb16)
    assert trained.model.input_shape == (None, 16, 16, 3)
    # an untrained model on 160 images: no accuracy limit; BatchNorm statistics kept as trained and QAT ranges
    # at tfmot's start (re-estimated statistics or calibrated ranges move this near-chance model's near-ties:
    # mobilenet-v1 PQAT int8 agreement 100% -> 70%, ds-cnn CQAT 100% -> 25% on 40 images, at equal accuracy)
    cfg = CompressConfig(**kw, epochs_per_stage=1, batch_size=32, representative_samples=20, max_drop=None,
                         bn_adapt=False, qat_calibrate=False)
    # measure=False: no per-stage .tflite conversions (half of this test's time); export measures below
    res = compress(trained.model, rgb16, cfg, measure=False)
    stages = {s["stage"]: s for s in res.metrics["stages"]}
    assert stages["quantize"]["method"] == scheme
    saved = save_model(res.model, tmp_path / "compress" / "model.keras")
    exp = export_and_validate(saved, rgb16, ["tflite-int8"], tmp_path / "export",
                              export_config=ExportConfig(representative_samples=20), validate_config=ValidateConfig(runs=3))
    v = exp.validation.targets["tflite-int8"]
    # measured on 40 holdout images: 100% agreement for each of the three (QAT int8 is exact
    # up to ties); 95% leaves room for one or two near-ties in an almost untrained model
    assert v["status"] == "ok" and v["agreement_pct"] >= 95.0, v
    rows = int8_kernels(exp.path("tflite-int8").read_bytes())
    dense_and_conv = [r for r in rows if r["op"] != "DEPTHWISE_CONV_2D"]
    if "prune" in kw:  # every conv/dense kernel keeps its 50% zeros in int8 (measured: the 13
        # depthwise kernels of mobilenet-v1 come out unpruned, sparsity ~0.003)
        assert dense_and_conv and all(r["sparsity"] >= 0.5 for r in dense_and_conv), rows
    if "cluster" in kw:  # tfmot clusters every kernel except depthwise ones
        assert dense_and_conv and all(r["max_unique_per_channel"] <= 8 for r in dense_and_conv), rows
