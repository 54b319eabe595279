"""Translate a Keras 3 model into an equivalent tf_keras model (same layers, same weights).

tfmot (pruning, clustering, QAT) works on tf_keras models only, so a Keras 3 model is rebuilt
layer by layer in tf_keras: the Keras 3 graph is walked from its outputs through each layer's
inbound nodes (Sequential and functional, shared layers, nested models), each layer's
``get_config()`` is mapped to the tf_keras class of the same name (Keras 3-only keys dropped
when they hold their neutral value, refused otherwise), and the weights are copied with
``set_weights``. A translation is only used once :func:`prove` shows both models compute the
same outputs (:data:`TOLERANCE`); a layer outside :data:`TRANSLATABLE` raises
:class:`UntranslatableError` naming the layer and its class.
"""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np

TOLERANCE = 1e-5  # max |Keras 3 - tf_keras| on the proof images for a translation to be used

TRANSLATABLE = frozenset({
    "InputLayer", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense", "BatchNormalization",
    "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten", "Reshape",
    "Dropout", "Activation", "ReLU", "Softmax", "Add", "Concatenate", "ZeroPadding2D", "Rescaling",
    "Normalization", "Multiply",  # squeeze-excite gates (MobileNetV3, EfficientNet)
})
BASE_KEYS = frozenset({"name", "trainable", "dtype"})  # every tf_keras layer takes these
SERIALIZED = {  # config keys holding a serialized object -> the tf_keras module that rebuilds it
    "regularizer": "regularizers", "constraint": "constraints", "activation": "activations",
}


class UntranslatableError(Exception):
    """A Keras 3 model (or one of its layers) that has no verified tf_keras equivalent."""


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _refuse(layer: Any, why: str) -> UntranslatableError:
    return UntranslatableError(f"layer {layer.name!r} ({type(layer).__name__}) cannot be translated: {why}")


def _dtype_name(value: Any) -> Any:
    """A Keras 3 DTypePolicy config -> its policy name (what tf_keras takes)."""
    if isinstance(value, dict):
        return (value.get("config") or {}).get("name", "float32")
    return value


def _rebuild(tfk: Any, key: str, value: Any, layer: Any) -> Any:
    """A serialized regularizer/constraint/activation in Keras 3 form -> the tf_keras object."""
    if value is None or isinstance(value, str):
        return value
    kind = next(module for suffix, module in SERIALIZED.items() if key.endswith(suffix))
    if not isinstance(value, dict) or "class_name" not in value:
        raise _refuse(layer, f"{key}={value!r} is not a serialized Keras object")
    try:
        return getattr(tfk, kind).get({"class_name": value["class_name"], "config": value.get("config") or {}})
    except Exception as e:
        raise _refuse(layer, f"{key} {value['class_name']!r} has no tf_keras equivalent ({e})") from None


def _accepted(cls: type) -> set[str]:
    """The keyword arguments a tf_keras layer class (or a base it passes them to) names."""
    names = set(BASE_KEYS)
    for klass in cls.__mro__:  # subclasses pass some arguments on through **kwargs
        if "__init__" in vars(klass):
            names |= {name for name, p in inspect.signature(klass.__init__).parameters.items()
                      if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names - {"self"}


def tf_keras_config(layer: Any, cls: type, tfk: Any) -> dict[str, Any]:
    """The tf_keras constructor arguments equivalent to a Keras 3 layer's ``get_config()``.

    Initializers are dropped (the weights are copied), Keras 3-only keys are dropped when they
    hold a neutral value (None/False, e.g. ``lora_rank``, ``quantization_config``) and refused
    otherwise."""
    accepted = _accepted(cls)
    config: dict[str, Any] = {}
    for key, value in layer.get_config().items():
        if key.endswith("_initializer"):
            continue
        if key == "dtype":
            value = _dtype_name(value)
        elif any(key.endswith(suffix) for suffix in SERIALIZED):
            value = _rebuild(tfk, key, value, layer)
        if key in accepted:
            config[key] = value
        elif value not in (None, False):
            raise _refuse(layer, f"its Keras 3 option {key}={value!r} has no tf_keras equivalent")
    return config


def _input(layer: Any, tfk: Any) -> Any:
    """A tf_keras Input equivalent to a Keras 3 InputLayer."""
    cfg = layer.get_config()
    shape = tuple(cfg.get("batch_shape") or (None,) + tuple(cfg.get("shape") or ()))
    if cfg.get("sparse") or cfg.get("ragged"):
        raise _refuse(layer, "sparse or ragged inputs are not supported")
    return tfk.Input(batch_shape=shape, dtype=_dtype_name(cfg.get("dtype")) or "float32", name=layer.name)


class _Translator:
    """One translation: Keras 3 layer -> tf_keras layer (shared layers stay shared)."""

    def __init__(self, keras: Any, tfk: Any):
        self.keras, self.tfk = keras, tfk
        self.layers: dict[int, Any] = {}
        self.copied: set[int] = set()  # ids of the Keras 3 layers whose weights were copied

    def layer(self, layer: Any) -> Any:
        """The tf_keras twin of ``layer`` (built once), its weights copied when it is built."""
        if id(layer) in self.layers:
            return self.layers[id(layer)]
        if isinstance(layer, self.keras.Model):
            twin = self.model(layer)
        else:
            name = type(layer).__name__
            if name not in TRANSLATABLE or type(layer).__module__.split(".")[0] != "keras":
                raise _refuse(layer, f"{name} is not among the translatable layers "
                                     f"({', '.join(sorted(TRANSLATABLE - {'InputLayer'}))})")
            cls = getattr(self.tfk.layers, name)
            config = tf_keras_config(layer, cls, self.tfk)
            try:
                twin = cls(**config)
            except Exception as e:  # e.g. an activation tf_keras does not know
                raise _refuse(layer, f"tf_keras {name} rejects its config ({_first_line(e)})") from None
        self.layers[id(layer)] = twin
        return twin

    def model(self, model: Any) -> Any:
        """The tf_keras functional model equivalent to a built Keras 3 model."""
        if not getattr(model, "built", False) or not getattr(model, "inputs", None):
            raise _refuse(model, "the model has no defined inputs (build it with keras.Input first)")
        tensors: dict[int, Any] = {}  # id(Keras 3 tensor) -> tf_keras tensor
        for t in model.inputs:
            tensors[id(t)] = _input(t._keras_history.operation, self.tfk)
        for t in model.outputs:
            self._compute(t, tensors)
        twin = self.tfk.Model([tensors[id(t)] for t in model.inputs], [tensors[id(t)] for t in model.outputs]
                              if len(model.outputs) > 1 else tensors[id(model.outputs[0])], name=model.name)
        return twin

    def _compute(self, target: Any, tensors: dict[int, Any]) -> None:
        """Fill ``tensors`` up to ``target`` (iteratively, in dependency order)."""
        stack = [target]
        while stack:
            t = stack[-1]
            if id(t) in tensors:
                stack.pop()
                continue
            op, node_index, _ = t._keras_history
            if isinstance(op, self.keras.layers.InputLayer):
                tensors[id(t)] = _input(op, self.tfk)
                continue
            node = op._inbound_nodes[node_index]
            missing = [i for i in node.input_tensors if id(i) not in tensors]
            if missing:
                stack.extend(missing)
                continue
            self._call(op, node, tensors)
            stack.pop()

    def _call(self, op: Any, node: Any, tensors: dict[int, Any]) -> None:
        tree = self.keras.tree

        def swap(v: Any) -> Any:
            return tensors[id(v)] if isinstance(v, self.keras.KerasTensor) else v

        twin = self.layer(op)
        args = tree.map_structure(swap, node.arguments.args)
        kwargs = {k: v for k, v in tree.map_structure(swap, node.arguments.kwargs).items()
                  if k != "training" and v is not None}  # inference mode; absent masks
        if kwargs:
            raise _refuse(op, f"it is called with {sorted(kwargs)}, which the translation does not support")
        try:
            outputs = twin(*args)
        except UntranslatableError:
            raise
        except Exception as e:
            raise _refuse(op, f"the tf_keras layer cannot be called as in Keras 3 ({_first_line(e)})") from None
        if id(op) not in self.copied and not isinstance(op, self.keras.Model):  # a nested model copies its own
            _copy_weights(op, twin)
            self.copied.add(id(op))
        for k3_out, tf_out in zip(node.output_tensors, tree.flatten(outputs)):
            tensors[id(k3_out)] = tf_out


def _copy_weights(source: Any, twin: Any) -> None:
    """Copy a built Keras 3 layer's weights into its built tf_keras twin (same order and shapes)."""
    values = [np.asarray(w) for w in source.get_weights()]
    shapes = [tuple(w.shape) for w in twin.weights]
    if [v.shape for v in values] != shapes:
        raise _refuse(source, f"its weights {[v.shape for v in values]} do not match tf_keras' {shapes}")
    twin.set_weights(values)


def translate(model: Any) -> Any:
    """A tf_keras model equivalent to the Keras 3 ``model``, or UntranslatableError (one line)."""
    import keras
    import tf_keras

    from edgekit._lazy import keras as _load_tf_keras

    _load_tf_keras()
    if not isinstance(model, keras.Model):
        raise UntranslatableError(f"expected a Keras 3 model. Received: {type(model).__name__}.")
    try:
        return _Translator(keras, tf_keras).model(model)
    except UntranslatableError:
        raise
    except Exception as e:  # tf_keras refused the graph: say which model, one line
        raise UntranslatableError(f"model {model.name!r} cannot be translated: {_first_line(e)}") from None


def _outputs(model: Any, x: np.ndarray) -> list[np.ndarray]:
    out = model(x, training=False)
    return [np.asarray(o, dtype=np.float32) for o in (out if isinstance(out, (list, tuple)) else [out])]


def prove(k3_model: Any, tfk_model: Any, x: np.ndarray) -> float:
    """max |Keras 3 - tf_keras| over every output for the float32 NHWC images ``x``."""
    x = np.asarray(x, dtype=np.float32)
    ours, theirs = _outputs(k3_model, x), _outputs(tfk_model, x)
    if [a.shape for a in ours] != [b.shape for b in theirs]:
        return float("inf")
    return max(float(np.max(np.abs(a - b))) if a.size else 0.0 for a, b in zip(ours, theirs))
