"""Absolute dataset specs, the dataset recorded beside a model, and how another one differs."""
from __future__ import annotations

import os

from edgekit.data import load_dataset
from edgekit.data.provenance import Recorded, differences, mismatch, recorded_dataset
from edgekit.data.sources import absolute_spec, spec_path
from edgekit.manifest import update_manifest


def test_absolute_spec(tmp_path):
    assert absolute_spec("digits", tmp_path) == "digits"
    assert absolute_spec("idx:../mnist", tmp_path / "a") == f"idx:{tmp_path / 'mnist'}"
    assert absolute_spec("images:pics,size=32x32,channels=3", tmp_path) == f"images:{tmp_path / 'pics'},size=32x32,channels=3"
    assert absolute_spec(f"npz:{tmp_path}/d.npz", "/elsewhere") == f"npz:{tmp_path}/d.npz"
    assert spec_path("images:pics,size=32") == "pics" and spec_path("mnist") is None


def test_loaded_spec_is_absolute(tmp_path, digits, monkeypatch):
    import numpy as np

    np.savez(tmp_path / "d.npz", x=(digits.x_test[..., 0] * 255).astype(np.uint8), y=digits.y_test)
    monkeypatch.chdir(tmp_path)
    info = load_dataset("npz:d.npz").info
    assert info.spec == f"npz:{tmp_path / 'd.npz'}" and os.path.isabs(spec_path(info.spec))


def test_recorded_beside_the_model_and_differences(tmp_path, digits):
    update_manifest(tmp_path, "train", config={}, metrics={}, dataset=digits.info)
    rec = recorded_dataset([None, tmp_path / "model.keras"])
    assert rec is not None and rec.spec == "digits" and rec.options()["seed"] == 0
    assert differences(rec, digits.info) == ([], False) and mismatch(rec, digits.info) is None
    (split,), other = differences(rec, load_dataset("digits", seed=1, limit=300).info)
    assert split.startswith("split (seed 1 vs 0, limit 300 vs None)") and not other  # same source
    wider = Recorded({**digits.info.to_dict(), "input_shape": [32, 32, 3], "num_classes": 3}, tmp_path)
    line, other = mismatch(wider, digits.info)
    assert "input shape 28x28x1 vs 32x32x3" in line and "10 classes vs 3" in line and "\n" not in line and other
    assert recorded_dataset([tmp_path / "nothing" / "model.keras"]) is None
