"""Checks that an untrusted artifact is what it claims before a native runtime loads it.

A pure-Python parse comes first (TFLite flatbuffer identifier and structure; ONNX protobuf
and ``onnx.checker``). Then the runtime load and one invocation happen in a child process
(:mod:`edgekit.runtimes.probe`), so a file that would crash a native interpreter ends that
child, not this process. Each runtime owns both checks (:meth:`edgekit.runtimes.Runtime.check`).
"""
from __future__ import annotations

from pathlib import Path

from edgekit.runtimes import get_runtime
from edgekit.runtimes.probe import probe_in_subprocess

__all__ = ["check_file", "probe_in_subprocess", "safe_check"]


def check_file(path: str | Path, runtime: str) -> None:
    """InputError with one clear line when ``path`` is not a loadable artifact for ``runtime``."""
    get_runtime(runtime).check(Path(path), probe=False)


def safe_check(path: str | Path, runtime: str, probe: bool = True) -> None:
    """Both checks: a parse here, then (optionally) a load-and-run in a child process."""
    get_runtime(runtime).check(Path(path), probe=probe)
