from pathlib import Path

import pytest
import yaml

from edgekit.errors import InputError, UsageError
from edgekit.recipe import Recipe, load_recipe

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))


def test_recipes_are_shipped():
    names = {p.name for p in RECIPES}
    assert "quickstart.yaml" in names
    assert len(names) >= 6


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_checks(path):
    r = load_recipe(path)
    assert Recipe.from_dict(r.to_dict()) == r  # the resolved form round-trips
    assert r.name == path.stem


def test_defaults_are_spelled_out():
    r = Recipe.from_dict({})
    d = r.to_dict()
    assert d["data"]["spec"] == "digits" and d["model"]["name"] == "cnn"
    assert d["train"]["optimizer"] == "adam" and d["train"]["batch_size"] == 64
    assert d["compress"] is None and d["export"] is None and d["gates"] is None


def _write(tmp_path, data):
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


@pytest.mark.parametrize(
    "data, match",
    [
        ({"trian": {}}, r"Unknown key recipe.trian. Did you mean \"train\""),
        ({"train": {"epoch": 3}}, r"Unknown key train.epoch. Did you mean \"epochs\""),
        ({"train": {"epochs": "ten"}}, r"train.epochs must be an integer. Received: 'ten'"),
        ({"train": {"epochs": 0}}, r"train: epochs must be a positive integer"),
        ({"train": {"optimizer": "adamm"}}, r'train: Unknown optimizer .* Did you mean "adam"'),
        ({"data": {"val_split": 1.5}}, r"data: val_split must be in \[0, 1\)"),
        ({"data": {"spec": "digitz"}}, r'data: Unknown dataset .*Did you mean "digits"'),
        ({"model": {"name": "resnet"}}, r"model: Unknown model 'resnet'"),
        ({"compress": {"prune": 1.2}}, r"compress: .*\[0, 1\)"),
        ({"compress": {"cluster": 1}}, r"compress: .*>= 2"),
        ({"export": {"targets": ["tflite-int9"]}}, r'export.targets: Unknown target .*Did you mean "tflite-int8"'),
        ({"export": {"opset": "x"}}, r"export.opset must be an integer"),
        ({"gates": {"max_size": "40KB"}}, r"gates need exported artifacts"),
        ({"export": {"targets": ["tflite"]}, "gates": {"target": "onnx", "max_size": "1MB"}},
         r"gates.targets names onnx, which export.targets does not build"),
        ({"export": {"targets": ["tflite"]}, "validate": {"enabled": False}, "gates": {"max_size": "1MB"}},
         r"gates read validation results"),
        ({"compress": {"quantize": "qat"}, "export": {"targets": ["tflite", "onnx"]}},
         r"qat but no export target is int8"),
        ({"model": {"path": "m.keras"}, "train": {"epochs": 2}}, r"train section must be empty"),
        ({"model": {"path": "m.keras"}, "train": None, "export": {"targets": ["tflite-int8"]},
          "gates": {"max_accuracy_drop_vs_trained": 1}}, r"max_accuracy_drop_vs_trained compares with the train"),
        ({"gates": {"max_siz": 3}, "export": {"targets": ["tflite"]}}, r'Unknown key gates.max_siz. Did you mean "max_size"'),
    ],
)
def test_bad_recipes_name_the_key(tmp_path, data, match):
    with pytest.raises(UsageError, match=match):
        load_recipe(_write(tmp_path, data))


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_recipe(tmp_path / "none.yaml")
    with pytest.raises(InputError, match="not valid YAML at line 3"):
        load_recipe(_write(tmp_path, "train:\n  epochs: [1\n"))
    with pytest.raises(InputError, match="must be a YAML mapping"):
        load_recipe(_write(tmp_path, "- a\n- b\n"))
    # safe_load: no Python objects from YAML tags
    with pytest.raises(InputError, match="not valid YAML"):
        load_recipe(_write(tmp_path, "name: !!python/object/apply:os.system ['true']\n"))


def test_overrides(tmp_path):
    p = _write(tmp_path, {"train": {"epochs": 5}})
    r = load_recipe(p, ["train.epochs=1", "export.targets=[tflite]", "data.limit=300"])
    assert r.train.epochs == 1 and r.export.targets == ("tflite",) and r.data.limit == 300
    with pytest.raises(UsageError, match="section.key=value"):
        load_recipe(p, ["train.epochs"])


# -- found by the CLI fuzzer (tests/fuzz) --------------------------------------------------
@pytest.mark.parametrize("text, error, needle", [
    ("train:\n  epochs: " + "[" * 5000 + "]" * 5000 + "\n", InputError, "nested too deeply"),
    ("\x00name: x\n", InputError, "not valid YAML at character 1: unacceptable character #x0000"),
    ("name: x\nwhen: 2024-13-45\n", InputError, "a value YAML cannot read: month must be in 1..12"),
    ("train: fast\n", UsageError, "train must be a mapping"),
    ("train: [1, 2]\n", UsageError, "train must be a mapping"),
])
def test_damaged_recipes_are_one_line_errors(tmp_path, text, error, needle):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    with pytest.raises(error) as e:
        load_recipe(p)
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("override", ["train.epochs=[1", "train.epochs=2024-13-45", "name=\x00"])
def test_override_values_that_are_not_yaml(tmp_path, override):
    with pytest.raises(UsageError, match="the value is not valid YAML") as e:
        load_recipe(_write(tmp_path, {"train": {"epochs": 5}}), [override])
    assert "\n" not in str(e.value)


def test_model_options_from_the_model_section():
    from edgekit.recipe.schema import Recipe

    r = Recipe.from_dict({"model": {"name": "mobilenet-v1", "options": {"alpha": 0.5}}, "train": {"epochs": 1}})
    assert r.train.model_options == {"alpha": 0.5} and r.to_dict()["model"]["options"] == {"alpha": 0.5}
    assert "model_options" not in r.to_dict()["train"]
    assert "options" not in Recipe.from_dict({"model": {"name": "cnn"}}).to_dict()["model"]  # as before
    with pytest.raises(UsageError, match=r"model: mobilenet-v1 option alpha .* Received: -1."):
        Recipe.from_dict({"model": {"name": "mobilenet-v1", "options": {"alpha": -1}}})
