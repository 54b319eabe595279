"""What this machine offers for training: CPU features, GPUs, TPUs, what ``auto`` picks, and the
mixed precision policy that suits the hardware (``precision`` applies it)."""
from __future__ import annotations

import dataclasses
import glob
import os
import platform
from pathlib import Path
from typing import Any

# /proc/cpuinfo flag -> what it means for training and inference on the CPU
CPU_FEATURES: dict[str, str] = {
    "sse4_2": "SSE4.2",
    "avx": "AVX",
    "avx2": "AVX2",
    "fma": "FMA",
    "f16c": "F16C (fp16 <-> fp32 conversion)",
    "avx512f": "AVX-512 foundation",
    "avx512bw": "AVX-512 byte/word",
    "avx512vl": "AVX-512 vector length",
    "avx512_vnni": "AVX-512 VNNI (int8 dot products)",
    "avx_vnni": "AVX-VNNI (int8 dot products, 256-bit)",
    "avx512_bf16": "AVX-512 BF16 (bfloat16 dot products)",
    "avx512_fp16": "AVX-512 FP16",
    "amx_tile": "AMX tiles",
    "amx_bf16": "AMX BF16",
    "amx_int8": "AMX INT8",
    "asimd": "NEON (Arm SIMD)",
    "asimddp": "Arm dot product (int8)",
    "bf16": "Arm BF16",
    "sve": "Arm SVE",
}

# the Keras mixed precision policies (edgekit.train.precision applies them)
MIXED_FLOAT16 = "mixed_float16"
MIXED_BFLOAT16 = "mixed_bfloat16"


@dataclasses.dataclass(frozen=True)
class DeviceReport:
    """Everything ``edgekit devices`` shows."""

    cpu_model: str
    cpu_cores: int
    cpu_features: tuple[str, ...]  # the CPU_FEATURES keys this CPU has, in table order
    gpus: tuple[str, ...]
    tpus: tuple[str, ...]
    auto_strategy: str
    mixed_precision_policy: str
    tensorflow: str
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["cpu_features"] = {k: CPU_FEATURES[k] for k in self.cpu_features}
        return d


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The feature flags of the first CPU in ``/proc/cpuinfo`` (``flags`` on x86, ``Features`` on Arm)."""
    text = cpuinfo if cpuinfo is not None else _read("/proc/cpuinfo")
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return set(value.split())
    return set()


def cpu_model(cpuinfo: str | None = None) -> str:
    text = cpuinfo if cpuinfo is not None else _read("/proc/cpuinfo")
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("model name", "cpu model", "hardware"):
            return value.strip()
    return platform.processor() or platform.machine()


def cpu_features(cpuinfo: str | None = None) -> tuple[str, ...]:
    """The :data:`CPU_FEATURES` this CPU has, in table order."""
    flags = cpu_flags(cpuinfo)
    return tuple(k for k in CPU_FEATURES if k in flags)


def gpus() -> tuple[str, ...]:
    """Names of the GPUs TensorFlow can use."""
    from edgekit._lazy import tf

    tf_ = tf()
    out = []
    for d in tf_.config.list_physical_devices("GPU"):
        try:
            name = tf_.config.experimental.get_device_details(d).get("device_name", d.name)
        except Exception:  # details are optional
            name = d.name
        out.append(f"{d.name} ({name})" if name != d.name else d.name)
    return tuple(out)


def tpu_hint() -> str | None:
    """Why a TPU may be attached (env or device files), without any network call."""
    if os.environ.get("TPU_NAME"):
        return f"TPU_NAME={os.environ['TPU_NAME']}"
    if os.environ.get("COLAB_TPU_ADDR"):
        return f"COLAB_TPU_ADDR={os.environ['COLAB_TPU_ADDR']}"
    accel = sorted(glob.glob("/dev/accel*")) or sorted(glob.glob("/dev/vfio/[0-9]*"))
    return f"{accel[0]} present" if accel else None


def tpus() -> tuple[str, ...]:
    """TPU devices TensorFlow lists locally (TPU VMs); remote TPUs show via ``TPU_NAME``."""
    from edgekit._lazy import tf

    found = tuple(d.name for d in tf().config.list_physical_devices("TPU"))
    if not found and os.environ.get("TPU_NAME"):
        found = (f"TPU_NAME={os.environ['TPU_NAME']} (remote, resolved when training starts)",)
    return found


def tpu_available() -> bool:
    """A TPU resolves: a local TPU device, or ``TPU_NAME`` names one. No network probe otherwise."""
    return bool(tpus())


def policy_for(strategy_name: str, has_gpu: bool | None = None) -> str:
    """``mixed_float16`` when training runs on GPUs, else ``mixed_bfloat16`` (CPU, TPU)."""
    if strategy_name == "tpu":
        return MIXED_BFLOAT16
    if has_gpu is None:
        has_gpu = bool(gpus())
    return MIXED_FLOAT16 if has_gpu else MIXED_BFLOAT16


def auto_choice() -> str:
    """The strategy ``auto`` picks here: ``tpu``, else ``mirrored`` with GPUs, else ``default``."""
    if tpu_available():
        return "tpu"
    if gpus():
        return "mirrored"
    return "default"


def report() -> DeviceReport:
    """Inspect this machine (imports TensorFlow: a few seconds)."""
    from edgekit._lazy import tf

    info = _read("/proc/cpuinfo")
    feats = cpu_features(info)
    g, t = gpus(), tpus()
    choice = "tpu" if t else ("mirrored" if g else "default")
    notes = []
    if not g and not t:
        notes.append("CPU only: auto uses the default strategy; multiworker spreads work over processes/hosts.")
    if "avx512_bf16" in feats or "amx_bf16" in feats:
        notes.append("bfloat16 is native on this CPU: --mixed-precision may speed up training.")
    elif not g:
        notes.append("No native bfloat16 on this CPU: --mixed-precision emulates it and is usually slower.")
    hint = tpu_hint()
    if hint and not t:
        notes.append(f"{hint}, but TensorFlow lists no TPU (is libtpu installed?).")
    return DeviceReport(
        cpu_model=cpu_model(info), cpu_cores=os.cpu_count() or 1, cpu_features=feats, gpus=g, tpus=t,
        auto_strategy=choice, mixed_precision_policy=policy_for(choice, bool(g)),
        tensorflow=tf().__version__, notes=tuple(notes),
    )


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""
