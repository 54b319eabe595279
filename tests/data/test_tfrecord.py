"""tfrecord:GLOB: both feature-name conventions, the same pixels as the image files, bad records."""
from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from edgekit.data import load_dataset
from edgekit.errors import InputError


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _images(n=12):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (10, 8, 3), np.uint8) for _ in range(n)], [i % 3 for i in range(n)]


def _write(path, images, labels, names=("image", "label")):
    with tf.io.TFRecordWriter(str(path)) as w:
        for img, y in zip(images, labels):
            feats = {names[0]: tf.train.Feature(bytes_list=tf.train.BytesList(value=[_png(img) if
                                                                                      isinstance(img, np.ndarray)
                                                                                      else img])),
                     names[1]: tf.train.Feature(int64_list=tf.train.Int64List(value=[y]))}
            w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
    return path


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("names", [("image", "label"), ("image/encoded", "image/class/label")])
@pytest.mark.parametrize("mode", ["none", "memory", "disk"])
def test_round_trip(tmp_path, names, mode):
    imgs, labels = _images()
    _write(tmp_path / "a-0.tfrecord", imgs[:5], labels[:5], names)
    _write(tmp_path / "a-1.tfrecord", imgs[5:], labels[5:], names)
    d = load_dataset(f"tfrecord:{tmp_path}/a-*.tfrecord,cache={mode}", val_split=0, test_split=0.25)
    assert d.info.input_shape == (10, 8, 3) and d.info.num_classes == 3 and d.info.sizes == {"train": 9, "val": 3,
                                                                                            "test": 3}
    assert d.info.notes[-1].startswith(f"tfrecord: cache={mode}")
    x, y = np.asarray(d.x_train), d.y_train
    for row, i in zip(x, d.x_train.index):  # PNG is lossless: the exact pixels, in file order
        assert np.array_equal(row, imgs[i].astype(np.float32) / 255) and labels[i] == y[list(d.x_train.index).index(i)]
    xb, yb = next(iter(d.tf_data("train", 16)))
    assert np.array_equal(xb.numpy(), x) and np.array_equal(yb.numpy(), y)
    assert d.info.spec.startswith(f"tfrecord:{tmp_path}/a-*.tfrecord")


def test_same_identity_for_every_cache_and_options(tmp_path):
    imgs, labels = _images()
    _write(tmp_path / "a.tfrecord", imgs, labels)
    shas = {load_dataset(f"tfrecord:{tmp_path}/a.tfrecord,cache={m}").info.sha256 for m in ("none", "memory", "disk")}
    assert len(shas) == 1
    d = load_dataset(f"tfrecord:{tmp_path}/a.tfrecord,size=4x6,channels=1,cache=none")
    assert d.info.input_shape == (4, 6, 1) and d.info.sha256 not in shas


def _err(spec: str, match: str) -> str:
    with pytest.raises(InputError, match=match) as e:
        load_dataset(spec)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_bad_records_are_one_line(tmp_path):
    imgs, labels = _images()
    good = _write(tmp_path / "good.tfrecord", imgs, labels)
    data = good.read_bytes()
    (tmp_path / "cut.tfrecord").write_bytes(data[:-30])
    assert "cut.tfrecord" in _err(f"tfrecord:{tmp_path}/cut.tfrecord", "truncated")
    _write(tmp_path / "neg.tfrecord", imgs, [0] * 11 + [-1])
    assert "neg.tfrecord" in _err(f"tfrecord:{tmp_path}/neg.tfrecord", "holds label -1; labels must be")
    _write(tmp_path / "big.tfrecord", imgs, [0] * 11 + [10**9])
    _err(f"tfrecord:{tmp_path}/big.tfrecord", "holds label 1000000000")
    _write(tmp_path / "names.tfrecord", imgs, labels, names=("img", "label"))
    _err(f"tfrecord:{tmp_path}/names.tfrecord", "edgekit needs image .bytes, JPEG/PNG. and label")
    _err(f"tfrecord:{tmp_path}/none-*.tfrecord", "No TFRecord files match")
    _write(tmp_path / "junk.tfrecord", [b"not an image"] * 3, [0, 1, 0])
    assert "junk.tfrecord" in _err(f"tfrecord:{tmp_path}/junk.tfrecord", "is not a readable image")
    _write(tmp_path / "later.tfrecord", imgs[:11] + [b"garbage"], labels)  # only the last image is broken
    for cache in ("none", "memory"):  # every record's image header is read at load: found before any training
        msg = _err(f"tfrecord:{tmp_path}/later.tfrecord,cache={cache}", "is not a readable image")
        assert "later.tfrecord" in msg and "record at byte" in msg
