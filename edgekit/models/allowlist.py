"""What an untrusted Keras model config may name: an allow-list of classes, keyed by name (Keras style).

Keras builds every object of a model file from its ``class_name`` (plus, in newer formats, a
``module`` it imports and a ``registered_name`` it looks up). A layer of a class not listed here,
an object from a module outside Keras/tf_keras/tfmot, a custom registered name, a ``Lambda``, a
``TFOpLambda`` (tf_keras's wrapper of a raw TensorFlow function) calling anything but a pure
inference op, or a Keras 3 op outside :data:`KERAS3_OPS` is refused by :func:`refusals`, read
as data before Keras sees the file. Each registry entry is a check: the node's config in, the
reason it is refused (or None) out.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

KERAS_ROOTS = ("keras", "tf_keras", "tensorflow_model_optimization")  # packages a config may name

LAYERS = frozenset("""
InputLayer Functional Sequential Dense EinsumDense Embedding Identity Masking
Activation ReLU LeakyReLU PReLU ELU Softmax ThresholdedReLU
Conv1D Conv2D Conv3D Conv1DTranspose Conv2DTranspose Conv3DTranspose DepthwiseConv1D DepthwiseConv2D
SeparableConv1D SeparableConv2D
MaxPooling1D MaxPooling2D MaxPooling3D AveragePooling1D AveragePooling2D AveragePooling3D
GlobalAveragePooling1D GlobalAveragePooling2D GlobalAveragePooling3D
GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D
BatchNormalization LayerNormalization GroupNormalization UnitNormalization Normalization Rescaling
Resizing CenterCrop Dropout SpatialDropout1D SpatialDropout2D SpatialDropout3D GaussianNoise
GaussianDropout AlphaDropout ActivityRegularization
RandomFlip RandomRotation RandomZoom RandomTranslation RandomContrast RandomCrop RandomBrightness
Flatten Reshape Permute RepeatVector Cropping1D Cropping2D Cropping3D
ZeroPadding1D ZeroPadding2D ZeroPadding3D UpSampling1D UpSampling2D UpSampling3D
Add Subtract Multiply Average Maximum Minimum Concatenate Dot LayerScale
""".split())

TFMOT = frozenset("""
QuantizeWrapper QuantizeWrapperV2 QuantizeLayer QuantizeAwareActivation NoOpActivation
AllValuesQuantizer LastValueQuantizer MovingAverageQuantizer FixedQuantizer NoQuantizer
Default8BitQuantizeConfig Default8BitConvQuantizeConfig Default8BitOutputQuantizeConfig
Default8BitActivationQuantizeConfig Default8BitConvTransposeQuantizeConfig
Default8BitWeightsQuantizer Default8BitConvWeightsQuantizer Default8BitConvTransposeWeightsQuantizer
NoOpQuantizeConfig OutputOnlyConfig FixedQuantizeConfig
DefaultNBitQuantizeConfig DefaultNBitConvQuantizeConfig DefaultNBitOutputQuantizeConfig
DefaultNBitActivationQuantizeConfig DefaultNBitConvWeightsQuantizer
PrunePreserveDefault8BitWeightsQuantizer PrunePreserveDefault8BitConvWeightsQuantizer
PrunePreserveDefaultWeightsQuantizer ClusterPreserveDefault8BitWeightsQuantizer
ClusterPreserveDefault8BitConvWeightsQuantizer ClusterPreserveDefaultWeightsQuantizer
PruneLowMagnitude ConstantSparsity PolynomialDecay ClusterWeights
""".split())

OBJECTS = frozenset("""
Zeros Ones Constant RandomNormal RandomUniform TruncatedNormal VarianceScaling GlorotUniform GlorotNormal
HeNormal HeUniform LecunNormal LecunUniform Orthogonal IdentityInitializer
L1 L2 L1L2 OrthogonalRegularizer MaxNorm MinMaxNorm NonNeg UnitNorm RadialConstraint
DTypePolicy FloatDTypePolicy Policy QuantizedDTypePolicy
""".split())

ACTIVATIONS = frozenset("""
linear relu relu6 leaky_relu elu selu gelu silu swish hard_silu hard_swish sigmoid hard_sigmoid tanh
softmax log_softmax softplus softsign exponential mish celu glu log_sigmoid sparse_plus squareplus
""".split())

# raw TensorFlow functions a TFOpLambda / SlicingOpLambda may call: pure tensor maths, nothing
# that touches files, the system, Python callbacks, printing or summaries
TF_OP_NAMESPACES = ("math.", "nn.", "__operators__.")
TF_OPS = frozenset("""
add subtract multiply divide truediv maximum minimum abs negative sign square sqrt rsqrt exp pow
reduce_mean reduce_sum reduce_max reduce_min clip_by_value sigmoid tanh
reshape concat stack unstack split transpose expand_dims squeeze tile pad gather gather_nd
cast identity shape size rank slice strided_slice where ones_like zeros_like fill range broadcast_to
einsum matmul linalg.matmul linalg.l2_normalize image.resize image.resize_with_pad image.crop_to_bounding_box
compat.v1.shape compat.v1.gather compat.v1.transpose
""".split())
TF_OP_REFUSED = ("io.", "py_function", "numpy_function", "compat.v1.py_func", "print", "debugging.", "data.",
                 "summary.", "saved_model.", "experimental.", "raw_ops.", "load_op_library", "load_library",
                 "math.bincount")  # checked first: a namespace on the list never lets these through

# Keras 3 ops that appear as nodes of functional models (module keras.src.ops.*)
KERAS3_OPS = frozenset("""
Add Subtract Multiply Divide TrueDivide Power Negative Abs Absolute Square Sqrt Exp Log Maximum Minimum
Mean Sum Max Min Clip Where Reshape Transpose ExpandDims Squeeze Concatenate Stack Split Tile Flatten
GetItem Take Matmul Einsum Cast Tanh Sigmoid Relu Relu6 Gelu Silu HardSigmoid HardSilu Softmax LogSoftmax
Softplus Elu Selu LeakyRelu Rsqrt Sign Floor Ceil Round Equal NotEqual Greater GreaterEqual Less LessEqual
Pad Conv DepthwiseConv Resize Moveaxis Swapaxes Erf Reciprocal Average OnesLike ZerosLike Identity
""".split())
KERAS3_OP_MODULES = ("keras.src.ops.numpy", "keras.src.ops.nn", "keras.src.ops.math", "keras.src.ops.image",
                     "keras.src.ops.core", "keras.src.ops.linalg")

# special keys of Keras' own serialization (tensors, slices, constants): data, never code
KERAS_VALUES = frozenset(("__keras_tensor__", "__slice__", "__ellipsis__", "__tensor__", "__numpy__",
                          "__bytes__", "__tuple__", "__typespec__"))

# never deserialized: edgekit loads uncompiled (``compile=False`` drops the optimizer, loss and metrics)
SKIPPED_KEYS = frozenset(("compile_config",))

Check = Callable[[dict], "str | None"]


def _allowed(node: dict) -> str | None:
    return None


def _tf_op(node: dict) -> str | None:
    """A TFOpLambda calls ``tf.<function>``: only pure inference ops."""
    fn = (node.get("config") or {}).get("function")
    if not isinstance(fn, str):
        return "names no TensorFlow function"
    if fn.startswith(TF_OP_REFUSED) or fn in TF_OP_REFUSED:
        return f"calls tf.{fn}, which is not a pure inference op"
    if fn in TF_OPS or fn.startswith(TF_OP_NAMESPACES):
        return None
    return f"calls tf.{fn}, which is not on edgekit's list of pure inference ops"


def _function(node: dict) -> str | None:
    """A function given as an object (an activation): only Keras' own activations."""
    name = node.get("config")
    module = str(node.get("module") or "builtins")
    if name in ACTIVATIONS and (module == "builtins" or module.split(".")[0] in ("keras", "tf_keras")):
        return None
    return f"names the function {module}.{name}, which is not a Keras activation"


def _refused(node: dict) -> str | None:
    return "carries Python code, which would run when the model loads"


CLASSES: dict[str, Check] = {name: _allowed for name in LAYERS | TFMOT | OBJECTS | KERAS_VALUES}
CLASSES.update({"TFOpLambda": _tf_op, "SlicingOpLambda": _tf_op, "function": _function,
                "Lambda": _refused, "__lambda__": _refused})


def _origin(node: dict) -> str | None:
    """Why the object's ``module`` / ``registered_name`` point outside Keras, or None."""
    module, registered = node.get("module"), node.get("registered_name")
    if module is not None and (not isinstance(module, str) or module.split(".")[0] not in KERAS_ROOTS + ("builtins",)):
        return f"comes from module {module!r}, outside Keras"
    if registered is not None and registered != node.get("class_name"):
        return f"is a custom registered object ({registered!r})"
    return None


def check_node(node: dict) -> str | None:
    """The reason one config object (a dict with ``class_name``) is refused, or None."""
    name = node.get("class_name")
    if not isinstance(name, str):
        return "has a class name that is not a string"
    origin = _origin(node)
    if origin:
        return origin
    if str(node.get("module") or "").startswith("keras.src.ops."):  # a Keras 3 op, not a layer
        ok = name in KERAS3_OPS and node["module"] in KERAS3_OP_MODULES
        return None if ok else "is a Keras 3 op not on edgekit's list of pure inference ops"
    check = CLASSES.get(name)
    if check is None:
        return "is not a class edgekit knows to be safe (not a built-in Keras, tf_keras or tfmot class)"
    return check(node)


def _layer_name(node: dict) -> str | None:
    """The name of a layer-like object (its config has ``trainable``, or it is a graph node)."""
    cfg = node.get("config") if isinstance(node.get("config"), dict) else {}
    name = cfg.get("name", node.get("name"))
    is_layer = "trainable" in cfg or "inbound_nodes" in node
    return name if is_layer and isinstance(name, str) else None


def _objects(config: Any) -> Iterator[tuple[dict, str]]:
    """(object with a ``class_name``, name of the nearest enclosing layer), at any depth."""
    stack: list[tuple[Any, str]] = [(config, "?")]
    while stack:
        node, layer = stack.pop()
        if isinstance(node, dict):
            if "class_name" in node:
                layer = _layer_name(node) or layer
                yield node, layer
            stack.extend((v, layer) for k, v in node.items() if k not in SKIPPED_KEYS)
        elif isinstance(node, list):
            stack.extend((v, layer) for v in node)


def refusals(config: Any, limit: int = 3) -> list[str]:
    """``"Class 'layer' <reason>"`` for the first ``limit`` objects of a model config not allowed."""
    found: list[str] = []
    for node, layer in _objects(config):
        reason = check_node(node)
        if reason:
            found.append(f"{node.get('class_name')!s:.60} {layer[:80]!r} {reason}")
            if len(found) >= limit:
                break
    return found
