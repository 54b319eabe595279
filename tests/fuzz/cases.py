"""One fuzz case per (seed, kind, index): which seed file, which mutation, which command."""
from __future__ import annotations

import dataclasses
import gzip
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tests.fuzz.common import DATA_OPTS, KINDS
from tests.fuzz.format_mutators import (
    idx_header, idx_huge_dims, idx_values, keras_h5, keras_zip, onnx_semantic, savedmodel_semantic, tflite_semantic,
)
from tests.fuzz.hostile import case_hostile_data, case_hostile_keras, case_hostile_onnx, case_hostile_savedmodel
from tests.fuzz.input_cases import case_device, case_hostile_device, case_images, case_npz
from tests.fuzz.mutators import byte_mutation, text_mutation, truncate
from tests.fuzz.tfrecord_cases import case_tfrecord

HOSTILE_MAKERS = {"hostile_keras": case_hostile_keras, "hostile_savedmodel": case_hostile_savedmodel,
                  "hostile_onnx": case_hostile_onnx, "hostile_data": case_hostile_data,
                  "hostile_device": case_hostile_device}


# -- cases --------------------------------------------------------------------------------------
@dataclasses.dataclass
class Case:
    kind: str
    index: int
    seed: int
    mutation: str
    args: list[str]
    folder: str
    must_fail: bool = False  # exit 0 is a finding (wrong_success): the input is one edgekit must refuse
    sentinel: str = ""  # a folder that must stay empty (planted writes aim here); "" for none


    @property
    def name(self) -> str:
        return f"{self.kind}:{self.index}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def case_rng(seed: int, kind: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, KINDS.index(kind), index])


def build_case(kind: str, index: int, seed: int, seeds: dict[str, Any], work: Path) -> Case:
    """Write the mutated input(s) of case (kind, index) under ``work`` and return the command."""
    rng = case_rng(seed, kind, index)
    folder = work / f"{kind}-{index}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    sentinel = folder / "sentinel"
    sentinel.mkdir()
    if kind in HOSTILE_MAKERS:
        mutation, args, must_fail = HOSTILE_MAKERS[kind](rng, seeds, folder, sentinel)
    else:
        fn = {"tflite": _case_tflite, "onnx": _case_onnx, "keras": _case_keras, "idx": _case_idx,
              "recipe": _case_recipe, "manifest": _case_manifest, "keras3": _case_keras3,
              "savedmodel": _case_savedmodel, "onnx_model": _case_onnx_model, "npz": case_npz,
              "images": case_images, "device": case_device, "tfrecord": case_tfrecord}[kind]
        mutation, args, *rest = fn(rng, seeds, folder)
        must_fail = bool(rest and rest[0])
    return Case(kind, index, seed, mutation, args, str(folder), must_fail, str(sentinel))


def _pick(rng, items: list) -> Any:
    return items[int(rng.integers(len(items)))]


def _binary(rng, data: bytes, semantic: Callable | None, share: float) -> tuple[bytes, str]:
    if semantic is not None and rng.random() < share:
        try:
            return semantic(rng, data)
        except Exception as e:  # the seed's structure did not allow this edit: fall back to bytes
            out, how = byte_mutation(rng, data)
            return out, f"{how} (semantic skipped: {type(e).__name__})"
    return byte_mutation(rng, data)


def _validate_args(path: Path, seeds: dict, folder: Path) -> list[str]:
    return ["validate", str(path), "--reference", seeds["keras"], *DATA_OPTS, "--runs", "5",
            "--out", str(folder / "out"), "-q"]


def _case_artifact(kind: str, semantic, p_semantic: float):
    """A case maker for a runtime artifact kind: mutate one of its seeds, then validate it."""
    def case(rng, seeds, folder):
        src = Path(_pick(rng, seeds[kind]))
        data, how = _binary(rng, src.read_bytes(), semantic, p_semantic)
        dest = folder / src.name
        dest.write_bytes(data)
        return f"{src.name}: {how}", _validate_args(dest, seeds, folder)
    return case


_case_tflite = _case_artifact("tflite", tflite_semantic, 0.4)
_case_onnx = _case_artifact("onnx", onnx_semantic, 0.45)


def _case_keras(rng, seeds, folder):
    src = Path(seeds["keras"])
    data, how = _binary(rng, src.read_bytes(), keras_zip, 0.6)
    dest = folder / "model.keras"
    dest.write_bytes(data)
    if rng.random() < 0.25:  # conversion of a model that loads
        args = ["export", str(dest), "--target", "tflite", "--no-validate", "--out", str(folder / "out"),
                *DATA_OPTS, "-q"]
    else:
        args = ["evaluate", str(dest), *DATA_OPTS, "--runs", "5"]
    return how, args


def _case_idx(rng, seeds, folder):
    src = Path(seeds["idx"])
    dest = folder / "idx"
    shutil.copytree(src, dest)
    files = sorted(dest.iterdir())
    f = _pick(rng, files)
    r = rng.random()
    if r < 0.05:
        f.unlink()
        how = f"{f.name}: removed"
    elif r < 0.3:  # the gzip stream itself
        data, how = byte_mutation(rng, f.read_bytes())
        f.write_bytes(data)
        how = f"{f.name} (gzip): {how}"
    else:  # the IDX content, written back gzip'd or raw
        raw = gzip.decompress(f.read_bytes())
        mut = _pick(rng, [idx_huge_dims, idx_huge_dims, idx_header, idx_values, byte_mutation, truncate])
        data, how = mut(rng, raw)
        if rng.random() < 0.7:
            f.write_bytes(gzip.compress(data, mtime=0))
        else:
            f.unlink()
            f = f.with_suffix("")
            f.write_bytes(data)
        how = f"{f.name}: {how}"
    return how, ["evaluate", seeds["keras"], "--dataset", f"idx:{dest}", "--runs", "5"]


RECIPE_HOT = ("spec", "limit", "epochs", "batch_size", "lr", "targets", "name", "test_split", "val_split", "runs",
              "max_size", "sparsity", "clusters", "optimizer", "schedule", "model", "max_diff", "threads", "seed",
              "representative_samples", "opset", "arena_size", "max_latency_ratio", "baseline", "quantize")


def _case_recipe(rng, seeds, folder):
    import yaml

    src = Path(_pick(rng, seeds["recipes"]))
    data, how = text_mutation(rng, src.read_bytes(), yaml.safe_load,
                              lambda t: yaml.safe_dump(t, sort_keys=False, allow_unicode=True), RECIPE_HOT)
    dest = folder / src.name
    dest.write_bytes(data)
    args = ["recipe", "check", str(dest)] if rng.random() < 0.7 else ["recipe", "show", str(dest)]
    return f"{src.name}: {how}", args


MANIFEST_HOT = ("format", "stages", "artifacts", "path", "sha256", "bytes", "gzip_bytes", "targets", "metrics",
                "accuracy", "latency_p50_ms", "agreement_pct", "validate", "train", "config", "history", "dataset",
                "input_shape", "sizes", "reference", "epoch", "loss", "checks", "compress", "export", "ops")


def _case_manifest(rng, seeds, folder):
    src = Path(_pick(rng, seeds["runs"]))
    run = folder / "run"
    shutil.copytree(src, run)
    target = run / "manifest.json"
    if (run / "history.json").is_file() and rng.random() < 0.2:
        target = run / "history.json"  # the report reads it as listed in the manifest
    data, how = text_mutation(rng, target.read_bytes(), json.loads, lambda t: json.dumps(t, indent=1),
                              MANIFEST_HOT)
    target.write_bytes(data)
    how = f"{src.name}/{target.name}: {how}"
    r = rng.random()
    if r < 0.45:
        args = ["gate", str(run), "--max-size", "1MB", "--min-agreement", "90", "--max-latency-ms", "5"]
        if rng.random() < 0.3:
            args += ["--json", "--junit", str(folder / "gates.xml")]
    elif r < 0.55:
        args = ["gate", str(run / "manifest.json"), "--max-latency-ratio", "tflite-int8:tflite=2",
                "--baseline", str(Path(_pick(rng, seeds["runs"])) / "manifest.json"), "--max-size-growth", "5%"]
    else:
        args = ["report", str(run), "--out", str(folder / "report"), "-q"]
    return how, args


# -- models a user brings: through `edgekit inspect` (models.load for every format) ---------------
def _inspect_args(rng, path: Path, extra: list[str] = (), p_targets: float = 0.2) -> list[str]:
    """inspect, mostly without the target conversions (a case that loads then stays quick)."""
    args = ["inspect", str(path), *extra]
    if rng.random() >= p_targets:
        args.append("--no-targets")
    if rng.random() < 0.3:
        args.append("--json")
    return args


def _case_keras3(rng, seeds, folder):
    src = Path(_pick(rng, seeds["keras3"]))
    semantic = keras_zip if src.suffix == ".keras" else keras_h5
    data, how = _binary(rng, src.read_bytes(), semantic, 0.6)
    dest = folder / src.name
    dest.write_bytes(data)
    return f"{src.name}: {how}", _inspect_args(rng, dest)


def _case_savedmodel(rng, seeds, folder):
    src = Path(_pick(rng, seeds["savedmodel"]))
    dest = folder / "savedmodel"
    shutil.copytree(src, dest)
    files = sorted(p for p in dest.rglob("*") if p.is_file())
    r = rng.random()
    if r < 0.05:
        f = _pick(rng, files)
        f.unlink()
        how = f"{f.relative_to(dest)}: removed"
    else:
        f = dest / "saved_model.pb" if r < 0.65 else _pick(rng, [p for p in files if p.parent.name == "variables"])
        data, how = _binary(rng, f.read_bytes(), savedmodel_semantic if f.name == "saved_model.pb" else None, 0.6)
        f.write_bytes(data)
        how = f"{f.relative_to(dest)}: {how}"
    extra = ["--signature", str(_pick(rng, ["serving_default", "logits", "nope"]))] if rng.random() < 0.2 else []
    return how, _inspect_args(rng, dest, extra)


def _case_onnx_model(rng, seeds, folder):
    """A mutated ONNX model; a torch default export keeps its .onnx.data beside it (sometimes mutated
    instead), and half the cases convert it (onnx2tf) for every target."""
    src = Path(_pick(rng, seeds["onnx_model"]))
    data_file = src.with_name(src.name + ".data")
    if data_file.is_file() and rng.random() < 0.3:
        data, how = _binary(rng, data_file.read_bytes(), None, 0.0)
        (folder / data_file.name).write_bytes(data)
        (folder / src.name).write_bytes(src.read_bytes())
        return f"{data_file.name}: {how}", _inspect_args(rng, folder / src.name, p_targets=0.5)
    if data_file.is_file():
        shutil.copy(data_file, folder / data_file.name)
    data, how = _binary(rng, src.read_bytes(), onnx_semantic, 0.5)
    dest = folder / src.name
    dest.write_bytes(data)
    return f"{src.name}: {how}", _inspect_args(rng, dest, p_targets=0.5)
