"""images:DIR at the images' own size and colour, options, split folders and bad input."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgekit.data import load_dataset
from edgekit.errors import InputError, UsageError


def _folder(root, size=(12, 10), mode="RGB", classes=("cat", "dog"), n=5, split=""):
    for ci, c in enumerate(classes):
        d = root / split / c
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = size + ((3,) if mode == "RGB" else ())
            px = (200, 50 + 20 * ci, 10 * i) if mode == "RGB" else 60 * ci + i
            Image.fromarray(np.full(shape, px, np.uint8), mode).save(d / f"{i}.png")
    return root


def test_rgb_kept_at_its_own_size(tmp_path):
    d = load_dataset(f"images:{_folder(tmp_path)}", test_split=0.2, val_split=0)
    assert d.info.input_shape == (12, 10, 3) and d.info.num_classes == 2
    assert d.info.notes == ("images: cache=memory (0.0 MiB uint8, chosen by cache=auto).",)  # the cache used
    # red channel 200 everywhere; green tells the class
    assert np.allclose(d.x_train[..., 0], 200 / 255)
    assert sorted(np.unique(d.x_train[..., 1]).round(4)) == [round(50 / 255, 4), round(70 / 255, 4)]


def test_gray_folder_stays_one_channel_and_options_convert(tmp_path):
    gray = _folder(tmp_path / "g", mode="L")
    assert load_dataset(f"images:{gray}").info.input_shape == (12, 10, 1)
    three = load_dataset(f"images:{gray},channels=3,size=6")
    assert three.info.input_shape == (6, 6, 3)
    assert np.array_equal(three.x_train[..., 0], three.x_train[..., 2])  # gray replicated
    rgb = _folder(tmp_path / "c")
    one = load_dataset(f"images:{rgb},size=4x8,channels=1", val_split=0)
    assert one.info.input_shape == (4, 8, 1)
    # ITU-R 601-2 luminance of (200, 50, 0) = 0.299*200 + 0.587*50 + 0.114*0 = 89.15 -> 89
    assert np.isclose(one.x_train.min() * 255, 89, atol=0.5)


def test_mixed_sizes_resized_to_the_most_common_with_a_note(tmp_path):
    _folder(tmp_path, size=(12, 10))
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(tmp_path / "cat" / "big.png")
    (tmp_path / "dog" / "labels.txt").write_text("not an image")
    (tmp_path / "dog" / ".DS_Store").write_bytes(b"\0")
    d = load_dataset(f"images:{tmp_path}")
    assert d.info.input_shape == (12, 10, 3)
    assert d.info.notes[0] == ("images: 1 of 11 images resized to 12x10 (the most common of 2 sizes); "
                               "pass size=HxW to choose.")
    assert d.info.notes[1].startswith("images: skipped 1 non-image file(s)") and "labels.txt" in d.info.notes[1]
    assert d.info.to_dict()["notes"] == list(d.info.notes)


def test_train_val_test_folders(tmp_path):
    _folder(tmp_path, split="train", n=6)
    _folder(tmp_path, split="test", n=3)
    d = load_dataset(f"images:{tmp_path}", val_split=0.5)
    assert d.info.sizes == {"train": 6, "val": 6, "test": 6}
    _folder(tmp_path, split="val", n=2)
    d = load_dataset(f"images:{tmp_path}")
    assert d.info.sizes == {"train": 12, "val": 4, "test": 6}  # the folder's own val split
    (tmp_path / "stray").mkdir()
    with pytest.raises(InputError, match="mixes split folders"):
        load_dataset(f"images:{tmp_path}")


def test_comma_in_path_is_kept(tmp_path):
    root = _folder(tmp_path / "a,b")
    assert load_dataset(f"images:{root},size=5").info.input_shape == (5, 5, 3)


@pytest.mark.parametrize("opt, match", [
    ("size=0", "size must be N or HxW with positive integers"),
    ("size=0x4", "size must be N or HxW"),
    ("size=big", "size must be N or HxW"),
    ("channels=2", "channels must be 1 .grayscale. or 3"),
    ("colour=rgb", "has no option 'colour'"),
])
def test_bad_options_are_one_line(tmp_path, opt, match):
    with pytest.raises(UsageError, match=match) as e:
        load_dataset(f"images:{_folder(tmp_path)},{opt}")
    assert "\n" not in str(e.value)


def test_bad_folders(tmp_path, monkeypatch):
    root = _folder(tmp_path)
    (root / "empty").mkdir()
    with pytest.raises(InputError, match="'.*empty' holds no images"):
        load_dataset(f"images:{root}")
    (root / "empty").rmdir()
    (root / "cat" / "broken.png").write_bytes(b"nope")
    with pytest.raises(InputError, match="broken.png' is not a readable image"):
        load_dataset(f"images:{root}")
    (root / "cat" / "broken.png").unlink()
    import edgekit.data.limits as limits

    monkeypatch.setattr(limits, "MAX_BYTES", 1000)  # folders stream: no cap on a folder's decoded size
    assert sum(load_dataset(f"images:{root},cache=none").info.sizes.values()) == 10
