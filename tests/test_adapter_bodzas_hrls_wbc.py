"""bodzas_hrls_wbc: both UNCONFIRMED class-folder layouts detected and reported, labels through
the alias table (independent reading of the folder names), unknown class folders refused."""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "bodzas_hrls_wbc"
#: the research note's table (taxonomy.md, Bodzas HRLS), written out independently of taxonomy.yaml
EXPECTED = {"segmented neutrophils": "neutrophil_segmented", "lymphocyte, variant": "lymphocyte_atypical",
            "blast, no lineage spec": "blast", "giant thrombocyte": "platelet_giant", "normoblast": "erythroblast"}


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path: Path, name: str = "out"):
    return convert([SID], tmp_path / "raw", tmp_path / name, ConvertOptions(num_proc=1, progress=False))[0]


def _check(root: Path, rows: dict[str, dict], patient_level: bool) -> None:
    files = sorted(p for p in root.rglob("*.jpg"))
    assert set(rows) == {f"{SID}/{p.relative_to(root).as_posix()}" for p in files}
    for p in files:
        r = rows[f"{SID}/{p.relative_to(root).as_posix()}"]
        assert r["source_label"] == p.parent.name
        assert label_name(r["label"]) == EXPECTED[p.parent.name.lower()]
        assert r["group_id"] == (p.parent.parent.name if patient_level else p.relative_to(root).as_posix())


def test_patient_layout(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    rep = _convert(tmp_path)
    rows = _rows(tmp_path / "out")
    _check(truth.root, rows, patient_level=True)
    assert rep.inputs.info["layout"] == "by_patient (<patient>/<class>/<image>)"
    assert ("P01/segmented neutrophils/notes.txt", "not an image file (extension .txt)") in rep.inputs.of("skipped")
    assert len({r["split"] for r in rows.values() if r["group_id"] == "P01"}) == 1


def test_class_layout(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "fake" / SID, seed=1)
    flat = tmp_path / "raw" / SID / "HRLS_by_class"
    for p in truth.root.glob("*/*/*.jpg"):
        (flat / p.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, flat / p.parent.name / p.name)
    rep = _convert(tmp_path)
    assert rep.inputs.info["layout"] == "by_class (<class>/<image>)"
    assert Path(rep.root) == flat
    _check(flat, _rows(tmp_path / "out"), patient_level=False)


def test_unknown_class_folder_names_it(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    (truth.root / "P02" / "giant thrombocyte").rename(truth.root / "P02" / "megakaryocyte fragment")
    with pytest.raises(ConversionError) as ei:
        _convert(tmp_path)
    assert "megakaryocyte fragment" in str(ei.value) and "unknown class folder" in str(ei.value)
    assert not all_parquet_files(tmp_path / "out")


def test_unrecognised_layout_fails(tmp_path):
    root = tmp_path / "raw" / SID / "HRLS"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(ConversionError) as ei:
        _convert(tmp_path)
    assert SID in str(ei.value) and "native layout not found" in str(ei.value)
