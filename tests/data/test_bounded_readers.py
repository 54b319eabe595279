"""Hostile dataset files: special files, symlinks out of the folder, decompression bombs and bad
values are refused with one line, before anything blocks or allocates.

Bombs are read in a child process under a 2 GiB address-space limit and declare more than that,
so an unbounded reader fails there (MemoryError) instead of using the machine's memory."""
from __future__ import annotations

import gzip
import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit.cli.main import cli
from edgekit.data import limits, load_dataset, read_idx
from edgekit.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


# -- helpers -------------------------------------------------------------------------------
@pytest.fixture()
def no_hang():
    """Fail (instead of hanging) when the test blocks, e.g. in an open() of a FIFO."""
    def hung(*_):
        raise TimeoutError("the read blocked")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def idx_bytes(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape) + arr.tobytes()


def idx_folder(folder: Path, n: int = 20) -> Path:
    """A small valid IDX dataset (raw files), 4 classes of 8x8 noise."""
    rng = np.random.default_rng(0)
    folder.mkdir(exist_ok=True)
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(rng.integers(0, 255, (n, 8, 8), dtype=np.uint8)))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes((np.arange(n) % 4).astype(np.uint8)))
    return folder


def image_folder(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` grey pixels (with a tiny IDAT)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(bytes(1000))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def deflate_zeros(prefix: bytes, mib: int) -> bytes:
    """A raw deflate stream of ``prefix`` then ``mib`` MiB of zeros, built from one compressed MiB
    repeated (full flushes make the segments independent): about 1 KB per MiB, built in ms."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    seg = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    return head + seg * mib + c.flush()


def zip_members(*members: tuple[str, int, bytes, int]) -> bytes:
    """A zip of ``(name, method, stored bytes, declared size)`` members, written by hand so a
    member can declare any size (CRC 0 for deflate members: a bounded reader never reaches it)."""
    local, central = b"", b""
    for name, method, data, size in members:
        n, crc = name.encode(), zlib.crc32(data) if method == 0 else 0
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(data), size,
                               len(n), 0, 0, 0, 0, 0, len(local)) + n
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size, len(n), 0)
        local += n + data
    count = len(members)
    return local + central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), len(local), 0)


def npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def labels_member(n: int) -> tuple[str, int, bytes, int]:
    data = npy_bytes((np.arange(n) % 4).astype(np.int64))
    return "y.npy", 0, data, len(data)


def npy_header(shape: tuple[int, ...], descr: str = "|u1") -> bytes:
    import io

    from numpy.lib import format as npy

    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def load_in_child(spec: str) -> subprocess.CompletedProcess:
    """``load_dataset(spec)`` in a child under RLIMIT_AS of 2 GiB; prints the InputError line."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "from edgekit.data import load_dataset\n"
        "from edgekit.errors import InputError\n"
        "try:\n"
        f"    load_dataset({spec!r})\n"
        "except InputError as e:\n"
        "    print('InputError:', e)\n"
        "    sys.exit(3)\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def refused_in_child(spec: str, match: str) -> str:
    r = load_in_child(spec)
    assert r.returncode == 3, (r.stdout + r.stderr)[-2000:]
    assert match in r.stdout and "Traceback" not in r.stderr, r.stdout + r.stderr[-2000:]
    return r.stdout


# -- special files and symlinks --------------------------------------------------------------
def test_idx_fifo_is_refused_without_blocking(tmp_path, no_hang):
    d = idx_folder(tmp_path / "d")
    (d / "t10k-images-idx3-ubyte").unlink()
    os.mkfifo(d / "t10k-images-idx3-ubyte")
    with pytest.raises(InputError) as e:
        load_dataset(f"idx:{d}")
    assert "t10k-images-idx3-ubyte' is a FIFO (named pipe), not a regular file" in one_line(e)


def test_md5sums_fifo_is_refused_without_blocking(tmp_path, no_hang):
    d = idx_folder(tmp_path / "d")
    os.mkfifo(d / "MD5SUMS")
    with pytest.raises(InputError, match="Checksum file .*MD5SUMS' is a FIFO"):
        load_dataset(f"idx:{d}")


def test_npz_fifo_is_refused_without_blocking(tmp_path, no_hang):
    os.mkfifo(tmp_path / "d.npz")
    with pytest.raises(InputError, match="npz file .*d.npz' is a FIFO"):
        load_dataset(f"npz:{tmp_path / 'd.npz'}")


def test_image_fifo_is_refused_without_blocking(tmp_path, no_hang):
    root = image_folder(tmp_path / "imgs")
    os.mkfifo(root / "cat" / "pipe.png")
    with pytest.raises(InputError) as e:
        load_dataset(f"images:{root}")
    assert "pipe.png' is a FIFO (named pipe), not a regular file" in one_line(e)
    with pytest.raises(InputError, match="Image folder .*pipe.png' is a FIFO .named pipe., not a folder"):
        load_dataset(f"images:{root / 'cat' / 'pipe.png'}")


def test_idx_symlink_to_dev_zero_is_refused(tmp_path, no_hang):
    d = idx_folder(tmp_path / "d")
    (d / "t10k-images-idx3-ubyte").unlink()
    (d / "t10k-images-idx3-ubyte").symlink_to("/dev/zero")
    with pytest.raises(InputError) as e:
        load_dataset(f"idx:{d}")
    assert "(a link to '/dev/zero') is a character device, not a regular file" in one_line(e)
    with pytest.raises(InputError, match="is a character device"):
        read_idx("/dev/zero")


def test_npz_symlink_to_dev_zero_is_refused(tmp_path, no_hang):
    (tmp_path / "d.npz").symlink_to("/dev/zero")
    with pytest.raises(InputError, match="is a character device, not a regular file"):
        load_dataset(f"npz:{tmp_path / 'd.npz'}")


def test_md5sums_entry_symlink_to_dev_zero_is_refused(tmp_path, no_hang):
    d = idx_folder(tmp_path / "d")
    (d / "zero").symlink_to("/dev/zero")
    (d / "MD5SUMS").write_text("0" * 32 + "  zero\n")
    with pytest.raises(InputError, match="File listed in MD5SUMS .*zero' .* is a character device"):
        load_dataset(f"idx:{d}")


@pytest.mark.parametrize("what", ["file", "class folder", "dev zero"])
def test_image_symlinks_out_of_the_folder_are_refused(tmp_path, what):
    root = image_folder(tmp_path / "imgs")
    outside = image_folder(tmp_path / "outside")
    if what == "file":
        (root / "cat" / "x.png").symlink_to(outside / "cat" / "0.png")
    elif what == "class folder":
        (root / "bird").symlink_to(outside / "dog", target_is_directory=True)
    else:
        (root / "cat" / "z.png").symlink_to("/dev/zero")
    with pytest.raises(InputError) as e:
        load_dataset(f"images:{root}")
    assert "outside the dataset folder" in one_line(e)


def test_image_symlink_inside_the_folder_is_read(tmp_path):
    root = image_folder(tmp_path / "imgs")
    (root / "cat" / "again.png").symlink_to(root / "dog" / "0.png")
    d = load_dataset(f"images:{root}", test_split=0.25)
    assert sum(d.info.sizes.values()) == 11


# -- decompression bombs ---------------------------------------------------------------------
def test_gzip_idx_bomb_is_refused_from_its_header(tmp_path):
    """~3 MB of gzip that really decompresses to 3 GiB of zeros, as its header declares."""
    d = tmp_path / "d"
    d.mkdir()
    header = bytes([0, 0, 0x08, 3]) + b"".join(n.to_bytes(4, "big") for n in (3072, 1024, 1024))
    mib = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)  # gzip members concatenate
    (d / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(header, mtime=0) + mib * 3072)
    (d / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(3072 * 1024, np.uint8)[:10]))
    out = refused_in_child(f"idx:{d}", "needs 12,288 MiB decoded (float32), over the 2,048 MiB")
    assert "t10k-images-idx3-ubyte.gz' of shape (3072, 1024, 1024)" in out


def test_gzip_idx_with_gigabytes_past_its_header_stops_at_the_header_size(tmp_path):
    """A small header followed by 3 GiB of zeros: decompression stops one byte past the data."""
    x = np.random.default_rng(0).integers(0, 255, (5, 8, 8), dtype=np.uint8)
    mib = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)
    f = tmp_path / "f.gz"
    f.write_bytes(gzip.compress(idx_bytes(x), mtime=0) + mib * 3072)
    code = ("import resource\nresource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
            "from edgekit.data import read_idx\nfrom edgekit.errors import InputError\n"
            f"try:\n    read_idx({str(f)!r})\nexcept InputError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert r.returncode == 0 and "holds more than 320 data bytes; its header (5, 8, 8) needs 320" in r.stdout, \
        r.stdout + r.stderr[-2000:]


def test_npz_bomb_is_refused_from_the_npy_header(tmp_path):
    """A deflate member of ~4 MB that really holds 3.8 GB of zeros, as its .npy header declares."""
    head = npy_header((3800, 1000, 1000))
    data = 3800 * 1000 * 1000
    f = tmp_path / "bomb.npz"
    bomb = ("x.npy", 8, deflate_zeros(head, -(-data // (1 << 20))), len(head) + data)
    f.write_bytes(zip_members(bomb, labels_member(3800)))
    refused_in_child(f"npz:{f}", "member 'x' of shape (3800, 1000, 1000) needs 14,496 MiB decoded (float32), over "
                                 "the 2,048 MiB")


def test_npz_member_declaring_more_than_deflate_can_expand_is_refused(tmp_path):
    """A 1 KB member whose zip entry claims 4 GB: refused from the entry alone."""
    head = npy_header((4000, 1000, 1000))
    f = tmp_path / "liar.npz"
    f.write_bytes(zip_members(("x.npy", 8, deflate_zeros(head, 1), len(head) + 4 * 10**9), labels_member(10)))
    with pytest.raises(InputError) as e:
        load_dataset(f"npz:{f}")
    assert "member 'x' declares 4,000,000,128 bytes from" in one_line(e)
    assert "more than deflate can expand to" in str(e.value)


def test_npz_header_shape_must_match_the_member_size(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "d.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", npy_header((10**6, 10**6)) + bytes(100))
        z.writestr("y.npy", npy_bytes(np.arange(10)))
    with pytest.raises(InputError) as e:
        load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert "member 'x' is 228 bytes but its header (1000000, 1000000) uint8 needs 1,000,000,000,128" in one_line(e)


def test_npz_object_arrays_and_other_compressions_are_refused(tmp_path):
    import zipfile

    np.savez(tmp_path / "obj.npz", x=np.array([[1, None]], dtype=object), y=np.arange(1))
    with pytest.raises(InputError, match="member 'x' holds Python objects .dtype object., which cannot be loaded "
                                         "without pickle"):
        load_dataset(f"npz:{tmp_path / 'obj.npz'}")
    with zipfile.ZipFile(tmp_path / "bz.npz", "w", zipfile.ZIP_BZIP2) as z:
        z.writestr("x.npy", b"")
        z.writestr("y.npy", b"")
    with pytest.raises(InputError, match="uses zip compression method 12; edgekit reads stored or deflate"):
        load_dataset(f"npz:{tmp_path / 'bz.npz'}")


def test_dataset_byte_cap_counts_all_arrays(tmp_path, monkeypatch):
    x = np.random.default_rng(0).integers(0, 255, (20, 8, 8), dtype=np.uint8)
    np.savez_compressed(tmp_path / "d.npz", x=x, y=np.arange(20) % 4)  # deflated: decoded, so counted
    np.savez(tmp_path / "s.npz", x=x, y=np.arange(20) % 4)  # stored: read in place, not counted
    monkeypatch.setattr(limits, "MAX_BYTES", 20 * 64 * 4)  # x fits exactly; y (20 values) does not
    with pytest.raises(InputError, match=r"member 'y' of shape \(20,\) needs 0 MiB decoded \(float32\) more"):
        load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert load_dataset(f"npz:{tmp_path / 's.npz'}").info.sizes["train"] == 14
    d = idx_folder(tmp_path / "idx")
    with pytest.raises(InputError, match=r"t10k-labels-idx1-ubyte' of shape \(20,\) needs"):
        load_dataset(f"idx:{d}")


def test_png_decompression_bomb_is_one_line(tmp_path):
    root = image_folder(tmp_path / "imgs")
    (root / "dog" / "bomb.png").write_bytes(png_header(100_000, 100_000))
    with pytest.raises(InputError) as e:
        load_dataset(f"images:{root}")
    line = one_line(e)
    assert "bomb.png' declares too many pixels" in line and "up to 89,478,485 pixels" in line


def test_image_pixel_cap_is_checked_from_the_header(tmp_path, monkeypatch):
    root = image_folder(tmp_path / "imgs")
    monkeypatch.setattr(limits, "MAX_IMAGE_PIXELS", 63)
    with pytest.raises(InputError, match=r"0.png' declares too many pixels \(8x8 pixels\); edgekit reads images "
                                         "of up to 63 pixels"):
        load_dataset(f"images:{root}")


# -- values ----------------------------------------------------------------------------------
def _npz(tmp_path: Path, x: np.ndarray, y: np.ndarray) -> str:
    np.savez(tmp_path / "d.npz", x=x, y=y)
    return f"npz:{tmp_path / 'd.npz'}"


def test_nan_and_inf_images_are_refused_and_counted(tmp_path):
    x = np.random.default_rng(0).random((40, 8, 8)).astype(np.float32)
    x[3, 0, :5] = np.nan
    x[7, 1, 1] = np.inf
    with pytest.raises(InputError) as e:
        load_dataset(_npz(tmp_path, x, np.arange(40) % 4))
    assert one_line(e) == (f"Images of dataset 'npz:{tmp_path / 'd.npz'}' hold 6 NaN or infinite pixel values in 2 "
                           "of 40 images; fix or remove those images.")


@pytest.mark.parametrize("fill", [np.nan, 0.5])
def test_all_nan_or_constant_images_are_refused(tmp_path, fill):
    x = np.full((40, 8, 8), fill, np.float32)
    with pytest.raises(InputError) as e:
        load_dataset(_npz(tmp_path, x, np.arange(40) % 4))
    assert ("hold 2,560 NaN" if np.isnan(fill) else "All 40 images of dataset") in one_line(e)


def test_constant_test_split_is_refused(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, (20, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(20) % 4, x_test=np.zeros((8, 8, 8), np.uint8),
             y_test=np.arange(8) % 4)
    with pytest.raises(InputError, match=r"All 8 images of dataset .* \(test split\) are the constant value 0"):
        load_dataset(f"npz:{tmp_path / 'd.npz'}")


@pytest.mark.parametrize("bad", [2**40, -1, 100_000])
def test_out_of_range_labels_are_refused_naming_the_value(tmp_path, bad):
    x = np.random.default_rng(0).integers(0, 255, (20, 8, 8), dtype=np.uint8)
    y = np.arange(20) % 4
    y[5] = bad
    with pytest.raises(InputError) as e:
        load_dataset(_npz(tmp_path, x, y))
    assert f"include {bad}; labels must be class indices 0 to 99,999" in one_line(e)


def test_float_labels_are_refused(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, (20, 8, 8), dtype=np.uint8)
    with pytest.raises(InputError, match="Labels of dataset .* are of dtype float64; they must be non-negative"):
        load_dataset(_npz(tmp_path, x, (np.arange(20) % 4).astype(float)))


# -- evaluate: fewer classes in the data than the model --------------------------------------
@pytest.fixture(scope="module")
def ten_class_model(tmp_path_factory) -> Path:
    """An untrained 10-class MLP for 8x8x1 images, saved as .keras."""
    from edgekit._lazy import keras
    from edgekit.models import build_model

    keras().utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("model") / "m.keras"
    build_model("mlp", (8, 8, 1), 10).save(path)
    return path


def _four_class_npz(tmp_path: Path, classes: int = 4) -> str:
    x = np.random.default_rng(1).integers(0, 255, (80, 8, 8), dtype=np.uint8)
    return _npz(tmp_path, x, np.arange(80) % classes)


def test_evaluate_with_fewer_classes_than_the_model(tmp_path, ten_class_model):
    from edgekit.models import load
    from edgekit.train import evaluate

    ds = load_dataset(_four_class_npz(tmp_path))
    assert ds.info.num_classes == 4
    r = evaluate(ten_class_model, ds, runs=2)
    pred = load(ten_class_model).predict(ds.x_test).argmax(1)
    cm = np.asarray(r["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == len(ds.y_test) == 16
    assert r["test_accuracy"] == pytest.approx(float((pred == ds.y_test).mean()))
    assert cm.trace() / cm.sum() == pytest.approx(r["test_accuracy"])
    assert not cm[4:].any()  # no true labels past the data's 4 classes
    np.testing.assert_array_equal(cm.sum(0), np.bincount(pred, minlength=10))


# -- the CLI: one line, exit 2 ---------------------------------------------------------------
def _bad_specs(tmp_path: Path) -> dict[str, tuple[str, str]]:
    fifo = idx_folder(tmp_path / "fifo")
    (fifo / "t10k-images-idx3-ubyte").unlink()
    os.mkfifo(fifo / "t10k-images-idx3-ubyte")
    zero = tmp_path / "zero.npz"
    zero.symlink_to("/dev/zero")
    imgs = image_folder(tmp_path / "imgs")
    (imgs / "cat" / "out.png").symlink_to(image_folder(tmp_path / "other") / "cat" / "0.png")
    bomb = image_folder(tmp_path / "bomb")
    (bomb / "dog" / "bomb.png").write_bytes(png_header(100_000, 100_000))
    x = np.random.default_rng(0).random((40, 8, 8)).astype(np.float32)
    x[0, 0, 0] = np.nan
    (tmp_path / "nan").mkdir()
    (tmp_path / "big").mkdir()
    y = np.arange(40) % 4
    y[1] = 2**40
    return {
        "fifo": (f"idx:{fifo}", "is a FIFO (named pipe), not a regular file"),
        "dev zero": (f"npz:{zero}", "is a character device, not a regular file"),
        "symlink out": (f"images:{imgs}", "outside the dataset folder"),
        "png bomb": (f"images:{bomb}", "declares too many pixels"),
        "nan": (_npz(tmp_path / "nan", x, np.arange(40) % 4), "1 NaN or infinite pixel values in 1 of 40 images"),
        "label 2^40": (_npz(tmp_path / "big", np.nan_to_num(x), y), "include 1099511627776"),
    }


@pytest.mark.parametrize("case", ["fifo", "dev zero", "symlink out", "png bomb", "nan", "label 2^40"])
def test_cli_train_and_evaluate_give_one_line_and_exit_2(tmp_path, case, no_hang, ten_class_model):
    spec, message = _bad_specs(tmp_path)[case]
    for args in (["train", "--model", "mlp", "--epochs", "1", "--out", str(tmp_path / "run")],
                 ["evaluate", str(ten_class_model), "--runs", "2"]):
        r = CliRunner().invoke(cli, [*args, "--dataset", spec])
        errors = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
        assert r.exit_code == 2 and len(errors) == 1 and message in errors[0], r.output[-2000:]
        assert "Traceback" not in r.output
    assert not (tmp_path / "run" / "model.keras").exists()


def test_cli_evaluate_fewer_classes_works_and_more_classes_is_one_line(tmp_path, ten_class_model):
    r = CliRunner().invoke(cli, ["evaluate", str(ten_class_model), "--runs", "2", "--dataset",
                                 _four_class_npz(tmp_path)])
    assert r.exit_code == 0, r.output[-2000:]
    assert "accuracy" in r.output and "   9: " in r.output  # ten confusion-matrix rows
    r = CliRunner().invoke(cli, ["evaluate", str(ten_class_model), "--runs", "2", "--dataset",
                                 _four_class_npz(tmp_path, classes=12)])
    errors = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert r.exit_code == 2 and len(errors) == 1 and "12" in errors[0], r.output[-2000:]
