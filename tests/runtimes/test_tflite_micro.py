"""TFLite Micro: the int8 model on TFLM equals LiteRT int8; the measured arena (runs; 16 bytes less fails),
searched in a child process that may crash."""
from __future__ import annotations

import numpy as np

from edgekit.runtimes import make_runner
from edgekit.runtimes.litert import LiteRTRunner
from edgekit.runtimes.tflite_micro import MicroRunner, _runs, _zero_input, find_arena_size
from edgekit.vocab import TFLITE_MICRO
from tests.runtimes.conftest import crashing_worker


def test_micro_equals_keras_and_litert_int8(tiny):
    r = make_runner(TFLITE_MICRO, tiny.tflite_int8, threads=4)
    assert r.runtime == TFLITE_MICRO and r.threads == 1  # TFLM has one thread
    p = r.predict(tiny.x)
    assert np.abs(p - tiny.ref).max() < 0.05
    assert np.abs(p - LiteRTRunner(tiny.tflite_int8).predict(tiny.x)).max() <= 2 / 256  # a quantization step or two
    lat = r.latency(tiny.x[:1], runs=3, warmup=1)
    assert lat["runs"] == 3 and lat["threads"] == 1


def test_arena_found_runs_and_a_smaller_one_fails(exported_all):
    model = (exported_all.out_dir / "micro/model_int8.tflite").read_bytes()
    arena = find_arena_size(model)
    sample = _zero_input(model)
    assert _runs(model, arena, sample)[0]
    ok, err = _runs(model, arena - 16, sample)  # the search resolves sizes to TFLM's 16-byte alignment
    assert not ok and "allocate" in err.lower()
    info = exported_all.outputs["micro"].info
    assert info["arena_bytes_min"] == arena and info["arena_bytes"] % 16 == 0 and info["arena_bytes"] >= arena
    # the reference CNN's largest activation pair (26x26x32 + 13x13x32 int8) must fit in it
    assert arena > 26 * 26 * 32


def test_micro_runner_matches_litert_int8(exported_all, digits):
    path = exported_all.out_dir / "micro/model_int8.tflite"
    x = digits.x_test[:25]
    a = MicroRunner(path).predict(x)
    b = LiteRTRunner(path).predict(x)
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.96
    assert np.abs(a - b).max() < 0.05  # same int8 graph; kernels differ by at most a few quantization steps


def test_arena_search_survives_a_worker_that_segfaults_on_small_arenas(tiny, tmp_path):
    from edgekit.runtimes.tflite_micro import ALIGN, arena_lower_bound

    model = tiny.tflite_int8.read_bytes()
    command, crashes = crashing_worker(tmp_path)
    arena = find_arena_size(model, command=command)
    assert crashes() >= 1  # the search did walk into crashing sizes
    assert arena == find_arena_size(model)  # the crashes only cost restarts: same answer as the real worker
    assert arena % ALIGN == 0 and arena_lower_bound(model) <= arena
    sample = _zero_input(model)
    assert _runs(model, arena, sample)[0] and not _runs(model, arena - ALIGN, sample)[0]


def test_arena_search_of_a_model_that_always_crashes_is_one_line(tiny, tmp_path):
    import pytest

    from edgekit.errors import InputError

    always = tmp_path / "crash.py"
    always.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGABRT)\n")
    with pytest.raises(InputError) as e:
        find_arena_size(tiny.tflite_int8, command=lambda p: [__import__("sys").executable, str(always)])
    msg = str(e.value)
    assert "\n" not in msg and "SIGABRT" in msg and str(tiny.tflite_int8) in msg and "67,108,864" in msg


def test_arena_search_on_a_corrupt_file_is_one_line(tiny, tmp_path):
    import pytest

    from edgekit.errors import InputError

    data = bytearray(tiny.tflite_int8.read_bytes())
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(InputError, match="damaged TFLite flatbuffer") as e:
        find_arena_size(bad)
    assert "\n" not in str(e.value)


def test_search_arena_bisects_to_the_alignment_and_checks_a_bound_that_works():
    from edgekit.runtimes.tflite_micro import ALIGN, search_arena

    tried: list[int] = []

    def trial(n: int) -> tuple[bool, str]:
        tried.append(n)
        return n >= 10_000, "too small"

    assert search_arena(trial, 9_000) == 10_000 and all(n % ALIGN == 0 for n in tried)
    tried.clear()
    assert search_arena(trial, 12_000) == 10_000  # a "bound" above the answer is found out and searched below
    assert 12_000 in tried  # ... because it was tried
    tried.clear()
    assert search_arena(trial, 0) == 10_000


def test_lower_bound_holds_the_largest_live_activations(exported_all):
    from edgekit.runtimes.tflite_micro import arena_lower_bound

    model = (exported_all.out_dir / "micro/model_int8.tflite").read_bytes()
    bound = arena_lower_bound(model)
    assert 26 * 26 * 32 + 13 * 13 * 32 <= bound <= find_arena_size(model)
