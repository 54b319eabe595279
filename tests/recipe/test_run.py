"""`edgekit run` end to end on the quickstart recipe (shrunk), stage reuse, gates, failures."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli

QUICKSTART = str(Path(__file__).resolve().parents[2] / "recipes" / "quickstart.yaml")
SHRINK = ["--set", "train.epochs=3", "--set", "validate.runs=20", "--set", "data.limit=800",
          "--set", "gates.min_accuracy=0.7"]


def run(*args):
    return CliRunner().invoke(cli, ["run", QUICKSTART, *SHRINK, *args])


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick") / "run"
    r = run("--out", str(out), "--quiet")
    return out, r


def test_quickstart_end_to_end(first_run):
    out, r = first_run
    assert r.exit_code == 0, r.output
    man = json.loads((out / "manifest.json").read_text())
    targets = man["stages"]["validate"]["metrics"]["targets"]
    assert set(targets) == {"tflite", "tflite-int8", "onnx"}
    assert targets["tflite"]["agreement_pct"] == 100.0 and targets["tflite"]["max_abs_diff"] <= 1e-4
    assert targets["tflite-int8"]["accuracy"] > 0.8
    assert targets["tflite-int8"]["bytes"] < targets["tflite"]["bytes"] / 3  # int8 weights
    assert man["stages"]["gates"]["metrics"]["passed"] is True
    paths = {a["path"] for a in man["artifacts"]}
    assert {"train/model.keras", "export/model_int8.tflite", "recipe.yaml"} <= paths
    for name in ("report.md", "report.html", "gates.junit.xml", "recipe.yaml"):
        assert (out / name).is_file()
    assert "tflite-int8" in (out / "report.md").read_text()
    from edgekit.recipe import load_recipe

    saved = load_recipe(out / "recipe.yaml")  # the resolved recipe saved beside the run
    assert saved.train.epochs == 3


def test_rerun_reuses_stages_and_regates(first_run):
    out, _ = first_run
    model = out / "train" / "model.keras"
    before = (model.stat().st_mtime_ns, (out / "export" / "model_int8.tflite").stat().st_mtime_ns)
    r = run("--out", str(out), "--set", "gates.max_size=1KB")
    assert r.exit_code == 1, r.output  # a gate failed
    assert "size" in r.output and "FAIL" in r.output
    assert "train     reused" in r.output and "export    reused" in r.output
    after = (model.stat().st_mtime_ns, (out / "export" / "model_int8.tflite").stat().st_mtime_ns)
    assert before == after  # nothing retrained or re-exported
    stages = json.loads((out / "manifest.json").read_text())["run"]
    assert stages["train"]["status"] == "reused"


def test_changed_section_reruns_only_downstream(first_run):
    out, _ = first_run
    r = run("--out", str(out), "--set", "export.targets=[tflite-int8]", "--set", "gates.targets=[tflite-int8]")
    assert r.exit_code == 0, r.output
    assert "train     reused" in r.output and "export    ran" in r.output


def test_tampered_stage_is_redone(first_run):
    out, _ = first_run
    (out / "train" / "history.json").write_text("[]")
    r = run("--out", str(out), "--quiet")
    assert r.exit_code == 0, r.output
    assert "train     ran" in r.output


def test_failed_stage_keeps_earlier_results(tmp_path, monkeypatch):
    import edgekit.validate.step

    def boom(*a, **k):
        raise edgekit.errors.InputError("export exploded on purpose")

    out = tmp_path / "run"
    monkeypatch.setattr(edgekit.validate.step, "export_and_validate", boom)
    r = run("--out", str(out), "--quiet")
    assert r.exit_code == 2 and "export exploded on purpose" in r.output
    assert (out / "train" / "model.keras").is_file()
    monkeypatch.undo()
    r = run("--out", str(out))
    assert r.exit_code == 0, r.output
    assert "train     reused" in r.output and "export    ran" in r.output


def test_recipe_show_and_check_cli(tmp_path):
    r = CliRunner().invoke(cli, ["recipe", "show", QUICKSTART])
    assert r.exit_code == 0 and "targets:" in r.output and "batch_size: 64" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  optimiser: adam\n")
    r = CliRunner().invoke(cli, ["recipe", "check", str(bad)])
    assert r.exit_code == 2 and 'Did you mean "optimizer"' in r.output and "Traceback" not in r.output


def test_sweep_recipe_runs_its_comparison(tmp_path):
    recipe = Path(QUICKSTART).parent / "cnn_sweep_none.yaml"
    r = CliRunner().invoke(cli, ["run", str(recipe), "--out", str(tmp_path / "sw"), "--quiet",
                                 "--set", "sweep.models=[mlp]", "--set", "sweep.optimizers=[sgd,adam]",
                                 "--set", "sweep.schedules=[constant]", "--set", "model.name=mlp",
                                 "--set", "train.epochs=1", "--set", "data.limit=300"])
    assert r.exit_code == 0, r.output
    table = (tmp_path / "sw" / "sweep" / "sweep.md").read_text()
    assert "mlp-sgd-constant" in table and "mlp-adam-constant" in table
    man = json.loads((tmp_path / "sw" / "manifest.json").read_text())
    assert [row["run"] for row in man["stages"]["sweep"]["metrics"]["runs"]] == ["mlp-sgd-constant", "mlp-adam-constant"]
