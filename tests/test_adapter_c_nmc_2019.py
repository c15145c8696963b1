"""c_nmc_2019: folds as train subsets, the prelim-test CSV as validation, subject groups from the
file names, name/label disagreements flagged, per-image diagnosis, bad CSV rows refused."""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.adapters.c_nmc_2019 import PRELIM_CSV, subject_of
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "c_nmc_2019"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path: Path, name: str):
    return convert([SID], tmp_path / "raw", tmp_path / name, ConvertOptions(num_proc=1, progress=False))[0]


def test_subject_of():
    assert subject_of("UID_11_10_1_all.bmp") == ("11", "all")
    assert subject_of("UID_H10_3_2_hem.bmp") == ("H10", "hem")
    assert subject_of("1.bmp") == ("", None)


def test_fake_conversion(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    rep = _convert(tmp_path, "out")
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images == 9
    tr = f"{SID}/C-NMC_training_data"
    r = rows[f"{tr}/fold_0/all/UID_11_10_1_all.bmp"]
    assert (label_name(r["label"]), r["disease"], r["split"], r["subset"], r["group_id"]) == \
        ("lymphoblast", "all", "train", "fold_0", "subject:11")
    r = rows[f"{tr}/fold_0/hem/UID_H10_3_2_hem.bmp"]
    assert (label_name(r["label"]), r["disease"], r["group_id"]) == ("b_lymphoid_precursor", "normal", "subject:H10")
    assert "name_label_conflict:hem" in rows[f"{tr}/fold_1/all/UID_57_29_1_hem.bmp"]["qc_flags"]
    assert "no_subject_id" in rows[f"{tr}/fold_2/all/cell_9.bmp"]["qc_flags"]
    p = rows[f"{SID}/C-NMC_test_prelim_phase_data/2.bmp"]
    assert (p["source_label"], label_name(p["label"]), p["split"], p["subset"], p["group_id"], p["disease"]) == \
        ("0", "b_lymphoid_precursor", "validation", "test_prelim_phase", "subject:H30", "normal")
    assert all(r["image"]["path"].endswith(".png") for r in rows.values())
    assert rep.info["subjects_across_folds"] == "1 of 4: 11"
    assert rep.info["folds"] == "fold_0, fold_1, fold_2"
    assert rep.info["final_test"].startswith("2 unlabeled images")
    assert dict(rep.inputs.of("orphaned")) == {f"{PRELIM_CSV}:5": "4.bmp is absent"}


def test_bad_input(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    csvp = truth.root / PRELIM_CSV
    good = csvp.read_text()
    csvp.write_text(good.replace("labels", "label", 1))
    with pytest.raises(ConversionError, match=f"{PRELIM_CSV}:1: header .* lacks column\\(s\\) labels"):
        _convert(tmp_path, "out1")
    csvp.write_text(good.replace("2.bmp,0", "1.bmp,0"))
    with pytest.raises(ConversionError, match=f"{PRELIM_CSV}:3: 1.bmp is already listed on line 2"):
        _convert(tmp_path, "out2")
    csvp.write_text(good)
    (truth.root / "C-NMC_training_data" / "fold_0" / "blast").mkdir()
    with pytest.raises(ConversionError, match="unknown class folder 'blast'"):
        _convert(tmp_path, "out3")
