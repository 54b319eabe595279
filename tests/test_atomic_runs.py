"""Runs are atomic as a whole: one writer per folder, a stage's files replaced as a set.

A kill is injected at every file replace of a tiny compress and a tiny export + validate run
(in process: the k-th ``os.replace`` raises a BaseException no edgekit code catches; and once per
command in a child process that ``os._exit``s there); every resulting folder must be the old
result, the new one, or refused as incomplete, never a mix that verifies.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.artifacts import TEMP_PREFIX
from edgekit.errors import InputError
from edgekit.manifest import MANIFEST, load_manifest, verify_manifest

ROOT = Path(__file__).resolve().parents[1]
DATA = ["--dataset", "digits", "--limit", "600"]


@pytest.fixture(scope="module", autouse=True)
def trusted():
    """The models here are the tests' own, freshly trained: loaded without the class allow-list."""
    from edgekit.models.io import trust_models

    with trust_models(True):
        yield


class Killed(BaseException):
    """The injected kill: not an Exception, so no handler of edgekit's swallows it."""


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (the lock file and temps aside)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".edgekit")}


def temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(f"{TEMP_PREFIX}*")]


def kill_at(monkeypatch: pytest.MonkeyPatch, k: int | None, root: Path | None = None) -> list[str]:
    """Make the k-th ``os.replace`` from now onto a visible path (not inside a temp folder) raise
    Killed before it happens (None: never); returns the names of the visible replaces that happened
    (their paths relative to ``root`` when given)."""
    real, done = os.replace, []

    def replace(src, dst, *a, **kw):
        visible = not any(part.startswith(TEMP_PREFIX) for part in Path(dst).parts)
        if visible and k is not None and len(done) + 1 == k:
            raise Killed(str(dst))
        real(src, dst, *a, **kw)
        if visible:
            done.append(os.path.relpath(dst, root) if root is not None else os.path.basename(dst))

    monkeypatch.setattr(os, "replace", replace)
    return done


def assert_old_new_or_refused(folder: Path, old: dict[str, str], new: dict[str, str]) -> str:
    """The folder verifies and is exactly the old or the new result, or every reader refuses it as
    incomplete; returns which of "old", "new", "refused"."""
    from edgekit.gate import run_gates
    from edgekit.report import build_report

    try:
        bad = verify_manifest(folder)
    except InputError as e:
        assert "incomplete" in str(e) and "--force" in str(e)
        for reader in (lambda: run_gates(folder / MANIFEST, {"max_size": "1MB"}), lambda: build_report(folder)):
            with pytest.raises(InputError, match="incomplete"):
                reader()
        return "refused"
    assert bad == []
    now = snapshot(folder)
    assert now in (old, new), f"a mixed folder verifies: {sorted(k for k in now if now[k] != old.get(k))} changed"
    return "old" if now == old else "new"


# -- one writer per folder ---------------------------------------------------------------------
@pytest.fixture
def held(tmp_path):
    """A folder whose lock another process holds (as a running export would); yields (folder, pid)."""
    folder = tmp_path / "busy"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"an earlier result")
    (folder / "model.tflite").write_bytes(b"an earlier artifact")
    code = textwrap.dedent(f"""
        import sys
        from edgekit.locking import out_lock
        with out_lock({str(folder)!r}, "export"):
            print("ready", flush=True)
            sys.stdin.read()
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         cwd=ROOT)
    try:
        assert p.stdout.readline().strip() == "ready"
        yield folder, p.pid
    finally:
        p.stdin.close()
        p.wait(timeout=30)


@pytest.mark.parametrize("args", [
    ["export", "{model}", "--target", "tflite", "--out", "{out}", "--force"],
    ["compress", "{model}", "--prune", "0.5", "--out", "{out}", "--force"],
    ["validate", "tflite={out}/model.tflite", "--reference", "{model}", "--force"],
    ["train", "--model", "cnn-small", "--epochs", "1", "--out", "{out}", "--force"],
    ["optimize", "{model}", "--out", "{out}", "--force"],
    ["diagnose", "{model}", "{out}/model.tflite", "--out", "{out}", "--force"],
])
def test_a_second_writer_is_refused_at_once_and_changes_nothing(held, tmp_path, args):
    from edgekit.cli.main import cli

    folder, pid = held
    model = tmp_path / "m.keras"
    model.write_bytes(b"not needed: refused before it is read")
    before = snapshot(folder)
    lock = (folder / ".edgekit.lock").read_bytes()
    r = CliRunner().invoke(cli, [a.format(model=model, out=folder) for a in args] + DATA)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert lines == [f"Error: {str(folder)!r} is being written by another edgekit run (pid {pid}, export); wait "
                     "for it to finish or choose another --out."]
    assert snapshot(folder) == before and (folder / ".edgekit.lock").read_bytes() == lock


def test_the_lock_is_reentrant_released_and_leaves_nothing(tmp_path):
    from edgekit.errors import UsageError
    from edgekit.locking import LOCK_FILE, holder, out_lock

    out = tmp_path / "new" / "out"
    with out_lock(out, "compress"):
        assert holder(out) == {"pid": os.getpid(), "command": "compress"}
        with out_lock(out, "run compress"):  # the same process: re-entrant
            pass
        assert (out / LOCK_FILE).is_file()
    assert holder(out) is None and not (tmp_path / "new").exists()  # created, nothing written: removed again
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        with out_lock(tmp_path / "f", "export"):
            pass


def test_a_killed_holder_releases_the_lock(tmp_path):
    from edgekit.locking import LOCK_FILE, out_lock

    code = f"import os\nfrom edgekit.locking import out_lock\nwith out_lock({str(tmp_path)!r}, 'export'):\n    os._exit(9)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 9
    assert (tmp_path / LOCK_FILE).is_file()  # left by the killed run, but no longer held
    with out_lock(tmp_path, "export"):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


# -- a kill at every replace --------------------------------------------------------------------
@pytest.fixture(scope="module")
def compress_setup(trained_small, small_digits, tmp_path_factory):
    """(config, old folder, its snapshot, a new result): a finished compress of cnn-small pruned with
    1 epoch, and the CompressResult of another one (pruned less) not written yet."""
    from edgekit.compress import CompressConfig, compress

    config = CompressConfig(prune=0.5, prune_epochs=1, representative_samples=50, max_drop=None)
    old = tmp_path_factory.mktemp("compress_old")
    compress(trained_small[1], small_digits, config, out=old, force=True)
    new = compress(trained_small[1], small_digits, CompressConfig.from_dict({**config.to_dict(), "prune": 0.25}))
    return config, old, snapshot(old), new


def test_compress_killed_at_every_replace_is_old_or_refused(compress_setup, small_digits, tmp_path, monkeypatch):
    """Every replace of a compress run is in its output-writing part (write_run): the kills replay it."""
    from edgekit.compress.pipeline import write_run

    _, old_dir, old, result = compress_setup

    def write(folder: Path) -> None:
        shutil.copytree(old_dir, folder)
        result.out_dir = folder
        write_run(result, small_digits)

    done = kill_at(monkeypatch, None)
    write(tmp_path / "ref")
    monkeypatch.undo()
    new, points = snapshot(tmp_path / "ref"), list(done)
    assert points == [MANIFEST, "model.keras", "compression.json", "compression.md", MANIFEST]  # marked first
    seen = []
    for k in range(1, len(points) + 1):
        kill_at(monkeypatch, k)
        with pytest.raises(Killed):
            write(tmp_path / f"k{k}")
        monkeypatch.undo()
        seen.append(assert_old_new_or_refused(tmp_path / f"k{k}", old, new))
        assert not temps(tmp_path / f"k{k}")
    assert seen == ["old"] + ["refused"] * (len(points) - 1)


@pytest.fixture(scope="module")
def export_setup(trained_small, small_digits, tmp_path_factory):
    """(export kwargs, old folder, its snapshot): tflite + micro of cnn-small, validated."""
    from edgekit.export import ExportConfig
    from edgekit.validate import ValidateConfig, export_and_validate

    kw = dict(export_config=ExportConfig(representative_samples=50), validate_config=ValidateConfig(runs=3, probe=False))
    old = tmp_path_factory.mktemp("export_old")
    export_and_validate(trained_small[1], small_digits, ["tflite", "micro"], old, **kw)
    return kw, old, snapshot(old)


def test_export_killed_at_every_replace_is_old_or_refused(export_setup, compress_setup, small_digits, tmp_path,
                                                          monkeypatch):
    from edgekit.validate import export_and_validate

    kw, old_dir, old = export_setup
    model = compress_setup[1] / "model.keras"  # another model: every artifact differs from the old one
    ref = tmp_path / "ref"
    shutil.copytree(old_dir, ref)
    done = kill_at(monkeypatch, None)
    export_and_validate(model, small_digits, ["tflite", "micro"], ref, force=True, **kw)
    monkeypatch.undo()
    new, points = snapshot(ref), list(done)
    assert points == [MANIFEST, "model_float32.tflite", "model_int8.tflite", "model_data.cc", "model_data.h",
                      "model_ops.h", "main.cc",
                      "micro.json", MANIFEST, "validation.json", "validation.md", MANIFEST]  # one set, two stages
    seen = []
    for k in range(1, len(points) + 1):
        folder = tmp_path / f"k{k}"
        shutil.copytree(old_dir, folder)
        kill_at(monkeypatch, k)
        with pytest.raises(Killed):
            export_and_validate(model, small_digits, ["tflite", "micro"], folder, force=True, **kw)
        monkeypatch.undo()
        seen.append(assert_old_new_or_refused(folder, old, new))
        assert not temps(folder)  # the staging folder goes in finally
    assert seen == ["old"] + ["refused"] * (len(points) - 1), list(zip(points, seen))


def _child(kill_name: str, args: list[str]) -> subprocess.CompletedProcess:
    """Run the CLI in a child that dies (os._exit, no cleanup) at the first replace onto ``kill_name`` in
    the output folder (not in a temp folder)."""
    code = textwrap.dedent(f"""
        import os, sys
        real = os.replace
        def replace(src, dst, *a, **kw):
            if os.path.basename(dst) == {kill_name!r} and {TEMP_PREFIX!r} not in os.fspath(dst):
                os._exit(137)
            return real(src, dst, *a, **kw)
        os.replace = replace
        from edgekit.cli.main import cli
        cli(sys.argv[1:], prog_name="edgekit")
    """)
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_a_killed_export_is_refused_then_redone_without_leftovers(export_setup, compress_setup, tmp_path):
    from edgekit.cli.main import cli

    _, old_dir, _ = export_setup
    folder = tmp_path / "e"
    shutil.copytree(old_dir, folder)
    model = compress_setup[1] / "model.keras"
    args = ["export", str(model), "--target", "tflite", "--target", "micro", "--out", str(folder), "--force",
            "--representative-samples", "50", "--runs", "3", "--trust-model", *DATA]
    r = _child("model_data.cc", args)  # dies moving the micro files in: tflite is new, micro half old
    assert r.returncode == 137, r.stderr[-2000:]
    assert temps(folder)  # the killed run's staging folder is still there
    gate = CliRunner().invoke(cli, ["gate", str(folder / MANIFEST), "--max-size", "1MB"])
    assert gate.exit_code == 2 and gate.output.strip().splitlines() == [
        f"Error: {str(folder)!r} holds an incomplete export/validate result (interrupted?); run export/validate "
        "again into it with --force, or choose another --out."]
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert verify_manifest(folder) == [] and not temps(folder) and not (folder / ".edgekit.lock").exists()
    assert "incomplete" not in load_manifest(folder)


def test_a_killed_compress_is_refused_then_redone(compress_setup, trained_small, tmp_path):
    from edgekit.cli.main import cli

    _, old_dir, old, _ = compress_setup
    folder = tmp_path / "c"
    shutil.copytree(old_dir, folder)
    args = ["compress", str(trained_small[1]), "--prune", "0.25", "--prune-epochs", "1", "--representative-samples",
            "50", "--out", str(folder), "--force", "-q", "--trust-model", *DATA]
    r = _child("compression.md", args)  # model.keras and compression.json new, compression.md old
    assert r.returncode == 137, r.stderr[-2000:]
    assert snapshot(folder)["compression.md"] == old["compression.md"] != snapshot(folder).get("compression.json")
    with pytest.raises(InputError, match="incomplete compress result"):
        verify_manifest(folder)
    report = CliRunner().invoke(cli, ["report", str(folder)])
    assert report.exit_code == 2 and "incomplete compress result" in report.output
    assert len(report.output.strip().splitlines()) == 1


# -- validate and export refusals, leftovers ---------------------------------------------------
def test_validate_without_force_keeps_validation_json(export_setup, trained_small, tmp_path):
    from edgekit.cli.main import cli

    _, old_dir, _ = export_setup
    folder = tmp_path / "v"
    shutil.copytree(old_dir, folder)
    before = snapshot(folder)
    args = ["validate", str(folder / "model_float32.tflite"), "--reference", str(trained_small[1]), "--runs", "3",
            "--trust-model", *DATA]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        f"Error: {str(folder)!r} already holds validation.json. Use --force to validate again into it (other "
        "targets' results are kept), or choose another --out."]
    assert snapshot(folder) == before
    r = CliRunner().invoke(cli, args + ["--force"])
    assert r.exit_code == 0, r.output
    targets = json.loads((folder / "validation.json").read_text())["targets"]
    assert set(targets) == {"tflite", "micro"}  # merged: micro's row kept
    assert verify_manifest(folder) == []


def test_a_failed_export_leaves_no_temp_folder_and_the_old_result(export_setup, trained_small, small_digits,
                                                                  tmp_path, monkeypatch):
    from edgekit.errors import EdgekitError
    from edgekit.export import export, load_targets

    _, old_dir, old = export_setup
    folder = tmp_path / "f"
    shutil.copytree(old_dir, folder)
    stale = folder / f"{TEMP_PREFIX}999999999.export.abc"  # left by a killed run (no such pid)
    stale.mkdir()
    (stale / "model_float32.tflite").write_bytes(b"half")
    spec = load_targets().get("tflite")

    def broken(ctx, stage):
        (Path(stage) / "model_float32.tflite").write_bytes(b"half-written")
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(type(spec), "build", lambda self, ctx, stage: broken(ctx, stage))
    with pytest.raises(EdgekitError, match="converter crashed"):
        export(trained_small[1], small_digits, ["tflite"], folder, force=True)
    assert not temps(folder) and snapshot(folder) == old and verify_manifest(folder) == []


def test_optimize_force_clears_the_previous_winner_first(tmp_path):
    from edgekit.manifest import write_stage
    from edgekit.optimize.api import INPUT_MODEL, _prepare
    from edgekit.optimize.state import STATE_FILE

    out = tmp_path / "opt"
    (out / "candidates" / "c1").mkdir(parents=True)
    files = {"optimize.json": json.dumps({"winner_artifact": "model_int8.tflite", "winner_model": "model.keras"}),
             "optimize.md": "#", "optimize.png": "png", "recipe.yaml": "name: x", "model_int8.tflite": "tfl",
             "model.keras": "keras", STATE_FILE: "{}", INPUT_MODEL: "input", "notes.txt": "mine"}
    for name, text in files.items():
        (out / name).write_text(text)
    write_stage(out, "optimize", [(n, "file") for n in ("optimize.json", "model_int8.tflite", "model.keras")],
                config={}, metrics={})
    _prepare(out, force=True, resume=None)
    assert sorted(p.name for p in out.iterdir()) == [INPUT_MODEL, MANIFEST, "notes.txt"]
    man = load_manifest(out, allow_incomplete=True)
    assert man["incomplete"]["stages"] == ["optimize"] and "optimize" not in man["stages"] and man["artifacts"] == []
    with pytest.raises(InputError, match="incomplete optimize result"):
        load_manifest(out)


def test_the_stage_cache_redoes_an_incomplete_stage(tmp_path):
    from edgekit.manifest import begin_stage, write_stage
    from edgekit.stages.base import _intact

    (tmp_path / "a.bin").write_bytes(b"a")
    write_stage(tmp_path, "compress", [("a.bin", "file")], config={}, metrics={})
    assert _intact(tmp_path)
    begin_stage(tmp_path, "compress")
    assert not _intact(tmp_path)
    write_stage(tmp_path, "compress", [("a.bin", "file")], config={}, metrics={})
    assert _intact(tmp_path) and "incomplete" not in load_manifest(tmp_path)
