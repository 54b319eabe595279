"""Cases of the ``tfrecord:GLOB`` dataset kind: a TFRecord seed (written by ``tf.io.TFRecordWriter``,
see seeds.make_tfrecord_seeds) damaged at the byte level (bit flips, truncation, the length field,
the CRCs, huge declared lengths) or rebuilt record by record, without TensorFlow, with wrong
feature types, labels out of range, garbage or bomb images."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from tests.fuzz.mutators import HUGE_INTS, byte_mutation, truncate

# -- the record framing (length, masked CRC32C of it, data, masked CRC32C of it) -----------------------
_CRC_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    head = struct.pack("<Q", len(data))
    return head + struct.pack("<I", masked_crc(head)) + data + struct.pack("<I", masked_crc(data))


def unframe(blob: bytes) -> list[tuple[int, bytes]]:
    """(offset of the record's header, data) of each record of a well-formed file."""
    out, pos = [], 0
    while pos + 12 <= len(blob):
        (n,) = struct.unpack("<Q", blob[pos:pos + 8])
        out.append((pos, blob[pos + 12:pos + 12 + n]))
        pos += 16 + n
    return out


# -- tf.train.Example, encoded by hand (protobuf wire format) ---------------------------------------------
def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1  # negative int64: ten bytes, as protobuf writes them
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:  # a length-delimited field
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def feature(kind: str, values: list) -> bytes:
    """A Feature: bytes_list (1), float_list (2, packed) or int64_list (3, packed)."""
    if kind == "bytes":
        return _field(1, b"".join(_field(1, v) for v in values))
    if kind == "float":
        return _field(2, _field(1, struct.pack(f"<{len(values)}f", *values)))
    return _field(3, _field(1, b"".join(_varint(int(v)) for v in values)))


def example(features: dict[str, bytes]) -> bytes:
    """An Example of ``{name: feature(...)}`` (Features.feature is a map: one entry message each)."""
    entries = b"".join(_field(1, _field(1, k.encode()) + _field(2, v)) for k, v in features.items())
    return _field(1, entries)


def png_bomb(width: int, height: int) -> bytes:
    """A valid grey PNG of ``width`` x ``height`` zero pixels: a few KB per decoded MiB."""
    from tests.data.test_bounded_readers import deflate_zeros

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    total = (width + 1) * height  # a filter byte (0) and the row
    mib, rest = divmod(total, 1 << 20)
    adler = (total % 65521) << 16 | 1
    idat = b"\x78\xda" + deflate_zeros(bytes(rest), mib) + struct.pack(">I", adler)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


# -- cases ---------------------------------------------------------------------------------------------------
NAMES = (("image", "label"), ("image/encoded", "image/class/label"))


def _pick(rng, items: list) -> Any:
    return items[int(rng.integers(len(items)))]


def seed_parts(seeds: dict) -> list[tuple[bytes, int]]:
    """(encoded image, label) of the records of the seeds: classes 0 and 1 of the image seed folder,
    the files in sorted order (as seeds.make_tfrecord_seeds writes them)."""
    root = Path(seeds["images"])
    return [(f.read_bytes(), c) for c in (0, 1) for f in sorted((root / str(c)).iterdir())]


def _rebuilt(rng, seeds) -> tuple[list[bytes], str, bool]:
    """The seed's records, rebuilt with one semantic edit; and whether the result must be refused."""
    names = _pick(rng, list(NAMES))
    parts = seed_parts(seeds)
    img_key, lab_key = names
    feats = [{img_key: feature("bytes", [im]), lab_key: feature("int64", [y])} for im, y in parts]
    i = int(rng.integers(len(feats)))
    op = str(rng.choice(["label-type", "image-type", "label-range", "label-many", "label-missing", "image-missing",
                         "image-empty", "garbage-image", "text-image", "cut-image", "huge-header", "bomb",
                         "not-example", "empty-record", "zero-records", "other-names"]))
    must_fail = False
    f = feats[i]
    if op == "label-type":
        kind = str(rng.choice(["bytes", "float"]))
        f[lab_key] = feature(kind, [b"1"] if kind == "bytes" else [1.0])
        how, must_fail = f"record {i}: label as {kind}_list", True
    elif op == "image-type":
        kind = str(rng.choice(["int64", "float"]))
        f[img_key] = feature(kind, [7] if kind == "int64" else [0.5])
        how, must_fail = f"record {i}: image as {kind}_list", True
    elif op == "label-range":
        bad = int(rng.choice([-1, 100_000, 2**31, 2**62, -(2**63), *HUGE_INTS[:5]]))
        f[lab_key] = feature("int64", [bad])
        signed = bad - 2**64 if bad >= 2**63 else bad
        how, must_fail = f"record {i}: label {signed}", not 0 <= signed < 100_000
    elif op == "label-many":
        f[lab_key] = feature("int64", [0, 1])
        how, must_fail = f"record {i}: two labels", True
    elif op == "label-missing":
        del f[lab_key]
        how, must_fail = f"record {i}: no label", True
    elif op == "image-missing":
        del f[img_key]
        how, must_fail = f"record {i}: no image", True
    elif op == "image-empty":
        f[img_key] = feature("bytes", [] if rng.random() < 0.5 else [b""])
        how, must_fail = f"record {i}: empty image bytes", True
    elif op == "garbage-image":
        f[img_key] = feature("bytes", [bytes(rng.integers(0, 256, int(rng.choice([1, 50, 4000])), np.uint8))])
        how, must_fail = f"record {i}: random image bytes", True
    elif op == "text-image":
        f[img_key] = feature("bytes", [b"not an image\n"])
        how, must_fail = f"record {i}: text as image", True
    elif op == "cut-image":
        data, how = truncate(rng, parts[i][0])
        f[img_key] = feature("bytes", [data])
        how = f"record {i}: image {how}"
    elif op == "huge-header":
        from tests.data.test_bounded_readers import png_header

        w, h = (int(rng.choice([2**16, 2**20, 2**31 - 1, 46_000, 100_000])) for _ in range(2))
        f[img_key] = feature("bytes", [png_header(w, h)])
        how, must_fail = f"record {i}: png header {w}x{h}", True
    elif op == "bomb":  # a real image: decodes, to many pixels (the first record's is probed at load)
        side = int(rng.choice([4_000, 12_000, 20_000]))
        f[img_key] = feature("bytes", [png_bomb(side, side)])
        how = f"record {i}: a {side}x{side} PNG of zeros"
    elif op == "not-example":
        feats[i] = None  # replaced below
        how, must_fail = f"record {i}: random bytes, not an Example", True
    elif op == "empty-record":
        feats[i] = {}
        how, must_fail = f"record {i}: an empty Example", True
    elif op == "zero-records":
        return [], "no records", True
    else:
        f.clear()
        f.update({"img": feature("bytes", [parts[i][0]]), "class": feature("int64", [parts[i][1]])})
        how, must_fail = f"record {i}: features img/class", True
    recs = [bytes(rng.integers(0, 256, 40, np.uint8)) if ft is None else example(ft) for ft in feats]
    return recs, f"{'/'.join(names)}: {how}", must_fail


def _frame_edit(rng, blob: bytes) -> tuple[bytes, str]:
    """The length field or a CRC of one record changed."""
    recs = unframe(blob)
    pos, data = _pick(rng, recs)
    b = bytearray(blob)
    what = str(rng.choice(["length", "length", "huge-length", "length-crc", "data-crc"]))
    if what == "length":
        n = max(0, len(data) + int(rng.choice([-1, 1, -12, 16, 4096])))
        b[pos:pos + 8] = struct.pack("<Q", n)
        how = f"length {len(data)} -> {n}"
    elif what == "huge-length":
        n = int(rng.choice([2**63 - 1, 2**64 - 1, 2**40, 2**32, 2**31]))
        b[pos:pos + 8] = struct.pack("<Q", n)
        if rng.random() < 0.5:  # with a matching length CRC, so a checking reader trusts it
            b[pos + 8:pos + 12] = struct.pack("<I", masked_crc(bytes(b[pos:pos + 8])))
        how = f"length {len(data)} -> {n}"
    elif what == "length-crc":
        b[pos + 8:pos + 12] = bytes(rng.integers(0, 256, 4, np.uint8))
        how = "length CRC"
    else:
        end = pos + 12 + len(data)
        b[end:end + 4] = bytes(rng.integers(0, 256, 4, np.uint8))
        how = "data CRC"
    return bytes(b), f"record at byte {pos}: {how}"


def case_tfrecord(rng, seeds, folder: Path):
    src = Path(_pick(rng, seeds["tfrecord"]))
    dest = folder / "data-0.tfrecord"
    r = rng.random()
    must_fail = False
    if r < 0.25:
        data, how = byte_mutation(rng, src.read_bytes())
    elif r < 0.35:
        data, how = truncate(rng, src.read_bytes())
    elif r < 0.55:
        data, how = _frame_edit(rng, src.read_bytes())
    else:
        recs, how, must_fail = _rebuilt(rng, seeds)
        data = b"".join(frame(x) for x in recs)
    dest.write_bytes(data)
    pattern = str(folder / "data-*.tfrecord")
    if rng.random() < 0.2:  # a second, intact file in the glob
        (folder / "data-1.tfrecord").write_bytes(src.read_bytes())
        how += " (+ an intact second file)"
    spec = f"tfrecord:{pattern}"
    if rng.random() < 0.3:
        spec += ",size=28x28,channels=1"
    if rng.random() < 0.5:
        spec += f",cache={_pick(rng, ['auto', 'memory', 'disk', 'none'])}"
    return f"{src.name}: {how}", ["evaluate", seeds["keras"], "--dataset", spec, "--runs", "5"], must_fail
