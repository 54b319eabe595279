"""Nothing lost: disk full, permission errors and interrupted exports leave earlier outputs intact."""
from __future__ import annotations

import errno
import hashlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.artifacts import TEMP_PREFIX, remove_stale_temps, write_bytes
from edgekit.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ["--target", "tflite", "--target", "onnx", "--target", "micro"]


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def exported(trained_small, tmp_path) -> tuple[Path, Path]:
    """(model path, an export folder holding a complete earlier export)."""
    _, model = trained_small
    out = tmp_path / "export"
    r = CliRunner().invoke(cli, ["export", str(model), *TARGETS, "--limit", "200", "--runs", "5", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return model, out


def _export_args(model: Path, out: Path) -> list[str]:
    return ["export", str(model), *TARGETS, "--limit", "200", "--runs", "5", "--out", str(out), "--force"]


def _one_error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in output, output[-3000:]
    return lines[0]


def test_disk_full_gives_one_line_and_keeps_earlier_outputs(exported, monkeypatch):
    model, out = exported
    before = _digests(out)

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("edgekit.artifacts._fsync", full)
    r = CliRunner().invoke(cli, _export_args(model, out))
    line = _one_error_line(r.output)
    assert r.exit_code == 1 and "No space left on device" in line and "free some space" in line
    assert _digests(out) == before  # every earlier file byte-identical
    assert not list(out.rglob(f"{TEMP_PREFIX}*"))  # no temp file left behind


def test_permission_denied_is_a_usage_error(exported, monkeypatch):
    model, out = exported
    before = _digests(out)

    def denied(*a, dir=None, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    r = CliRunner().invoke(cli, _export_args(model, out))
    line = _one_error_line(r.output)
    assert r.exit_code == 2 and "Permission denied" in line and str(out) in line
    assert _digests(out) == before


def test_file_size_limit_in_a_real_process(exported):
    """A real write failure (RLIMIT_FSIZE makes the kernel refuse writes past 30 kB)."""
    model, out = exported
    before = _digests(out)

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, 30_000))

    proc = subprocess.run([sys.executable, "-m", "edgekit.cli.main", *_export_args(model, out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, preexec_fn=limit)
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 1 and "File too large" in line, proc.stderr[-2000:]
    assert _digests(out) == before
    assert not list(out.rglob(f"{TEMP_PREFIX}*"))


def _start_export(model: Path, out: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgekit.cli.main", *_export_args(model, out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_for(log: Path, text: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while text not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.01)


def _complete(out: Path) -> None:
    """Every visible file under ``out`` is whole: the artifacts load, the JSON parses."""
    import json

    import onnx

    from edgekit.formats.tflite_flatbuffer import read_tflite

    for p in out.rglob("*"):
        if not p.is_file() or p.name.startswith("."):
            continue
        if p.suffix == ".tflite":
            read_tflite(p)
        elif p.suffix == ".onnx":
            onnx.checker.check_model(onnx.load(str(p)))
        elif p.suffix == ".json":
            json.loads(p.read_text())


@pytest.mark.parametrize("when", ["onnx: exporting", "micro: measuring"])
def test_export_killed_midway_leaves_no_partial_file(exported, tmp_path, when):
    model, out = exported
    log = tmp_path / "export.log"
    proc = _start_export(model, out, log)
    try:
        _wait_for(log, when, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    _complete(out)  # old or new, every named file is whole
    stale = list(out.rglob(f"{TEMP_PREFIX}*"))
    assert remove_stale_temps(out) == stale and not list(out.rglob(f"{TEMP_PREFIX}*"))


def test_export_stopped_by_ctrl_c_exits_130_and_leaves_no_temp_file(exported, tmp_path):
    model, out = exported
    log = tmp_path / "export.log"
    proc = _start_export(model, out, log)
    try:
        _wait_for(log, "onnx: exporting", proc)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert rc == 130 and "Traceback" not in text and "Stopped by SIGINT" in text, text[-2000:]
    _complete(out)
    assert not list(out.rglob(f"{TEMP_PREFIX}*"))


def test_stale_temps_of_live_processes_are_kept(tmp_path):
    mine = tmp_path / f"{TEMP_PREFIX}{os.getpid()}.model.abc.tflite"
    mine.write_bytes(b"being written")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    theirs = tmp_path / "sub" / f"{TEMP_PREFIX}{int(dead.stdout)}.model.xyz.onnx"
    theirs.parent.mkdir()
    theirs.write_bytes(b"half")
    assert remove_stale_temps(tmp_path) == [theirs]
    assert mine.exists() and not theirs.exists()
    write_bytes(tmp_path / "x.bin", b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, "sub", "x.bin"])
