"""erythrocytesidb: ground.csv contours (exact polygons), JPEG class masks with the 0.5 overlap
level quantized by the documented rule, the sample without mask-circular.jpg, archive junk, bad
ground.csv rows. No real sample exists."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.adapters.base import CorruptInputError
from unihema_data.adapters.erythrocytesidb import combine, quantize
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.errors import AdapterError
from unihema_data.masks import decode_semantic
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "erythrocytesidb"


def _rows(out: Path) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()]


def _convert(raw: Path, out: Path):
    return convert([SID], raw, out, ConvertOptions(num_proc=1, progress=False))[0]


def test_quantize_and_combine(tmp_path):
    g = np.array([[0, 40, 63, 64, 128, 191, 192, 255]], np.uint8)
    Image.fromarray(g, "L").save(tmp_path / "m.png")
    assert quantize(tmp_path / "m.png").tolist() == [[0, 0, 0, 1, 1, 1, 2, 2]]
    c, e, o = (np.array([[v]], np.uint8) for v in (2, 0, 0))
    assert combine([c, e, o]).item() == 1
    assert combine([np.array([[0]], np.uint8), np.array([[2]], np.uint8), np.array([[0]], np.uint8)]).item() == 2
    assert combine([np.array([[1]], np.uint8), np.array([[0]], np.uint8), np.array([[0]], np.uint8)]).item() == 4
    assert combine([np.array([[2]], np.uint8), np.array([[2]], np.uint8), np.array([[0]], np.uint8)]).item() == 4
    assert combine([np.zeros((1, 1), np.uint8)] * 3).item() == 0


def test_fake_conversion_quirks(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    report = _convert(tmp_path / "raw", tmp_path / "out")
    rows = {r["sample_id"]: r for r in _rows(tmp_path / "out")}
    assert len(rows) == truth.num_images == 8  # 4 smears + 4 erythrocytesIDB1 single-cell crops
    r37 = rows[f"{SID}/erythrocytesIDB2/37erythrocytesIDB2/source.jpg"]
    assert r37["semantic_mask"] is None and len(r37["objects"]["bbox"]) == 4
    assert any("37erythrocytesIDB2" in p and "mask-circular.jpg" in why for p, why in report.inputs.of("repaired"))
    skipped = [p for p, _ in report.inputs.of("skipped")]
    assert "erythrocytesIDB1/Thumbs.db" in skipped
    assert report.inputs.info["idb1"] == "class folders (circular, elongated, other): 4 single-cell images"
    for rel in ("erythrocytesIDB1/circular/2.jpg", "erythrocytesIDB1/elongated/1.jpg", "erythrocytesIDB1/other/7.png"):
        cell = rows[f"{SID}/{rel}"]
        folder = rel.split("/")[1]
        assert cell["source_label"] == folder and label_name(cell["label"]) == f"rbc_{folder}"
        assert cell["tasks"] == ["classification"] and cell["granularity"] == "single_cell"
        assert cell["subset"] == "erythrocytesIDB1" and cell["image"]["bytes"] == (truth.root / rel).read_bytes()
    assert any("__MACOSX" in p for p in skipped) and any(".DS_Store" in p for p in skipped)
    r = rows[f"{SID}/erythrocytesIDB2/01erythrocytesIDB2/source.jpg"]
    assert "ignore" in r["mask_classes"]  # the overlapping cells
    assert "mask_thresholded:64/192" in r["qc_flags"]
    assert [label_name(c) for c in r["objects"]["category"]] == ["rbc_circular", "rbc_elongated", "rbc_other", "rbc_circular"]
    assert set(r["objects"]["bbox_source"]) == {"from_mask"}
    assert r["subset"] == "erythrocytesIDB2" and r["group_id"] == "01erythrocytesIDB2"
    idx = decode_semantic(r["semantic_mask"]["bytes"])
    assert idx.shape == (r["height"], r["width"])


@pytest.mark.parametrize("line, expect", [("3,1,1,5,1,5,5\n", "class '3'"), ("0,1,1,5,1\n", "at least 3 x,y pairs"),
                                          ("0,1,a,5,1,5,5\n", "expected 'class, x1"),
                                          ("0,1,1,5,1,5,1e300\n", "contour point outside")])
def test_bad_ground_csv_names_file_and_line(tmp_path, line, expect):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    g = truth.root / "erythrocytesIDB3" / "01erythrocytesIDB3" / "ground.csv"
    g.write_text(g.read_text() + line)
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "01erythrocytesIDB3/ground.csv:5" in str(ei.value) and expect in str(ei.value)


def test_header_line_tolerated_and_missing_source_is_an_error(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    g = truth.root / "erythrocytesIDB3" / "01erythrocytesIDB3" / "ground.csv"
    g.write_text("class,points\n" + g.read_text())
    assert _convert(tmp_path / "raw", tmp_path / "out").total == 8
    (truth.root / "erythrocytesIDB2" / "02erythrocytesIDB2" / "source.jpg").unlink()
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out2")
    assert "02erythrocytesIDB2" in str(ei.value) and "source.jpg is missing" in str(ei.value)


def test_empty_ground_csv_is_an_error(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    g = truth.root / "erythrocytesIDB2" / "37erythrocytesIDB2" / "ground.csv"
    g.write_text("")
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "37erythrocytesIDB2/ground.csv" in str(ei.value) and "no cell rows" in str(ei.value)


def test_polygon_far_outside_the_image_is_refused_before_pycocotools():
    """A huge coordinate used to crash pycocotools (segfault / OOM) in the worker."""
    from unihema_data.refs import Polygon, decode_object_mask

    with pytest.raises(CorruptInputError, match="far outside the 90x70 image"):
        decode_object_mask(Polygon.of([1, 1, 5, 1, 5, 1e300]), 70, 90, name="x")
    assert decode_object_mask(Polygon.of([1, 1, 50, 1, 50, 40]), 70, 90, name="x")


def test_idb1_layouts(tmp_path):
    """IDB1 without class folders is reported and not converted; an unknown folder next to the
    three classes is an error naming it."""
    truth = get_adapter(SID).fake(tmp_path / "raw")
    idb1 = truth.root / "erythrocytesIDB1"
    (idb1 / "sickle").mkdir()
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "sickle" in str(ei.value) and "unknown class folder" in str(ei.value)
    import shutil
    shutil.rmtree(idb1)
    (idb1 / "fields").mkdir(parents=True)
    (idb1 / "fields" / "1.jpg").write_bytes((truth.root / "erythrocytesIDB2" / "01erythrocytesIDB2" / "source.jpg").read_bytes())
    rep = _convert(tmp_path / "raw", tmp_path / "out2")
    assert rep.total == 4 and ("erythrocytesIDB1/", "erythrocytesIDB1 without circular/elongated/other folders "
                               "(layout not recognised, not converted)") in rep.inputs.of("skipped")
