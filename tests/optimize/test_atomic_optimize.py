"""``optimize`` killed at a file replace: the folder is the old finished search or refused as incomplete
by every reader (verify_manifest, gate, report), never a mix that verifies; ``--resume`` (or the
command its one-line refusal names) then finishes the search, and the folder verifies.

The search is the smallest there is: cnn-small on 600 digits, the baseline (always measured) and one
pruned candidate with a 1-epoch fine-tune, over the folder of a finished search with other settings
(``--force``). A whole run takes a few seconds and replaces 20 files, listed in :data:`POINTS`: the
manifest marked, then cleared of the old search; each candidate's export (its own manifest, the
artifact, its manifest again) and the resume state after it (and after the sensitivity); the state once
more, then the write-out (winner copies, recipe, plot, reports, the manifest without the mark).
Each point costs a killed run and the run that finishes it (about 4 s on 2 busy cores): the unmarked
test takes the write-out's 8 points and 5 spread over the search (about a minute), the slow one the
other 7, so that the two together kill the run at every replace.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgekit.artifacts import read_json
from edgekit.errors import EdgekitError
from edgekit.manifest import MANIFEST, load_manifest, verify_manifest
from edgekit.optimize import OptimizeConfig, optimize
from edgekit.optimize.space import Candidate
from edgekit.optimize.state import STATE_FILE
from tests.test_atomic_runs import Killed, assert_old_new_or_refused, kill_at, snapshot, temps

OLD = OptimizeConfig(channel_levels=(0.5,), prune_levels=(0.5,), cluster_levels=(16,), quantize_modes=("ptq",),
                     channels_epochs=1, prune_epochs=1, cluster_epochs=1, qat_epochs=1, budget_minutes=30,
                     latency_runs=5, representative_samples=50, max_accuracy_drop=50.0, accuracy_margin=0)
NEW = OLD.replace(prune_levels=(0.25,))  # other settings: another state, another candidate, other files
DATA = {"spec": "digits", "seed": 0, "test_split": 0.2, "val_split": 0.1, "limit": 600, "preprocess": "unit"}
POINTS = [
    MANIFEST, MANIFEST,  # marked incomplete; the old search's stage dropped (its files are deleted next)
    "candidates/001/export/manifest.json", "candidates/001/export/model_int8.tflite",
    "candidates/001/export/manifest.json", STATE_FILE,  # the baseline
    STATE_FILE,  # the sensitivity
    "candidates/002/compress/model.keras", "candidates/002/export/manifest.json",
    "candidates/002/export/model_int8.tflite", "candidates/002/export/manifest.json", STATE_FILE,  # the candidate
    STATE_FILE,  # the search's time
    "model_int8.tflite", "model.keras", "recipe.yaml", "optimize.png", "optimize.md", "optimize.json", MANIFEST,
]
WRITE_OUT = range(13, len(POINTS) + 1)  # the final state save and output.write
FIRST_RESUMABLE = 7  # from here on the folder holds the new search's state (the baseline measured)
FAST = sorted({1, 2, 4, 7, 10, *WRITE_OUT})  # the write-out, and a spread of the candidate phase
REST = [k for k in range(1, len(POINTS) + 1) if k not in FAST]


def one_candidate(ev, space, sens, config, narrowed_params, progress=None) -> None:
    """The search, cut to one compressed candidate (the baseline is measured before it)."""
    ev(Candidate.of(prune={space.prunable[0]: config.prune_levels[0]}, quantize="ptq"))


@pytest.fixture(scope="module")
def old_search(trained_small, small_digits, tmp_path_factory):
    """(folder, its snapshot): a finished search with settings OLD."""
    import edgekit.optimize.api as api

    old = tmp_path_factory.mktemp("optimize_old") / "opt"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(api, "run_search", one_candidate)
        optimize(str(trained_small[1]), small_digits, OLD, old, data=DATA)
    assert verify_manifest(old) == []
    return old, snapshot(old)


@pytest.fixture
def tiny_search(monkeypatch):
    import edgekit.optimize.api as api

    monkeypatch.setattr(api, "run_search", one_candidate)


def finish(folder: Path, model: str, dataset) -> str:
    """Run the search again into ``folder`` with ``--resume``; when that is refused (one line), the way
    the refusal names; returns how it finished ("resume", "plain": without --resume, "force")."""
    state = read_json(folder / STATE_FILE) if (folder / STATE_FILE).exists() else None
    said: list[str] = []
    try:
        res, how = optimize(model, dataset, NEW, folder, resume=True, data=DATA, progress=said.append), "resume"
    except EdgekitError as e:
        msg = str(e)
        assert "\n" not in msg
        if "Run without --resume" in msg:
            res, how = optimize(model, dataset, NEW, folder, data=DATA, progress=said.append), "plain"
        else:
            assert "--force" in msg, msg
            res, how = optimize(model, dataset, NEW, folder, force=True, data=DATA, progress=said.append), "force"
    assert verify_manifest(folder) == [] and "incomplete" not in load_manifest(folder)
    assert not temps(folder)
    report = read_json(folder / "optimize.json")
    assert report["config"] == NEW.to_dict() and report["winner"]["key"] == res.winner["key"]
    assert [c["key"] for c in report["candidates"]] == ["baseline", "prune[conv1=0.25] ptq"]
    assert (folder / "model_int8.tflite").read_bytes() == (folder / res.winner["artifact"]).read_bytes()
    listed = {a["path"] for a in load_manifest(folder)["artifacts"] if a.get("stage") == "optimize"}
    assert listed == {"optimize.json", "optimize.md", "optimize.png", "recipe.yaml", "model_int8.tflite",
                      "model.keras"}
    assert sorted(p.name for p in (folder / "candidates").iterdir()) == ["001", "002"]  # nothing measured twice
    if how == "resume":
        reused = [m for m in said if m.endswith("measured before (resumed)")]
        assert len(reused) == len(state["results"]) >= 1
    return how


def sweep(ks, model: str, dataset, old_search, tmp_path: Path) -> None:
    old_dir, old = old_search
    ref = tmp_path / "ref"
    shutil.copytree(old_dir, ref)
    with pytest.MonkeyPatch.context() as mp:
        done = kill_at(mp, None, ref)
        optimize(model, dataset, NEW, ref, force=True, data=DATA)
    assert list(done) == POINTS
    seen, how = [], []
    for k in ks:
        folder = tmp_path / f"k{k}"
        shutil.copytree(old_dir, folder)
        with pytest.MonkeyPatch.context() as mp:
            kill_at(mp, k)
            with pytest.raises(Killed):
                optimize(model, dataset, NEW, folder, force=True, data=DATA)
        seen.append(assert_old_new_or_refused(folder, old, old))  # no kill leaves the new result
        assert not temps(folder)
        how.append(finish(folder, model, dataset))
    assert seen == ["old" if k == 1 else "refused" for k in ks], list(zip(ks, seen))
    # the old finished search needs --force; the old state is another search's (--force); a cleared
    # folder holds no state (run again without --resume); from the first state saved on, --resume
    assert how == ["force" if k <= 2 else "plain" if k < FIRST_RESUMABLE else "resume" for k in ks], \
        str(list(zip(ks, how)))


def test_optimize_killed_in_the_write_out_and_a_spread_of_the_search(tiny_search, trained_small, small_digits,
                                                                     old_search, tmp_path):
    """Every point of the write-out (the final state save and output.write, 13-20) and a spread of the
    candidate phase (1: the mark, 2: the old stage dropped, 4: inside the baseline's export, 7: the
    sensitivity's state, 10: inside the candidate's export); the others are in the slow test."""
    sweep(FAST, str(trained_small[1]), small_digits, old_search, tmp_path)


@pytest.mark.slow
def test_optimize_killed_at_the_other_replaces(tiny_search, trained_small, small_digits, old_search, tmp_path):
    """The candidate-phase points the fast test leaves out: with it, every replace of the run."""
    sweep(REST, str(trained_small[1]), small_digits, old_search, tmp_path)


def test_a_search_killed_before_its_manifest_is_refused_then_resumed(tiny_search, trained_small, tmp_path):
    """The command in a child that dies (os._exit: no cleanup, its lock and a temp file left) at the last
    replace, the manifest, every report written: readers refuse the folder, and ``--resume`` finishes it
    without measuring anything again."""
    import os
    import subprocess
    import sys
    import textwrap

    from click.testing import CliRunner

    from edgekit.artifacts import TEMP_PREFIX
    from edgekit.cli.main import cli
    from tests.test_atomic_runs import ROOT

    folder = tmp_path / "opt"
    args = ["optimize", str(trained_small[1]), "--dataset", "digits", "--limit", "600", "--max-accuracy-drop", "50",
            "--accuracy-margin", "0", "--channels-epochs", "1", "--prune-epochs", "1", "--cluster-epochs", "1",
            "--qat-epochs", "1", "--out", str(folder), "--trust-model"]
    code = textwrap.dedent(f"""
        import os, sys
        real = os.replace
        def replace(src, dst, *a, **kw):
            if os.path.basename(dst) == {MANIFEST!r} and {TEMP_PREFIX!r} not in os.fspath(dst) and \\
                    os.path.exists(os.path.join(os.path.dirname(dst), "optimize.json")):
                os._exit(137)
            return real(src, dst, *a, **kw)
        os.replace = replace
        import edgekit.optimize.api as api
        from tests.optimize.test_atomic_optimize import one_candidate
        api.run_search = one_candidate
        from edgekit.cli.main import cli
        cli(sys.argv[1:], prog_name="edgekit")
    """)
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    r = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 137, r.stderr[-2000:]
    assert (folder / "optimize.json").is_file() and temps(folder) and (folder / ".edgekit.lock").is_file()
    refusal = (f"Error: {str(folder)!r} holds an incomplete optimize result (interrupted?); run optimize again "
               "into it with --force, or choose another --out.")
    for reader in (["gate", str(folder / MANIFEST), "--max-size", "1MB"], ["report", str(folder)]):
        out = CliRunner().invoke(cli, reader)
        assert out.exit_code == 2 and out.output.strip().splitlines() == [refusal], out.output
    again = CliRunner().invoke(cli, args + ["--resume"])
    assert again.exit_code == 0, again.output
    assert "candidate 1: baseline: measured before (resumed)" in again.output
    assert "candidate 2: prune[conv1=0.25] ptq: measured before (resumed)" in again.output
    assert verify_manifest(folder) == [] and "incomplete" not in load_manifest(folder)
    assert not temps(folder) and not (folder / ".edgekit.lock").exists()
    assert sorted(p.name for p in (folder / "candidates").iterdir()) == ["001", "002"]
