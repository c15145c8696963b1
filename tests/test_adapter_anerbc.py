"""anerbc: mask polarity detected per file from the image (never assumed), field and tiles in one
group, diagnosis from the folder, RGB_segmented skipped, orphans, undecidable masks. No real sample."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.adapters.anerbc import polarity
from unihema_data.adapters.base import CorruptInputError
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.errors import AdapterError
from unihema_data.masks import decode_semantic
from unihema_data.outdir import all_parquet_files

SID = "anerbc"


def _rows(out: Path) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()]


def _convert(raw: Path, out: Path):
    return convert([SID], raw, out, ConvertOptions(num_proc=1, progress=False))[0]


def test_polarity_detected_from_the_image(tmp_path):
    img = np.full((20, 20), 230, np.uint8)
    img[5:12, 5:12] = 120  # a dark cell
    Image.fromarray(img).save(tmp_path / "i.png")
    cells_dark = np.where(img < 200, 0, 255).astype(np.uint8)
    Image.fromarray(cells_dark).save(tmp_path / "a.png")
    Image.fromarray(255 - cells_dark).save(tmp_path / "b.png")
    assert polarity(tmp_path / "i.png", tmp_path / "a.png")[1] is False
    m, inv = polarity(tmp_path / "i.png", tmp_path / "b.png")
    assert inv is True and np.array_equal(255 - m, cells_dark)
    Image.fromarray(np.full((20, 20), 200, np.uint8)).save(tmp_path / "flat.png")
    with pytest.raises(CorruptInputError, match="a.png: the two mask values.*polarity cannot be told"):
        polarity(tmp_path / "flat.png", tmp_path / "a.png")
    Image.fromarray(np.full((20, 20), 255, np.uint8)).save(tmp_path / "c.png")
    with pytest.raises(CorruptInputError, match="c.png: mask holds a single value"):
        polarity(tmp_path / "i.png", tmp_path / "c.png")
    half = cells_dark.copy()
    half[0, 0] = 128
    Image.fromarray(half).save(tmp_path / "d.png")
    with pytest.raises(CorruptInputError, match=r"d.png: unexpected mask value\(s\) \[128\]"):
        polarity(tmp_path / "i.png", tmp_path / "d.png")


def test_fake_conversion(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    report = _convert(tmp_path / "raw", tmp_path / "out")
    rows = {r["sample_id"].split("/", 1)[1]: r for r in _rows(tmp_path / "out")}
    assert len(rows) == truth.num_images == 7
    inv = rows["AneRBC-I/Anemic_individuals/Original_images/002_a.png"]
    assert "mask_polarity:inverted" in inv["qc_flags"]
    native = np.asarray(Image.open(truth.root / "AneRBC-I/Anemic_individuals/Binary_segmented/002_a.png"))
    idx = decode_semantic(inv["semantic_mask"]["bytes"])
    assert np.array_equal(np.array([c == "rbc" for c in inv["mask_classes"]])[idx], native == 255)
    assert "mask_polarity:cells_dark" in rows["AneRBC-I/Healthy_individuals/Original_images/001_h.png"]["qc_flags"]
    assert {r["disease"] for k, r in rows.items() if "Anemic" in k} == {"anemia"}
    assert {r["disease"] for k, r in rows.items() if "Healthy" in k} == {"normal"}
    assert {r["subset"] for r in rows.values()} == {"AneRBC-I", "AneRBC-II"}
    # a field and its tiles share a group, hence a split
    g = {k: (r["group_id"], r["split"]) for k, r in rows.items()}
    assert g["AneRBC-I/Healthy_individuals/Original_images/001_h.png"] == \
        g["AneRBC-II/Healthy_individuals/Original_images/0001_01_h.png"] == \
        g["AneRBC-II/Healthy_individuals/Original_images/0001_02_h.png"]
    assert [p for p, _ in report.inputs.of("orphaned")] == ["AneRBC-II/Anemic_individuals/Binary_segmented/0009_01_a.png"]
    assert sum("RGB_segmented" in p for p, _ in report.inputs.of("skipped")) == 4


def test_bad_name_is_an_error(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    d = truth.root / "AneRBC-I" / "Healthy_individuals"
    for k in ("Original_images", "Binary_segmented"):
        (d / k / "001_h.png").rename(d / k / "sample one.png")
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "sample one.png" in str(ei.value)
