"""Per-layer error of a quantized .tflite against its float Keras model, named by Keras layers.

LiteRT keeps every intermediate tensor with ``experimental_preserve_all_tensors=True``
(without the XNNPACK delegate, whose fused kernels would not fill them); the Keras
reference is a sub-model with the mapped layers as outputs. Errors propagate, so each
layer also gets ``nsr_added``: the noise-to-signal ratio (error power / signal power,
linear) it adds to that of its inputs, which is what the table is ranked by (a drop from
120 to 40 dB SNR adds 1e-4; one from 40 to 0 dB adds ~1).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from edgekit.export.layermap import LayerGroup


@dataclasses.dataclass
class LayerError:
    """The error of one TFLite activation tensor (one group of Keras layers)."""

    name: str  # "conv2d+batch_normalization+re_lu"
    layers: tuple[str, ...]
    tensor: str
    dtype: str
    scale: float | None  # quantization scale of the output tensor (None: float)
    rmse: float
    snr_db: float
    cosine: float
    nsr_added: float = 0.0  # noise-to-signal ratio added at this layer (own - worst input's)
    recovered_pt: float | None = None  # accuracy recovered keeping this group alone in float
    loo_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layers"] = list(self.layers)
        return d


class _Stats:
    """Running sums for RMSE, SNR and mean cosine over samples."""

    def __init__(self) -> None:
        self.sig = self.err = 0.0
        self.n = 0
        self.cos: list[float] = []

    def add(self, ref: np.ndarray, got: np.ndarray) -> None:
        r, g = ref.astype(np.float64).ravel(), got.astype(np.float64).ravel()
        self.sig += float(r @ r)
        self.err += float((r - g) @ (r - g))
        self.n += r.size
        den = math.sqrt(float(r @ r) * float(g @ g))
        self.cos.append(float(r @ g) / den if den > 0 else float(np.allclose(r, g)))

    def rmse(self) -> float:
        return math.sqrt(self.err / max(self.n, 1))

    def snr_db(self) -> float:
        if self.err == 0:
            return 120.0
        return 10 * math.log10(max(self.sig, 1e-30) / self.err)

    def cosine(self) -> float:
        return float(np.mean(self.cos)) if self.cos else 1.0


def preserving_interpreter(data: bytes):
    """A LiteRT interpreter that keeps every intermediate tensor (builtin kernels, no delegate)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from edgekit.runtimes.base import quiet_native_output

    with quiet_native_output():
        it = Interpreter(model_content=data, experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
    return it


def _to_float(q: np.ndarray, quant: tuple[float, int]) -> np.ndarray:
    from edgekit.runtimes.base import dequantize

    scale, zp = quant
    return dequantize(q, scale, zp) if np.dtype(q.dtype).kind in "iu" and scale else q.astype(np.float32)


CHUNK = 64  # images whose every compared layer output is in memory at once


def iter_keras_refs(model: Any, groups: Sequence[LayerGroup], x: Any,
                    progress: Callable[[str], None] = lambda _m: None,
                    chunk: int = CHUNK) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
    """``(images, [each group's last layer output on them])`` for ``chunk`` images of ``x`` at a time
    (an array or a split, read a chunk at a time; a sub-model of the float model): the layer
    outputs of one chunk are in memory at once, not those of every image."""
    from edgekit._lazy import keras
    from edgekit.data.store import iter_batches

    progress(f"keras: {len(groups)} layer outputs on {len(x)} images")
    sub = keras().Model(model.inputs, [model.get_layer(g.output_layer).output for g in groups])

    def chunks() -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
        for xb in iter_batches(x, chunk):
            refs = sub.predict(xb, batch_size=256, verbose=0)
            yield xb, refs if isinstance(refs, list) else [refs]

    return chunks()


def error_rows(model: Any, groups: Sequence[LayerGroup], stats: Sequence["_Stats"], facts: Sequence[tuple[str, Any]],
               input_snr: float) -> list[LayerError]:
    """One :class:`LayerError` per group from its running ``stats`` and (dtype, scale) ``facts``."""
    rows = [LayerError(g.name, g.layers, g.tensor, dtype, scale, s.rmse(), s.snr_db(), s.cosine())
            for g, s, (dtype, scale) in zip(groups, stats, facts)]
    _nsr_added(model, groups, rows, input_snr)
    return rows


def layer_errors(model: Any, data: bytes, groups: Sequence[LayerGroup], x: np.ndarray,
                 progress: Callable[[str], None] = lambda _m: None) -> tuple[list[LayerError], np.ndarray]:
    """Per-group errors of the flatbuffer ``data`` on images ``x``, and its output probabilities."""
    from edgekit.runtimes.base import quantize

    it = preserving_interpreter(data)
    details = {d["name"]: d for d in it.get_tensor_details()}
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    in_shape = tuple(int(d) for d in inp["shape"])
    stats = [_Stats() for _ in groups]
    in_stats = _Stats()
    probs = []
    chunks = iter_keras_refs(model, groups, x, progress)
    progress(f"litert: {len(groups)} intermediate tensors on {len(x)} images")
    for xb, refs in chunks:  # one chunk of images and its layer outputs at a time
        for i in range(len(xb)):
            x1 = xb[i : i + 1]
            xq = quantize(x1, *inp["quantization"], np.dtype(inp["dtype"])) if np.dtype(inp["dtype"]).kind in "iu" \
                else x1.astype(inp["dtype"])
            it.set_tensor(inp["index"], xq.reshape(in_shape))
            it.invoke()
            in_stats.add(x1, _to_float(xq, inp["quantization"]))
            for k, g in enumerate(groups):
                d = details[g.tensor]
                stats[k].add(refs[k][i], _to_float(it.get_tensor(d["index"])[0], d["quantization"]))
            probs.append(_to_float(it.get_tensor(out["index"])[0], out["quantization"]))
    facts = [(np.dtype(details[g.tensor]["dtype"]).name, float(details[g.tensor]["quantization"][0]) or None)
             for g in groups]
    return error_rows(model, groups, stats, facts, in_stats.snr_db()), np.stack(probs)


def _nsr(snr_db: float) -> float:
    return 10 ** (-snr_db / 10)


def _nsr_added(model: Any, groups: Sequence[LayerGroup], rows: list[LayerError], input_snr: float) -> None:
    """Set each row's ``nsr_added``: its noise-to-signal ratio minus its worst input's."""
    from edgekit.export.layermap import inbound_layers

    snr_of = {g.output_layer: r.snr_db for g, r in zip(groups, rows)}
    for g, r in zip(groups, rows):
        ins = inbound_layers(model.get_layer(g.layers[0]))
        before = [snr_of.get(layer.name, input_snr) for layer in ins] or [input_snr]
        r.nsr_added = float(_nsr(r.snr_db) - _nsr(min(before)))
