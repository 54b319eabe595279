"""A fabricated run with every kind of target the deployment sheet reads: tflite, tflite-int8 and
onnx (tests.gate.fabricate), plus edgetpu (Edge TPU analysis, compiled or not) and micro (TFLM arena),
with the export/validate fields the pipeline writes for them."""
from __future__ import annotations

import shutil
from pathlib import Path

from edgekit.artifacts import Artifact, write_bytes, write_json
from tests.gate.fabricate import edit_manifest, make_run

CPU = {"model": "Intel(R) Core(TM) i7-6700", "class": "x86-avx2", "features": ["AVX2", "FMA"],
       "int8_expected_faster": False}
ANALYSIS = {"fully_mapped": True, "summary": "all 9 compute ops map to the Edge TPU", "ops_total": 9, "ops_mapped": 9,
            "ops_on_cpu": 0, "partition": None, "model_issues": [], "parameter_bytes": 24_320,
            "cache_bytes": 8 * 2**20, "fits_cache": True, "ops": []}
ARENA = 18_896
MICRO_P50_MS = 1.2662


def make_deploy_run(root: Path, *, compiled: bool = False, edgetpu_bytes: int | None = None) -> Path:
    """``root/manifest.json`` of a run whose export and validate stages also hold edgetpu and micro.
    ``compiled`` adds ``edgetpu/model_int8_edgetpu.tflite`` (as edgetpu_compiler writes it);
    ``edgetpu_bytes`` makes the uncompiled Edge TPU input a different size from the int8 .tflite."""
    man = make_run(root, targets={n: {"cpu": CPU} for n in ("tflite", "tflite-int8", "onnx")})
    (root / "edgetpu").mkdir()
    (root / "micro").mkdir()
    if edgetpu_bytes:
        write_bytes(root / "edgetpu/model_int8.tflite", bytes(range(256)) * (edgetpu_bytes // 256))
    else:
        shutil.copy(root / "model_int8.tflite", root / "edgetpu/model_int8.tflite")
    shutil.copy(root / "model_int8.tflite", root / "micro/model_int8.tflite")
    write_json(root / "edgetpu/analysis.json", ANALYSIS)
    files = [("edgetpu/model_int8.tflite", "tflite", "edgetpu"), ("edgetpu/analysis.json", "json", "edgetpu"),
             ("micro/model_int8.tflite", "tflite", "micro")]
    if compiled:
        write_bytes(root / "edgetpu/model_int8_edgetpu.tflite", bytes(range(256)) * 160)  # 40,960 B
        files.append(("edgetpu/model_int8_edgetpu.tflite", "tflite", "edgetpu"))
    arts = [{**Artifact.from_file(root / p, k, root).to_dict(), "target": t, "stage": "export"} for p, k, t in files]
    compiler = ({"status": "ok", "ops_on_edgetpu": 9, "ops_on_cpu": 0, "version": "16.0"} if compiled else
                {"status": "skipped", "reason": "edgetpu_compiler is not on PATH"})
    brief = {k: ANALYSIS[k] for k in ("fully_mapped", "summary", "ops_total", "ops_mapped", "partition",
                                       "parameter_bytes", "fits_cache")}
    micro_size = arts[2]["bytes"]

    def edit(m):
        m["artifacts"] += arts
        em = m["stages"]["export"]["metrics"]
        em["onnx"].pop("input"), em["onnx"].pop("output")  # onnx records inputs/outputs (plural), with names
        em["onnx"].pop("bytes")
        em["onnx"]["inputs"] = [{"name": "input", "dtype": "float32", "shape": ["N", 28, 28, 1]}]
        em["onnx"]["outputs"] = [{"name": "probs", "dtype": "float32", "shape": ["N", 10]}]
        em["edgetpu"] = {"path": "edgetpu/model_int8.tflite", "runtime": "litert", "edgetpu": brief,
                         "compiler": compiler}
        em["micro"] = {"path": "micro/model_int8.tflite", "runtime": "tflite-micro", "arena_bytes_min": ARENA,
                       "arena_bytes": ARENA, "model_bytes": micro_size, "flash_bytes_estimate": micro_size,
                       "ram_bytes_estimate": ARENA, "input": {"dtype": "int8", "shape": [1, 28, 28, 1]},
                       "output": {"dtype": "int8", "shape": [1, 10]}}
        vt = m["stages"]["validate"]["metrics"]["targets"]
        int8 = vt["tflite-int8"]
        for name, a in (("edgetpu", arts[0]), ("micro", arts[2])):
            vt[name] = {**int8, "target": name, "path": a["path"], "bytes": a["bytes"], "gzip_bytes": a["gzip_bytes"],
                        "sha256": a["sha256"], "latency_p50_ms": 0.0431 if name == "edgetpu" else MICRO_P50_MS,
                        "latency_p90_ms": 0.052 if name == "edgetpu" else 2.6983}
        vt["micro"].update(runtime="tflite-micro", arena_bytes=ARENA, accuracy=0.9694, accuracy_drop_pt=0.56,
                           runs=30)
        m["stages"]["compress"]["config"] = {
            "technique": "prune+cluster+qat", "channels": None, "channels_epochs": None, "prune": 0.75,
            "prune_layers": {}, "skip_layers": [], "prune_schedule": "polynomial", "cluster": 16,
            "cluster_layers": {"dense1": 8}, "quantize": "qat", "epochs_per_stage": 2, "lr": None, "seed": 0}
    edit_manifest(man, edit)
    return man
