"""A user's ONNX / SavedModel as the source model, on real MNIST: edgekit's converter and int8 paths.

Trains a small CNN (conv+BN, depthwise, 1x1, stride-2 conv, global average pool; 12 epochs on
the 7,200-image train split of the shared MNIST set), exports it with tf2onnx, and makes its NCHW
twin (what torch.onnx.export hands over) by dropping tf2onnx's input transpose. For both ONNX
layouts it measures, against onnxruntime on the original file, on the 2,000-image holdout: the
converted TF graph and TFLite float (max |diff|), TFLite full-int8 from that graph and onnx-int8
(onnxruntime static QDQ) top-1 agreement. The same Keras model as a SavedModel (model.export)
goes through the SavedModel format and TFLite float.

    python benchmarks/onnx_source.py          # saves benchmarks/results/onnx_source.md
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine, md_table, mnist_spec_or_exit, save  # noqa: E402

import numpy as np  # noqa: E402


def train(ds):
    import tf_keras as K

    L = K.layers
    K.utils.set_random_seed(0)
    m = K.Sequential([K.Input((28, 28, 1)), L.Conv2D(16, 3, padding="same"), L.BatchNormalization(), L.ReLU(),
                      L.MaxPooling2D(), L.DepthwiseConv2D(3, padding="same"), L.Conv2D(32, 1, activation="relu"),
                      L.Conv2D(32, 3, strides=2, padding="same", activation="relu"), L.GlobalAveragePooling2D(),
                      L.Dense(10, activation="softmax")])
    m.compile(K.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    m.fit(ds.x_train, ds.y_train, epochs=12, batch_size=32, verbose=0)
    return m


def litert(data: bytes, x: np.ndarray) -> np.ndarray:
    """The .tflite's outputs on LiteRT (edgekit's runner: int8 through the tensors' own scale/zero point)."""
    from edgekit.runtimes import LiteRTRunner

    return LiteRTRunner(data, threads=2).predict(x)


def tflite(g, rep=None) -> bytes:
    import tensorflow as tf

    c = tf.lite.TFLiteConverter.from_concrete_functions([g.concrete()], g.trackable)
    if rep is not None:
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = lambda: ([rep[k : k + 1]] for k in range(len(rep)))
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.inference_input_type = c.inference_output_type = tf.int8
    return c.convert()


def main() -> None:
    import onnx
    import onnxruntime as ort

    from edgekit.data import load_dataset
    from edgekit.export.onnx import keras_to_onnx
    from edgekit.models.loading import load
    from edgekit.models.onnx_format import quantize_int8
    from tests.models.onnx_builders import nchw_twin

    ds = load_dataset(mnist_spec_or_exit(), seed=0)
    x, y, rep = ds.x_test, ds.y_test, ds.representative(300)
    km = train(ds)
    proto = keras_to_onnx(km, (28, 28, 1))
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-onnx-source-"))
    rows = []
    agree = lambda a, b: float(np.mean(a.argmax(1) == b.argmax(1)))  # noqa: E731
    for name, p in (("ONNX NCHW", tmp / "nchw.onnx"), ("ONNX NHWC (tf2onnx)", tmp / "nhwc.onnx")):
        onnx.save(nchw_twin(proto) if "NCHW" in name else proto, str(p))
        t0 = time.perf_counter()
        h = load(p)
        load_s = time.perf_counter() - t0
        ref = h.predict(x)
        t0 = time.perf_counter()
        g = h.tf_graph()
        conv_s = time.perf_counter() - t0
        fl, q8 = litert(tflite(g), x), litert(tflite(g, rep), x)
        s = ort.InferenceSession(quantize_int8(h, rep), providers=["CPUExecutionProvider"])
        oq = s.run(None, {h.inputs[0].name: x.transpose(0, 3, 1, 2) if h.layout == "NCHW" else x})[0]
        rows.append({"source": name, "layout": h.layout, "load s": load_s, "convert s": conv_s,
                     "accuracy": float(np.mean(ref.argmax(1) == y)),
                     "TF graph max abs diff": float(np.abs(g(x).numpy() - ref).max()),
                     "TFLite float max abs diff": float(np.abs(fl - ref).max()),
                     "TFLite int8 agreement": agree(q8, ref), "onnx-int8 agreement": agree(oq, ref)})
    km.export(str(tmp / "sm"))
    t0 = time.perf_counter()
    h = load(tmp / "sm")
    load_s = time.perf_counter() - t0
    ref = h.predict(x)
    g = h.tf_graph()
    rows.append({"source": "SavedModel (model.export)", "layout": h.layout, "load s": load_s,
                 "accuracy": float(np.mean(ref.argmax(1) == y)),
                 "TF graph max abs diff": float(np.abs(km.predict(x, verbose=0) - ref).max()),
                 "TFLite float max abs diff": float(np.abs(litert(tflite(g), x) - ref).max()),
                 "TFLite int8 agreement": agree(litert(tflite(g, rep), x), ref)})
    cols = ["source", "layout", "load s", "convert s", "accuracy", "TF graph max abs diff", "TFLite float max abs diff",
            "TFLite int8 agreement", "onnx-int8 agreement"]
    text = (f"# A user's ONNX / SavedModel as the source\n\n{machine()}; holdout {len(x)} real MNIST images; "
            f"differences against the source's own runtime (onnxruntime, or the signature; the SavedModel's "
            f"TF graph column compares the signature with Keras).\n\n" + md_table(rows, cols))
    print(text)
    print(f"saved {save('onnx_source.md', text)}")


if __name__ == "__main__":
    main()
