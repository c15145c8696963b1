"""nuclick_wbc: instance label masks -> one object per value (touching cells kept apart), lazy
refs, Train/Validation splits, orphans, colour masks and missing masks refused. No real sample."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.errors import AdapterError
from unihema_data.masks import decode_rle
from unihema_data.outdir import all_parquet_files
from unihema_data.refs import MaskValue

SID = "nuclick_wbc"


def _rows(out: Path) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()]


def _convert(raw: Path, out: Path):
    return convert([SID], raw, out, ConvertOptions(num_proc=1, progress=False))[0]


def test_instances_lazy_and_exact(tmp_path):
    a = get_adapter(SID)
    truth = a.fake(tmp_path / "raw")
    a.prepare(truth.root)
    samples = [a.parse(rec) for rec in a.records(truth.root)]
    assert all(isinstance(o.mask, MaskValue) for s in samples for o in s.objects)  # never dense arrays
    report = _convert(tmp_path / "raw", tmp_path / "out")
    rows = {r["sample_id"].split("/", 1)[1]: r for r in _rows(tmp_path / "out")}
    assert len(rows) == truth.num_images == 5
    for rel, t in truth.samples.items():
        r = rows[rel]
        assert f"instances:{len(t.object_masks)}" in r["qc_flags"]
        assert r["split"] == {"Train": "train", "Validation": "validation"}[t.source_split]
        for k, m in enumerate(t.object_masks):
            assert np.array_equal(decode_rle(r["objects"]["mask_rle"][k], r["height"], r["width"]), m)
    # the two touching cells of a patch stay two objects
    two = [r for r in rows.values() if len(r["objects"]["bbox"]) == 2]
    assert two and set(two[0]["objects"]["bbox_source"]) == {"from_mask"}
    assert [p for p, _ in report.inputs.of("orphaned")] == ["Train/masks/orphan_mask.png"]


def test_colour_mask_is_an_error(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    m = sorted((truth.root / "Train" / "masks").glob("T000_*_mask.png"))[0]
    a = np.asarray(Image.open(m))
    Image.fromarray(np.dstack([a * 30, a, a]).astype(np.uint8), "RGB").save(m)
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert m.name in str(ei.value) and "colour" in str(ei.value)


def test_missing_mask_names_the_expected_file(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    m = sorted((truth.root / "Validation" / "masks").glob("*_mask.png"))[0]
    m.unlink()
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert f"Validation/masks/{m.name} is missing" in str(ei.value)


def test_ihc_release_is_not_taken_for_hemato(tmp_path):
    ihc = tmp_path / "raw" / "IHC"
    for p in ("images/Train", "masks/Train"):
        (ihc / p).mkdir(parents=True)
    np.save(ihc / "masks" / "Train" / "x.npy", np.zeros((4, 4), np.uint8))
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "native layout not found" in str(ei.value)
