"""aml_hehr: patient-level groups as diagnosis (cell type unlabeled), patient groups kept in one
split, a patient under two groups flagged, unknown group folders refused."""
from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "aml_hehr"
DX = {"control": "control", "CBFB_MYH11": "aml_cbfb_myh11", "NPM1": "aml_npm1", "PML_RARA": "apl_pml_rara",
      "RUNX1_RUNX1T1": "aml_runx1_runx1t1"}


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path: Path, name: str):
    return convert([SID], tmp_path / "raw", tmp_path / name, ConvertOptions(num_proc=1, progress=False))[0]


def test_diagnosis_patients_and_report(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    rep = _convert(tmp_path, "out")
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images == 8
    splits = defaultdict(set)
    for rel, s in truth.samples.items():
        r = rows[f"{SID}/{rel}"]
        group, patient = rel.split("/")[1:3]
        assert label_name(r["label"]) == "unlabeled" and r["source_label"] == group
        assert r["disease"] == DX[group] and r["group_id"] == f"patient:{patient}"
        assert "reencoded_from:tiff" in r["qc_flags"]
        splits[patient].add(r["split"])
    assert all(len(s) == 1 for s in splits.values())
    assert rep.info["patients_per_group"] == "control: 1, NPM1: 2, PML_RARA: 1, RUNX1_RUNX1T1: 1"
    assert rep.info["cells_per_patient"] == "1-2"
    assert [p for p, _ in rep.inputs.of("skipped")] == ["data/NPM1/AEC/Thumbs.db"]


def test_patient_in_two_groups_flagged_and_unknown_group_refused(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    data = truth.root / "data"
    shutil.copytree(data / "control" / "AQK", data / "NPM1" / "AQK")
    rep = _convert(tmp_path, "out")
    rows = _rows(tmp_path / "out")
    aqk = [r for k, r in rows.items() if "/AQK/" in k]
    assert len(aqk) == 4 and all("patient_in_groups:NPM1,control" in r["qc_flags"] for r in aqk)
    assert ("data/*/AQK", "patient folder under several groups: NPM1,control") in rep.inputs.of("flagged")
    (data / "FLT3").mkdir()
    shutil.copytree(data / "control" / "AQK", data / "FLT3" / "ZZZ")
    with pytest.raises(ConversionError, match="unknown class folder 'FLT3'"):
        _convert(tmp_path, "out2")
