"""Shared fixtures: a small real dataset and a tiny trained model, built once per session."""
from __future__ import annotations

import os
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The shared real MNIST test set (10k images); tests using it skip when it is absent."""
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"shared MNIST set not found at {MNIST_DIR} (it lives beside the project root)")
    return MNIST_DIR


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's real digits as 28x28x1: ~1,300 train / 143 val / 359 test."""
    from edgekit.data import load_dataset

    return load_dataset("digits", seed=0)


@pytest.fixture(scope="session")
def small_digits():
    """A 600-image stratified subset of digits, for tests that train."""
    from edgekit.data import load_dataset

    return load_dataset("digits", seed=0, limit=600)


@pytest.fixture(scope="session")
def trained_cnn(digits, tmp_path_factory):
    """The reference CNN trained 3 epochs on digits (~90% holdout accuracy); returns (model, path).

    Treat it as read-only: clone it before changing weights."""
    from edgekit.train import TrainConfig, train

    out = tmp_path_factory.mktemp("trained_cnn")
    res = train(TrainConfig(model="cnn", epochs=3, seed=0), digits, out=out, force=True)
    return res.model, out / "model.keras"


@pytest.fixture(scope="session")
def trained_small(digits, tmp_path_factory):
    """cnn-small trained 3 epochs on digits; returns (model, path). Read-only."""
    from edgekit.train import TrainConfig, train

    out = tmp_path_factory.mktemp("trained_small")
    res = train(TrainConfig(model="cnn-small", epochs=3, seed=0, lr=0.003), digits, out=out, force=True)
    return res.model, out / "model.keras"


@pytest.fixture(scope="session")
def keras3_files(tmp_path_factory, digits):
    """(folder, x): Keras 3 .keras/.h5 files (tests/models/keras3_builders.py) and their Keras 3
    predictions on 64 digits images."""
    import numpy as np

    from tests.models.keras3_builders import make_keras3_files

    out = tmp_path_factory.mktemp("keras3")
    x = digits.x_test[:64].astype(np.float32)
    make_keras3_files(out, x)
    return out, x
