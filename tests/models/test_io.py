"""Safe loading: a model whose Lambda layer runs code on load is refused unless trusted."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli
from edgekit.errors import InputError
from edgekit.models import UnsafeModelError, load_model, save_model, trust_models


def _malicious(tmp_path: Path, suffix: str) -> tuple[Path, Path]:
    """A model with a Lambda that creates ``marker`` whenever it is called (as on load)."""
    import tf_keras as keras

    marker = tmp_path / f"pwned{suffix}"
    # self-contained bytecode (no closure): what an attacker would put in the file
    payload = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]")
    inp = keras.Input((28, 28, 1))
    out = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(keras.layers.Lambda(
        payload, name="innocent_looking")(inp)))
    path = tmp_path / f"evil{suffix}"
    keras.Model(inp, out).save(path)
    marker.unlink()  # building and saving called the layer; start clean
    return path, marker


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_model_is_refused_by_default_and_no_code_runs(tmp_path, suffix):
    path, marker = _malicious(tmp_path, suffix)
    with pytest.raises(UnsafeModelError, match="Lambda 'innocent_looking'.*--trust-model"):
        load_model(path)
    assert not marker.exists()  # refused before Keras deserialised anything
    r = CliRunner().invoke(cli, ["evaluate", str(path), "--limit", "200", "--runs", "1"])
    assert r.exit_code == 2 and "Traceback" not in r.output and not marker.exists()
    lines = [ln for ln in r.output.splitlines() if ln.strip()]  # where the data comes from, then the refusal
    assert "--trust-model" in lines[-1] and lines[-1].startswith("Error: "), r.output
    assert all(ln.startswith("dataset: ") for ln in lines[:-1]), r.output


def test_trust_opts_in_explicitly(tmp_path):
    path, marker = _malicious(tmp_path, ".keras")
    model = load_model(path, trust=True)
    assert marker.exists()  # the threat was real: trusting it ran the file's code
    marker.unlink()
    with trust_models():
        load_model(path)
    assert marker.exists()
    marker.unlink()
    r = CliRunner().invoke(cli, ["evaluate", str(path), "--limit", "200", "--runs", "1", "--trust-model", "--json"])
    assert r.exit_code == 0, r.output
    assert marker.exists() and model.count_params() == 7850
    with pytest.raises(UnsafeModelError):  # trust does not leak out of the block or the command
        load_model(path)


def test_plain_models_load_and_corrupt_files_give_one_clear_error(tmp_path, trained_small):
    _, good = trained_small
    assert load_model(good).count_params() == 12810
    bad_zip = tmp_path / "bad.keras"
    bad_zip.write_bytes(good.read_bytes()[:300])
    with pytest.raises(InputError, match="not a loadable Keras model"):
        load_model(bad_zip)
    no_config = tmp_path / "noconfig.keras"
    with zipfile.ZipFile(no_config, "w") as z:
        z.writestr("metadata.json", "{}")
    with pytest.raises(InputError, match="config.json"):
        load_model(no_config)
    bad_json = tmp_path / "badjson.keras"
    with zipfile.ZipFile(bad_json, "w") as z:
        z.writestr("config.json", "[1, 2")
    with pytest.raises(InputError, match="not a loadable Keras model"):
        load_model(bad_json)
    with pytest.raises(InputError, match="expected a .keras or .h5 file"):
        load_model(tmp_path)


def test_save_is_atomic(tmp_path, trained_small):
    model, good = trained_small
    dest = tmp_path / "m.keras"
    dest.write_bytes(b"earlier result")

    class Boom(Exception):
        pass

    class Unsaveable:
        def save(self, path):
            Path(path).write_bytes(b"half a model")
            raise Boom

    with pytest.raises(Boom):
        save_model(Unsaveable(), dest)
    assert dest.read_bytes() == b"earlier result"
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]  # no temp file left behind
    save_model(model, dest)
    assert load_model(dest).count_params() == 12810


def test_a_config_declaring_huge_layers_is_refused_before_building(tmp_path, trained_small):
    """A few bytes changed in config.json must not make Keras allocate gigabytes."""
    import json

    _, good = trained_small
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(members["config.json"])
    dense = next(l for l in config["config"]["layers"] if l["class_name"] == "Dense")
    dense["config"]["units"] = 4_194_304
    members["config.json"] = json.dumps(config).encode()
    evil = tmp_path / "huge.keras"
    with zipfile.ZipFile(evil, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(InputError, match="units=4194304.*limit 65,536"):
        load_model(evil, trust=True)
