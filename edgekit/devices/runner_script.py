"""edgekit on-device runner: run a .tflite or .onnx model on THIS machine and time it here.

SELF-CONTAINED: the host copies this file to the device and runs ``python3 runner_script.py``.
It needs the standard library, numpy and the device's own runtime (ai_edge_litert or
tflite_runtime for .tflite, onnxruntime for .onnx); edgekit is not installed there. Keep it
importable by old Pythons (no f-strings, annotations or walrus) so that it can say
"Python too old" instead of failing with a SyntaxError.

Protocol (version 2), all numbers little-endian:
  stdin   one line of JSON, the request:
          {"protocol": 2, "artifact": PATH, "runtime": "litert" | "onnxruntime", "threads": T,
           "runs": R, "warmup": W, "count": N, "shape": [H, W, C]}
          then N*H*W*C float32 values: the images, NHWC, in [0, 1].
  stdout  one line: MAGIC + " " + JSON reply, then the reply's payload, then END + "\\n".
          ok:    {"status": "ok", "facts": {...}, "probe": {"machine": UNAME_M, "cpuinfo": TEXT},
                  "latencies_us": [...], "outputs": {"shape": [N, ...], "nbytes": B}}
                 + B bytes of float32 outputs
          error: {"status": "error", "kind": KIND, "message": ONE_LINE} (no payload)
The device reports raw probe data only (``uname -m`` and a /proc/cpuinfo excerpt): the host
derives the CPU class from it and checks every field of the reply (edgekit.devices.reply).
Inputs of an int8/uint8 model are quantized with the input tensor's own scale and zero point,
outputs are dequantized with the output tensor's. Latency: time.perf_counter() around the
runtime's invoke only (LiteRT ``invoke``, onnxruntime ``run_with_iobinding``), batch 1, after
``warmup`` untimed calls. Anything the runtimes print goes to stderr, never into the protocol.
"""
import json
import os
import platform
import sys

PROTOCOL = 2
MAGIC = "EDGEKIT-RUNNER/2"
END = b"EDGEKIT-END"
MIN_PYTHON = (3, 8)
CPUINFO_LIMIT = 8192


class RunnerError(Exception):
    def __init__(self, kind, message):
        Exception.__init__(self, message)
        self.kind = kind


def reply(out, header, payload=b""):
    out.write((MAGIC + " " + json.dumps(header, allow_nan=False) + "\n").encode("utf-8"))
    out.write(payload)
    out.write(END + b"\n")
    out.flush()


def read_request(stream):
    line = stream.readline(1 << 16)
    try:
        req = json.loads(line.decode("utf-8"))
    except ValueError:
        raise RunnerError("protocol", "the request header is not JSON")
    if not isinstance(req, dict) or req.get("protocol") != PROTOCOL:
        raise RunnerError("protocol", "unsupported request (protocol %d expected)" % PROTOCOL)
    return req


def read_images(stream, req, np):
    shape = [int(req["count"])] + [int(d) for d in req["shape"]]
    size = 4
    for d in shape:
        size *= d
    data = stream.read(size)
    if len(data) != size:
        raise RunnerError("protocol", "expected %d bytes of images, got %d" % (size, len(data)))
    return np.frombuffer(data, dtype="<f4").reshape(shape)


def cpuinfo_excerpt():
    """The first CPU's block of /proc/cpuinfo plus the trailing board lines (Model, Hardware)."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except (OSError, IOError):
        return ""
    blocks = [b for b in text.split("\n\n") if b.strip()]
    keep = blocks[:1] + [b for b in blocks[1:] if not b.lstrip().lower().startswith("processor")]
    return "\n\n".join(keep)[:CPUINFO_LIMIT]


def package_version(dist, module):
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:  # noqa: BLE001 - metadata is optional on a device
        return str(getattr(module, "__version__", "unknown"))


def facts(np, runtime_name, runtime_version):
    return {
        "system": platform.system(), "release": platform.release(),
        "platform": platform.platform(), "processor": platform.processor(),
        "python": platform.python_version(), "implementation": platform.python_implementation(),
        "executable": sys.executable, "cpu_count": os.cpu_count(),
        "numpy": np.__version__, "runtime": runtime_name, "runtime_version": runtime_version,
    }


def probe():
    """Raw data the host derives the CPU class from: ``uname -m`` and the cpuinfo excerpt."""
    return {"machine": platform.machine(), "cpuinfo": cpuinfo_excerpt()}


def quantize(np, x, scale, zero_point, dtype):
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def time_invoke(invoke, runs, warmup):
    import time

    clock = time.perf_counter
    for _ in range(warmup):
        invoke()
    out = []
    for _ in range(runs):
        t0 = clock()
        invoke()
        out.append((clock() - t0) * 1e6)
    return out


def load_litert():
    try:
        from ai_edge_litert.interpreter import Interpreter
        import ai_edge_litert as mod
        return Interpreter, "ai_edge_litert", package_version("ai-edge-litert", mod)
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter
        import tflite_runtime as mod
        return Interpreter, "tflite_runtime", package_version("tflite-runtime", mod)
    except ImportError:
        raise RunnerError("no-runtime", "neither ai_edge_litert nor tflite_runtime can be imported by %s "
                          "(Python %s); install one there: pip install ai-edge-litert"
                          % (sys.executable, platform.python_version()))


def run_litert(np, req, images):
    Interpreter, name, version = load_litert()
    try:
        it = Interpreter(model_path=req["artifact"], num_threads=int(req["threads"]))
        inp = it.get_input_details()[0]
        if list(inp["shape"])[0] != 1:
            it.resize_tensor_input(inp["index"], [1] + list(inp["shape"])[1:])
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise RunnerError("load", "%s cannot load the model: %s" % (name, first_line(e)))
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    in_dtype, out_dtype = np.dtype(inp["dtype"]), np.dtype(out["dtype"])
    in_shape = [1] + [int(d) for d in inp["shape"][1:]]
    x = images.astype(np.float32)
    if in_dtype.kind in "iu":
        scale, zp = inp["quantization"]
        x = quantize(np, x, scale, zp, in_dtype)
    x = np.ascontiguousarray(x.astype(in_dtype).reshape([len(images)] + in_shape))
    results = []
    for i in range(len(images)):
        it.set_tensor(inp["index"], x[i])
        it.invoke()
        results.append(np.array(it.get_tensor(out["index"]))[0])
    y = np.stack(results)
    if out_dtype.kind in "iu":
        scale, zp = out["quantization"]
        y = (y.astype(np.float32) - zp) * scale
    it.set_tensor(inp["index"], x[0])
    lat = time_invoke(it.invoke, int(req["runs"]), int(req["warmup"]))
    return y.astype("<f4"), lat, name, version


def run_onnx(np, req, images):
    try:
        import onnxruntime as ort
    except ImportError:
        raise RunnerError("no-runtime", "onnxruntime cannot be imported by %s (Python %s); install it there: "
                          "pip install onnxruntime" % (sys.executable, platform.python_version()))
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(req["threads"])
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(req["artifact"], so, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise RunnerError("load", "onnxruntime cannot load the model: %s" % first_line(e))
    i, o = sess.get_inputs()[0], sess.get_outputs()[0]
    x = images.astype(np.float32)
    dims = list(i.shape)
    n, h, w, c = x.shape
    if len(dims) == 4 and dims[1:] == [c, h, w] and dims[1:] != [h, w, c]:
        x = x.transpose(0, 3, 1, 2)  # an NCHW model
    x = np.ascontiguousarray(x)
    y = np.concatenate([sess.run([o.name], {i.name: x[k:k + 1]})[0] for k in range(n)])
    io = sess.io_binding()
    io.bind_ortvalue_input(i.name, ort.OrtValue.ortvalue_from_numpy(x[:1]))
    io.bind_ortvalue_output(o.name, ort.OrtValue.ortvalue_from_numpy(np.empty((1,) + y.shape[1:], y.dtype)))
    lat = time_invoke(lambda: sess.run_with_iobinding(io), int(req["runs"]), int(req["warmup"]))
    return y.astype("<f4"), lat, "onnxruntime", str(ort.__version__)


def first_line(e):
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def main():
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever the runtimes print goes to stderr, not into the protocol
    stdin = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
    try:
        if sys.version_info < MIN_PYTHON:
            raise RunnerError("python", "Python %s at %s is too old: the runner needs Python >= %d.%d"
                              % (platform.python_version(), sys.executable, MIN_PYTHON[0], MIN_PYTHON[1]))
        try:
            import numpy as np
        except ImportError:
            raise RunnerError("no-numpy", "numpy cannot be imported by %s (Python %s); install it there: "
                              "pip install numpy" % (sys.executable, platform.python_version()))
        req = read_request(stdin)
        images = read_images(stdin, req, np)
        if not os.path.isfile(req["artifact"]):
            raise RunnerError("artifact", "the artifact %r is not on the device" % req["artifact"])
        runtime = req.get("runtime")
        if runtime == "litert":
            y, lat, name, version = run_litert(np, req, images)
        elif runtime == "onnxruntime":
            y, lat, name, version = run_onnx(np, req, images)
        else:
            raise RunnerError("protocol", "unknown runtime %r (litert or onnxruntime)" % runtime)
        payload = y.tobytes()
        reply(out, {"status": "ok", "facts": facts(np, name, version), "probe": probe(), "latencies_us": lat,
                    "outputs": {"shape": list(y.shape), "nbytes": len(payload)}}, payload)
    except RunnerError as e:
        reply(out, {"status": "error", "kind": e.kind, "message": str(e)})
        return 3
    except Exception as e:  # noqa: BLE001 - anything else still answers in the protocol
        reply(out, {"status": "error", "kind": "internal", "message": "%s: %s" % (type(e).__name__, first_line(e))})
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
