"""Relative paths in a recipe are taken from the recipe's folder; `recipe check` names missing ones."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli
from edgekit.recipe import load_recipe


@pytest.fixture
def project(tmp_path, digits, trained_small):
    """proj/recipes/r.yaml reading ../data/d.npz and ../models/model.keras; cwd elsewhere."""
    proj = tmp_path / "proj"
    (proj / "data").mkdir(parents=True)
    (proj / "models").mkdir()
    (proj / "recipes").mkdir()
    x = np.round(np.concatenate([digits.x_train, digits.x_test])[..., 0] * 255).astype(np.uint8)
    np.savez(proj / "data" / "d.npz", x=x, y=np.concatenate([digits.y_train, digits.y_test]))
    shutil.copy(trained_small[1], proj / "models" / "model.keras")
    recipe = proj / "recipes" / "r.yaml"
    recipe.write_text("data: {spec: 'npz:../data/d.npz', limit: 300}\nmodel: {path: ../models/model.keras}\n"
                      "export: {targets: [tflite]}\nvalidate: {runs: 5}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return proj, recipe, elsewhere


def test_recipe_paths_resolve_from_its_folder(project, monkeypatch):
    proj, recipe, elsewhere = project
    monkeypatch.chdir(elsewhere)
    r = load_recipe(recipe)
    assert r.data.spec == f"npz:{proj / 'data' / 'd.npz'}" and r.model.path == str(proj / "models" / "model.keras")
    assert load_recipe(recipe, ["data.spec=idx:mine"]).data.spec == f"idx:{elsewhere / 'mine'}"  # --set: from cwd
    c = CliRunner().invoke(cli, ["recipe", "check", str(recipe)])
    assert c.exit_code == 0 and "OK" in c.output, c.output


def test_recipe_in_a_subfolder_runs_from_another_cwd(project, monkeypatch):
    proj, recipe, elsewhere = project
    monkeypatch.chdir(elsewhere)
    r = CliRunner().invoke(cli, ["run", str(recipe), "--out", "run", "-q"])
    assert r.exit_code == 0, r.output
    man = json.loads((elsewhere / "run" / "manifest.json").read_text())  # --out: from the working directory
    assert man["dataset"]["spec"] == f"npz:{proj / 'data' / 'd.npz'}"


def test_recipe_check_names_the_absolute_missing_path(project, monkeypatch):
    proj, recipe, elsewhere = project
    recipe.write_text(recipe.read_text().replace("../data/d.npz", "../data/missing.npz"))
    monkeypatch.chdir(elsewhere)
    for argv in (["recipe", "check", str(recipe)], ["run", str(recipe), "--out", "run"]):
        r = CliRunner().invoke(cli, argv)
        assert r.exit_code == 2, r.output
        (line,) = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
        assert f"data.spec {proj / 'data' / 'missing.npz'} does not exist" in line and "Traceback" not in r.output
    assert not (elsewhere / "run").exists()


def test_a_recipe_of_a_trained_model_names_no_zoo_model():
    """A recipe whose model is a file (an optimize winner, a user's model) says only its path: a zoo
    name beside it (``name: cnn`` for a cnn-small file) would misstate what it rebuilds."""
    import yaml

    from edgekit.recipe.schema import Recipe

    text = Recipe.from_dict({"name": "x", "data": {"spec": "digits"}, "model": {"path": "/tmp/m.keras"},
                             "export": {"targets": ["tflite-int8"]}}).to_yaml()
    assert yaml.safe_load(text)["model"] == {"path": "/tmp/m.keras"}
    zoo = Recipe.from_dict({"name": "x", "data": {"spec": "digits"}, "model": {"name": "cnn-small"}}).to_yaml()
    assert yaml.safe_load(zoo)["model"]["name"] == "cnn-small"
