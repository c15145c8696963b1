"""cbc_alam: per-split VOC folders, Validation images that are copies of Training ones (the split
policy keeps each pair in one split, flagged), the 1-pixel box, split folders as published splits."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

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


@pytest.mark.skipif(not os.environ.get("UNIHEMA_CBC_ALAM_FULL"), reason="set UNIHEMA_CBC_ALAM_FULL to the repository")
def test_full_release(tmp_path):
    """The whole GitHub release (ac6f9ff): every box against an independent ElementTree reading
    (VOC 1-based inclusive corners -> COCO), split by folder, validation copies resolved."""
    import xml.etree.ElementTree as ET

    root = Path(os.environ["UNIHEMA_CBC_ALAM_FULL"])
    rep = convert([SID], root, tmp_path / "out", ConvertOptions(num_proc=2, progress=False))[0]
    rows = {r["sample_id"]: r for f in all_parquet_files(tmp_path / "out") if f.parent.name == SID
            for r in pq.read_table(f).to_pylist()}
    xmls = sorted(Path(rep.root).glob("*/Annotations/*.xml"))
    assert len(rows) == len(xmls) == rep.total == 420
    n = 0
    for x in xmls:
        split = x.parent.parent.name
        r = rows[f"{SID}/{split}/Images/{x.stem}.jpg"]
        want, names = [], []
        for o in ET.parse(x).getroot().iter("object"):
            b = [float(o.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
            want.append([b[0] - 1, b[1] - 1, b[2] - b[0] + 1, b[3] - b[1] + 1])
            names.append(o.findtext("name").strip())
        got = r["objects"]["bbox"]
        assert len(got) == len(want) and r["objects"]["source_category"] == names, x.name
        assert all(g == pytest.approx(w, abs=0.5) for g, w in zip(got, want)), x.name
        assert r["source_split"] == split
        n += len(want)
    assert n == sum(len(r["objects"]["bbox"]) for r in rows.values())
    assert rep.inputs.info["validation_in_training"].startswith("60 of 60 Validation images")
    for r in rows.values():  # each validation copy and its training original share one split
        if r["source_split"] == "Validation":
            assert rows[r["sample_id"].replace("/Validation/", "/Training/")]["split"] == r["split"]
