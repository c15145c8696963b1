"""bbbc041seg: the repository's real Original.png / Mask.png pair (mask pixel-identical to an
independent decode, image lossless), the released {train,test}/{original,mask} layout, orphans,
and masks that are not the documented binary RGB."""
from __future__ import annotations

import io
import shutil
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

SID = "bbbc041seg"
REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples" / SID


def _rows(out: Path) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()]


def _convert(raw: Path, out: Path):
    return convert([SID], raw, out, ConvertOptions(num_proc=1, progress=False))[0]


def test_real_pair_pixel_identical(tmp_path):
    if not REAL.is_dir():
        pytest.skip(f"real sample absent: {REAL}")
    report = _convert(REAL, tmp_path / "out")
    rows = _rows(tmp_path / "out")
    assert report.total == len(rows) == 1
    assert report.info["layout"].startswith("repository sample")
    r = rows[0]
    assert r["sample_id"] == f"{SID}/Original.png" and r["source_split"] == ""
    rgb = np.asarray(Image.open(REAL / "Mask.png").convert("RGB"))
    assert set(np.unique(rgb).tolist()) == {0, 255}
    truth = rgb[..., 0] == 255
    assert np.array_equal(truth, rgb[..., 1] == 255) and np.array_equal(truth, rgb[..., 2] == 255)
    idx = decode_semantic(r["semantic_mask"]["bytes"])
    got = np.array([c == "cell" for c in r["mask_classes"]])[idx]
    assert np.array_equal(got, truth)
    assert 0.05 < truth.mean() < 0.8  # a smear full of cells, not an inverted mask
    img = np.asarray(Image.open(REAL / "Original.png").convert("RGB"))
    stored = np.asarray(Image.open(io.BytesIO(r["image"]["bytes"])).convert("RGB"))
    assert np.array_equal(stored, img) and (r["width"], r["height"]) == (1600, 1200)
    assert r["objects"]["bbox"] == []  # touching cells merge: the source defines no instances


def test_released_layout_splits_and_orphans(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    report = _convert(tmp_path / "raw", tmp_path / "out")
    rows = {r["sample_id"]: r for r in _rows(tmp_path / "out")}
    assert len(rows) == 6 and report.info["layout"] == "released: train/, test/"
    assert {r["source_split"] for r in rows.values()} == {"train", "test"}
    for rel, t in truth.samples.items():
        assert rows[f"{SID}/{rel}"]["split"] == t.source_split
    assert [p for p, _ in report.inputs.of("orphaned")] == ["train/mask/00000000-0000-4000-a000-000000000000.png"]


def test_image_without_mask_is_an_error(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    first = next((truth.root / "test" / "mask").glob("*.png"))
    first.unlink()
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert first.stem in str(ei.value) and "mask" in str(ei.value)


@pytest.mark.parametrize("bad, expect", [("grey", "unexpected mask value"), ("colour", "colour mask")])
def test_non_binary_mask_is_an_error(tmp_path, bad, expect):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    m = next(p for p in sorted((truth.root / "train" / "mask").glob("*.png")) if not p.name.startswith("00000000"))
    a = np.asarray(Image.open(m).convert("RGB")).copy()
    a[0, 0] = (128, 128, 128) if bad == "grey" else (255, 0, 0)
    Image.fromarray(a).save(m)
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert m.name in str(ei.value) and expect in str(ei.value)


def test_two_copies_are_ambiguous(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    shutil.copytree(truth.root, truth.root.parent / "copy")
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "copy" in str(ei.value) and "BCCD Dataset with mask" in str(ei.value)
