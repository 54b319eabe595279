"""The runtime registry: every vocabulary name resolves, unknown names get a suggestion."""
from __future__ import annotations

import pytest

from edgekit import vocab
from edgekit.errors import UsageError
from edgekit.runtimes import RUNTIMES, get_runtime, make_runner


def test_every_vocab_runtime_resolves():
    assert RUNTIMES.names() == list(vocab.RUNTIMES)
    for name in vocab.RUNTIMES:
        rt = get_runtime(name)
        assert rt.name == name and rt.description


def test_unknown_runtime_is_a_usage_error_with_a_suggestion(tmp_path):
    with pytest.raises(UsageError, match=r"Unknown runtime 'litrt'\. Expected one of: keras, litert, onnxruntime, "
                                         r"tflite-micro\. Did you mean \"litert\"\?"):
        get_runtime("litrt")
    with pytest.raises(UsageError, match="Did you mean \"onnxruntime\""):
        make_runner("onnxruntim", tmp_path / "m.onnx")


def test_every_target_runs_on_a_registered_runtime():
    from edgekit.export.base import target
    from edgekit.export.targets import load_targets

    for name, spec in load_targets().items():
        assert spec.runtime in RUNTIMES, name
    with pytest.raises(ValueError, match="unknown runtime 'tflite'"):
        target("x", description="", needs="", runtime="tflite", exact=True, files=())
