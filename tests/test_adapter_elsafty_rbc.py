"""elsafty_rbc: the documented crop form (UNCONFIRMED release layout): shape folders and slide
folders detected and reported, the cell mask read from the cleared background (white or black,
detected per crop) and checked against the image pixels, slide groups, and a clear error for
every form outside the documented one. No real sample exists."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.masks import decode_rle, decode_semantic
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "elsafty_rbc"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path: Path, name: str = "out"):
    return convert([SID], tmp_path / "raw", tmp_path / name, ConvertOptions(num_proc=1, progress=False))[0]


def test_layout_masks_and_groups(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    rep = _convert(tmp_path)
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images == 7
    assert rep.info["layout"] == "classified crops in 4 shape folder(s); unclassified crops in 1 slide folder(s)"
    assert [p for p, _ in rep.inputs.of("skipped")] == ["boxes.csv"]
    for rel in truth.samples:
        r = rows[f"{SID}/{rel}"]
        folder = rel.split("/")[0]
        rgb = np.asarray(Image.open(truth.root / rel).convert("RGB"))
        bg = (0, 0, 0) if folder == "Teardrop" else (255, 255, 255)
        assert f"mask_background:{'black' if folder == 'Teardrop' else 'white'}" in r["qc_flags"]
        cell = ~(rgb == bg).all(axis=2)  # independent reading of the rule
        idx = decode_semantic(r["semantic_mask"]["bytes"])
        assert np.array_equal(idx == r["mask_classes"].index("rbc"), cell)
        assert np.array_equal(decode_rle(r["objects"]["mask_rle"][0], r["height"], r["width"]), cell)
        assert r["objects"]["bbox_source"] == ["from_mask"]
        slide = int(rel.rsplit("/", 1)[1].split("Slide ")[1].split(" ")[0])
        assert r["group_id"] == f"slide:{slide}"
        if folder.startswith("Slide"):
            assert r["label"] == -1 and r["objects"]["source_category"] == ["rbc"]
            assert r["tasks"] == ["detection", "segmentation"]
        else:
            assert r["source_label"] == folder and r["objects"]["source_category"] == [folder]
            assert r["tasks"] == ["detection", "segmentation", "classification"]
    assert label_name(rows[next(k for k in rows if "/Teardrop/" in k)]["label"]) == "teardrop_cell"
    # crops of one slide share a split
    by_slide: dict[str, set] = {}
    for r in rows.values():
        by_slide.setdefault(r["group_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_slide.values())


def test_unknown_folder_names_it(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    (truth.root / "Circular").rename(truth.root / "Knizocyte")
    with pytest.raises(ConversionError) as ei:
        _convert(tmp_path)
    assert "'Knizocyte'" in str(ei.value) and "UNCONFIRMED" in str(ei.value)


def test_bad_crop_name_and_lossy_crop(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=3)
    crop = next((truth.root / "Circular").iterdir())
    shutil.copyfile(crop, crop.parent / "cell_7.png")
    with pytest.raises(ConversionError, match=r"cell_7\.png: unexpected crop name"):
        _convert(tmp_path)
    (crop.parent / "cell_7.png").unlink()
    Image.open(crop).convert("RGB").save(crop.parent / "999Slide 1 (1,2,3,4,5).jpg", quality=95)
    with pytest.raises(ConversionError, match=r"999Slide 1 \(1,2,3,4,5\)\.jpg: a \.jpg crop is lossy"):
        _convert(tmp_path, "out2")


def test_crop_without_cleared_background(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=4)
    crop = next((truth.root / "Elongated").iterdir())
    a = np.asarray(Image.open(crop).convert("RGB")).copy()
    a[(a == 255).all(axis=2)] = (250, 240, 245)  # a plain field crop: no exact background colour
    Image.fromarray(a).save(crop)
    with pytest.raises(ConversionError) as ei:
        _convert(tmp_path)
    assert crop.name in str(ei.value) and "no pure white or black background" in str(ei.value)
