"""pbc_8_da: PBC_8_DA/<class>/ folders, vocabulary detected and reported, folder labels refined by
PBC file-name prefixes (or the contradiction flagged), unknown folders refused."""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "pbc_8_da"
FOLDER = {"BASOPHILS": "basophil", "EOSINOPHILS": "eosinophil", "NEUTROPHILS": "neutrophil", "LYMPHOCYTES": "lymphocyte",
          "MONOCYTES": "monocyte", "MYELOCYTE": "myelocyte", "METAMYELOCYTES": "metamyelocyte",
          "PROMYELOCYTES": "promyelocyte", "neutrophil": "neutrophil", "ig": "immature_granulocyte"}
PREFIX = {"SNE": "neutrophil_segmented", "BNE": "neutrophil_band", "MY": "myelocyte", "PMY": "promyelocyte",
          "MMY": "metamyelocyte"}


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path: Path):
    return convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]


def test_labels_refinements_and_conflicts(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    rep = _convert(tmp_path)
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images == 10
    assert rep.inputs.info["vocabulary"].startswith("rv_pbs folder names (8 class folders")
    for sid, r in rows.items():
        folder, name = sid.split("/")[1:]
        prefix = name.split("_")[0] if "_" in name else None
        want = FOLDER[folder]
        if prefix in PREFIX and PREFIX[prefix] != want:
            if PREFIX[prefix].startswith(want):  # a finer kind of the folder's label
                assert label_name(r["label"]) == PREFIX[prefix] and f"label_refined:{want}" in r["qc_flags"]
            else:
                assert label_name(r["label"]) == want
                assert f"label_prefix_conflict:{prefix}={PREFIX[prefix]}" in r["qc_flags"]
        else:
            assert label_name(r["label"]) == want and not r["qc_flags"]
    assert label_name(rows[f"{SID}/MONOCYTES/MY_7.jpg"]["label"]) == "monocyte"
    assert label_name(rows[f"{SID}/NEUTROPHILS/SNE_77.jpg"]["label"]) == "neutrophil_segmented"


def test_pbc_vocabulary_and_unknown_folder(tmp_path):
    root = tmp_path / "raw" / SID / "PBC_8_DA"
    truth = get_adapter(SID).fake(tmp_path / "fake", seed=1)
    for src, dst in (("NEUTROPHILS", "neutrophil"), ("MYELOCYTE", "ig")):
        (root / dst).mkdir(parents=True)
        for p in (truth.root / src).glob("*.jpg"):
            (root / dst / p.name).write_bytes(p.read_bytes())
    rep = _convert(tmp_path)
    rows = _rows(tmp_path / "out")
    assert rep.inputs.info["vocabulary"].startswith("pbc folder names (2 class folders")
    assert label_name(rows[f"{SID}/ig/MY_8.jpg"]["label"]) == "myelocyte"  # ig refined by MY_
    (root / "smudge").mkdir()
    with pytest.raises(ConversionError) as ei:
        convert([SID], tmp_path / "raw", tmp_path / "out2", ConvertOptions(num_proc=1, progress=False))
    assert "smudge" in str(ei.value) and "unknown class folder" in str(ei.value)
