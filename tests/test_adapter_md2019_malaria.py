"""md2019_malaria: `<stem>_GT.png` pairing for .png and .jpg images, pre-augmented copies grouped
into one split, orphans, 1- and 3-channel binary masks, bad mask values. No real sample exists."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.adapters.md2019_malaria import MASKS_DIR, base_name
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.errors import AdapterError
from unihema_data.masks import decode_semantic
from unihema_data.outdir import all_parquet_files

SID = "md2019_malaria"


def _rows(out: Path) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()]


def _convert(raw: Path, out: Path):
    return convert([SID], raw, out, ConvertOptions(num_proc=1, progress=False))[0]


def test_base_name_rule():
    assert base_name("Trip 053 Day 2 19-11-05 Image 10 add_4") == "Trip 053 Day 2 19-11-05 Image 10"
    assert base_name("Trip 053 Day 2 19-11-05 Image 10_3") == "Trip 053 Day 2 19-11-05 Image 10"
    assert base_name("Trip 053 Day 2 19-11-05 Image 10") == "Trip 053 Day 2 19-11-05 Image 10"


def test_copies_share_a_group_and_a_split(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    report = _convert(tmp_path / "raw", tmp_path / "out")
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images == 5
    by_group: dict[str, set] = {}
    for r in rows:
        by_group.setdefault(r["group_id"], set()).add(r["split"])
    assert set(by_group) == {"Trip 053 Day 2 19-11-05 Image 10", "Trip 061 Day 4 20-01-14 Image 3"}
    assert all(len(s) == 1 for s in by_group.values())
    assert report.info["augmented_copies"] == "3"
    assert report.info["life_stages"] == "LifeStages.xlsx absent"
    assert [p for p, _ in report.inputs.of("orphaned")] == [f"{MASKS_DIR}/Trip 070 Day 1 20-02-02 Image 1_GT.png"]
    # the .jpg copy pairs with `<stem>_GT.png` and its mask is exact
    r = next(r for r in rows if r["sample_id"].endswith("Image 3_1.jpg"))
    gt = np.asarray(Image.open(truth.root / MASKS_DIR / "Trip 061 Day 4 20-01-14 Image 3_1_GT.png"))
    idx = decode_semantic(r["semantic_mask"]["bytes"])
    assert np.array_equal(np.array([c == "parasite" for c in r["mask_classes"]])[idx], gt == 255)


def test_life_stages_presence_reported(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    (truth.root / "LifeStages.xlsx").write_bytes(b"PK\x03\x04 placeholder")
    report = _convert(tmp_path / "raw", tmp_path / "out")
    assert report.info["life_stages"].startswith("LifeStages.xlsx present, not converted")


def test_image_without_mask_names_the_expected_mask(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    (truth.root / MASKS_DIR / "Trip 053 Day 2 19-11-05 Image 10 add_1_GT.png").unlink()
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "Image 10 add_1" in str(ei.value) and "missing" in str(ei.value)


def test_non_binary_mask_value_is_an_error(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    m = truth.root / MASKS_DIR / "Trip 053 Day 2 19-11-05 Image 10_GT.png"
    a = np.asarray(Image.open(m)).copy()
    a[0, 0] = 200
    Image.fromarray(a).save(m)
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "Image 10_GT.png" in str(ei.value) and "200" in str(ei.value)
