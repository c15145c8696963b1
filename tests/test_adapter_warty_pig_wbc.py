"""warty_pig_wbc: only the classified crops are converted; Original and Augmented images are
counted in the run report; class-folder spelling variants map, unknown names fail loudly."""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "warty_pig_wbc"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path: Path, name: str):
    return convert([SID], tmp_path / "raw", tmp_path / name, ConvertOptions(num_proc=1, progress=False))[0]


def test_crops_only_and_report(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    rep = _convert(tmp_path, "out")
    rows = _rows(tmp_path / "out")
    assert set(rows) == {f"{SID}/{rel}" for rel in truth.samples}
    for rel, s in truth.samples.items():
        assert label_name(rows[f"{SID}/{rel}"]["label"]) == s.label.lower()
    assert rep.info["Augmented images"] == "2 files, not converted: augmentations of the crops (leakage)"
    assert rep.info["Original"] == "1 files, not converted: unlabeled smear fields"
    assert rep.info["class_folders"] == "Basophil, Eosinophil, Lymphocyte, Monocyte, Neutrophil"
    assert [p for p, _ in rep.inputs.of("skipped")] == ["Cropped Classified/desktop.ini"]


def test_spelling_variants_and_unknown_folder(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    crops = truth.root / "Cropped Classified"
    (crops / "Neutrophil").rename(crops / "Neutrophils")
    (crops / "Monocyte").rename(crops / "monocyte")
    _convert(tmp_path, "out")
    rows = _rows(tmp_path / "out")
    assert {label_name(r["label"]) for k, r in rows.items() if "/Neutrophils/" in k} == {"neutrophil"}
    assert {r["source_label"] for k, r in rows.items() if "/monocyte/" in k} == {"monocyte"}
    (crops / "Basophil").rename(crops / "Band")
    with pytest.raises(ConversionError, match="Band"):
        _convert(tmp_path, "out2")
