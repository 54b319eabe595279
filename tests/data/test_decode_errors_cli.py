"""An image that fails to decode only once training reads it (``images:DIR,cache=none``) ends the
command with one ``Error:`` line and exit 2, no traceback: a JPEG that passes the load-time probe
(its header and its ``FFD9`` trailer are fine, the data between is not), and files damaged after
the dataset loaded (the hook: ``EdgekitGroup.invoke`` -> ``edgekit.data.decode.as_input_error``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgekit.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ["train", "--epochs", "1", "--model", "cnn-small", "--force"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))


def _folder(root: Path, ext: str = ".jpg") -> Path:
    """2 classes x 6 grey 28x28 images."""
    rng = np.random.default_rng(0)
    for c in range(2):
        (root / str(c)).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (28, 28), np.uint8)).save(root / str(c) / f"{i}{ext}")
    return root


def _scan_start(jpeg: bytes) -> int:
    """Where a baseline JPEG's entropy-coded data begins (after the SOS segment)."""
    sos = jpeg.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(jpeg[sos + 2:sos + 4], "big")


def undecodable_jpeg(jpeg: bytes) -> bytes:
    """The same headers and ``FFD9`` trailer (the probe accepts it), entropy data libjpeg refuses: a
    second SOI marker in it (plain garbage there only warns, and decodes to noise)."""
    start = _scan_start(jpeg)
    n = len(jpeg) - start - 2
    return jpeg[:start] + (b"\x00" * 8 + b"\xff\xd8" + b"\x00" * n)[:n] + b"\xff\xd9"


def _middle_garbage(data: bytes, ext: str) -> bytes:
    """``data`` with its middle overwritten: a SOI pair for a JPEG (see above), random bytes for a PNG."""
    b = bytearray(data)
    mid = len(b) // 2
    b[mid:mid + 32] = b"\xff\xd8" * 16 if ext == ".jpg" else bytes(np.random.default_rng(1).integers(0, 256, 32,
                                                                                                    np.uint8))
    return bytes(b)


def _one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert lines and lines[-1].startswith("Error: "), stderr[-3000:]
    assert sum(ln.startswith("Error:") for ln in lines) == 1, stderr[-3000:]
    return lines[-1]


def test_probe_accepts_the_crafted_jpeg(tmp_path):
    """The case the CLI test relies on: the cheap probe passes, TensorFlow's decoder fails."""
    import tensorflow as tf

    from edgekit.data.decode import probe

    f = _folder(tmp_path / "imgs") / "1" / "3.jpg"
    bad = undecodable_jpeg(f.read_bytes())
    assert probe(bad, str(f)).fmt == "JPEG"
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.io.decode_image(bad, channels=1, expand_animations=False)


def test_probe_passing_undecodable_jpeg_in_a_real_process(tmp_path):
    """``edgekit train`` as a user runs it: exit 2, the last stderr line the one Error: line."""
    root = _folder(tmp_path / "imgs")
    f = root / "1" / "3.jpg"
    f.write_bytes(undecodable_jpeg(f.read_bytes()))
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", EDGEKIT_CACHE=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])))
    proc = subprocess.run([sys.executable, "-m", "edgekit", *TRAIN, "--dataset", f"images:{root},cache=none",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=600, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    line = _one_error_line(proc.stderr)
    assert "decode" in line, line


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_image_damaged_after_the_dataset_loaded(tmp_path, monkeypatch, ext):
    """The file passed the probe at load time and is overwritten before training reads it."""
    import edgekit.data.images as images

    root = _folder(tmp_path / "imgs", ext)
    victim = root / "0" / f"2{ext}"
    load = images.load_image_folder

    def load_then_damage(*a, **k):
        out = load(*a, **k)
        victim.write_bytes(_middle_garbage(victim.read_bytes(), ext))
        return out

    monkeypatch.setattr(images, "load_image_folder", load_then_damage)
    r = CliRunner().invoke(cli, [*TRAIN, "--dataset", f"images:{root},cache=none", "--out", str(tmp_path / "run")])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.exit_code == 2, r.output[-3000:]
    line = _one_error_line(r.stderr)
    assert "failed to decode" in line or "not a readable image" in line, line
