"""lisc: Main Dataset class folders (Baso capitalized, numbers restarting per folder), the
mixt folder kept as unlabeled and flagged, the ground-truth folder detected and reported."""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "lisc"
EXPECTED = {"Baso": "basophil", "eosi": "eosinophil", "lymp": "lymphocyte", "mixt": "unlabeled",
            "mono": "monocyte", "neut": "neutrophil"}


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path: Path, name: str):
    return convert([SID], tmp_path / "raw", tmp_path / name, ConvertOptions(num_proc=1, progress=False))[0]


def test_labels_mixed_folder_and_ground_truth_report(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    rep = _convert(tmp_path, "out")
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images == 7
    assert f"{SID}/Main Dataset/Baso/1.bmp" in rows and f"{SID}/Main Dataset/lymp/1.bmp" in rows
    for rel in truth.samples:
        r = rows[f"{SID}/{rel}"]
        folder = rel.split("/")[1]
        assert r["source_label"] == folder and label_name(r["label"]) == EXPECTED[folder]
        assert ("mixed_cells" in r["qc_flags"]) == (folder == "mixt")
        assert r["image"]["path"].endswith(".png")  # BMP re-encoded losslessly
    assert rep.info["ground_truth"].startswith("Ground Truth Segmentation/ present (2 *_expert.bmp masks)")
    assert [p for p, _ in rep.inputs.of("skipped")] == ["Main Dataset/neut/Thumbs.db"]
    shutil.rmtree(truth.root / "Ground Truth Segmentation")
    rep = _convert(tmp_path, "out2")
    assert rep.info["ground_truth"] == "Ground Truth Segmentation/ absent"


def test_renamed_class_folder_fails_naming_it(tmp_path):
    """Folder names are matched exactly: a renamed copy fails naming the folder."""
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    (truth.root / "Main Dataset" / "Baso").rename(truth.root / "Main Dataset" / "basophil")
    with pytest.raises(ConversionError, match="unknown class folder 'basophil'"):
        _convert(tmp_path, "out")
