"""Quantization-aware (tfmot) models: telling them apart, and loading them from ``.keras``
(tf_keras 2.21 + tfmot 0.8.1).

Two tfmot classes do not round-trip through the ``.keras`` format:
- ``QuantizeLayer.build`` never sets ``built``, so loading builds it twice and expects
  twice the saved variables;
- ``QuantizeWrapperV2`` lists the wrapped layer's weights ahead of its own when it is
  built around a trained layer (how ``quantize_apply`` creates it), but not when it is
  built from a config, so the saved and expected variable lists differ by that prefix.

:func:`load_scope` maps both names to fixed subclasses (same class names, so the saved
weight paths match) inside tfmot's ``quantize_scope``. Saved files stay standard tfmot.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator


def is_qat(model: Any) -> bool:
    """True for a quantization-aware (tfmot) model: its forward pass fake-quantizes, so float
    artifacts match it only to quantization precision, and int8 targets convert directly."""
    return any(type(layer).__name__.startswith("Quantize") for layer in getattr(model, "layers", []))


def load_scope() -> contextlib.AbstractContextManager:
    """Scope in which ``keras.models.load_model`` loads plain and QAT models.

    Imports tfmot right away (ImportError here, not on entering the scope)."""
    import tensorflow_model_optimization as tfmot
    from edgekit._lazy import keras

    scopes = (tfmot.quantization.keras.quantize_scope(), keras().utils.custom_object_scope(_fixed_classes()))

    @contextlib.contextmanager
    def both() -> Iterator[None]:
        with scopes[0], scopes[1]:
            yield

    return both()


_CACHE: dict[str, type] = {}


def _fixed_classes() -> dict[str, type]:
    if _CACHE:
        return _CACHE
    from tensorflow_model_optimization.python.core.quantization.keras import quantize_layer, quantize_wrapper

    class QuantizeLayer(quantize_layer.QuantizeLayer):
        """tfmot's QuantizeLayer, built at most once."""

        def build(self, input_shape):
            if self.built:
                return
            super().build(input_shape)
            self.built = True

    class QuantizeWrapperV2(quantize_wrapper.QuantizeWrapperV2):
        """tfmot's QuantizeWrapperV2 that skips the duplicated wrapped-layer weights on load."""

        def load_own_variables(self, store):
            self._update_trackables()
            own = self._trainable_weights + self._non_trainable_weights
            n = len(store.keys())
            offset = n - len(own)
            if offset < 0:
                raise ValueError(f"Layer {self.name!r} expected {len(own)} variables, but the file holds {n}.")
            for i, v in enumerate(own):
                value = store[str(i + offset)]
                if tuple(value.shape) != tuple(v.shape):
                    raise ValueError(
                        f"Layer {self.name!r}: saved variable {i + offset} has shape {tuple(value.shape)}, "
                        f"expected {tuple(v.shape)} for {v.name}."
                    )
                v.assign(value)

    for cls, base in ((QuantizeLayer, quantize_layer.QuantizeLayer),
                      (QuantizeWrapperV2, quantize_wrapper.QuantizeWrapperV2)):
        cls.__module__ = base.__module__
        _CACHE[base.__name__] = cls
    return _CACHE
