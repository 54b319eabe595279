"""Fixtures of the export tests: every target exported once from the trained seed CNN."""
from __future__ import annotations

import pytest

_CACHE: dict = {}


def export_all_once(trained_cnn, digits, tmp_path_factory):
    """Export every registered target once per session (shared with tests/validate)."""
    if "result" not in _CACHE:
        from edgekit.export import ExportConfig, export, load_targets

        _, path = trained_cnn
        out = tmp_path_factory.mktemp("export_all")
        config = ExportConfig(representative_samples=100, runs=10)
        _CACHE["result"] = export(path, digits, load_targets().names(), out, config=config)
    return _CACHE["result"]


@pytest.fixture(scope="session")
def exported_all(trained_cnn, digits, tmp_path_factory):
    """ExportResult of all registered targets (validated on their runtimes, few timed runs)."""
    return export_all_once(trained_cnn, digits, tmp_path_factory)
