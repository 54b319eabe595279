"""The TensorFlow SavedModel format: a directory with ``saved_model.pb`` (``model.export()``,
``tf.saved_model.save``).

Loading runs TensorFlow graphs, not Python code: ``tf.saved_model.load`` restores the
variables and the serialized graph functions, and runs some of them (resource initializers,
restore functions); no Python from the directory is executed. A graph can still contain ops that
write or read files, so for an untrusted model ``saved_model.pb`` is read as protobuf data first
(a corrupt one is an InputError here) and every op of its top-level graph and of every library
function is checked against an allow-list of inference ops (:mod:`edgekit.models.graph_ops`):
any other op is refused by name before anything runs. Then the load and one call run in a child
process, so a graph that crashes TensorFlow ends that child, not this process.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import vocab
from edgekit.errors import InputError, UsageError, first_line
from edgekit.models import graph_ops
from edgekit.models.handle import MODEL_FORMATS, ModelHandle, TensorSpec
from edgekit.models.layout import TfGraph, cached, guess_layout

DEFAULT_SIGNATURE = "serving_default"
BATCH = 256
_PROBE = r"""
import sys, numpy as np, tensorflow as tf
path, name = sys.argv[1], sys.argv[2]
fn = tf.saved_model.load(path).signatures[name]
(key, spec), = fn.structured_input_signature[1].items()
shape = [1 if d is None else d for d in spec.shape]
fn(**{key: tf.zeros(shape, spec.dtype)})
print("ok")
"""
EXPORT_HINT = ("export one with model.export(path) (Keras) or tf.saved_model.save(module, path, signatures="
               "module.__call__.get_concrete_function(tf.TensorSpec((None, H, W, C), tf.float32)))")


def read_signatures(path: Path) -> tuple[Any, dict[str, Any]]:
    """The first meta graph of ``saved_model.pb`` and its signatures, parsed as protobuf data."""
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    try:
        sm.ParseFromString((path / "saved_model.pb").read_bytes())
        if not sm.meta_graphs:
            raise ValueError("no meta graph")
    except Exception as e:  # DecodeError, OSError, empty file
        raise InputError(f"{str(path)!r} is not a valid SavedModel: saved_model.pb does not parse "
                         f"({first_line(e)}).") from None
    meta = sm.meta_graphs[0]
    return meta, {k: v for k, v in meta.signature_def.items() if not k.startswith("__")}


def choose_signature(path: Path, signatures: dict[str, Any], name: str | None) -> str:
    """``name``, else ``serving_default``; errors list what the SavedModel has."""
    if not signatures:
        raise InputError(f"SavedModel {str(path)!r} has no signatures to run; {EXPORT_HINT}.")
    want = name or DEFAULT_SIGNATURE
    if want not in signatures:
        raise UsageError(f"SavedModel {str(path)!r} has no signature {want!r}; choose one with signature=NAME "
                         f"(--signature). Available: {', '.join(sorted(signatures))}.")
    return want


def check_ops(path: Path, meta: Any) -> None:
    """Refuse a SavedModel with any op outside :data:`edgekit.models.graph_ops.ALLOWED_OPS` (saver rules aside)."""
    bad = graph_ops.disallowed_ops(meta)
    if bad:
        raise InputError(f"SavedModel {str(path)!r} uses ops edgekit does not run from an untrusted model: "
                         f"{graph_ops.describe(bad)}; pass --trust-model if you made it.")


def _tensor_spec(name: str, info: Any) -> TensorSpec:
    import tensorflow as tf

    dims = tuple(None if d.size < 0 else int(d.size) for d in info.tensor_shape.dim)
    rank_unknown = info.tensor_shape.unknown_rank
    return TensorSpec(name, () if rank_unknown else dims, tf.dtypes.as_dtype(info.dtype).name)


def probe(path: Path, signature: str, timeout_s: int = 180) -> None:
    """Load the SavedModel and run ``signature`` once on zeros in a child process."""
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, str(path), signature], capture_output=True,
                              text=True, errors="replace", timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise InputError(f"Loading SavedModel {str(path)!r} did not finish within {timeout_s}s.") from None
    if proc.returncode == 0 and proc.stdout.strip().endswith("ok"):
        return
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    why = f"signal {-proc.returncode}" if proc.returncode < 0 else (lines[-1][:200] if lines else "no output")
    raise InputError(f"TensorFlow cannot load and run SavedModel {str(path)!r}: {why}")


class SavedModelFormat:
    name = vocab.FORMAT_SAVEDMODEL
    description = "a TensorFlow SavedModel directory (saved_model.pb), e.g. from model.export()"

    def detect(self, path: Path) -> bool:
        return path.is_dir() and (path / "saved_model.pb").is_file()

    def load(self, path: Path, trust: bool, signature: str | None = None, **options: Any) -> ModelHandle:
        """Options: ``signature`` (default ``serving_default``)."""
        meta, sigs = read_signatures(path)
        if not trust:
            check_ops(path, meta)
        name = choose_signature(path, sigs, signature)
        sig = sigs[name]
        if len(sig.inputs) != 1:
            raise InputError(f"Signature {name!r} of {str(path)!r} takes {len(sig.inputs)} inputs "
                             f"({', '.join(sorted(sig.inputs))}); edgekit needs one image input.")
        if not sig.outputs:
            raise InputError(f"Signature {name!r} of {str(path)!r} has no outputs.")
        (in_key, in_info), = sig.inputs.items()
        spec = _tensor_spec(in_key, in_info)
        if len(spec.shape) != 4 or spec.dtype != "float32":
            raise InputError(f"Signature {name!r} of {str(path)!r} takes {spec.dtype} {list(spec.shape) or '?'}; "
                             "edgekit needs float32 images of rank 4 (N, H, W, C).")
        if not trust:
            probe(path, name)
        return self._handle(path, name, in_key, spec, sorted(sig.outputs), sig)

    def _handle(self, path: Path, name: str, in_key: str, spec: TensorSpec, out_keys: list[str], sig: Any
                ) -> ModelHandle:
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as e:
            raise InputError(f"TensorFlow cannot load SavedModel {str(path)!r}: {first_line(e)}") from None
        fn = loaded.signatures[name]
        out_key = out_keys[0]
        layout = guess_layout(spec.shape)
        nchw = layout == vocab.NCHW

        def predict(x: np.ndarray) -> np.ndarray:
            x = np.asarray(x, np.float32)
            x = x.transpose(0, 3, 1, 2) if nchw else x
            outs = [fn(**{in_key: tf.constant(x[i : i + BATCH])})[out_key].numpy() for i in range(0, len(x), BATCH)]
            return np.concatenate(outs).astype(np.float32)

        def tf_graph() -> TfGraph:
            image = (None, *spec.shape[2:], spec.shape[1]) if nchw else (None, *spec.shape[1:])

            @tf.function(input_signature=[tf.TensorSpec(image, tf.float32, name="image")])
            def serve(x):
                return fn(**{in_key: tf.transpose(x, [0, 3, 1, 2]) if nchw else x})[out_key]

            return TfGraph(serve, loaded)

        outputs = [_tensor_spec(k, sig.outputs[k]) for k in out_keys]
        info: dict[str, Any] = {"signature": name, "input_key": in_key, "output_key": out_key,
                                "tf_graph": cached(tf_graph)}
        if len(out_keys) > 1:
            info["other_outputs"] = out_keys[1:]
        if nchw:
            info["layout_note"] = (f"input {list(spec.shape)} read as (N, C, H, W): {spec.shape[1]} channels; "
                                   "edgekit transposes its NHWC images before calling the signature")
        return ModelHandle(model=loaded, format=vocab.FORMAT_SAVEDMODEL, framework="tensorflow", layout=layout,
                           inputs=[TensorSpec(in_key, tuple(spec.shape[1:]), spec.dtype)],
                           outputs=[TensorSpec(o.name, tuple(o.shape[1:]), o.dtype) for o in outputs],
                           path=str(path), predict_fn=predict, info=info)


MODEL_FORMATS.add(vocab.FORMAT_SAVEDMODEL, SavedModelFormat())
