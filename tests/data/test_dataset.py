import numpy as np
import pytest

from edgekit.data import SOURCES, load_dataset
from edgekit.errors import InputError, UsageError


def test_digits_is_real_and_fits_the_models(digits):
    info = digits.info
    assert info.input_shape == (28, 28, 1) and info.num_classes == 10
    assert sum(info.sizes.values()) == 1797  # sklearn's 1,797 digits
    assert digits.x_train.dtype == np.float32 and 0.0 <= digits.x_train.min() and digits.x_train.max() <= 1.0
    # digits sit in the 20x20 centre like MNIST: the border is empty
    assert digits.x_train[:, :4].max() == 0 and digits.x_train[:, :, 24:].max() == 0
    assert set(np.unique(digits.y_test)) == set(range(10))
    assert len(info.sha256) == 64


def test_splits_are_disjoint_and_deterministic():
    a, b = load_dataset("digits", seed=1), load_dataset("digits", seed=1)
    assert a.info.sha256 == b.info.sha256
    assert load_dataset("digits", seed=2).info.sha256 != a.info.sha256
    flat = lambda x: {r.tobytes() for r in x.reshape(len(x), -1)}
    assert not flat(a.x_test) & flat(a.x_val)


def test_val_split_zero_validates_on_holdout():
    d = load_dataset("digits", val_split=0.0)
    assert d.info.sizes["val"] == d.info.sizes["test"]
    np.testing.assert_array_equal(d.x_val, d.x_test)


def test_limit_is_stratified():
    d = load_dataset("digits", limit=200)
    assert sum(d.info.sizes.values()) == 200
    assert set(np.unique(d.y_train)) == set(range(10))


def test_representative_and_tf_data(digits):
    r = digits.representative(50)
    assert r.shape == (50, 28, 28, 1)
    np.testing.assert_array_equal(r, digits.representative(50))
    batches = list(digits.tf_data("test", 100))
    assert [len(b[0]) for b in batches] == [100, 100, 100, 59]


def test_npz_source(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, (50, 28, 28), dtype=np.uint8)
    y = np.arange(50) % 5
    np.savez(tmp_path / "d.npz", x=x, y=y)
    d = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert d.info.num_classes == 5 and sum(d.info.sizes.values()) == 50
    np.savez(tmp_path / "obj.npz", x=np.array([object()], dtype=object), y=y)
    with pytest.raises(InputError, match="without pickle"):
        load_dataset(f"npz:{tmp_path / 'obj.npz'}")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable .npz"):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}")


def test_images_source(tmp_path):
    from PIL import Image

    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(10):
            Image.fromarray(np.full((32, 32), 10 * i + (100 if c == "dog" else 0), np.uint8)).save(tmp_path / c / f"{i}.png")
    d = load_dataset(f"images:{tmp_path}", test_split=0.2)
    assert d.info.num_classes == 2 and d.info.input_shape == (32, 32, 1)  # the images' own size
    assert load_dataset(f"images:{tmp_path},size=28,channels=1").info.input_shape == (28, 28, 1)
    (tmp_path / "cat" / "broken.png").write_bytes(b"nope")
    with pytest.raises(InputError, match="not a readable image"):
        load_dataset(f"images:{tmp_path}")


def test_keras_sources_never_download(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    for name in ("mnist", "fashion_mnist"):
        with pytest.raises(InputError, match="does not download"):
            load_dataset(name)


def test_unknown_source_suggests():
    with pytest.raises(UsageError, match='Did you mean "digits"'):
        load_dataset("digit")
    assert {"digits", "idx", "npz", "images", "mnist", "fashion_mnist"} <= set(SOURCES.names())


@pytest.mark.parametrize("kw", [{"test_split": 1.0}, {"val_split": -0.1}, {"limit": 3}])
def test_bad_split_options(kw):
    with pytest.raises(UsageError):
        load_dataset("digits", **kw)


def test_epoch_keyed_order_is_a_pure_function_of_seed_and_epoch(digits):
    import tensorflow as tf

    def labels(epoch: int, seed: int = 0):
        var = tf.Variable(epoch, dtype=tf.int64)
        ds = digits.tf_data("train", 64, shuffle=True, seed=seed, epoch=var)
        assert int(ds.cardinality()) == -(-len(digits.x_train) // 64)  # known, so Keras need not count
        return np.concatenate([y.numpy() for _, y in ds])

    e0, e1 = labels(0), labels(1)
    assert sorted(e0.tolist()) == sorted(digits.y_train.tolist())  # every image once per epoch
    np.testing.assert_array_equal(e0, labels(0))  # a new pipeline (a resumed run) repeats epoch 0 exactly
    assert not np.array_equal(e0, e1) and not np.array_equal(e0, labels(0, seed=1))


def test_pipeline_threads_follow_pinned_op_threads(monkeypatch):
    """A worker pinned to N TensorFlow op threads gets a tf.data pool of N threads (none of the machine's
    cores beyond), and no autotuner at one thread; unpinned, tf.data keeps its defaults."""
    from edgekit._lazy import tf
    from edgekit.data.dataset import pipeline_options

    tf_ = tf()
    monkeypatch.setattr(tf_.config.threading, "get_intra_op_parallelism_threads", lambda: 0)
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")
    one = pipeline_options(tf_)
    assert one.threading.private_threadpool_size == 1 and one.autotune.enabled is False
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "3")
    three = pipeline_options(tf_)
    assert three.threading.private_threadpool_size == 3 and three.autotune.enabled is not False
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS")
    assert not pipeline_options(tf_).threading.private_threadpool_size
