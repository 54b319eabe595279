"""Constants and the child-process environment shared by the fuzz engine's modules."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE_KINDS = ("tflite", "onnx", "keras", "idx", "recipe", "manifest")
MODEL_KINDS = ("keras3", "savedmodel", "onnx_model")  # models a user brings, through `edgekit inspect`
KINDS = BASE_KINDS + MODEL_KINDS
OUTCOMES = ("clean", "success", "crash", "traceback", "hang", "bad_error")
FINDINGS = ("crash", "traceback", "hang", "bad_error")
# images the dataset options keep: small, so a case that gets as far as inference is quick
DATA_OPTS = ["--dataset", "digits", "--limit", "200"]


def child_env() -> dict[str, str]:
    """The environment of the fuzzer's child processes (legacy Keras, the repo importable)."""
    env = dict(os.environ)
    env["TF_USE_LEGACY_KERAS"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTEST_CURRENT_TEST", None)
    return env
