"""rv_pbs: per-folder CVAT XML, field-of-view records with polygon masks and one pixel-exact crop
record per polygon, bg polygons ignored, folder/label disagreement flagged, bad input refused."""
from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.adapters.rv_pbs import polygon_box
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "rv_pbs"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path: Path, name: str):
    return convert([SID], tmp_path / "raw", tmp_path / name, ConvertOptions(num_proc=1, progress=False))[0]


def test_polygon_box():
    assert polygon_box([1.2, 2.7, 10.5, 3.0, 4.0, 9.01], 100, 100) == (1, 2, 11, 10)
    assert polygon_box([-3.0, -1.0, 170.2, 130.0], 160, 120) == (0, 0, 160, 120)


def test_fields_and_cells(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    rep = _convert(tmp_path, "out")
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images == 7  # 3 photos + 4 cells (the bg polygon has none)
    fov = rows[f"{SID}/BASOPHILS/IMG_2789.jpg"]
    assert fov["granularity"] == "field_of_view" and len(fov["objects"]["category"]) == 1  # bg dropped
    assert set(fov["tasks"]) >= {"detection", "segmentation"}
    splits = defaultdict(set)
    for rel, r in rows.items():
        splits[r["group_id"]].add(r["split"])
    assert all(len(s) == 1 for s in splits.values())
    band = rows[f"{SID}/NEUTROPHILS/IMG_3001_cell1.png"]
    assert label_name(band["label"]) == "neutrophil_band" and "folder_class_differs:NEUTROPHILS" in band["qc_flags"]
    neut = rows[f"{SID}/NEUTROPHILS/IMG_3001_cell0.png"]
    assert label_name(neut["label"]) == "neutrophil_segmented" and not any(f.startswith("folder_") for f in neut["qc_flags"])
    # crops are the photo's pixels inside the polygon's box, clipped at the border
    photo = np.asarray(Image.open(truth.root / "BASOPHILS" / "IMG_2799.jpg").convert("RGB"))
    cell = rows[f"{SID}/BASOPHILS/IMG_2799_cell0.png"]
    got = np.asarray(Image.open(io.BytesIO(cell["image"]["bytes"])))
    doc = ET.parse(truth.root / "BASOPHILS" / "annotations.xml").getroot()
    pts = [tuple(map(float, p.split(","))) for p in
           doc.find("image[@name='IMG_2799.jpg']/polygon").get("points").split(";")]
    x, y = math.floor(min(p[0] for p in pts)), math.floor(min(p[1] for p in pts))
    assert max(p[0] for p in pts) > 160 and max(p[1] for p in pts) > 120  # the polygon leaves the photo
    assert got.shape[:2] == (120 - y, 160 - x)  # clipped at the right and bottom edges
    assert np.array_equal(got, photo[y:, x:]) and cell["granularity"] == "single_cell"
    assert "reencoded_from:crop" in cell["qc_flags"]
    assert rep.info["bg_polygons"] == "1 'bg' polygon(s) ignored"
    assert dict(rep.inputs.of("orphaned")) == {"BASOPHILS/IMG_9999.jpg": "image not listed in annotations.xml (not converted)"}
    assert "BASOPHILS/l" in dict(rep.inputs.of("skipped"))


def test_bad_input(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    xml = truth.root / "NEUTROPHILS" / "annotations.xml"
    good = xml.read_text()
    xml.write_text(good.replace('width="160"', 'width="161"', 1))
    with pytest.raises(ConversionError, match="IMG_3001.jpg is 160x120 but the XML says 161x120"):
        _convert(tmp_path, "out1")
    xml.write_text(good.replace('label="band cell"', 'label="plasma cell"'))
    with pytest.raises(ConversionError, match="plasma cell"):
        _convert(tmp_path, "out2")
    xml.write_text(good)
    (truth.root / "NEUTROPHILS" / "IMG_3001.jpg").unlink()
    with pytest.raises(ConversionError, match="image IMG_3001.jpg is missing"):
        _convert(tmp_path, "out3")


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_non_finite_polygon_coordinate_is_an_error_naming_the_xml(tmp_path, value):
    """Fuzz seed 18 on 49 adapters, case 678: a polygon coordinate replaced by ``inf`` crashed the
    crop-box computation with an OverflowError traceback."""
    import re

    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    xml = truth.root / "NEUTROPHILS" / "annotations.xml"
    text = xml.read_text()
    m = re.search(r'points="([0-9.]+)', text)
    xml.write_text(text[:m.start(1)] + value + text[m.end(1):])
    with pytest.raises(ConversionError, match=r"annotations.xml: image .*<polygon> has bad coordinates"):
        _convert(tmp_path, "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.parquet"))
