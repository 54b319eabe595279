"""Safe loading by allow-list: every route to running code from a Keras file is refused before Keras
sees it (the planted file is never written), and declared sizes above the caps are refused before
anything is built, read or extracted (checked in a child process under a 3 GiB address-space limit,
so a wrong implementation fails fast instead of eating memory)."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from edgekit.errors import InputError
from edgekit.models import UnsafeModelError, load_model
from edgekit.models.allowlist import check_node, refusals
from edgekit.models.io import vet_model_file
from edgekit.models.loading import load
from edgekit.models.sizecaps import MAX_PARAMS, declared_params

TFK_META = json.dumps({"keras_version": "2.21.0", "date_saved": "2026-01-01"})
K3_META = json.dumps({"keras_version": "3.15.1", "date_saved": "2026-01-01"})


def _write_keras(path: Path, config: dict, meta: str = TFK_META, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", meta)
        z.writestr("config.json", json.dumps(config))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


@pytest.fixture(scope="module")
def tfop(tmp_path_factory) -> dict[str, Path]:
    """A tf_keras model with a TFOpLambda (tf.math.add) and a Dense, as .keras and .h5."""
    import tensorflow as tf
    import tf_keras as keras

    out = tmp_path_factory.mktemp("tfop")
    inp = keras.Input((4,), name="image")
    model = keras.Model(inp, keras.layers.Dense(2, name="head")(tf.math.add(inp, 1.0)))
    paths = {s: out / f"tfop{s}" for s in (".keras", ".h5")}
    for p in paths.values():
        model.save(p)
    return paths


def _plant_write_file(config: dict, marker: Path) -> dict:
    """The config with its TFOpLambda turned into ``tf.io.write_file(..., contents='pwned')`` to ``marker``."""
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "TFOpLambda":
            layer["config"]["function"] = "io.write_file"
            layer["inbound_nodes"] = [[["image", 0, 0, {"filename": str(marker), "contents": "pwned"}]]]
    return config


def test_tfoplambda_writing_a_file_is_refused_in_keras_and_h5(tmp_path, tfop):
    import h5py

    marker = tmp_path / "written_by_model"
    members = _members(tfop[".keras"])
    evil = _write_keras(tmp_path / "evil.keras", _plant_write_file(json.loads(members["config.json"]), marker),
                        extra={"model.weights.h5": members["model.weights.h5"]})
    evil_h5 = tmp_path / "evil.h5"
    evil_h5.write_bytes(tfop[".h5"].read_bytes())
    with h5py.File(evil_h5, "r+") as f:
        f.attrs["model_config"] = json.dumps(_plant_write_file(json.loads(f.attrs["model_config"]), marker))
    for path in (evil, evil_h5):
        with pytest.raises(UnsafeModelError, match=r"TFOpLambda 'tf.math.add(_\d+)?' calls tf.io.write_file.*--trust-model"):
            load(path)
        with pytest.raises(UnsafeModelError, match="io.write_file"):
            load_model(path)
        assert not marker.exists()
    assert load(tfop[".keras"]).model.count_params() == 10  # tf.math.add itself is a pure op: allowed


@pytest.mark.parametrize("function", ["io.write_file", "io.gfile.copy", "py_function", "numpy_function", "print",
                                      "debugging.assert_equal", "data.Dataset.from_tensors", "summary.scalar",
                                      "compat.v1.py_func", "raw_ops.WriteFile", "strings.format"])
def test_only_pure_tf_ops_pass(function):
    node = {"class_name": "TFOpLambda", "config": {"name": "op", "function": function}}
    assert "tf." + function in check_node(node)
    for pure in ("math.add", "nn.relu", "__operators__.getitem", "reshape", "concat", "image.resize"):
        assert check_node({"class_name": "SlicingOpLambda", "config": {"name": "op", "function": pure}}) is None


def test_a_class_from_an_arbitrary_module_is_refused_before_import(tmp_path, tfop, monkeypatch):
    """tf_keras imports the ``module`` a .keras config names for its model: a planted module runs on import."""
    marker = tmp_path / "imported"
    (tmp_path / "innocent_models.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                                 "from tf_keras.src.engine.functional import Functional as Net\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    members = _members(tfop[".keras"])
    config = json.loads(members["config.json"])
    config.update(module="innocent_models", class_name="Net", registered_name="Net")
    config["config"]["name"] = "net"
    evil = _write_keras(tmp_path / "module.keras", config, extra={"model.weights.h5": members["model.weights.h5"]})
    with pytest.raises(UnsafeModelError, match=r"Net 'net' comes from module 'innocent_models', outside Keras"):
        load(evil)
    assert not marker.exists() and "innocent_models" not in sys.modules
    assert load(evil, trust=True).model.count_params() == 10  # trusted: the threat was real, the module ran
    assert marker.read_text() == "ran"
    sys.modules.pop("innocent_models", None)


def test_unknown_custom_and_lambda_classes_name_the_layer():
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [None, 4]}},
        {"class_name": "Lambda", "config": {"name": "doubler", "trainable": True, "function": "gANjYnVpbHRpbnMK"}},
        {"class_name": "MyLayer", "config": {"name": "mine", "trainable": True}},
        {"class_name": "Dense", "config": {"name": "head", "trainable": True, "units": 2,
                                           "kernel_initializer": {"class_name": "Evil", "config": {}}}},
        {"class_name": "Activation", "config": {"name": "act", "trainable": True, "activation": {
            "class_name": "function", "config": "system", "module": "os"}}},
    ]}}
    found = " | ".join(refusals(config, limit=10))
    for text in ("Lambda 'doubler' carries Python code", "MyLayer 'mine' is not a class edgekit knows",
                 "Evil 'head'", "function 'act' comes from module 'os'"):
        assert text in found, found


KERAS3_CHILD = r'''
import sys
from pathlib import Path
import keras
from keras import layers

out = Path(sys.argv[1])
marker = sys.argv[2]
payload = eval(f"lambda x: (__import__('pathlib').Path({marker!r}).write_text('ran'), x)[1]")
inp = keras.Input((8,))
m = keras.Model(inp, layers.Dense(2, name="head")(layers.Lambda(payload, name="innocent_looking")(inp)))
m.save(out / "lambda.keras")
m.save(out / "lambda.h5")
Path(marker).unlink()
keras.Model(inp, layers.Dense(2, name="head")(inp)).save(out / "dense.keras")
A = keras.applications
A.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10).save(out / "mobilenet_v2.keras")
A.MobileNetV3Small(input_shape=(32, 32, 3), alpha=0.75, weights=None, classes=10).save(out / "mobilenet_v3.keras")
from keras.src.applications.efficientnet import EfficientNet
EfficientNet(0.25, 0.25, 32, 0.2, name="efficientnetb0", input_shape=(32, 32, 3), weights=None,
             classes=10).save(out / "efficientnet.keras")
h = keras.ops.reshape(keras.ops.add(inp, 1.0), (-1, 2, 4))[:, 0]
keras.Model(inp, layers.Dense(2, name="head")(keras.ops.relu(h))).save(out / "ops.keras")
import json
counts = {n: keras.saving.load_model(out / f"{n}.keras").count_params()
          for n in ("mobilenet_v2", "mobilenet_v3", "efficientnet", "ops")}
(out / "params.json").write_text(json.dumps(counts))
'''


@pytest.fixture(scope="module")
def keras3_dir(tmp_path_factory) -> tuple[Path, Path]:
    """Keras 3 files made as a user's TensorFlow 2.16+ makes them (a child without TF_USE_LEGACY_KERAS)."""
    out = tmp_path_factory.mktemp("keras3_safe")
    marker = out / "keras3_lambda_ran"
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    r = subprocess.run([sys.executable, "-c", KERAS3_CHILD, str(out), str(marker)], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, marker


def test_keras3_routes_are_refused(tmp_path, keras3_dir):
    out, marker = keras3_dir
    for name in ("lambda.keras", "lambda.h5"):
        with pytest.raises(UnsafeModelError, match="Lambda 'innocent_looking' carries Python code"):
            load(out / name)
        assert not marker.exists()
    members = _members(out / "dense.keras")
    config = json.loads(members["config.json"])
    head = next(l for l in config["config"]["layers"] if l["class_name"] == "Dense")
    head["module"], head["registered_name"] = "innocent_layers", "innocent_layers>Dense"
    evil = _write_keras(tmp_path / "k3module.keras", config, K3_META, {"model.weights.h5": members["model.weights.h5"]})
    with pytest.raises(UnsafeModelError, match="Dense 'head' comes from module 'innocent_layers'"):
        load(evil)
    head["module"], head["registered_name"], head["class_name"] = "keras.layers", None, "TFSMLayer"
    evil = _write_keras(tmp_path / "tfsm.keras", config, K3_META, {"model.weights.h5": members["model.weights.h5"]})
    with pytest.raises(UnsafeModelError, match="TFSMLayer 'head' is not a class edgekit knows"):
        load(evil)


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3", "efficientnet", "ops"])
def test_keras_applications_families_pass_without_trust(keras3_dir, name):
    out, _ = keras3_dir
    real = json.loads((out / "params.json").read_text())[name]
    config = vet_model_file(out / f"{name}.keras", trusted=False)
    declared, unknown = declared_params(config)
    assert unknown == [] and abs(declared - real) <= 0.05 * real  # the walk sizes it from the config alone


def test_a_keras3_backbone_loads_untrusted(keras3_dir):
    out, _ = keras3_dir
    handle = load(out / "mobilenet_v3.keras", translate=False)
    assert handle.info["keras3_model"].count_params() == json.loads((out / "params.json").read_text())["mobilenet_v3"]


def test_edgekit_own_models_and_qat_saves_load_untrusted(tmp_path):
    import tensorflow_model_optimization as tfmot

    from edgekit.compress.layers import clone
    from edgekit.compress.quantize import apply_qat
    from edgekit.models import save_model
    from edgekit.models.zoo import build_model

    model = build_model("ds-cnn", (28, 28, 1), 10, l2=1e-4)
    qat = tfmot.quantization.keras.quantize_model(clone(model))  # what compress saves after QAT
    for tag, m in (("float", model), ("qat", qat)):
        for suffix in (".keras", ".h5"):
            p = save_model(m, tmp_path / f"{tag}{suffix}")
            assert load(p).model.count_params() == m.count_params()
    pruned = tfmot.sparsity.keras.prune_low_magnitude(clone(model))
    clustered = tfmot.clustering.keras.cluster_weights(
        clone(model), number_of_clusters=4,
        cluster_centroids_init=tfmot.clustering.keras.CentroidInitialization.LINEAR)
    pcqat = apply_qat(model, pruned=True, clustered=True)
    for tag, m in (("pruned", pruned), ("clustered", clustered), ("pcqat", pcqat)):
        m.save(tmp_path / f"{tag}.keras")
        assert declared_params(vet_model_file(tmp_path / f"{tag}.keras", trusted=False))[0] == 45_130


BOMB_CHILD = r'''
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
import edgekit
from edgekit.errors import InputError
from edgekit.models.loading import load
for path in sys.argv[1:]:
    try:
        load(path, trust=True)
        print("LOADED", path)
    except InputError as e:
        print("REFUSED", str(e).replace("\n", " "))
'''


def _dense_bomb(hidden: list[dict]) -> dict:
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "bomb", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"name": "x", "batch_input_shape": [None, 1]}},
        *hidden]}}


def _dense(i: int, units: int = 60_000) -> dict:
    return {"module": "keras.layers", "class_name": "Dense", "config": {"name": f"d{i}", "trainable": True,
                                                                        "units": units}}


def _weights_bomb(path: Path, group: str = "") -> None:
    """An HDF5 file (or group) with a dataset declaring 60000 x 60000 float32 (14.4 GB), gzip chunks, ~1 KB."""
    import h5py

    with h5py.File(path, "a") as f:
        f.create_dataset(f"{group}layers/dense/vars/0", shape=(60_000, 60_000), dtype="float32",
                         chunks=(1000, 1000), compression="gzip")


def test_size_bombs_are_refused_without_allocating(tmp_path, keras3_dir):
    import h5py

    bombs = {"config": _write_keras(tmp_path / "config_bomb.keras", _dense_bomb([_dense(1), _dense(2)]))}
    h5 = bombs["config_h5"] = tmp_path / "config_bomb.h5"
    with h5py.File(h5, "w") as f:  # no build_config, no weights: only the walk of the graph sizes it
        f.attrs["keras_version"], f.attrs["backend"] = "2.21.0", "tensorflow"
        f.attrs["model_config"] = json.dumps(_dense_bomb([_dense(1), _dense(2)]))
    # a TFOpLambda between the two layers hides the second one's input from the walk: the allocation
    # guard refuses its kernel before the value exists
    hidden = [_dense(1), {"module": "tf_keras.src.layers.core.tf_op_layer", "class_name": "TFOpLambda", "config": {"name": "op", "trainable": True,
                                                                 "function": "math.abs"}}, _dense(2)]
    bombs["hidden"] = _write_keras(tmp_path / "hidden_bomb.keras", _dense_bomb(hidden))
    weights = tmp_path / "model.weights.h5"
    _weights_bomb(weights)
    members = _members(keras3_dir[0] / "dense.keras")
    bombs["weights"] = _write_keras(tmp_path / "weights_bomb.keras", json.loads(members["config.json"]), K3_META,
                                    {"model.weights.h5": weights.read_bytes()})
    bombs["asset"] = _write_keras(tmp_path / "asset_bomb.keras", json.loads(members["config.json"]), K3_META,
                                  {"model.weights.h5": members["model.weights.h5"],
                                   "assets/table.bin": bytes(80 << 20)})
    assert weights.stat().st_size < 100_000 and bombs["asset"].stat().st_size < 1_000_000
    r = subprocess.run([sys.executable, "-c", BOMB_CHILD, *map(str, bombs.values())], capture_output=True,
                       text=True, timeout=300)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith(("REFUSED", "LOADED"))]
    assert r.returncode == 0 and len(lines) == len(bombs), r.stdout + r.stderr[-2000:]
    config, config_h5, hidden_line, weights_line, asset = lines
    assert "declares 3,600,180,000 parameters (limit 100,000,000)" in config
    assert "declares 3,600,180,000 parameters" in config_h5
    assert hidden_line.startswith("REFUSED") and "more than 100,000,000 parameters" in hidden_line
    assert "weights declaring 3,600,000,000 values" in weights_line
    assert "refused before extracting anything: member 'assets/table.bin' declares 83,886,080 bytes" in asset
    assert not list(tmp_path.glob("**/table.bin"))  # nothing extracted beside the file


def test_a_zip_member_lying_about_its_size_is_refused_from_the_directory(tmp_path, keras3_dir):
    members = _members(keras3_dir[0] / "dense.keras")
    path = _write_keras(tmp_path / "liar.keras", json.loads(members["config.json"]), K3_META,
                        {"model.weights.h5": members["model.weights.h5"], "assets/huge.bin": b"\0" * 1024})
    data = bytearray(path.read_bytes())
    central = data.rindex(b"PK\x01\x02")  # the last central-directory entry: assets/huge.bin
    data[central + 24:central + 28] = (0xFFFF0000).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"member 'assets/huge.bin' declares 4,294,901,760 bytes"):
        load(path, trust=True)
