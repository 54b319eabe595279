import gzip
import hashlib

import numpy as np
import pytest

from edgekit.data import load_dataset, load_idx_folder, read_idx
from edgekit.errors import InputError


def _write_idx(path, arr, magic_dtype=0x08, compress=True):
    header = bytes([0, 0, magic_dtype, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def test_shared_mnist_test_set(mnist_dir):
    splits = load_idx_folder(mnist_dir)
    x, y = splits["all"]
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,)
    assert y[0] == 7  # the first MNIST test label
    assert set(np.unique(y)) == set(range(10))


def test_shared_mnist_split_is_stratified_and_deterministic(mnist_dir):
    a = load_dataset(f"idx:{mnist_dir}", seed=3, val_split=0.0)
    b = load_dataset(f"idx:{mnist_dir}", seed=3, val_split=0.0)
    assert a.info.sizes["train"] == 8000 and a.info.sizes["test"] == 2000
    assert a.info.sha256 == b.info.sha256
    counts = np.bincount(a.y_test, minlength=10)
    total = np.bincount(np.concatenate([a.y_train, a.y_test]), minlength=10)
    assert np.all(np.abs(counts - 0.2 * total) <= 1)  # every class held out in proportion
    assert load_dataset(f"idx:{mnist_dir}", seed=4, val_split=0.0).info.sha256 != a.info.sha256


def test_raw_and_gzip_idx_and_train_test_pairs(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, (20, 28, 28))
    y = np.arange(20) % 10
    _write_idx(tmp_path / "train-images-idx3-ubyte", x, compress=False)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", y, compress=False)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", x[:10])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", y[:10])
    splits = load_idx_folder(tmp_path)
    assert set(splits) == {"train", "test"}
    np.testing.assert_array_equal(splits["train"][0], x)
    np.testing.assert_array_equal(splits["test"][1], y[:10])


def test_bad_magic(tmp_path):
    (tmp_path / "f").write_bytes(b"\x12\x34\x56\x78" + bytes(100))
    with pytest.raises(InputError, match="bad magic"):
        read_idx(tmp_path / "f")


def test_truncated_file(tmp_path):
    x = np.zeros((5, 28, 28))
    _write_idx(tmp_path / "f.gz", x)
    raw = gzip.decompress((tmp_path / "f.gz").read_bytes())
    (tmp_path / "f").write_bytes(raw[:-10])
    with pytest.raises(InputError, match="truncated or corrupt"):
        read_idx(tmp_path / "f")


def test_wrong_rank(tmp_path):
    _write_idx(tmp_path / "labels", np.zeros((5, 3)))
    with pytest.raises(InputError, match="2 dimensions; expected 1"):
        read_idx(tmp_path / "labels", ndim=1)


def test_label_count_mismatch(tmp_path):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28)))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4))
    with pytest.raises(InputError, match="5 images but t10k-labels-idx1-ubyte.gz holds 4 labels"):
        load_idx_folder(tmp_path)


def test_corrupt_gzip_and_md5(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4))
    with pytest.raises(InputError, match="not readable gzip"):
        load_idx_folder(tmp_path)
    (tmp_path / "MD5SUMS").write_text(hashlib.md5(b"other").hexdigest() + "  t10k-labels-idx1-ubyte.gz\n")
    with pytest.raises(InputError, match="MD5SUMS"):
        load_idx_folder(tmp_path)


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_idx_folder(tmp_path / "nope")
    with pytest.raises(InputError, match="No IDX files"):
        load_idx_folder(tmp_path)


# -- found by the CLI fuzzer (tests/fuzz) --------------------------------------------------
def test_corrupt_deflate_stream_is_an_input_error(tmp_path):
    x = (np.arange(20 * 28 * 28) % 7).reshape(20, 28, 28)
    _write_idx(tmp_path / "f.gz", x)
    data = bytearray((tmp_path / "f.gz").read_bytes())
    data[10] ^= 0xFF  # the first deflate byte: zlib.error ("invalid distance too far back"), not BadGzipFile
    (tmp_path / "f.gz").write_bytes(bytes(data))
    with pytest.raises(InputError, match="not readable gzip: Error -3") as e:
        read_idx(tmp_path / "f.gz")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("compress", [True, False])
def test_huge_declared_dimensions_are_refused_before_reading(tmp_path, compress):
    """A header declaring ~2^96 bytes (which overflowed int64 before) is refused from the file size."""
    header = bytes([0, 0, 0x08, 3]) + b"".join((2**32 - 1).to_bytes(4, "big") for _ in range(3))
    data = header + bytes(28 * 28 * 5)
    (tmp_path / "f").write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(InputError, match=r"declares \(4294967295, 4294967295, 4294967295\).*more than its"):
        read_idx(tmp_path / "f", ndim=3)


def test_gzip_bomb_header_is_refused_without_decompressing(tmp_path):
    header = bytes([0, 0, 0x08, 3]) + b"".join(d.to_bytes(4, "big") for d in (10**6, 28, 28))  # 784 MB declared
    (tmp_path / "f.gz").write_bytes(gzip.compress(header + bytes(1000)))
    with pytest.raises(InputError, match="more than its .*-byte file can hold"):
        read_idx(tmp_path / "f.gz")


def test_trailing_data_is_an_input_error(tmp_path):
    x = np.zeros((5, 28, 28))
    _write_idx(tmp_path / "f.gz", x)
    raw = gzip.decompress((tmp_path / "f.gz").read_bytes())
    (tmp_path / "f.gz").write_bytes(gzip.compress(raw + b"junk"))
    with pytest.raises(InputError, match="holds more than 3920 data bytes"):
        read_idx(tmp_path / "f.gz")


def test_empty_idx_dataset_is_an_input_error(tmp_path):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((0, 28, 28)))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(0))
    with pytest.raises(InputError, match="is empty: it holds no images"):
        load_dataset(f"idx:{tmp_path}")
