"""Fixtures shared by the model-format tests (test_keras3, test_inspect)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.models.keras3_builders import make_keras3_files


@pytest.fixture(scope="session")
def keras3_files(tmp_path_factory, digits):
    """(folder, x): Keras 3 .keras/.h5 files and their Keras 3 predictions on 64 digits images."""
    out = tmp_path_factory.mktemp("keras3")
    x = digits.x_test[:64].astype(np.float32)
    make_keras3_files(out, x)
    return out, x
