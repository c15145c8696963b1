"""cbc_alam: per-split VOC folders, Validation images that are copies of Training ones (the split
policy keeps each pair in one split, flagged), the 1-pixel box, split folders as published splits."""
from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files

SID = "cbc_alam"


def _convert(tmp_path, mutate=None):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=5)
    if mutate:
        mutate(truth.root)
    rep = convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    rows = {r["sample_id"]: r for f in all_parquet_files(tmp_path / "out") if f.parent.name == SID
            for r in pq.read_table(f).to_pylist()}
    return truth, rep, rows


def test_validation_copies_share_one_split(tmp_path):
    truth, rep, rows = _convert(tmp_path)
    assert len(rows) == 10
    assert rep.inputs.info["validation_in_training"].startswith("2 of 2 Validation images")
    for stem in ("BloodImage_00001", "BloodImage_00007"):
        tr, va = rows[f"{SID}/Training/Images/{stem}.jpg"], rows[f"{SID}/Validation/Images/{stem}.jpg"]
        assert tr["image_sha256"] == va["image_sha256"]
        assert (tr["source_split"], va["source_split"]) == ("Training", "Validation")
        # published validation outranks published train: the training copy moves, flagged
        assert tr["split"] == va["split"] == "validation"
        assert f"duplicate_of:{SID}/Validation/Images/{stem}.jpg" in tr["qc_flags"]
        assert any(f.startswith("split_moved:train->validation:duplicate:") for f in tr["qc_flags"])
        assert not any(f.startswith("label_conflict") for f in tr["qc_flags"])
    assert rows[f"{SID}/Testing/Images/BloodImage_00020.jpg"]["split"] == "test"
    assert rows[f"{SID}/Training/Images/BloodImage_00003.jpg"]["split"] == "train"


def test_one_pixel_box_kept(tmp_path):
    _, _, rows = _convert(tmp_path)
    r = rows[f"{SID}/Training/Images/BloodImage_00338.jpg"]
    assert r["objects"]["bbox"][-1] == pytest.approx([503, 336, 1, 1])


def test_validation_annotation_disagreeing_with_training_is_a_conflict(tmp_path):
    def edit(root):
        xml = root / "Validation" / "Annotations" / "BloodImage_00001.xml"
        xml.write_text(xml.read_text().replace("<name>WBC</name>", "<name>RBC</name>", 1))
    _, _, rows = _convert(tmp_path, edit)
    tr = rows[f"{SID}/Training/Images/BloodImage_00001.jpg"]
    assert any(f.startswith(f"label_conflict:{SID}/Validation/Images/BloodImage_00001.jpg") for f in tr["qc_flags"])


def test_missing_testing_folder_is_named(tmp_path):
    with pytest.raises(ConversionError, match="Testing"):
        _convert(tmp_path, lambda root: shutil.rmtree(root / "Testing"))


def test_xml_without_image_names_the_file(tmp_path):
    with pytest.raises(ConversionError, match="BloodImage_00024.xml"):
        _convert(tmp_path, lambda root: (root / "Testing" / "Images" / "BloodImage_00024.jpg").unlink())
