"""Input layout of an image model from its input shape, and the TensorFlow graph a handle offers."""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from edgekit import vocab

IMAGE_CHANNELS = (1, 3)  # channel counts of the images edgekit reads (grey, RGB)


def guess_layout(shape: Sequence[int | None]) -> str:
    """NCHW when a rank-4 input is (N, C, H, W) with C in 1/3 and H, W larger than C (or unknown)
    while the last axis is not itself a channel count; NHWC otherwise."""
    if len(shape) != 4:
        return vocab.NHWC
    _, c, h, w = shape
    larger = all(d is None or d > (c or 0) for d in (h, w))
    if c in IMAGE_CHANNELS and larger and w not in IMAGE_CHANNELS:
        return vocab.NCHW
    return vocab.NHWC


@dataclasses.dataclass(frozen=True)
class TfGraph:
    """A model as TensorFlow: ``function`` is a ``tf.function`` with one fixed input signature,
    float32 NHWC images ``(None, H, W, C)`` named ``image``, returning the model's first output;
    ``trackable`` owns its variables (``trackable_obj`` of the TFLite converter).

    Every format offers one through ``handle.tf_graph()`` (built on first call), so the
    export layer converts every format the same way::

        g = handle.tf_graph()
        tf.lite.TFLiteConverter.from_concrete_functions([g.concrete()], g.trackable)

    ``frozen``: :meth:`concrete` folds the variables into constants and ``trackable`` is None
    (a Keras 3 model: given it as ``trackable_obj``, TF 2.21's converter loses its variables
    and the .tflite computes NaN).

    ``batch``: the one batch size the graph computes (an ONNX model through onnx2tf is built at
    batch 1: its reshapes hold that batch), None when any batch works; calling the graph on more
    images runs them ``batch`` at a time.
    """

    function: Any
    trackable: Any
    frozen: bool = False

    @property
    def batch(self) -> int | None:
        return self.function.input_signature[0].shape[0]

    def concrete(self, batch_size: int | None = None) -> Any:
        """The concrete function; ``batch_size`` fixes the batch axis (Edge TPU, micro)."""
        import tensorflow as tf

        spec = self.function.input_signature[0]
        if self.batch is not None and batch_size not in (None, self.batch):
            raise ValueError(f"this graph computes batches of {self.batch} only. Received: batch_size {batch_size}.")
        if batch_size is None or batch_size == self.batch:
            cf = self.function.get_concrete_function()
        else:
            fixed = tf.TensorSpec((batch_size, *spec.shape[1:]), spec.dtype, name=spec.name)
            cf = tf.function(self.function.python_function).get_concrete_function(fixed)
        if self.frozen:
            from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

            cf = convert_variables_to_constants_v2(cf)
        return cf

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """The NHWC image shape without the batch axis."""
        return tuple(self.function.input_signature[0].shape[1:])

    def __call__(self, x: Any) -> Any:
        if self.batch is None or len(x) == self.batch:
            return self.function(x)
        import tensorflow as tf

        return tf.concat([self.function(x[i : i + self.batch]) for i in range(0, len(x), self.batch)], axis=0)


def keras_graph(model: Any, frozen: bool = False, keep_batch: bool = False) -> TfGraph:
    """The TfGraph of a Keras model (tf_keras, or Keras 3 with ``frozen=True``): the model called
    in inference mode on float32 NHWC images named ``image``; ``keep_batch``: at the batch size
    the model's input fixes (see :attr:`TfGraph.batch`), any batch otherwise."""
    import tensorflow as tf

    shape = (model.inputs[0].shape[0] if keep_batch else None,) + tuple(model.inputs[0].shape[1:])

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name="image")])
    def serve(x):
        return model(x, training=False)

    return TfGraph(serve, None if frozen else model, frozen)


def cached(make: Any) -> Any:
    """A zero-argument function that calls ``make`` once and then returns its result."""
    box: list[Any] = []

    def get() -> Any:
        if not box:
            box.append(make())
        return box[0]

    return get
