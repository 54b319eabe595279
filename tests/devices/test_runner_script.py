"""The on-device runner stays self-contained and parseable by old Pythons (so it can refuse them)."""
from __future__ import annotations

import ast
from pathlib import Path

from edgekit.devices import runner_script

SOURCE = Path(runner_script.__file__).read_text()


def test_runner_parses_with_python_3_4_grammar():
    ast.parse(SOURCE, feature_version=(3, 4))  # no f-strings, annotations or walrus


def test_runner_imports_only_stdlib_numpy_and_runtimes():
    allowed = {"json", "os", "platform", "sys", "time", "importlib", "numpy", "ai_edge_litert", "tflite_runtime",
               "onnxruntime"}
    found = set()
    for node in ast.walk(ast.parse(SOURCE)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add((node.module or "").split(".")[0])
    assert found <= allowed and "edgekit" not in found, found - allowed
    assert {"numpy", "ai_edge_litert", "onnxruntime"} <= found
