"""pbc: real-sample conformance (labels from prefixes/folders, bytes untouched) and quirks
(.DS_ trap file, cross-class duplicate, prefix/folder conflict, unknown prefix, odd sizes)."""
from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.schema import label_name
from unihema_data.convert import ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.taxonomy import load_taxonomy
from unihema_data.validate import validate

SID = "pbc"
REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples" / SID
# finest canonical label of each real-sample prefix (research note datasets-classification.md §1)
EXPECTED = {"BA": "basophil", "EO": "eosinophil", "ERB": "erythroblast", "MMY": "metamyelocyte",
            "LY": "lymphocyte", "MO": "monocyte", "BNE": "neutrophil_band", "PLATELET": "platelet"}


def _rows(out: Path) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()]


def _convert(raw: Path, out: Path):
    return convert([SID], raw, out, ConvertOptions(num_proc=1, progress=False))[0]


def test_real_sample(tmp_path):
    if not REAL.is_dir():
        pytest.skip(f"real sample absent: {REAL}")
    report = _convert(REAL, tmp_path / "out")
    rows = {r["sample_id"]: r for r in _rows(tmp_path / "out")}
    files = sorted((REAL / "PBC_dataset_normal_DIB").glob("*/*.jpg"))
    assert len(files) == len(rows) == report.total == 8
    tax = load_taxonomy()
    for f in files:
        folder, prefix = f.parent.name, f.name.split("_", 1)[0]
        r = rows[f"{SID}/{folder}/{f.name}"]
        assert r["source_label"] == prefix
        assert label_name(r["label"]) == EXPECTED[prefix] == tax.map_label(SID, prefix, table="label_prefixes")
        data = f.read_bytes()
        assert r["image"]["bytes"] == data and r["image_sha256"] == hashlib.sha256(data).hexdigest()
        assert (r["width"], r["height"]) == Image.open(f).size == (360, 363)
        assert r["source_split"] == "" and r["group_id"] == f"{folder}/{f.name}"
        assert r["tasks"] == ["classification"] and r["qc_flags"] == []
    # folder -> label table is consistent with the prefixes (folder label is the coarser parent)
    for f in files:
        coarse = tax.map_label(SID, f.parent.name)
        assert coarse in (EXPECTED[f.name.split("_", 1)[0]], "immature_granulocyte", "neutrophil")


@pytest.fixture(scope="module")
def fake_converted(tmp_path_factory):
    base = tmp_path_factory.mktemp("pbc_fake")
    adapter = get_adapter(SID)
    truth = adapter.fake(base / "raw" / SID, seed=7)
    report = _convert(base / "raw", base / "out")
    return adapter, truth, report, {r["sample_id"]: r for r in _rows(base / "out")}, base


def test_fake_has_every_prefix_and_folder(fake_converted):
    _, truth, _, rows, _ = fake_converted
    folders = {rel.split("/")[0] for rel in truth.samples}
    assert folders == {"basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte", "neutrophil", "platelet"}
    labels = {r["source_label"] for r in rows.values()}
    assert {"BNE", "SNE", "NEUTROPHIL", "PMY", "MY", "MMY", "IG"} <= labels
    canon = {label_name(r["label"]) for r in rows.values()}
    assert {"neutrophil_band", "neutrophil_segmented", "neutrophil", "promyelocyte", "myelocyte",
            "metamyelocyte", "immature_granulocyte"} <= canon


def test_ds_store_trap_is_skipped_with_warning(tmp_path, caplog):
    adapter = get_adapter(SID)
    truth = adapter.fake(tmp_path / "raw" / SID, seed=1)
    assert (truth.root / "neutrophil" / ".DS_169665.jpg").is_file()
    with caplog.at_level(logging.WARNING):
        samples = list(adapter.iter_samples(truth.root))
    assert len(samples) == truth.num_images
    assert adapter.skipped == [("neutrophil/.DS_169665.jpg", adapter.skipped[0][1])]
    assert ".DS_169665.jpg" in caplog.text


def test_cross_class_duplicate_flagged_and_same_split(fake_converted):
    _, _, report, rows, base = fake_converted
    eo, bne = rows[f"{SID}/eosinophil/EO_225902.jpg"], rows[f"{SID}/neutrophil/BNE_191112.jpg"]
    assert eo["image_sha256"] == bne["image_sha256"]
    assert label_name(eo["label"]) == "eosinophil" and label_name(bne["label"]) == "neutrophil_band"
    assert f"duplicate_of:{SID}/eosinophil/EO_225902.jpg" in bne["qc_flags"]
    assert bne["split"] == eo["split"]
    assert report.duplicates == 1
    assert validate(base / "out").ok


def test_odd_sizes_kept(fake_converted):
    _, _, _, rows, _ = fake_converted
    sizes = {(r["width"], r["height"]) for r in rows.values()}
    assert {(360, 363), (369, 366), (360, 360)} <= sizes


def test_prefix_conflict_and_unknown_prefix(tmp_path):
    adapter = get_adapter(SID)
    truth = adapter.fake(tmp_path / "raw" / SID, seed=2)
    eo = next((truth.root / "eosinophil").glob("EO_*.jpg"))
    shutil.copy(eo, truth.root / "neutrophil" / "EO_123.jpg")      # prefix of another class
    shutil.copy(eo, truth.root / "monocyte" / "XYZ_5.jpg")          # unknown prefix
    shutil.copy(eo, truth.root / "platelet" / "nounderscore.jpg")   # no prefix at all
    (truth.root / "platelet" / "Thumbs.db").write_bytes(b"\x00junk")
    _convert(tmp_path / "raw", tmp_path / "out")
    rows = {r["sample_id"]: r for r in _rows(tmp_path / "out")}
    c = rows[f"{SID}/neutrophil/EO_123.jpg"]
    assert c["source_label"] == "EO" and label_name(c["label"]) == "eosinophil"
    assert "folder_prefix_conflict:neutrophil" in c["qc_flags"]
    u = rows[f"{SID}/monocyte/XYZ_5.jpg"]
    assert u["source_label"] == "monocyte" and label_name(u["label"]) == "monocyte" and "unknown_prefix:XYZ" in u["qc_flags"]
    n = rows[f"{SID}/platelet/nounderscore.jpg"]
    assert n["source_label"] == "platelet" and "unknown_prefix:" in n["qc_flags"]
    assert f"{SID}/platelet/Thumbs.db" not in rows
    list(adapter.iter_samples(truth.root))
    assert ("platelet/Thumbs.db", "operating-system metadata file") in adapter.skipped
    assert len(rows) == truth.num_images + 3
