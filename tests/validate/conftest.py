"""The validate tests reuse the session-wide export of every target."""
from __future__ import annotations

import pytest

from tests.export.conftest import export_all_once


@pytest.fixture(scope="session")
def exported_all(trained_cnn, digits, tmp_path_factory):
    return export_all_once(trained_cnn, digits, tmp_path_factory)
