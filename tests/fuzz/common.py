"""Constants and the child-process environment shared by the fuzz engine's modules."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE_KINDS = ("tflite", "onnx", "keras", "idx", "recipe", "manifest")
MODEL_KINDS = ("keras3", "savedmodel", "onnx_model")  # models a user brings, through `edgekit inspect`
# datasets (npz:FILE, images:DIR, tfrecord:GLOB) and replies of exec: devices
INPUT_KINDS = ("npz", "images", "device", "tfrecord")
# hostile inputs built to break a hardening, one kind per class; every case must fail, and a planted
# write aims at the case's sentinel folder
HOSTILE_KINDS = ("hostile_keras", "hostile_savedmodel", "hostile_onnx", "hostile_data", "hostile_device")
# kinds added later go last: a case's random stream depends on its kind's index here, so the
# cases of the earlier kinds (and their replay commands) stay the same
LATER_KINDS = ("tfrecord",)
KINDS = (BASE_KINDS + MODEL_KINDS + tuple(k for k in INPUT_KINDS if k not in LATER_KINDS) + HOSTILE_KINDS
         + LATER_KINDS)
# wrong_success: a case that must fail exited 0; file_written: its sentinel folder is not empty
# afterwards; memory: its process tree's peak resident set passed MEMORY_LIMIT
OUTCOMES = ("clean", "success", "crash", "traceback", "hang", "bad_error", "wrong_success", "file_written", "memory")
FINDINGS = ("crash", "traceback", "hang", "bad_error", "wrong_success", "file_written", "memory")
MEMORY_LIMIT = 4 << 30  # bytes: a case whose process tree holds more at its peak is a finding
MEMORY_KILL = 10 << 30  # bytes: a worker tree past this is killed at once (the machine is shared)
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
