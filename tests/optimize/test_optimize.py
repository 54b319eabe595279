"""``optimize`` end to end on cnn-small and 600 digits with 1-epoch fine-tunes: an interrupted search
resumes without measuring anything twice, other settings are refused, and the winner's recipe.yaml
rebuilds the same artifact with ``edgekit run``."""
from __future__ import annotations

import json

import pytest

from edgekit.artifacts import read_json
from edgekit.errors import UsageError
from edgekit.optimize import OptimizeConfig, optimize
from edgekit.optimize.state import STATE_FILE

TINY = OptimizeConfig(channel_levels=(0.5,), prune_levels=(0.5,), cluster_levels=(16,), quantize_modes=("qat",),
                      channels_epochs=1, prune_epochs=1, cluster_epochs=1, qat_epochs=1, budget_minutes=30,
                      latency_runs=20, representative_samples=100,
                      max_accuracy_drop=5.0, accuracy_margin=0)  # 48 validation images: 1 image is 2 pt
DATA = {"spec": "digits", "seed": 0, "test_split": 0.2, "val_split": 0.1, "limit": 600, "preprocess": "unit"}
MEASURED = "  val accuracy"  # the line after each candidate is measured and saved


def test_interrupted_search_resumes_and_its_recipe_reproduces(trained_small, small_digits, tmp_path):
    from edgekit.recipe import load_recipe
    from edgekit.recipe.run import run
    from edgekit.runtimes.litert import LiteRTRunner

    model, out = str(trained_small[1]), tmp_path / "opt"
    seen: list[str] = []

    def stop_after_first_candidate(msg: str) -> None:
        seen.append(msg)
        if sum(m.startswith(MEASURED) for m in seen) == 2:  # the baseline, then one compressed candidate
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optimize(model, small_digits, TINY, out, data=DATA, progress=stop_after_first_candidate)
    state = read_json(out / STATE_FILE)
    assert len(state["results"]) == 2 and "baseline" in state["results"]
    assert not (out / "optimize.json").exists()
    with pytest.raises(UsageError, match="other settings \\(changed: config\\)"):
        optimize(model, small_digits, TINY.replace(max_accuracy_drop=1.0), out, data=DATA)

    said: list[str] = []
    res = optimize(model, small_digits, TINY, out, data=DATA, progress=said.append)
    assert [m for m in said if "measured before (resumed)" in m] == [
        f"candidate {i + 1}: {k}: measured before (resumed)" for i, k in enumerate(state["results"])]
    keys = [c["key"] for c in res.candidates]
    assert keys[:2] == list(state["results"]) and len(keys) == len(set(keys)) > 2
    assert len(list((out / "candidates").iterdir())) == len(keys)  # nothing measured twice
    report = json.loads((out / "optimize.json").read_text())
    # the winner meets the constraints and no candidate that meets them beats it on every objective
    # (one off the front is possible: a candidate that changes more answers carries a larger margin)
    from edgekit.optimize.pareto import dominates
    from edgekit.optimize.search import missed

    meeting = [c for c in res.candidates if not missed(c, TINY)]
    assert report["met"] and report["winner"]["key"] in [c["key"] for c in meeting]
    assert not any(dominates(c, report["winner"]) for c in meeting)
    assert report["pareto_front"] and set(report["pareto_front"]) <= {c["key"] for c in meeting}  # "*": pickable
    assert report["holdout"]["samples"] == len(small_digits.y_test)
    for name in ("optimize.md", "optimize.png", "recipe.yaml", "model_int8.tflite", "model.keras", "manifest.json"):
        assert (out / name).is_file(), name
    assert "## Pareto front" in (out / "optimize.md").read_text()

    run_out = tmp_path / "run"
    run(load_recipe(res.recipe_path), run_out, raise_on_gate_failure=False)
    artifact = run_out / "export" / "model_int8.tflite"
    assert artifact.stat().st_size == res.winner["raw_bytes"]
    probs = LiteRTRunner(artifact).predict(small_digits.x_val)
    assert abs(float((probs.argmax(1) == small_digits.y_val).mean()) - res.winner["val_accuracy"]) <= 0.05
    assert artifact.read_bytes() == (out / "model_int8.tflite").read_bytes()  # the same file, byte for byte


def test_a_candidate_that_fails_is_recorded_and_the_search_goes_on(trained_small, small_digits, tmp_path,
                                                                  monkeypatch):
    """A TensorFlow error inside one candidate (tfmot's k-means++ on a layer pruned to a few weights
    ended a search this way) costs that candidate, not the search."""
    import edgekit.optimize.evaluate as evaluate

    real = evaluate.build

    def build(candidate, *a, **kw):
        if candidate.prune:
            raise RuntimeError("Expected num_to_sample <= points.rows(). 7 vs 4.\nsecond line")
        return real(candidate, *a, **kw)

    monkeypatch.setattr(evaluate, "build", build)
    said: list[str] = []
    res = optimize(str(trained_small[1]), small_digits, TINY, tmp_path / "opt", data=DATA, progress=said.append)
    report = json.loads((tmp_path / "opt" / "optimize.json").read_text())
    assert report["failed"] and all("prune[" in f["key"] for f in report["failed"]), "\n".join(said)
    assert report["failed"][0]["failed"] == "Expected num_to_sample <= points.rows(). 7 vs 4."
    # a failed candidate keeps its folder number: the next one does not write into its leftovers
    assert not {f["index"] for f in report["failed"]} & {c["index"] for c in report["candidates"]}
    assert res.winner is not None and "prune[" not in res.winner["key"]  # a measured candidate wins
    assert any(m.startswith("  failed, the search goes on: Expected num_to_sample") for m in said)
    assert "## Failed candidates" in (tmp_path / "opt" / "optimize.md").read_text()
    state = read_json(tmp_path / "opt" / STATE_FILE)
    assert set(state["failed"]) == {f["key"] for f in report["failed"]}  # a resumed search does not retry them
