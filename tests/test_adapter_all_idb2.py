"""all_idb2: real masks (third-party RGB TIFF) decoded pixel by pixel against an independent
decode, and the layout quirks (images found by content, orphans both ways, masks-only download,
unknown colours, size mismatch, two copies)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.adapters._synthetic import single_cell
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.errors import AdapterError
from unihema_data.masks import decode_semantic
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "all_idb2"
REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples" / SID
#: the README's colour code, written out independently of the adapter
COLOURS = {"background": (255, 255, 255), "nucleus": (0, 255, 255), "cytoplasm": (0, 0, 255)}


def _rows(out: Path) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()]


def _convert(raw: Path, out: Path):
    return convert([SID], raw, out, ConvertOptions(num_proc=1, progress=False))[0]


def _with_images(tmp: Path, masks: list[Path], suffix: str = ".tif") -> Path:
    """A download folder: the given masks under ``ALL-IDB2_masks-x/gt`` and synthetic images of
    the same sizes under ``ALL_IDB2/img`` (the real images are request-only)."""
    root = tmp / "dl"
    gt, img = root / "ALL-IDB2_masks-x" / "gt", root / "ALL_IDB2" / "img"
    gt.mkdir(parents=True)
    img.mkdir(parents=True)
    for k, m in enumerate(masks):
        shutil.copyfile(m, gt / m.name)
        w, h = Image.open(m).size
        single_cell(w, "wbc", k, size_h=h).save(img / f"{m.stem}{suffix}")
    return root


def test_real_masks_pixel_identical(tmp_path):
    if not REAL.is_dir():
        pytest.skip(f"real sample absent: {REAL}")
    masks = sorted((REAL / "gt").glob("Im*.tif"))
    assert len(masks) == 8
    raw = _with_images(tmp_path, masks)
    report = _convert(raw, tmp_path / "out")
    rows = {r["sample_id"]: r for r in _rows(tmp_path / "out")}
    assert report.total == len(rows) == 8
    for m in masks:
        r = rows[f"{SID}/ALL_IDB2/img/{m.name}"]
        rgb = np.asarray(Image.open(m).convert("RGB"))
        idx = decode_semantic(r["semantic_mask"]["bytes"])
        back = np.array([COLOURS[c] for c in r["mask_classes"]], dtype=np.uint8)[idx]
        assert np.array_equal(back, rgb), m.name
        # every pixel is one of the three documented colours, each class present
        assert set(r["mask_classes"]) == {"background", "nucleus", "cytoplasm"}
        suffix = m.stem.rsplit("_", 1)[1]
        assert r["source_label"] == suffix
        assert label_name(r["label"]) == {"1": "lymphoblast", "0": "wbc"}[suffix]
        assert r["disease"] == ("leukemia" if suffix == "1" else "normal")
    assert report.info["layout"] == "images in ALL_IDB2/img/, masks in ALL-IDB2_masks-x/gt/"
    assert report.info["image_suffixes"] == ".tif"


def test_fake_quirks_reported(tmp_path):
    a = get_adapter(SID)
    truth = a.fake(tmp_path / "raw")
    report = _convert(tmp_path / "raw", tmp_path / "out")
    rows = {r["sample_id"]: r for r in _rows(tmp_path / "out")}
    assert len(rows) == truth.num_images == 5
    orphans = dict(report.inputs.of("orphaned"))
    assert "ALL-IDB2_masks-52437ef/gt/Im200_0.tif" in orphans  # mask without an image
    assert "ALL_IDB2/img/Im133_0.tif" in orphans               # image without a mask
    assert rows[f"{SID}/ALL_IDB2/img/Im133_0.tif"]["semantic_mask"] is None
    assert label_name(rows[f"{SID}/ALL_IDB2/img/Im133_0.tif"]["label"]) == "wbc"
    r = rows[f"{SID}/ALL_IDB2/img/Im002_1.tif"]  # the non-square crop
    assert (r["width"], r["height"]) == (257, 250)
    assert decode_semantic(r["semantic_mask"]["bytes"]).shape == (250, 257)


def test_jpeg_images_detected_and_reported(tmp_path):
    if not REAL.is_dir():
        pytest.skip(f"real sample absent: {REAL}")
    raw = _with_images(tmp_path, sorted((REAL / "gt").glob("Im00*.tif"))[:2], suffix=".jpg")
    report = _convert(raw, tmp_path / "out")
    assert report.total == 2 and report.info["image_suffixes"] == ".jpg"


def test_masks_only_download_is_a_clear_error(tmp_path):
    a = get_adapter(SID)
    truth = a.fake(tmp_path / "raw")
    shutil.rmtree(truth.root / "ALL_IDB2")
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    msg = str(ei.value)
    assert "no ALL-IDB2 images" in msg and "request-only" in msg and "gt" in msg
    assert not (tmp_path / "out" / "data").exists()


def test_unknown_colour_names_file_and_colour(tmp_path):
    a = get_adapter(SID)
    truth = a.fake(tmp_path / "raw")
    m = truth.root / "ALL-IDB2_masks-52437ef" / "gt" / "Im131_0.tif"
    rgb = np.asarray(Image.open(m).convert("RGB")).copy()
    rgb[0, 0] = (255, 0, 0)
    Image.fromarray(rgb).save(m, compression="packbits")
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "Im131_0.tif" in str(ei.value) and "(255, 0, 0)" in str(ei.value)


def test_size_mismatch_names_both_files(tmp_path):
    a = get_adapter(SID)
    truth = a.fake(tmp_path / "raw")
    single_cell(60, "wbc", 1).save(truth.root / "ALL_IDB2" / "img" / "Im132_0.tif")  # mask is 64x64
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    msg = str(ei.value)
    assert "gt/Im132_0.tif" in msg and "img/Im132_0.tif" in msg and "64x64" in msg and "60x60" in msg


def test_two_image_copies_are_ambiguous(tmp_path):
    a = get_adapter(SID)
    truth = a.fake(tmp_path / "raw")
    shutil.copytree(truth.root / "ALL_IDB2" / "img", truth.root / "ALL_IDB2" / "img copy")
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "two image folders" in str(ei.value) and "img copy" in str(ei.value)


def test_bad_image_name_is_an_error(tmp_path):
    a = get_adapter(SID)
    truth = a.fake(tmp_path / "raw")
    img = truth.root / "ALL_IDB2" / "img"
    shutil.copyfile(img / "Im001_1.tif", img / "Im001_1 (2).tif")
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    # a name outside ImNNN_Y has no label: an error naming the file, never a guess
    assert "Im001_1 (2).tif" in str(ei.value) and "ImNNN_0 or ImNNN_1" in str(ei.value)
