"""raabin_wbc: published Train/TestA/TestB splits, TestB's missing classes reported, unknown
split or class folders refused (no real sample is available)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "raabin_wbc"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path: Path, name: str):
    return convert([SID], tmp_path / "raw", tmp_path / name, ConvertOptions(num_proc=1, progress=False))[0]


def test_splits_subsets_and_missing_classes(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    rep = _convert(tmp_path, "out")
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images
    for rel, s in truth.samples.items():
        r = rows[f"{SID}/{rel}"]
        native_split = rel.split("/")[0]
        assert r["source_label"] == s.label and label_name(r["label"]) == s.label.lower()
        assert r["source_split"] == ("train" if native_split == "Train" else "test")
        assert r["split"] == r["source_split"]
        assert r["subset"] == ("" if native_split == "Train" else native_split)
    assert rep.info["classes_missing"] == ("TestA: Eosinophil, Lymphocyte; "
                                           "TestB: Basophil, Eosinophil, Monocyte")
    assert "TestB: Lymphocyte, Neutrophil" in rep.info["classes_per_split"]
    assert sorted(p for p, _ in rep.inputs.of("skipped")) == ["TestA/Monocyte/Thumbs.db", "Train/.DS_Store"]


def test_unknown_split_and_class_folders_fail_naming_them(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    img = next((truth.root / "Train" / "Neutrophil").glob("*.jpg"))
    (truth.root / "Train" / "Blast").mkdir()
    shutil.copy(img, truth.root / "Train" / "Blast" / img.name)
    with pytest.raises(ConversionError, match="unknown class folder 'Blast'"):
        _convert(tmp_path, "out1")
    shutil.rmtree(truth.root / "Train" / "Blast")
    (truth.root / "Validation" / "Neutrophil").mkdir(parents=True)
    shutil.copy(img, truth.root / "Validation" / "Neutrophil" / img.name)
    with pytest.raises(ConversionError, match="unknown split folder 'Validation'"):
        _convert(tmp_path, "out2")
