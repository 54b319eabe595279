"""Fixtures of the export tests: every target exported once from the trained reference CNN."""
from __future__ import annotations

import pytest

_CACHE: dict = {}


def export_all_once(trained_cnn, digits, tmp_path_factory):
    """Export every registered target once per session (shared with tests/validate)."""
    if "result" not in _CACHE:
        from edgekit.export import ExportConfig, load_targets
        from edgekit.validate import ValidateConfig, export_and_validate

        _, path = trained_cnn
        out = tmp_path_factory.mktemp("export_all")
        _CACHE["result"] = export_and_validate(path, digits, load_targets().names(), out,
                                               export_config=ExportConfig(representative_samples=100),
                                               validate_config=ValidateConfig(runs=10, probe=False))
    return _CACHE["result"]


@pytest.fixture(scope="session")
def exported_all(trained_cnn, digits, tmp_path_factory):
    """ExportResult of all registered targets (validated on their runtimes, few timed runs)."""
    return export_all_once(trained_cnn, digits, tmp_path_factory)
