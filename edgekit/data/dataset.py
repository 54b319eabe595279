"""The Dataset type: normalised train/validation/test splits plus their identity."""
from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any

import numpy as np

from edgekit.data import limits
from edgekit.data.sources import RawSplits, absolute_spec, load_raw
from edgekit.data.store import ArraySource, Images, PixelSource
from edgekit.errors import InputError, UsageError

SPLITS = ("train", "val", "test")
_BLOCK = 1024  # images per block when checking pixel values


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a run was trained and measured on; goes into every manifest."""

    spec: str
    input_shape: tuple[int, ...]
    num_classes: int
    sizes: dict[str, int]
    sha256: str
    seed: int
    test_split: float
    val_split: float
    notes: tuple[str, ...] = ()  # one line each: what loading changed (resized images, skipped files)
    preprocess: str = "unit"  # edgekit.data.preprocess: the pixel convention the images are in
    limit: int | None = None  # the stratified subset asked for (None: every image)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["input_shape"] = list(self.input_shape)
        if self.notes:
            d["notes"] = list(self.notes)
        else:
            del d["notes"]  # manifests without notes read as before
        if self.limit is None:
            del d["limit"]
        return d


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Images as :class:`~edgekit.data.store.Images` (read as float32 ``(N, H, W, C)`` a batch at a
    time, under ``info.preprocess``); labels as int64 class indices."""

    x_train: Images
    y_train: np.ndarray
    x_val: Images
    y_val: np.ndarray
    x_test: Images
    y_test: np.ndarray
    info: DatasetInfo

    def __post_init__(self) -> None:
        for name in ("x_train", "x_val", "x_test"):  # a split a caller gave as an array (resized in memory, say)
            x = getattr(self, name)
            if not isinstance(x, Images):
                object.__setattr__(self, name, Images(ArraySource(np.asarray(x, np.float32))))

    def split(self, name: str) -> tuple[Images, np.ndarray]:
        """``(x, y)`` of ``train``, ``val`` or ``test`` (the holdout)."""
        if name not in SPLITS:
            raise UsageError(f"Unknown split {name!r}. Expected one of: {', '.join(SPLITS)}.")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def representative(self, n: int = 300) -> np.ndarray:
        """``n`` training images (a fixed, class-mixed subset) for calibration."""
        if n < 1:
            raise UsageError(f"Representative dataset size must be >= 1. Received: {n}.")
        idx = np.random.default_rng(self.info.seed).permutation(len(self.x_train))[:n]
        return self.x_train[np.sort(idx)]  # reads only these n images

    def tf_data(self, split: str, batch_size: int, shuffle: bool = False, seed: int | None = None,
                epoch=None):
        """A batched, prefetched ``tf.data.Dataset`` of one split.

        With ``epoch`` (an int64 ``tf.Variable`` the caller sets at the start of each epoch),
        the order of each pass is a pure function of ``(seed, epoch)``: a run resumed at
        epoch k sees exactly the batches an uninterrupted run sees in epoch k."""
        from edgekit._lazy import tf

        tf_ = tf()
        x, y = self.split(split)
        yt = tf_.constant(y)
        ds = tf_.data.Dataset.range(len(x))
        if shuffle:  # shuffle positions, then read whole batches: no per-image copies through a shuffle buffer
            seed = self.info.seed if seed is None else seed
            if epoch is None:
                ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            else:
                idx = tf_.range(len(x), dtype=tf_.int64)

                def order(_):  # runs when the epoch's iterator is first read, after on_epoch_begin
                    key = tf_.stack([tf_.constant(seed, tf_.int64), epoch.read_value()])
                    return tf_.data.Dataset.from_tensor_slices(tf_.random.experimental.stateless_shuffle(idx, seed=key))

                ds = tf_.data.Dataset.from_tensors(0).flat_map(order).apply(
                    tf_.data.experimental.assert_cardinality(len(x)))
        one = x.tf_one()
        if one is not None:  # images decoded one by one in parallel (files), then batched
            ds = ds.map(lambda i: (one(i), tf_.gather(yt, i)), num_parallel_calls=tf_.data.AUTOTUNE,
                        deterministic=True).batch(batch_size).map(lambda a, b: (x.tf_batch(a), b))
        else:
            gather = x.tf_gather()
            ds = ds.batch(batch_size).map(lambda i: (gather(i), tf_.gather(yt, i)),
                                          num_parallel_calls=tf_.data.AUTOTUNE, deterministic=True)
        return ds.prefetch(tf_.data.AUTOTUNE).with_options(pipeline_options(tf_))


def pipeline_options(tf_):
    """``tf.data`` options matched to TensorFlow's op threads when those are pinned (a worker of N
    threads, ``TF_NUM_INTRAOP_THREADS``): a private pool of N threads, and no autotuner at N = 1. The
    default pool has a thread per core of the machine; on cores other workers use, its hand-offs
    cost more than they save (a one-thread optimize candidate ran 3-7% faster, measured)."""
    n = tf_.config.threading.get_intra_op_parallelism_threads() or int(os.environ.get("TF_NUM_INTRAOP_THREADS") or 0)
    options = tf_.data.Options()
    if n > 0:
        options.threading.private_threadpool_size = n
        options.threading.max_intra_op_parallelism = 1
        options.autotune.enabled = n > 1
    return options


def _normalise(x: np.ndarray, where: str) -> np.ndarray:
    """Raw pixels as stored: uint8 (0..255) when the source's are integers, float32 in [0, 1] otherwise."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise InputError(f"Images must be (N, H, W) or (N, H, W, C); got shape {x.shape}.")
    if x.dtype != np.bool_ and (not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating)):
        raise InputError(f"Images {where} are of dtype {x.dtype}; they must be real numbers (e.g. uint8 or float32).")
    _check_pixels(x, where)
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.integer) and len(x) and 0 <= x.min() and x.max() <= 255:
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        return (x.astype(np.float32) / 255.0).astype(np.float32)
    x = x.astype(np.float32)
    return x / 255.0 if x.max(initial=0) > 1.0 else x


def _check_pixels(x: np.ndarray, where: str) -> None:
    """InputError when images hold NaN/inf (counted) or are all one constant value: nothing to
    train on or measure. Checked a block of images at a time (no full-size temporaries)."""
    if not len(x):
        return
    bad_values = bad_images = 0
    if np.issubdtype(x.dtype, np.floating):
        for i in range(0, len(x), _BLOCK):
            bad = ~np.isfinite(x[i:i + _BLOCK].reshape(min(_BLOCK, len(x) - i), -1))
            bad_values += int(bad.sum())
            bad_images += int(bad.any(axis=1).sum())
    if bad_values:
        raise InputError(f"Images {where} hold {bad_values:,} NaN or infinite pixel values in {bad_images:,} of "
                         f"{len(x):,} images; fix or remove those images.")
    lo, hi = x.min(), x.max()
    if lo == hi:
        raise InputError(f"All {len(x):,} images {where} are the constant value {lo.item()!r}: there is nothing to "
                         "train on or measure. Check the dataset files.")


def _labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if len(y) != n:
        raise InputError(f"{n} images but {len(y)} labels: the counts must match.")
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"Labels {where} are of dtype {y.dtype}; they must be non-negative integer class indices.")
    if len(y) and (y.min() < 0 or y.max() >= limits.MAX_CLASSES):
        bad = y.min() if y.min() < 0 else y.max()
        raise InputError(f"Labels {where} include {int(bad)}; labels must be class indices 0 to "
                         f"{limits.MAX_CLASSES - 1:,} (at most {limits.MAX_CLASSES:,} classes).")
    return y.astype(np.int64)


def _stratified(y: np.ndarray, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, taken): exactly round(frac * N) taken, each class in proportion
    (largest remainders), deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    want = counts * frac
    take = np.floor(want).astype(int)
    extra = int(round(frac * len(y))) - int(take.sum())
    take[np.argsort(-(want - take), kind="stable")[:max(extra, 0)]] += 1
    keep, taken = [], []
    for c, k in zip(classes, take):
        idx = rng.permutation(np.flatnonzero(y == c))
        taken.append(idx[:k])
        keep.append(idx[k:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(taken))


def _is_source(x: object) -> bool:
    """Whether a source gave a :class:`~edgekit.data.store.PixelSource` (not an array) for a split."""
    return not isinstance(x, np.ndarray) and hasattr(x, "read") and hasattr(x, "shape")


def _source(x: PixelSource, where: str) -> PixelSource:
    """A source's own PixelSource, used as it is: its pixels must already be uint8 or [0, 1] float32."""
    if len(x.shape) != 4:
        raise InputError(f"Images {where} must be (N, H, W, C); got shape {tuple(x.shape)}.")
    if np.dtype(x.dtype) not in (np.dtype(np.uint8), np.dtype(np.float32)):
        raise InputError(f"Images {where} are of dtype {x.dtype}; a pixel source gives uint8 or float32.")
    if getattr(x, "digest", None) is None and x.shape[0]:  # raw pixels (a stored .npz): checked as arrays are
        lo = hi = None
        for i in range(0, x.shape[0], _BLOCK):
            block = x.read(np.arange(i, min(x.shape[0], i + _BLOCK), dtype=np.int64))
            bmin, bmax = block.min(), block.max()
            lo, hi = (bmin, bmax) if lo is None else (min(lo, bmin), max(hi, bmax))
            if lo != hi:
                break
        if lo == hi:
            raise InputError(f"All {x.shape[0]:,} images {where} are the constant value {lo.item()!r}: there is "
                             "nothing to train on or measure. Check the dataset files.")
    return x


def _streamed_hash(views: list[tuple[Images, np.ndarray]]) -> str:
    """sha256 of sources that carry a ``digest`` (their files' bytes and labels, hashed when they were
    listed, without decoding): each split's digest, shape, source index (its membership) and labels."""
    h = hashlib.sha256(b"edgekit-streamed-v1")
    for x, y in views:
        h.update(str(x.source.digest).encode())
        h.update(str(tuple(x.shape)).encode())
        h.update(np.ascontiguousarray(x.index, np.int64).tobytes())
        h.update(np.ascontiguousarray(y, np.int64).tobytes())
    return h.hexdigest()


def _content_hash(*arrays: Images | np.ndarray) -> str:
    """sha256 over each array's shape and float32 values, read a block at a time."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(tuple(a.shape)).encode())
        if isinstance(a, Images):
            for block in a.batches(_BLOCK):
                h.update(np.ascontiguousarray(block).tobytes())
        else:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def load_dataset(
    spec: str = "digits",
    *,
    seed: int = 0,
    test_split: float = 0.2,
    val_split: float = 0.1,
    limit: int | None = None,
    preprocess: str | None = None,
) -> Dataset:
    """Load a dataset by spec and split it deterministically.

    A source with a single split is divided into train/test by ``test_split`` (stratified);
    ``val_split`` of the training part becomes the validation split (0 uses the holdout
    for validation curves); a source's own validation split (``images:DIR`` with ``val/``)
    is used as it is. ``limit`` keeps a stratified subset of that many images first.
    A source may give a split as a :class:`~edgekit.data.store.PixelSource` (image files, a disk
    cache, a stored ``.npz`` member): it is used as it is, no array is built. The dataset's sha256
    is then, for sources that carry a ``digest`` (image folders, TFRecords: the files' bytes, labels,
    size and channels, hashed in one streaming pass without decoding), a hash of those digests with
    each split's membership (source indices) and labels; for other sources, of the float32 pixels
    and labels, read a block at a time (array sources: the same value as always).
    What loading changed (resized images, skipped files, the cache used) is in ``info.notes``; ``info.spec`` names
    a path source's folder or file by its absolute path, so a manifest can be read from anywhere.
    ``preprocess``: the pixel convention a model expects (:mod:`edgekit.data.preprocess`;
    default ``unit``, [0, 1]), applied here once to every split.
    """
    from edgekit.data.preprocess import parse_preprocess, preprocess_dataset

    parse_preprocess(preprocess)  # a bad spec fails before loading
    for name, v in (("test_split", test_split), ("val_split", val_split)):
        if not 0.0 <= v < 1.0:
            raise UsageError(f"{name} must be in [0, 1). Received: {v}.")
    if limit is not None and limit < 10:
        raise UsageError(f"limit must be at least 10 images. Received: {limit}.")
    raw: RawSplits = load_raw(spec)
    notes = tuple(getattr(raw, "notes", ()))
    where = lambda k: f"of dataset {spec!r}" + ("" if k == "all" else f" ({k} split)")  # noqa: E731
    splits = {k: (_source(x, where(k)) if _is_source(x) else _normalise(x, where(k)), _labels(y, int(x.shape[0]), where(k)))
              for k, (x, y) in raw.items()}
    for k, (x, _) in splits.items():
        if int(x.shape[0]) == 0:
            what = "it" if k == "all" else f"its {k} split"
            raise InputError(f"Dataset {spec!r} is empty: {what} holds no images.")
    given_val = splits.pop("val", None)  # a source's own validation split (images:DIR/val)
    if "all" in splits:
        x, y = splits.pop("all")
        keep = np.arange(len(y))
        if limit is not None and limit < len(y):
            _, keep = _stratified(y, limit / len(y), seed)
        if test_split <= 0:
            raise UsageError(f"Dataset {spec!r} has one split; test_split must be > 0 to hold out data.")
        tr, te = _stratified(y[keep], test_split, seed)
        parts = {"train": (x, keep[tr], y), "test": (x, keep[te], y)}
    else:
        n_all = sum(len(v[1]) for v in splits.values())
        parts = {}
        for k, (x, y) in splits.items():
            keep = np.arange(len(y))
            if limit is not None and limit < n_all:
                _, keep = _stratified(y, limit / n_all, seed)
            parts[k] = (x, keep, y)
    if given_val is not None:
        x, y = given_val
        parts["val"] = (x, np.arange(len(y)), y)  # used as it is
    elif val_split > 0:
        x, idx, y = parts["train"]
        tr, va = _stratified(y[idx], val_split, seed + 1)
        parts["val"], parts["train"] = (x, idx[va], y), (x, idx[tr], y)
    views = {k: (Images(x if _is_source(x) else ArraySource(x), idx), y[idx]) for k, (x, idx, y) in parts.items()}
    (x_tr, y_tr), (x_te, y_te) = views["train"], views["test"]
    x_va, y_va = views.get("val", views["test"])
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise InputError(f"Train images {x_tr.shape[1:]} and test images {x_te.shape[1:]} differ in shape.")
    if x_va.shape[1:] != x_tr.shape[1:]:
        raise InputError(f"Train images {x_tr.shape[1:]} and validation images {x_va.shape[1:]} differ in shape.")
    if len(x_tr) == 0 or len(x_te) == 0:
        raise InputError(f"Dataset {spec!r} is too small to split: {len(x_tr)} train, {len(x_te)} test images.")
    num_classes = int(max(y_tr.max(), y_te.max())) + 1
    info = DatasetInfo(
        spec=absolute_spec(spec),
        input_shape=tuple(int(d) for d in x_tr.shape[1:]),
        num_classes=num_classes,
        sizes={"train": len(x_tr), "val": len(x_va), "test": len(x_te)},
        sha256=_streamed_hash([(x_tr, y_tr), (x_va, y_va), (x_te, y_te)])
        if all(getattr(x.source, "digest", None) for x in (x_tr, x_va, x_te))
        else _content_hash(x_tr, y_tr, x_va, y_va, x_te, y_te),
        seed=seed,
        test_split=test_split,
        val_split=val_split,
        notes=notes,
        limit=limit,
    )
    return preprocess_dataset(Dataset(x_tr, y_tr, x_va, y_va, x_te, y_te, info), preprocess)
