"""The recipe's optimize section in ``edgekit run``: the stage runs the search between train and
export, the export takes its winning model, and an unchanged stage is reused."""
from __future__ import annotations

import json


def test_optimize_stage_feeds_export_and_is_reused(trained_small, tmp_path, monkeypatch):
    import edgekit.optimize.api as api
    from edgekit.recipe.run import run
    from edgekit.recipe.schema import Recipe

    monkeypatch.setattr(api, "run_search", lambda *a, **k: None)  # the wiring, not the search: baseline only
    recipe = Recipe.from_dict({
        "data": {"spec": "digits", "limit": 300}, "model": {"path": str(trained_small[1])},
        "optimize": {"max_accuracy_drop": 5.0, "latency_runs": 5},
        "export": {"targets": ["tflite-int8"]}, "validate": {"enabled": False},
    })
    res = run(recipe, tmp_path / "run")
    assert res.stages["optimize"]["status"] == "ran" and res.stages["optimize"]["met"] is True
    assert res.stages["optimize"]["winner"] == "baseline"
    opt = json.loads((tmp_path / "run" / "optimize" / "optimize.json").read_text())
    exported = json.loads((tmp_path / "run" / "export" / "manifest.json").read_text())
    assert exported["stages"]["export"]["source"].endswith("optimize/model.keras")  # export took the stage's winner
    assert opt["winner"]["raw_bytes"] == (tmp_path / "run" / "export" / "model_int8.tflite").stat().st_size
    merged = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert "optimize/optimize.json" in {a["path"] for a in merged["artifacts"]}
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Optimize" in report and "baseline" in report.split("## Optimize")[1]
    again = run(recipe, tmp_path / "run")
    assert again.stages["optimize"]["status"] == "reused"
