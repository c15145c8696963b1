"""apl_aml_kaggle: labels from file-name prefixes (not folders), patient groups, unsigned slides
counted, unknown prefixes and case-colliding names refused."""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "apl_aml_kaggle"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path: Path, name: str):
    return convert([SID], tmp_path / "raw", tmp_path / name, ConvertOptions(num_proc=1, progress=False))[0]


def test_prefix_labels_patients_and_report(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    rep = _convert(tmp_path, "out")
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images == 8
    smu = next(r for k, r in rows.items() if "/Lymphocyte/SMU_" in k)
    assert label_name(smu["label"]) == "smudge_cell" and smu["source_label"] == "SMU"  # the prefix wins over the folder
    bne = next(r for k, r in rows.items() if "/BNE_" in k)
    assert label_name(bne["label"]) == "neutrophil_band" and bne["group_id"] == "patient:Patient_12"
    loose = next(r for k, r in rows.items() if "/EO_" in k)
    assert "no_patient" in loose["qc_flags"] and label_name(loose["label"]) == "eosinophil"
    p1 = {r["split"] for k, r in rows.items() if "/Patient_1/" in k}
    assert len(p1) == 1
    assert rep.info["unsigned"] == "1 unlabelled images in Unsigned slides/ (not converted)"
    assert rep.info["folders"] == "(none) (1), Blast (1), Lymphocyte (2), Neutrophil (2), Promyelocyte (2)"
    assert [p for p, _ in rep.inputs.of("skipped")] == ["Signed slides/Patient_1/Blast/Thumbs.db"]


def test_bad_names(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    blast = truth.root / "Signed slides" / "Patient_1" / "Blast"
    img = next(blast.glob("BL_*.jpg"))
    shutil.copy(img, blast / "XYZ_1.jpg")
    with pytest.raises(ConversionError, match="XYZ"):
        _convert(tmp_path, "out1")
    (blast / "XYZ_1.jpg").rename(blast / "cell.jpg")
    with pytest.raises(ConversionError, match=r"cell\.jpg: no <PREFIX>_ in the file name"):
        _convert(tmp_path, "out2")
    (blast / "cell.jpg").rename(blast / img.name.lower())
    with pytest.raises(ConversionError, match="differ only in case"):
        _convert(tmp_path, "out3")
