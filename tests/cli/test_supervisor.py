"""The console script runs each command in a supervised child with RLIMIT_AS / RLIMIT_FSIZE: a native
crash, a memory bomb or a too-large file ends in one line, the child's temporary entries removed.

Crashes are injected with the test hook ``EDGEKIT_TEST_CRASH`` (edgekit/cli/supervise.py): after the
command creates its first ``.edgekit-tmp.*`` entry, it segfaults, aborts or allocates past the limit.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgekit.artifacts import TEMP_PREFIX
from edgekit.cli import supervise

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "sample_models" / "cnn-digits" / "model.keras"
EXPORT = ["export", str(MODEL), "--target", "tflite-int8", "--limit", "400", "-q"]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the supervisor needs Linux fork")


def _edgekit(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    ours = (supervise.MEMORY_ENV, supervise.FILE_SIZE_ENV, supervise.OFF_ENV, supervise.CRASH_HOOK_ENV)
    env = {**{k: v for k, v in os.environ.items() if k not in ours}, **(env or {})}
    return subprocess.run([sys.executable, "-m", "edgekit", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _error_line(stderr: str) -> str:
    """The one ``Error:`` line of ``stderr``; fails on a traceback or more than one."""
    lines = [ln for ln in stderr.splitlines() if ln.startswith("Error:")]
    assert "Traceback" not in stderr and len(lines) == 1, stderr[-3000:]
    return lines[0]


def _temps(folder: Path) -> list[Path]:
    return list(folder.rglob(f"{TEMP_PREFIX}*"))


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A real export of the sample CNN through the console script under the default limits."""
    out = tmp_path_factory.mktemp("supervised") / "export"
    r = _edgekit(*EXPORT, "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Error:" not in r.stderr and (out / "model_int8.tflite").is_file() and (out / "manifest.json").is_file()
    assert not _temps(out)
    return out


def _gate(exported: Path, out: Path, *extra: str, limit: str = "1MB") -> list[str]:
    return [*extra, "gate", str(exported / "manifest.json"), "--max-size", limit, "--junit", str(out / "gates.xml")]


# ---------------------------------------------------------------- exit codes pass through


def test_exit_codes_pass_through(exported, tmp_path):
    ok = _edgekit(*_gate(exported, tmp_path / "a"))
    assert ok.returncode == 0 and "All 1 gates passed" in ok.stdout and (tmp_path / "a" / "gates.xml").is_file()
    failed = _edgekit(*_gate(exported, tmp_path / "b", limit="1KB"))
    assert failed.returncode == 1 and "gates failed" in _error_line(failed.stderr)
    usage = _edgekit("export", str(MODEL), "--no-such-option")
    assert usage.returncode == 2 and "No such option '--no-such-option'" in usage.stderr and "Traceback" not in usage.stderr
    bad = _edgekit("--max-memory", "lots", "models")
    assert bad.returncode == 2 and "Invalid value for '--max-memory'" in bad.stderr


# ---------------------------------------------------------------- native crashes


@pytest.mark.parametrize("kind, name", [("segv", "SIGSEGV"), ("abort", "SIGABRT")])
def test_native_crash_is_one_line_exit_2_and_leaves_no_temp(exported, tmp_path, kind, name):
    out = tmp_path / "gates"
    r = _edgekit(*_gate(exported, out), env={supervise.CRASH_HOOK_ENV: kind})
    line = _error_line(r.stderr)
    assert r.returncode == 2 and f"native code crashed ({name}) while running 'gate'" in line, r.stderr
    assert "--max-memory" in line  # memory exhaustion in native code also looks like this
    assert out.is_dir() and not _temps(out) and not (out / "gates.xml").exists()


def test_crash_mid_export_keeps_the_earlier_export_and_removes_the_stage(exported):
    before = _digests(exported)
    r = _edgekit(*EXPORT, "--out", str(exported), "--force", env={supervise.CRASH_HOOK_ENV: "segv"})
    assert r.returncode == 2 and "crashed (SIGSEGV) while running 'export'" in _error_line(r.stderr)
    assert _digests(exported) == before and not _temps(exported)


def test_without_the_supervisor_a_crash_is_as_before(exported, tmp_path):
    r = _edgekit(*_gate(exported, tmp_path), env={supervise.CRASH_HOOK_ENV: "segv", supervise.OFF_ENV: "1"})
    assert r.returncode == -signal.SIGSEGV and "Error:" not in r.stderr


# ---------------------------------------------------------------- memory and file-size limits


@pytest.mark.parametrize("how", ["option", "env"])
def test_memory_bomb_is_one_line_naming_max_memory(exported, tmp_path, how):
    args, env = _gate(exported, tmp_path), {supervise.CRASH_HOOK_ENV: "memory"}
    if how == "option":
        args = ["--max-memory", "1500M", *args]
    else:
        env[supervise.MEMORY_ENV] = "1500M"
    r = _edgekit(*args, env=env)
    line = _error_line(r.stderr)
    assert r.returncode == 1 and "out of memory while running 'gate' under --max-memory 1500M" in line, r.stderr
    assert ("from EDGEKIT_MAX_MEMORY" in line) == (how == "env") and not _temps(tmp_path)


def test_the_default_memory_limit_applies(exported, tmp_path):
    r = _edgekit(*_gate(exported, tmp_path), env={supervise.CRASH_HOOK_ENV: "memory"})
    limit, _ = supervise.default_memory()
    if limit is None:
        pytest.skip("no default memory limit on this machine")
    line = _error_line(r.stderr)
    assert r.returncode == 1 and f"--max-memory {supervise.format_size(limit)} (the default" in line


def test_real_export_past_a_small_memory_limit_is_one_line(tmp_path):
    """TensorFlow itself runs out of address space: a MemoryError, a failed mmap, an abort or an
    exit from native code, depending on where; each is one line naming --max-memory."""
    out = tmp_path / "export"
    r = _edgekit("--max-memory", "1500M", *EXPORT, "--out", str(out))
    assert r.returncode in (1, 2) and "--max-memory 1500M" in _error_line(r.stderr), r.stderr[-3000:]
    assert not out.exists() or not _temps(out)


def test_file_size_limit_is_one_line(exported, tmp_path):
    r = _edgekit(*_gate(exported, tmp_path, "--max-file-size", "500"))
    line = _error_line(r.stderr)
    assert r.returncode == 1 and "File too large" in line and "--max-file-size" in line
    assert not (tmp_path / "gates.xml").exists() and not _temps(tmp_path)


def test_no_memory_limit_with_0(exported, tmp_path):
    r = _edgekit(*_gate(exported, tmp_path, "--max-memory", "0"), env={supervise.CRASH_HOOK_ENV: "memory"})
    assert r.returncode == 1 and "RuntimeError: test hook: no memory limit set" in r.stderr


# ---------------------------------------------------------------- signals


def test_ctrl_c_to_the_process_group_stops_once_with_130(tmp_path):
    out, log = tmp_path / "export", tmp_path / "log"
    ours = (supervise.MEMORY_ENV, supervise.FILE_SIZE_ENV, supervise.OFF_ENV, supervise.CRASH_HOOK_ENV)
    env = {k: v for k, v in os.environ.items() if k not in ours}
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "edgekit", *EXPORT[:-1], "--out", str(out)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=f, env={**env, "PYTHONUNBUFFERED": "1"},
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "exporting" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C at a terminal does
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert rc == 130 and "Stopped by SIGINT" in _error_line(text), text[-3000:]
    assert "send it again" not in text.split("SIGINT received", 1)[-1]  # one signal reached the command, not two
    assert not out.exists() or not _temps(out)


# ---------------------------------------------------------------- help stays light


def test_help_runs_supervised_without_importing_tensorflow():
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "edgekit", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--max-memory SIZE" in r.stdout
    imported = {ln.split("|")[-1].strip().split(".")[0] for ln in r.stderr.splitlines() if "|" in ln}
    assert "tensorflow" not in imported and "click" in imported


def test_console_script_is_supervised(exported, tmp_path):
    script = Path(sys.executable).with_name("edgekit")
    if not script.is_file():
        pytest.skip("no installed edgekit script beside this Python")
    env = {**os.environ, supervise.CRASH_HOOK_ENV: "abort"}
    env.pop(supervise.MEMORY_ENV, None)
    r = subprocess.run([str(script), *_gate(exported, tmp_path)], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 2 and "crashed (SIGABRT)" in _error_line(r.stderr)


# ---------------------------------------------------------------- the pieces


def test_sizes():
    assert supervise.parse_size("8G") == 8 << 30 == supervise.parse_size("8GiB")
    assert supervise.parse_size("1500M") == 1500 << 20
    assert supervise.parse_size("2GB") == 2_000_000_000
    assert supervise.parse_size("0") is None and supervise.parse_size("none") is None
    assert supervise.parse_size("500", minimum=1) == 500
    for bad in ("lots", "8X", "-1G", "100"):
        with pytest.raises(ValueError):
            supervise.parse_size(bad)
    assert [supervise.format_size(n) for n in (8 << 30, 1500 << 20, 20_300_000_000, 500, None)] == \
        ["8G", "1500M", "18.9G", "500B", "none"]


def test_limits_come_from_the_options_then_the_environment_then_the_defaults():
    env = {supervise.MEMORY_ENV: "3G", supervise.FILE_SIZE_ENV: "1M"}
    assert supervise.resolve_limits(["--max-memory", "2G", "export", "--max-memory", "9G"], env) == \
        supervise.Limits(2 << 30, 1 << 20, "")
    assert supervise.resolve_limits(["-q", "--max-memory=none", "--max-file-size=0", "train"], env) == \
        supervise.Limits(None, None, "")
    assert supervise.resolve_limits(["export"], env) == supervise.Limits(3 << 30, 1 << 20, "from EDGEKIT_MAX_MEMORY")
    memory, note = supervise.default_memory()
    assert supervise.resolve_limits(["export"], {}) == supervise.Limits(memory, supervise.DEFAULT_FILE_SIZE, note)
    if memory is not None:
        assert memory >= supervise.MEMORY_FLOOR
    assert supervise.root_options(["-q", "--max-memory", "2G", "gate", "x"]) == ({"--max-memory": "2G"}, "gate")


def test_outcome_lines():
    lim = supervise.Limits(2 << 30, 8 << 30, "")
    line, code = supervise.outcome(signal.SIGKILL, None, lim, "train")
    assert code == 2 and "killed (SIGKILL) while running 'train'" in line and "--max-memory (now 2G)" in line
    line, code = supervise.outcome(signal.SIGXFSZ, None, lim, "export")
    assert code == 2 and "--max-file-size 8G" in line
    line, code = supervise.outcome(None, 127, lim, "export")
    assert code == 2 and "native code ended the process (exit 127) while running 'export'" in line
    line, code = supervise.outcome(signal.SIGTERM, None, lim, "export")
    assert code == 143 and "Stopped by SIGTERM" in line


def test_state_folders_of_killed_supervisors_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"{supervise.STATE_PREFIX}{int(dead.stdout)}-abc"
    (stale / "tmp").mkdir(parents=True)
    mine = tmp_path / f"{supervise.STATE_PREFIX}{os.getpid()}-def"  # a live supervisor's
    mine.mkdir()
    r = _edgekit("models", env={"TMPDIR": str(tmp_path)})
    assert r.returncode == 0 and not stale.exists() and mine.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [mine.name]  # its own folder is gone too
