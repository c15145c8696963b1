"""raabin_wbc_det (and the shared Roboflow COCO base): split folders, the project supercategory,
augmented copies grouped by their original stem, exports told apart by class names, a missing
split folder, and an annotation that uses the supercategory failing loudly."""
from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.adapters._roboflow import original_stem
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "raabin_wbc_det"


def _fake(tmp_path, sid=SID, mutate=None):
    truth = get_adapter(sid).fake(tmp_path / "raw" / sid, seed=9)
    if mutate:
        mutate(truth.root)
    rep = convert([sid], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    rows = {r["sample_id"]: r for f in all_parquet_files(tmp_path / "out") if f.parent.name == sid
            for r in pq.read_table(f).to_pylist()}
    return truth, rep, rows


def test_original_stem():
    assert original_stem("BloodImage_0001_jpg.rf.0a1b2c3d4e5f.jpg") == "BloodImage_0001"
    assert original_stem("IMG_1_png.rf.ABCDEF.jpg") == "IMG_1"
    assert original_stem("plain.jpg") == "plain"


def test_splits_groups_and_report(tmp_path):
    truth, rep, rows = _fake(tmp_path)
    assert rep.inputs.info["splits"] == "train, valid, test"
    assert rep.inputs.info["supercategory"].startswith("wbc (Roboflow project category")
    copies = [r for r in rows.values() if r["group_id"] == "BloodImage_0001"]
    assert len(copies) == 2 and {r["split"] for r in copies} == {"train"}
    assert {r["split"] for r in rows.values()} == {"train", "validation", "test"}
    assert {label_name(c) for r in rows.values() for c in r["objects"]["category"]} <= \
        {"basophil", "eosinophil", "lymphocyte", "monocyte", "neutrophil"}


def test_missing_split_folder_is_fine(tmp_path):
    _, rep, rows = _fake(tmp_path, mutate=lambda root: shutil.rmtree(root / "valid"))
    assert rep.inputs.info["splits"] == "train, test" and len(rows) == 6


def test_supercategory_used_by_an_annotation_fails(tmp_path):
    def edit(root):
        p = root / "train" / "_annotations.coco.json"
        d = json.loads(p.read_text())
        d["annotations"][0]["category_id"] = 0
        p.write_text(json.dumps(d))
    with pytest.raises(ConversionError, match="unmapped label 'wbc'"):
        _fake(tmp_path, mutate=edit)


def test_two_roboflow_exports_side_by_side(tmp_path):
    raw = tmp_path / "raw"
    for sid in ("raabin_wbc_det", "parasite_roboflow"):
        t = get_adapter(sid).fake(tmp_path / "gen" / sid, seed=1)
        shutil.copytree(t.root, raw / t.root.name)
    assert get_adapter("raabin_wbc_det").locate(raw).name == "raabin-wbc-data.v1i.coco"
    assert get_adapter("parasite_roboflow").locate(raw).name == "parasite-detection.v2i.coco"


def test_size_mismatch_names_json_and_image(tmp_path):
    def edit(root):
        p = root / "test" / "_annotations.coco.json"
        d = json.loads(p.read_text())
        d["images"][0]["width"] = 100
        p.write_text(json.dumps(d))
    with pytest.raises(ConversionError, match=r"_annotations\.coco\.json: image test/.* is 575x575 but the JSON says 100x575"):
        _fake(tmp_path, mutate=edit)


def test_annotation_of_unknown_image_is_an_error(tmp_path):
    def edit(root):
        p = root / "valid" / "_annotations.coco.json"
        d = json.loads(p.read_text())
        d["annotations"][0]["image_id"] = 12345678901234567890
        p.write_text(json.dumps(d))
    with pytest.raises(ConversionError, match=r"valid/_annotations\.coco\.json: annotation 0 names unknown image_id"):
        _fake(tmp_path, mutate=edit)


def test_split_folder_without_json_is_an_error(tmp_path):
    def edit(root):
        (root / "test" / "_annotations.coco.json").rename(root / "test" / "annotations.json")
    with pytest.raises(ConversionError, match=r"test/_annotations\.coco\.json is missing"):
        _fake(tmp_path, mutate=edit)
