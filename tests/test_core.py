"""Core building blocks: box conventions, image storage, masks, splits, schema."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from unihema_data.boxes import BoxFormat, box_inside, clip_coco, from_coco, to_coco
from unihema_data.images import ImageDecodeError, decode, image_from_bytes
from unihema_data.masks import decode_rle, decode_semantic, encode_rle, encode_semantic, rle_bbox
from unihema_data.schema import ARROW_SCHEMA, FEATURES, SCHEMA_VERSION, empty_row
from unihema_data.splits import grouped_split, normalize_split


@pytest.mark.parametrize("fmt", list(BoxFormat))
def test_box_round_trip(fmt):
    rng = np.random.default_rng(0)
    W, H = 640, 480
    for _ in range(200):
        coco = [float(rng.integers(0, 500)), float(rng.integers(0, 400)), float(rng.integers(1, 100)), float(rng.integers(1, 80))]
        native = from_coco(coco, fmt, W, H)
        assert np.allclose(to_coco(native, fmt, W, H), coco, atol=1e-9)


def test_voc_is_one_based_inclusive():
    # VOC pixels 1..640 cover the whole 640-wide image; xmin == xmax is a 1-pixel box
    assert to_coco([1, 1, 640, 480], "voc", 640, 480) == [0.0, 0.0, 640.0, 480.0]
    assert to_coco([504, 337, 504, 337], "voc", 640, 480) == [503.0, 336.0, 1.0, 1.0]
    assert to_coco([0.5, 0.5, 1.0, 1.0], "yolo", 640, 480) == [0.0, 0.0, 640.0, 480.0]


def test_clip_and_inside():
    box, clipped = clip_coco([-5, 10, 20, 20], 100, 100)
    assert clipped and box == [0.0, 10.0, 15.0, 20.0]
    assert clip_coco([1, 1, 5, 5], 100, 100) == ([1.0, 1.0, 5.0, 5.0], False)
    assert box_inside([0, 0, 100, 100], 100, 100) and not box_inside([0, 0, 101, 100], 100, 100)


def _encode(im, fmt, **kw):
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_browser_formats_keep_bytes():
    im = Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    for fmt in ("JPEG", "PNG"):
        data = _encode(im, fmt)
        st = image_from_bytes(data, f"x.{fmt.lower()}")
        assert st.data == data and not st.reencoded and (st.width, st.height) == (30, 20)


@pytest.mark.parametrize("fmt,mode", [("BMP", "RGB"), ("TIFF", "RGB"), ("TIFF", "L"), ("TIFF", "I;16")])
def test_reencode_is_lossless(fmt, mode):
    rng = np.random.default_rng(2)
    if mode == "I;16":
        arr = rng.integers(0, 65535, (17, 23), dtype=np.uint16)
        im = Image.fromarray(arr)
    elif mode == "L":
        arr = rng.integers(0, 255, (17, 23), dtype=np.uint8)
        im = Image.fromarray(arr, "L")
    else:
        arr = rng.integers(0, 255, (17, 23, 3), dtype=np.uint8)
        im = Image.fromarray(arr, "RGB")
    data = _encode(im, fmt)
    st = image_from_bytes(data, f"x.{fmt.lower()}")
    assert st.reencoded and decode(st.data).format == "PNG"
    assert np.array_equal(np.asarray(decode(st.data)), np.asarray(Image.open(io.BytesIO(data))))


def test_corrupt_image_names_file():
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        image_from_bytes(b"\xff\xd8\xff\xe0garbage", "broken.jpg")


def test_masks_round_trip():
    rng = np.random.default_rng(3)
    m = rng.random((31, 47)) > 0.6
    rle = encode_rle(m)
    assert np.array_equal(decode_rle(rle, 31, 47), m)
    one = np.zeros((10, 10), bool)
    one[2:5, 3:9] = True
    assert rle_bbox(encode_rle(one), 10, 10) == [3.0, 2.0, 6.0, 3.0]
    idx = rng.integers(0, 3, (13, 9)).astype(np.uint8)
    assert np.array_equal(decode_semantic(encode_semantic(idx)), idx)


def test_splits():
    assert normalize_split("val") == "validation" and normalize_split("Train") == "train" and normalize_split("x") == ""
    got = [grouped_split("src", f"g{i}") for i in range(2000)]
    assert got == [grouped_split("src", f"g{i}") for i in range(2000)]  # deterministic
    frac = {s: got.count(s) / len(got) for s in ("train", "validation", "test")}
    assert 0.76 < frac["train"] < 0.84 and 0.07 < frac["validation"] < 0.13 and 0.07 < frac["test"] < 0.13
    assert got != [grouped_split("src", f"g{i}", seed=1) for i in range(2000)]


def test_schema_single_definition():
    assert ARROW_SCHEMA.metadata[b"unihema_schema_version"].decode() == SCHEMA_VERSION
    assert ARROW_SCHEMA.remove_metadata().equals(FEATURES.arrow_schema.remove_metadata())
    # built without `datasets`, yet byte for byte what datasets.Features gives (Hub metadata included)
    assert ARROW_SCHEMA.metadata[b"huggingface"] == FEATURES.arrow_schema.metadata[b"huggingface"]
    assert set(ARROW_SCHEMA.metadata) == {b"huggingface", b"unihema_schema_version"}
    row = empty_row()
    assert set(row) == set(FEATURES) and set(row["objects"]) == set(FEATURES["objects"])
    import pyarrow as pa

    row.update(image={"bytes": b"x", "path": "a.png"}, split="train")
    t = pa.Table.from_pylist([row], schema=ARROW_SCHEMA)
    assert t.num_rows == 1 and t.schema.field("objects").type.field("bbox").type.value_type.list_size == 4


@pytest.mark.parametrize("fmt", ["JPEG", "GIF"])
def test_truncated_file_is_caught(fmt):
    im = Image.fromarray(np.random.default_rng(4).integers(0, 255, (64, 80, 3), dtype=np.uint8))
    data = _encode(im.convert("P") if fmt == "GIF" else im, fmt)
    image_from_bytes(data, "ok")  # the intact file passes
    with pytest.raises(ImageDecodeError, match="cut.x"):
        image_from_bytes(data[: int(len(data) * 0.6)], "cut.x")


def test_exif_orientation_is_reset_in_place():
    arr = np.random.default_rng(5).integers(0, 255, (30, 50, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(Image.fromarray(arr), "JPEG", exif=exif.tobytes(), quality=95)
    st = image_from_bytes(data, "rot.jpg")
    assert st.flags == ["exif_orientation_reset:6"] and len(st.data) == len(data) and st.data != data
    assert st.sha256 == __import__("hashlib").sha256(data).hexdigest()  # hash of the native bytes
    stored = decode(st.data)
    assert stored.size == (50, 30) == (st.width, st.height)  # no rotation on decode any more
    assert np.array_equal(np.asarray(stored), np.asarray(Image.open(io.BytesIO(data))))


def test_lossy_reencodings_are_refused():
    rgb16 = np.random.default_rng(6).integers(0, 65535, (8, 9, 3), dtype=np.uint16)
    tifffile = pytest.importorskip("tifffile")

    buf = io.BytesIO()
    tifffile.imwrite(buf, rgb16, photometric="rgb")
    with pytest.raises(ImageDecodeError, match="16.*colour TIFF|cannot be stored losslessly"):
        image_from_bytes(buf.getvalue(), "rgb16.tif")
    cmyk = Image.new("CMYK", (5, 5), (10, 20, 30, 40))
    with pytest.raises(ImageDecodeError, match="CMYK"):
        image_from_bytes(_encode(cmyk, "TIFF"), "cmyk.tif")
    f32 = Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32))
    with pytest.raises(ImageDecodeError, match="mode F"):
        image_from_bytes(_encode(f32, "TIFF"), "float.tif")
    frames = [Image.new("L", (4, 4), v) for v in (1, 2)]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageDecodeError, match="2 pages"):
        image_from_bytes(buf.getvalue(), "pages.tif")
