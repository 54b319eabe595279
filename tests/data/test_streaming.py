"""Streamed image folders: the same pixels from every cache, a reused disk cache, bad files."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from edgekit.data import cache, load_dataset
from edgekit.data.images import FileSource
from edgekit.data.store import ArraySource, FileArraySource
from edgekit.errors import InputError


def _photo(rng, h, w):
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1)
    return np.clip(base + rng.integers(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)


def _mixed(root, n=6):
    """Two classes of JPEGs and PNGs at three sizes (mostly 16x20)."""
    rng = np.random.default_rng(0)
    for ci, c in enumerate(("a", "b")):
        (root / c).mkdir(parents=True)
        for i in range(n):
            h, w = ((16, 20), (16, 20), (31, 17), (16, 20), (9, 40), (16, 20))[i % 6]
            im = Image.fromarray(_photo(rng, h, w) // (ci + 1))
            im.save(root / c / f"{i}.jpg", quality=90) if i % 2 else im.save(root / c / f"{i}.png")
    return root


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("EDGEKIT_CACHE", str(d))
    return d


def test_memory_disk_and_none_give_the_same_split_and_pixels(tmp_path, cache_dir):
    root = _mixed(tmp_path / "imgs")
    loads = {m: load_dataset(f"images:{root},cache={m}", seed=3) for m in ("memory", "disk", "none")}
    mem, disk, none = loads["memory"], loads["disk"], loads["none"]
    assert isinstance(mem.x_train.source, ArraySource)
    assert isinstance(disk.x_train.source.base if hasattr(disk.x_train.source, "base") else disk.x_train.source,
                      FileArraySource)
    assert isinstance(getattr(none.x_train.source, "base", none.x_train.source), FileSource)
    assert mem.info.input_shape == (16, 20, 3) and mem.info.sizes == {"train": 9, "val": 1, "test": 2}
    for d in (disk, none):
        assert d.info.sha256 == mem.info.sha256  # the identity does not depend on the cache
        for split in ("train", "val", "test"):
            (xa, ya), (xb, yb) = mem.split(split), d.split(split)
            assert np.array_equal(xa.index, xb.index) and np.array_equal(ya, yb)
            a, b = np.asarray(xa), np.asarray(xb)
            assert a.dtype == np.float32 and np.array_equal(a, b)
    assert mem.info.notes[-1].startswith("images: cache=memory")
    assert disk.info.notes[-1].startswith("images: cache=disk at " + str(cache_dir))
    assert none.info.notes[-1].startswith("images: cache=none")
    # the tf.data pipeline reads the same values as NumPy indexing, from each source
    for d in (mem, disk, none):
        xb, yb = next(iter(d.tf_data("train", 16)))
        assert np.array_equal(xb.numpy(), np.asarray(d.x_train)) and np.array_equal(yb.numpy(), d.y_train)
    # a different seed: another split of the same pixels
    other = load_dataset(f"images:{root},cache=none", seed=4)
    assert other.info.sha256 != none.info.sha256


def test_pixels_are_the_keras_decode_and_bilinear_resize(tmp_path, cache_dir):
    import tensorflow as tf

    root = _mixed(tmp_path / "imgs")
    d = load_dataset(f"images:{root},cache=none,size=12x10", test_split=0.5, val_split=0)
    src = d.x_train.source
    src = getattr(src, "base", src)
    f = src.files[2]  # a 31x17 jpg resized
    img = tf.image.decode_image(tf.io.read_file(f), channels=3, expand_animations=False)
    want = np.clip(np.round(tf.image.resize(img, (12, 10), method="bilinear").numpy()), 0, 255).astype(np.uint8)
    assert np.array_equal(src.read(np.array([2]))[0], want)


def test_the_disk_cache_is_reused_without_decoding(tmp_path, cache_dir):
    root = _mixed(tmp_path / "imgs")
    first = load_dataset(f"images:{root},cache=disk")
    files = list(cache_dir.glob("*.u8"))
    assert len(files) == 1 and not list(cache_dir.glob(".*tmp"))
    mtime, builds = files[0].stat().st_mtime_ns, cache.builds
    second = load_dataset(f"images:{root},cache=disk")
    assert cache.builds == builds and files[0].stat().st_mtime_ns == mtime  # read back, not decoded again
    assert np.array_equal(np.asarray(first.x_test), np.asarray(second.x_test))
    load_dataset(f"images:{root},cache=disk,size=8")  # another size: another key
    assert len(list(cache_dir.glob("*.u8"))) == 2 and cache.builds == builds + 1


def test_auto_picks_memory_for_small_and_disk_past_the_memory_cap(tmp_path, cache_dir, monkeypatch):
    root = _mixed(tmp_path / "imgs")
    assert load_dataset(f"images:{root}").info.notes[-1].startswith("images: cache=memory")
    monkeypatch.setattr(cache, "MEMORY_MAX", 100)
    d = load_dataset(f"images:{root}")
    assert d.info.notes[-1].startswith("images: cache=disk") and "chosen by cache=auto" in d.info.notes[-1]
    assert cache.choose("auto", 1 << 62, cache_dir) == "none"  # no room anywhere


def _one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_bad_images_refuse_names_the_file_and_skip_counts(tmp_path, cache_dir):
    root = _mixed(tmp_path / "imgs")
    good = (root / "a" / "1.jpg").read_bytes()
    (root / "a" / "cut.jpg").write_bytes(good[: len(good) // 2])  # truncated: no FFD9 at the end
    png = (root / "b" / "0.png").read_bytes()
    (root / "b" / "cut.png").write_bytes(png[:-20])  # truncated: no IEND
    with pytest.raises(InputError) as e:
        load_dataset(f"images:{root},cache=none")
    assert "cut.jpg' is not a readable image" in _one_line(e) and "bad_images=skip" in str(e.value)
    d = load_dataset(f"images:{root},cache=none,bad_images=skip")
    assert sum(d.info.sizes.values()) == 12
    assert any(n.startswith("images: bad_images=skip dropped 2 unreadable image(s)") for n in d.info.notes)
    (root / "a" / "empty.png").write_bytes(b"")
    with pytest.raises(InputError) as e:
        load_dataset(f"images:{root},bad_images=refuse")
    assert "is not a readable image" in _one_line(e)
    with pytest.raises(Exception, match="bad_images must be refuse or skip"):
        load_dataset(f"images:{root},bad_images=maybe")
    with pytest.raises(Exception, match="cache must be one of"):
        load_dataset(f"images:{root},cache=ram")


def test_a_file_that_breaks_after_loading_is_one_input_error(tmp_path, cache_dir):
    root = _mixed(tmp_path / "imgs")
    d = load_dataset(f"images:{root},cache=none", val_split=0)
    src = getattr(d.x_train.source, "base", d.x_train.source)
    victim = src.files[int(d.x_train.index[0])]
    with open(victim, "wb") as fh:  # replaced by garbage after the probe
        fh.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 64 + b"IEND")
    with pytest.raises(InputError) as e:
        d.x_train[:4]
    assert os.path.basename(victim) in _one_line(e)


def test_empty_class_folder_is_an_error(tmp_path, cache_dir):
    root = _mixed(tmp_path / "imgs")
    (root / "c").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        load_dataset(f"images:{root}")


def test_reading_a_streamed_folder_stays_far_below_its_float32_size(tmp_path, cache_dir):
    """A child process reads every batch of a ~190 MB-as-float32 folder through the disk cache."""
    root = tmp_path / "big"
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 255, (64, 64, 3), np.uint8)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(200):
            Image.fromarray(np.roll(noise, i, axis=0)).save(root / c / f"{i}.png")
    code = f"""
import resource, numpy as np
from edgekit.data import load_dataset
d = load_dataset("images:{root},size=128,cache=disk")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # TensorFlow and the cache build
total = 0
for x in (d.x_train, d.x_val, d.x_test):
    for b in x.batches(32):
        total += b.nbytes
print(total, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    total, growth = (int(v) for v in out.stdout.split()[-2:])
    assert total == 400 * 128 * 128 * 3 * 4  # every image was read as float32 (75 MiB) ...
    assert growth < 24 << 20  # ... and reading them all raised the peak by less than a third of that


def test_npz_stored_images_are_read_in_place(tmp_path, cache_dir):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (40, 6, 5), np.uint8)
    y = np.arange(40) % 4
    np.savez(tmp_path / "s.npz", x=x, y=y)
    np.savez_compressed(tmp_path / "c.npz", x=x, y=y)
    stored = load_dataset(f"npz:{tmp_path / 's.npz'}")
    assert isinstance(stored.x_train.source, FileArraySource)  # not an array in memory: read by offset
    assert np.array_equal(np.asarray(stored.x_test), x[stored.x_test.index][..., None].astype(np.float32) / 255)
    compressed = load_dataset(f"npz:{tmp_path / 'c.npz'}")
    array = load_dataset(f"npz:{tmp_path / 's.npz'}")
    assert stored.info.sha256 == compressed.info.sha256 == array.info.sha256  # the array hash, as before
    for s in ("train", "val", "test"):
        assert np.array_equal(np.asarray(stored.split(s)[0]), np.asarray(compressed.split(s)[0]))


def test_same_seed_trains_the_same_weights_streamed_or_cached(tmp_path, cache_dir):
    """One epoch of cnn-small on a JPEG/PNG folder: identical weights whether the images are decoded
    on every read (cache=none), kept in memory or read back from the disk cache."""
    from edgekit.train import TrainConfig, train

    rng = np.random.default_rng(1)
    root = tmp_path / "imgs"
    for ci, c in enumerate(("dark", "light")):
        (root / c).mkdir(parents=True)
        for i in range(24):
            px = np.clip(rng.normal(70 + 110 * ci, 40, (28, 28)), 0, 255).astype(np.uint8)
            Image.fromarray(px).save(root / c / (f"{i}.jpg" if i % 2 else f"{i}.png"))
    weights = {}
    for mode in ("none", "memory", "disk"):
        d = load_dataset(f"images:{root},cache={mode}", seed=5)
        res = train(TrainConfig(model="cnn-small", epochs=1, batch_size=8, seed=5), d, out=tmp_path / mode,
                    force=True)
        weights[mode] = [w.copy() for w in res.model.get_weights()]
    assert len(weights["none"]) > 2
    for mode in ("memory", "disk"):
        assert all(np.array_equal(a, b) for a, b in zip(weights["none"], weights[mode])), mode
    assert not all(np.array_equal(a, np.zeros_like(a)) for a in weights["none"])


def test_a_split_replaced_by_an_array_trains_like_a_loaded_one():
    """A dataset whose splits a caller replaced with float32 arrays (dataclasses.replace) is read like
    any other: the same pixels through tf.data, so fine-tunes and the search run on it."""
    import dataclasses

    from edgekit.data.store import Images

    ds = load_dataset("digits", seed=0)
    arrays = dataclasses.replace(ds, **{f"x_{k}": np.asarray(getattr(ds, f"x_{k}")) for k in ("train", "val", "test")})
    assert all(isinstance(getattr(arrays, f"x_{k}"), Images) for k in ("train", "val", "test"))
    got = np.concatenate([b[0].numpy() for b in arrays.tf_data("train", 64)])
    want = np.concatenate([b[0].numpy() for b in ds.tf_data("train", 64)])
    assert got.dtype == np.float32 and np.array_equal(got, want)
    # the first images of an array split are images, not pixels flattened (np.take without an axis)
    first = arrays.x_train.take(np.arange(5))
    assert isinstance(first, Images) and first.shape == (5, *ds.x_train.shape[1:])
    assert np.array_equal(np.asarray(first), np.asarray(ds.x_train[:5]))
