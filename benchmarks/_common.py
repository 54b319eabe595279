"""Helpers shared by the benchmark scripts: where the shared MNIST set is, machine facts, saving tables."""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"
RESULTS = ROOT / "benchmarks" / "results"


def mnist_spec_or_exit() -> str:
    """``idx:<shared MNIST>``; exits with a clear message when the set is absent."""
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        sys.exit(f"skipped: the shared MNIST set is not at {MNIST_DIR}")
    return f"idx:{MNIST_DIR}"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = [name for flag, name in (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_vnni", "AVX-512 VNNI"),
                                    ("avx_vnni", "AVX-VNNI")) if flag in flags]
    isa = f" ({', '.join(simd)})" if simd else ""
    return f"{cpu}{isa}, {os.cpu_count()} cores, Python {platform.python_version()}"


def save(name: str, text: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(text)
    return path


def md_table(rows: list[dict], columns: list[str]) -> str:
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"
