"""``edgekit optimize`` bad input: one line, exit 2 (exit 1 when no candidate meets the constraints)."""
from __future__ import annotations

from click.testing import CliRunner

from edgekit.cli.main import cli

DIGITS = ["--dataset", "digits", "--limit", "300"]


def invoke(*args):
    return CliRunner().invoke(cli, ["optimize", *[str(a) for a in args]])


def _one_line_error(r, code: int) -> str:
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    errors = [l for l in r.output.splitlines() if l.startswith("Error:")]
    assert len(errors) == 1
    return errors[0]


def test_unknown_target_and_conflicting_flags(tmp_path):
    line = _one_line_error(invoke("m.keras", "--target", "tflite-int9", "--out", tmp_path / "o"), 2)
    assert "Unknown target 'tflite-int9'" in line and "tflite-int8" in line
    line = _one_line_error(invoke("m.keras", "--resume", "--force", "--out", tmp_path / "o"), 2)
    assert "give one of them" in line
    line = _one_line_error(invoke("m.keras", "--max-tune", "0", "--out", tmp_path / "o"), 2)
    assert "max_tune must be a positive integer. Received: 0." in line
    line = _one_line_error(invoke(tmp_path / "missing.keras", *DIGITS, "--out", tmp_path / "o"), 2)
    assert "does not exist" in line


def test_resume_needs_a_state(trained_small, tmp_path):
    line = _one_line_error(invoke(trained_small[1], *DIGITS, "--resume", "--out", tmp_path / "o"), 2)
    assert "holds no search to continue" in line


def test_budget_too_small_for_one_candidate(trained_small, tmp_path):
    r = invoke(trained_small[1], *DIGITS, "--budget-minutes", "0.01", "--out", tmp_path / "o", "-q")
    line = _one_line_error(r, 2)
    assert "--budget-minutes 0.01 is too small to evaluate one candidate" in line and "Give at least" in line


def test_constraints_nobody_meets_exit_1_with_the_nearest(trained_small, tmp_path, monkeypatch):
    import edgekit.optimize.api as api

    monkeypatch.setattr(api, "run_search", lambda *a, **k: None)  # only the baseline is measured
    r = invoke(trained_small[1], *DIGITS, "--max-size", "1KB", "--out", tmp_path / "o", "-q")
    line = _one_line_error(r, 1)
    assert "no candidate meets the constraints" in line and "misses: size" in line and "> 1,000 B" in line
    assert "nearest: baseline" in r.output
    assert (tmp_path / "o" / "optimize.json").is_file() and (tmp_path / "o" / "recipe.yaml").is_file()
    # a finished search is not overwritten without --force
    line = _one_line_error(invoke(trained_small[1], *DIGITS, "--max-size", "1KB", "--out", tmp_path / "o"), 2)
    assert "already holds a finished search" in line
