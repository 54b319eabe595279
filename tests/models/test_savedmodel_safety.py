"""An untrusted SavedModel runs only allow-listed inference ops: a file written through any route
(signature, side function, resource initializer, tf.data, print, summary, checkpoint ops) is
refused by name before anything runs, and legitimate SavedModels still load and predict."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli
from edgekit.errors import InputError
from edgekit.models import graph_ops
from edgekit.models.loading import load
from edgekit.models.savedmodel_format import read_signatures
from tests.models.savedmodel_builders import make_keras3_exports, save_planted

ROUTES = {  # route -> an op the refusal names
    "write_file": "WriteFile", "tfrecord": "DatasetToTFRecord", "side_function": "WriteFile",
    "initializer": "WriteFile", "print": "PrintV2", "summary": "WriteScalarSummary", "save_v2": "SaveV2",
    "py_function": "EagerPyFunc",
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """route -> (SavedModel folder, the file its graph would write), the file absent."""
    base = tmp_path_factory.mktemp("planted")
    out = {}
    for route in ROUTES:
        target = base / f"{route}.written"
        out[route] = (save_planted(base / route, route, str(target)), target)
    return out


def _remove(target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_planted_write_is_refused_by_name_and_nothing_is_written(planted, route):
    path, target = planted[route]
    _remove(target)
    with pytest.raises(InputError) as e:
        load(path)
    msg = str(e.value)
    assert "\n" not in msg and "uses ops edgekit does not run from an untrusted model" in msg
    assert f"{ROUTES[route]} (in function __inference_" in msg and "pass --trust-model if you made it" in msg
    assert not target.exists()


@pytest.mark.parametrize("route", ["initializer", "tfrecord"])
def test_the_planted_routes_do_write_when_run(planted, route):
    """The control: TensorFlow itself writes the file (on load for an initializer, on a call otherwise)."""
    import tensorflow as tf

    path, target = planted[route]
    _remove(target)
    loaded = tf.saved_model.load(str(path))
    assert target.exists() == (route == "initializer")
    loaded.signatures["serving_default"](x=tf.zeros((1, 8, 8, 1)))
    assert target.exists()
    _remove(target)


@pytest.mark.parametrize("route", ["tfrecord", "initializer", "side_function"])
def test_cli_inspect_refuses_in_one_line(planted, route):
    path, target = planted[route]
    _remove(target)
    r = CliRunner().invoke(cli, ["inspect", str(path), "--no-targets"])
    assert r.exit_code == 2, r.output
    assert ROUTES[route] in r.output and "pass --trust-model" in r.output and "Traceback" not in r.output
    assert not target.exists()


def _meta(path: Path):
    meta, _ = read_signatures(path)
    return meta


def _saver_function(meta, kind: str):
    (f,) = [f for f in meta.graph_def.library.function if f"_traced_{kind}_" in f.signature.name]
    return f


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    from tests.models.savedmodel_builders import save_module, tiny_module

    return save_module(tmp_path_factory.mktemp("clean") / "tiny", tiny_module())


def test_saver_functions_with_the_loaders_path_are_allowed(clean):
    meta = _meta(clean)
    assert graph_ops.disallowed_ops(meta) == {}
    ops = {n.op for n in _saver_function(meta, "save").node_def}
    assert {"SaveV2", "MergeV2Checkpoints", "StringJoin", "ShardedFilename"} <= ops  # allowed by the saver rule
    assert not graph_ops.SAVER_ONLY_OPS & graph_ops.ALLOWED_OPS  # and by nothing else


def test_saver_file_op_with_its_own_path_is_refused(clean):
    meta = _meta(clean)
    save = _saver_function(meta, "save")
    const = save.node_def.add()
    const.CopyFrom(next(n for n in save.node_def if n.name == "Const_1"))
    const.name = "planted_path"
    const.attr["value"].tensor.string_val[:] = [b"/tmp/elsewhere"]
    sv2 = next(n for n in save.node_def if n.op == "SaveV2")
    sv2.input[0] = "planted_path:output:0"
    assert graph_ops.disallowed_ops(meta) == {"SaveV2": [f"function {save.signature.name}"]}


def test_saver_suffix_climbing_out_of_the_path_is_refused(clean):
    meta = _meta(clean)
    save = _saver_function(meta, "save")
    next(n for n in save.node_def if n.name == "Const_1").attr["value"].tensor.string_val[:] = [b"/../../x"]
    assert set(graph_ops.disallowed_ops(meta)) == {"SaveV2", "MergeV2Checkpoints"}


def test_saver_function_called_from_elsewhere_loses_its_file_ops(clean):
    meta = _meta(clean)
    save = _saver_function(meta, "save")
    caller = next(n for n in meta.graph_def.node if n.op == "StatefulPartitionedCall"
                  and n.attr["f"].func.name == save.signature.name)
    extra = meta.graph_def.node.add()
    extra.CopyFrom(caller)
    extra.name = "second_caller"
    bad = graph_ops.disallowed_ops(meta)
    assert {"SaveV2", "MergeV2Checkpoints", "StringJoin", "ShardedFilename"} <= set(bad)
    assert bad["SaveV2"] == [f"function {save.signature.name}"]


def test_restore_ops_in_a_signature_are_refused(clean):
    meta = _meta(clean)
    restore = _saver_function(meta, "restore")
    (serve,) = [f for f in meta.graph_def.library.function if f.signature.name.startswith("__inference_call_")]
    serve.node_def.extend(n for n in restore.node_def if n.op == "RestoreV2")
    assert graph_ops.disallowed_ops(meta) == {"RestoreV2": [f"function {serve.signature.name}"]}


def test_call_of_an_undefined_function_is_refused(clean):
    meta = _meta(clean)
    node = next(n for n in meta.graph_def.node if n.name == "StatefulPartitionedCall")
    node.attr["f"].func.name = "registered_elsewhere"
    bad = graph_ops.disallowed_ops(meta)
    assert bad == {"a call of undefined function registered_elsewhere": ["graph node StatefulPartitionedCall"]}
    assert graph_ops.describe(bad) == ("a call of undefined function registered_elsewhere "
                                       "(in graph node StatefulPartitionedCall)")


ZOO = {"cnn": (28, 28, 1), "cnn-small": (28, 28, 1), "ds-cnn": (28, 28, 1), "mlp": (28, 28, 1),
       "resnet8": (32, 32, 3), "mobilenet-v1": (32, 32, 3)}


@pytest.fixture(scope="module")
def zoo_saved(tmp_path_factory) -> dict[str, tuple[object, Path]]:
    """"NAME/export" (model.export) of every zoo model, "NAME/save" (tf.saved_model.save, which also
    keeps the per-layer call functions) of the reference CNN and of ResNet-8 (batch norm, residual adds)."""
    import tensorflow as tf

    from edgekit.models import zoo

    base = tmp_path_factory.mktemp("zoo")
    out = {}
    for name, shape in ZOO.items():
        model = zoo.MODELS.get(name)(shape, 10)
        model.export(str(base / f"{name}-export"))
        out[f"{name}/export"] = (model, base / f"{name}-export")
        if name in ("cnn", "resnet8"):
            tf.saved_model.save(model, str(base / f"{name}-save"))
            out[f"{name}/save"] = (model, base / f"{name}-save")
    return out


def test_every_zoo_savedmodel_passes_the_op_check(zoo_saved):
    bad = {key: graph_ops.disallowed_ops(_meta(path)) for key, (_, path) in zoo_saved.items()}
    assert bad == {key: {} for key in zoo_saved}


@pytest.mark.parametrize("key", ["cnn/export", "resnet8/save"])
def test_zoo_savedmodel_loads_untrusted_and_predicts(zoo_saved, key):
    model, path = zoo_saved[key]
    x = np.random.default_rng(0).uniform(0, 1, (3, *ZOO[key.split("/")[0]])).astype(np.float32)
    np.testing.assert_allclose(load(path).predict(x), model.predict(x, verbose=0), atol=1e-5)


@pytest.mark.slow
def test_keras3_exports_load_untrusted_and_predict(tmp_path):
    make_keras3_exports(tmp_path, apps=True)
    for name in ("conv", "mobilenet_v2", "efficientnet_b0"):
        assert graph_ops.disallowed_ops(_meta(tmp_path / name)) == {}, name
    for name in ("conv", "mobilenet_v2"):
        h = load(tmp_path / name)
        x = np.load(tmp_path / f"{name}_x.npy")
        np.testing.assert_allclose(h.predict(x), np.load(tmp_path / f"{name}_y.npy"), atol=1e-4, err_msg=name)
