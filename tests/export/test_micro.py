"""TFLite Micro export: C array round trip, arena errors (the arena search and runner: tests/runtimes)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from edgekit.errors import InputError
from edgekit.export.micro import bytes_from_c_source


def test_c_array_round_trips_to_the_same_bytes(exported_all):
    out = exported_all.out_dir / "micro"
    model = (out / "model_int8.tflite").read_bytes()
    src = (out / "model_data.cc").read_text()
    assert bytes_from_c_source(src) == model
    assert f"g_model_data_len = {len(model)};" in src and "alignas(16)" in src
    header = (out / "model_data.h").read_text()
    info = exported_all.outputs["micro"].info
    assert f"EDGEKIT_MODEL_DATA_LEN {len(model)}u" in header
    assert f"EDGEKIT_TENSOR_ARENA_SIZE {info['arena_bytes']}u" in header
    assert info["flash_bytes_estimate"] == len(model) and info["ram_bytes_estimate"] == info["arena_bytes"]


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler to build the generated source")
def test_generated_source_compiles_and_holds_the_model(exported_all, tmp_path):
    out = exported_all.out_dir / "micro"
    main = tmp_path / "dump.cc"
    main.write_text('#include <cstdio>\n#include <cstdint>\n#include "model_data.h"\nint main(){'
                    'if ((uintptr_t)g_model_data % 16) return 3;'
                    'fwrite(g_model_data, 1, g_model_data_len, stdout); return 0;}\n')
    exe = tmp_path / "dump"
    subprocess.run(["g++", "-std=c++17", "-O0", "-I", str(out), str(main), str(out / "model_data.cc"), "-o", str(exe)],
                   check=True, capture_output=True, timeout=120)
    got = subprocess.run([str(exe)], check=True, capture_output=True, timeout=30).stdout
    assert got == (out / "model_int8.tflite").read_bytes()


def test_arena_too_small_is_an_input_error_and_writes_nothing(trained_cnn, digits, tmp_path):
    from edgekit.export import ExportConfig, export

    out = tmp_path / "m"
    with pytest.raises(InputError, match="arena of at least"):
        export(trained_cnn[1], digits, ["micro"], out,
               config=ExportConfig(arena_size=2048, representative_samples=50))
    assert not any(p.is_file() for p in out.rglob("*"))
