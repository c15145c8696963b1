"""all_idb1: mixed 1-bit CCITT / 8-bit TIFF masks combined into one map and split back exactly,
blast centroids from .xyc files, orphans, malformed input. No real sample (images request-only,
masks not in shared/real-samples)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.errors import AdapterError
from unihema_data.masks import decode_semantic
from unihema_data.outdir import all_parquet_files

SID = "all_idb1"
MASKS = "ALL-IDB1-masks-ea56e19"


def _rows(out: Path) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()]


def _convert(raw: Path, out: Path):
    return convert([SID], raw, out, ConvertOptions(num_proc=1, progress=False))[0]


def _fail(tmp_path) -> str:
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    return str(ei.value)


def test_masks_split_back_to_both_native_files(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    assert Image.open(truth.root / MASKS / "Im001_1_RBC.tif").mode == "1"
    assert Image.open(truth.root / MASKS / "Im001_1_WBCs.tif").mode == "L"
    report = _convert(tmp_path / "raw", tmp_path / "out")
    rows = {r["sample_id"]: r for r in _rows(tmp_path / "out")}
    assert len(rows) == 4
    for stem in ("Im001_1", "Im002_1"):
        r = rows[f"{SID}/ALL_IDB1/im/{stem}.jpg"]
        idx = decode_semantic(r["semantic_mask"]["bytes"])
        classes = np.array(r["mask_classes"])[idx]
        for t, canon in (("RBC", "rbc"), ("WBCs", "wbc")):
            native = np.asarray(Image.open(truth.root / MASKS / f"{stem}_{t}.tif").convert("L")) == 255
            assert np.array_equal((classes == canon) | (classes == "ignore"), native), (stem, t)
        assert (classes == "ignore").any()  # the overlap pixels are kept distinct, not resolved
    assert rows[f"{SID}/ALL_IDB1/im/Im004_0.jpg"]["semantic_mask"] is None
    assert rows[f"{SID}/ALL_IDB1/im/Im004_0.jpg"]["disease"] == "normal"
    orphans = [p for p, _ in report.inputs.of("orphaned")]
    assert f"{MASKS}/Im009_1_RBC.tif" in orphans and f"{MASKS}/Im009_1_WBCs.tif" in orphans
    assert "ALL_IDB1/im/Im003_1.jpg" in orphans
    assert report.info["layout"] == f"images in ALL_IDB1/im/, centroids in ALL_IDB1/xyc/, masks in {MASKS}/"
    r = rows[f"{SID}/ALL_IDB1/im/Im002_1.jpg"]  # comma-separated centroids
    assert r["objects"]["point"] and all(b[2:] == [0.0, 0.0] for b in r["objects"]["bbox"])


@pytest.mark.parametrize("text, expect", [("12 x\n", ":1: expected 'x y'"), ("5 5\n500 5\n", ":2: point (500, 5) is outside")])
def test_bad_xyc_names_file_and_line(tmp_path, text, expect):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    (truth.root / "ALL_IDB1" / "xyc" / "Im001_1.xyc").write_text(text)
    msg = _fail(tmp_path)
    assert "Im001_1.xyc" in msg and expect in msg


def test_half_a_mask_pair_is_an_error(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    (truth.root / MASKS / "Im002_1_WBCs.tif").unlink()
    assert "Im002_1_WBCs.tif is missing" in _fail(tmp_path)


def test_grey_mask_value_is_an_error(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    p = truth.root / MASKS / "Im001_1_WBCs.tif"
    a = np.asarray(Image.open(p)).copy()
    a[0, 0] = 77
    Image.fromarray(a).save(p, compression="packbits")
    msg = _fail(tmp_path)
    assert "Im001_1_WBCs.tif" in msg and "77" in msg


def test_mask_size_mismatch_is_an_error(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    for t in ("RBC", "WBCs"):
        Image.fromarray(np.zeros((50, 60), bool)).convert("1").save(truth.root / MASKS / f"Im002_1_{t}.tif", compression="group4")
    msg = _fail(tmp_path)
    assert "Im002_1_RBC.tif: mask is 60x50" in msg and "Im002_1.jpg is 96x72" in msg


def test_masks_only_download_is_a_clear_error(tmp_path):
    import shutil

    truth = get_adapter(SID).fake(tmp_path / "raw")
    shutil.rmtree(truth.root / "ALL_IDB1")
    msg = _fail(tmp_path)
    assert "no ALL-IDB1 images" in msg and "request-only" in msg
