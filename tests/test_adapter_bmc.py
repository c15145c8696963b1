"""bmc: flat and range sub-folder layouts, BMC's own code table (not LMU's), file-code and
range quirks flagged, unknown class folders refused (no real sample is available)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name
from unihema_data.taxonomy import UnmappedLabelError, load_taxonomy

SID = "bmc"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path: Path, name: str):
    return convert([SID], tmp_path / "raw", tmp_path / name, ConvertOptions(num_proc=1, progress=False))[0]


def test_codes_map_through_bmc_own_table():
    tax = load_taxonomy()
    assert tax.map_label(SID, "MYB") == "myelocyte" and tax.map_label(SID, "BLA") == "blast"
    assert tax.map_label(SID, "FGC") == "faggot_cell" and tax.map_label(SID, "ART") == "artifact"
    # LMU's MYO (myeloblast) is not a BMC code: it must not map silently
    with pytest.raises(UnmappedLabelError):
        tax.map_label(SID, "MYO")
    from unihema_data.adapters.bmc import CLASSES
    assert len(CLASSES) == 21 and all(tax.map_label(SID, c) for c in CLASSES)


def test_range_folders_flags_and_report(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    rep = _convert(tmp_path, "out")
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images
    tax = load_taxonomy()
    for rel, s in truth.samples.items():
        r = rows[f"{SID}/{rel}"]
        assert r["source_label"] == rel.split("/")[0] and label_name(r["label"]) == tax.map_label(SID, s.label)
    assert "file_code_conflict:EBO" in rows[f"{SID}/PEB/EBO_00002.jpg"]["qc_flags"]
    assert "outside_range_folder:0001-1000" in rows[f"{SID}/NGS/0001-1000/NGS_02500.jpg"]["qc_flags"]
    clean = rows[f"{SID}/ART/1001-2000/ART_01500.jpg"]["qc_flags"]
    assert not any(f.startswith(("file_code", "outside_range")) for f in clean)
    assert rep.info["range_folders"] == "ART, NGS"
    assert rep.info["classes"].startswith("7 of 21: ART, BLA, FGC")
    skipped = dict(rep.inputs.of("skipped"))
    assert ".DS_Store" in skipped and "ART/notes/" in skipped
    assert "abbreviations.csv" not in skipped


def test_lmu_tree_is_not_taken_for_bmc(tmp_path):
    """LMU has 3-letter folders too, but annotations.dat and no BMC-only code."""
    get_adapter("aml_cytomorphology_lmu").fake(tmp_path / "raw" / "x", seed=0)
    with pytest.raises(Exception, match="native layout not found"):
        get_adapter(SID).locate(tmp_path / "raw")


def test_unknown_class_folder_fails_naming_it(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    (truth.root / "MYO").mkdir()
    shutil.copy(next((truth.root / "FGC").glob("*.jpg")), truth.root / "MYO" / "MYO_00001.jpg")
    with pytest.raises(ConversionError, match="unknown class folder 'MYO'"):
        _convert(tmp_path, "out")
