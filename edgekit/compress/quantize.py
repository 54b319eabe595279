"""Quantization-aware training: plain QAT, or the collaborative schemes that keep what the
earlier stages did (PQAT keeps zeros, CQAT keeps the shared values, PCQAT keeps both)."""
from __future__ import annotations

from edgekit.compress.layers import clone
from edgekit.errors import UsageError


def check_quantizable(model) -> None:
    """UsageError naming the layer tfmot's default 8-bit scheme really cannot quantize.

    tfmot decides, on a copy, after its layout transforms (Conv/DepthwiseConv + BatchNorm
    (+ ReLU) fold, Add and Concatenate quantize at their outputs): a BatchNormalization
    that follows a conv is quantizable even though the registry alone does not list it.
    """
    import tensorflow_model_optimization as tfmot

    Q = tfmot.quantization.keras
    try:
        Q.quantize_apply(Q.quantize_annotate_model(clone(model)), Q.default_8bit.Default8BitQuantizeScheme())
    except (RuntimeError, ValueError, TypeError) as e:
        raise UsageError(describe_qat_error(model, e)) from None


def describe_qat_error(model, error: Exception) -> str:
    """tfmot's error as one line: the layer name and type when tfmot names one."""
    import re

    text = str(error)
    found = re.search(r"Layer (\S+?):<class '(?:[\w.]*\.)?(\w+)'> is not supported", text)
    if found:
        name, kind = found.groups()
        try:
            kind = type(model.get_layer(name)).__name__
        except ValueError:
            pass
        return (f"Quantization-aware training cannot quantize layer {name} ({kind}): tfmot's default 8-bit "
                "scheme does not support that type. Use --quantize ptq (post-training) instead.")
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return f"Quantization-aware training cannot wrap this model: {first} Use --quantize ptq (post-training) instead."


def scheme_name(pruned: bool, clustered: bool) -> str:
    return ("P" if pruned else "") + ("C" if clustered else "") + "QAT"


def _cluster_preserve_scheme(preserve_sparsity: bool):
    """tfmot's Default8BitClusterPreserveQuantizeScheme with one weight quantizer per layer.

    tfmot 0.8.1 shares one quantizer object between all layers of a type, and a layer
    without zeros (an unpruned first conv) switches ``preserve_sparsity`` off for every
    other layer too, so PCQAT silently loses the sparsity. A fresh quantizer per layer
    keeps the choice per layer.
    """
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.cluster_preserve import (
        cluster_preserve_quantize_registry as cpr,
        default_8bit_cluster_preserve_quantize_scheme as cps,
    )

    class PerLayerRegistry(cpr.Default8bitClusterPreserveQuantizeRegistry):
        def __init__(self, preserve: bool):
            super().__init__(preserve)
            self._preserve = preserve

        def get_quantize_config(self, layer):
            cpr.ClusterPreserveQuantizeRegistry.__init__(self, self._preserve)  # fresh quantizers
            return super().get_quantize_config(layer)

    class Scheme(cps.Default8BitClusterPreserveQuantizeScheme):
        def get_quantize_registry(self):
            return PerLayerRegistry(self.preserve_sparsity)

    return Scheme(preserve_sparsity=preserve_sparsity)


def apply_qat(model, pruned: bool, clustered: bool, calibration=None):
    """A fake-quantized copy of ``model`` ready for fine-tuning (QAT / PQAT / CQAT / PCQAT).

    ``calibration`` (images): every activation range starts at what ``model`` produces on them
    (:func:`calibrate_ranges`) instead of tfmot's [-6, 6].
    """
    import tensorflow_model_optimization as tfmot

    Q = tfmot.quantization.keras
    if clustered:
        scheme = _cluster_preserve_scheme(preserve_sparsity=pruned)
    elif pruned:
        scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    else:
        scheme = Q.default_8bit.Default8BitQuantizeScheme()
    try:
        qat = Q.quantize_apply(Q.quantize_annotate_model(clone(model)), scheme)
    except (RuntimeError, ValueError, TypeError) as e:
        raise UsageError(describe_qat_error(model, e)) from None
    if calibration is not None:
        calibrate_ranges(qat, model, calibration)
    return qat


RANGE_KINDS = ("output", "post_activation", "pre_activation")  # tfmot's activation quantizer variables


def calibrate_ranges(qat_model, float_model, x) -> int:
    """Start every activation quantizer of ``qat_model`` at the range (widened to hold 0) that the
    matching tensor of ``float_model`` takes on images ``x``; returns how many were set.

    tfmot starts each range at [-6, 6] and moves it by an exponential moving average with decay
    0.999 per training step: a fine-tune of a few hundred steps leaves the ranges near [-6, 6]
    (measured: [-5.80, 6.0] after 34 steps on MobileNetV1), ReLU outputs then waste half of
    the int8 codes on negatives and clip above 6. Calibrated, the moving average starts where it
    should end.
    """
    import numpy as np

    from edgekit._lazy import keras

    wanted: list[tuple[object, object, object, str]] = []  # (min var, max var, float layer, kind)
    for w in qat_model.layers:
        inner = getattr(w, "layer", None)
        if inner is None:
            continue
        try:
            layer = float_model.get_layer(inner.name)
        except ValueError:
            continue
        found = {_var_key(v, w): v for v in w.weights}
        for kind in RANGE_KINDS:
            if f"{kind}_min" in found and f"{kind}_max" in found:
                wanted.append((found[f"{kind}_min"], found[f"{kind}_max"], layer, kind))
    if not wanted:
        return 0
    tensors = [layer.input if kind == "pre_activation" else layer.output for _, _, layer, kind in wanted]
    values = keras().Model(float_model.inputs, tensors).predict(x, batch_size=64, verbose=0)
    values = values if isinstance(values, list) else [values]
    for (lo, hi, layer, kind), v in zip(wanted, values):
        if kind == "pre_activation":  # the layer's own computation without its activation
            act = layer.activation
            layer.activation = keras().activations.linear
            try:
                v = np.asarray(layer(v))
            finally:
                layer.activation = act
        lo.assign(min(float(np.min(v)), 0.0))
        hi.assign(max(float(np.max(v)), 0.0))
    return len(wanted)


def finish_qat(qat_model, float_template, clustered: bool):
    """``(deployable QAT model, float view)`` after fine-tuning.

    The deployable model is rebuilt with tfmot's default 8-bit scheme (no clustering or
    sparsity-mask variables) and carries the fine-tuned weights and learned ranges, so it
    saves, loads back and converts like any QAT model. The float view is
    ``float_template``'s architecture with the fine-tuned float weights (for sizes and
    sparsity/unique-value counts).
    """
    import numpy as np
    import tensorflow_model_optimization as tfmot

    if clustered:
        qat_model = tfmot.experimental.combine.strip_clustering_cqat(qat_model)
    values: dict[str, np.ndarray] = {}
    for w in qat_model.weights:
        values.setdefault(w.name, w.numpy())
    plain = clone(float_template)
    for w in plain.weights:
        if w.name not in values:
            raise RuntimeError(f"QAT model lost weight {w.name!r}")
        w.assign(values[w.name])
    deploy = tfmot.quantization.keras.quantize_model(clone(plain))
    if len(deploy.layers) != len(qat_model.layers):
        raise RuntimeError("QAT model and its default-scheme rebuild differ in layers")
    for ld, lq in zip(deploy.layers, qat_model.layers):
        src = {}
        for w in lq.weights:
            src.setdefault(_var_key(w, lq), w)
        for w in ld.weights:
            v = src.get(_var_key(w, ld))
            if v is None or tuple(v.shape) != tuple(w.shape):
                raise RuntimeError(f"QAT variable {w.name!r} has no fine-tuned value to copy")
            w.assign(v.numpy())
    return deploy, plain


def _var_key(var, layer) -> str:
    """A variable's name without its layer's (possibly uniquified) name: 'kernel', '_min', 'kernel_min'."""
    short = var.name.split(":")[0].split("/")[-1]
    return short.replace(layer.name, "") if short.startswith(layer.name) else short
