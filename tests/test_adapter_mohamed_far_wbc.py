"""mohamed_far_wbc: real 1-bit nucleus masks on the BCCD JPEGs (pixel by pixel against an
independent decode, the image bytes are BCCD's), RGBA rule detection, orphans, missing BCCD."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.adapters.base import CorruptInputError
from unihema_data.adapters.mohamed_far_wbc import rgba_mask_values
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.errors import AdapterError
from unihema_data.masks import decode_semantic
from unihema_data.outdir import all_parquet_files

SID = "mohamed_far_wbc"
REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples" / SID
BCCD_JPEGS = REAL / "_companion_images_from_Shenggan_BCCD_Dataset" / "BCCD" / "JPEGImages"


def _rows(out: Path) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()]


def _convert(raw: Path, out: Path):
    return convert([SID], raw, out, ConvertOptions(num_proc=1, progress=False))[0]


def test_real_masks_pixel_identical_on_bccd_images(tmp_path):
    if not REAL.is_dir():
        pytest.skip(f"real sample absent: {REAL}")
    report = _convert(REAL, tmp_path / "out")
    rows = {r["sample_id"]: r for r in _rows(tmp_path / "out")}
    masks = sorted((REAL / "BloodImageSetS6NucSeg_masks").glob("*.png"))
    assert report.total == len(rows) == len(masks) == 8
    assert report.info["images_from:bccd"].endswith("BCCD")
    for m in masks:
        r = rows[f"{SID}/JPEGImages/{m.stem}.jpg"]
        # independent decode: PIL mode "1", True = nucleus
        with Image.open(m) as im:
            assert im.mode == "1"
            truth = np.asarray(im).astype(bool)
        idx = decode_semantic(r["semantic_mask"]["bytes"])
        got = np.array([c == "nucleus" for c in r["mask_classes"]])[idx]
        assert np.array_equal(got, truth), m.name
        assert truth.any() and r["mask_classes"][0] == "background"
        # the image is the BCCD JPEG, kept byte for byte
        jpg = BCCD_JPEGS / f"{m.stem}.jpg"
        assert r["image"]["bytes"] == jpg.read_bytes()
        # registration: the nucleus is darker / bluer than the rest of the field
        rgb = np.asarray(Image.open(io.BytesIO(r["image"]["bytes"])).convert("RGB")).astype(float)
        inside, outside = rgb[truth].mean(axis=0), rgb[~truth].mean(axis=0)
        assert inside[1] < outside[1] - 15 and inside[2] > inside[1], (m.name, inside, outside)


def test_fake_orphans_and_rgba_rules(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    report = _convert(tmp_path / "raw", tmp_path / "out")
    rows = {r["sample_id"]: r for r in _rows(tmp_path / "out")}
    assert len(rows) == truth.num_images
    assert [p for p, _ in report.inputs.of("orphaned")] == ["BloodImageSetS6NucSeg_masks/BloodImage_00409.png"]
    assert report.info["bccd_images_without_mask"] == "1"
    assert "mask_rgba:opaque_gray" in rows[f"{SID}/JPEGImages/BloodImage_00007.jpg"]["qc_flags"]
    assert "mask_rgba:alpha" in rows[f"{SID}/JPEGImages/BloodImage_00011.jpg"]["qc_flags"]
    assert not any(f.startswith("mask_rgba") for f in rows[f"{SID}/JPEGImages/BloodImage_00000.jpg"]["qc_flags"])


def _rgba(path: Path, rgb: np.ndarray, alpha: np.ndarray) -> Path:
    Image.fromarray(np.dstack([rgb, alpha]).astype(np.uint8), "RGBA").save(path)
    return path


def test_rgba_rules_detected_not_assumed(tmp_path):
    m = np.zeros((6, 8, 1), np.uint8)
    m[2:4, 3:6] = 255
    gray3 = np.repeat(m, 3, axis=2)
    vals, rule = rgba_mask_values(_rgba(tmp_path / "a.png", gray3, np.full((6, 8, 1), 255)))
    assert rule == "opaque_gray" and np.array_equal(vals, m[..., 0])
    vals, rule = rgba_mask_values(_rgba(tmp_path / "b.png", np.zeros_like(gray3), m))
    assert rule == "alpha" and np.array_equal(vals, m[..., 0])
    vals, rule = rgba_mask_values(_rgba(tmp_path / "c.png", gray3, m))  # both agree
    assert rule == "alpha" and np.array_equal(vals, m[..., 0])
    with pytest.raises(CorruptInputError, match="d.png.*disagree"):
        rgba_mask_values(_rgba(tmp_path / "d.png", 255 - gray3, m))
    coloured = gray3.copy()
    coloured[0, 0] = (255, 0, 0)
    with pytest.raises(CorruptInputError, match="e.png.*colours"):
        rgba_mask_values(_rgba(tmp_path / "e.png", coloured, np.full((6, 8, 1), 255)))
    half = m.copy()
    half[0, 0] = 128
    with pytest.raises(CorruptInputError, match="f.png.*partial transparency"):
        rgba_mask_values(_rgba(tmp_path / "f.png", np.zeros_like(gray3), half))


def test_missing_bccd_images_is_a_clear_error(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    shutil.rmtree(truth.root / "_bccd")
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "BCCD images not found" in str(ei.value)


def test_mask_size_mismatch_names_both_files(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    Image.fromarray(np.zeros((100, 100), bool)).convert("1").save(
        truth.root / "BloodImageSetS6NucSeg_masks" / "BloodImage_00003.png")
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    msg = str(ei.value)
    assert "BloodImageSetS6NucSeg_masks/BloodImage_00003.png" in msg and "BloodImage_00003.jpg" in msg


@pytest.mark.parametrize("name", ["bLOODiMAGE_00005.jpg", "BloodImage_00005\udce9.jpg"])
def test_case_collision_or_unreadable_name_in_bccd_folder_is_an_error(tmp_path, name):
    import os

    truth = get_adapter(SID).fake(tmp_path / "raw")
    jpegs = truth.root / "_bccd" / "BCCD" / "JPEGImages"
    with open(os.path.join(os.fsencode(jpegs), os.fsencode(name)), "wb") as f:
        f.write((jpegs / "BloodImage_00005.jpg").read_bytes())
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "BloodImage_00005" in str(ei.value) or "bLOODiMAGE_00005" in str(ei.value)
