"""mp_idb: species from the folder, the Falciparum CSV whose header mislabels x,y,w,h, masks whose
stage suffix differs from the image, JPEG masks thresholded, orphans, crops skipped. No real
sample (the repository is 607 MB)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.adapters.mp_idb import CSV_REL
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.errors import AdapterError
from unihema_data.masks import decode_semantic
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "mp_idb"


def _rows(out: Path) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()]


def _convert(raw: Path, out: Path):
    return convert([SID], raw, out, ConvertOptions(num_proc=1, progress=False))[0]


def test_fake_conversion(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    report = _convert(tmp_path / "raw", tmp_path / "out")
    rows = {r["sample_id"]: r for r in _rows(tmp_path / "out")}
    assert len(rows) == truth.num_images == 5
    r = rows[f"{SID}/Falciparum/img/1305121398-0001-R_S.jpg"]
    assert label_name(r["label"]) == "plasmodium_falciparum" and r["subset"] == "Falciparum"
    assert [label_name(c) for c in r["objects"]["category"]] == ["plasmodium_ring", "plasmodium_schizont"]
    # the CSV values are x,y,w,h whatever the header says
    native = [l.split(",") for l in (truth.root / CSV_REL).read_text().splitlines()[1:3]]
    assert r["objects"]["bbox"] == [[float(v) for v in n[2:6]] for n in native]
    assert int(report.info["csv_header_impossible_rows"]) >= 1
    r4 = rows[f"{SID}/Falciparum/img/1305121398-0004-R_R.jpg"]
    assert "mask_name_differs:1305121398-0004-R.jpg" in r4["qc_flags"]
    assert any("1305121398-0004-R.jpg" in p for p, _ in report.inputs.of("flagged"))
    assert report.inputs.of("orphaned") == []
    assert "Vivax/crops/" in [p for p, _ in report.inputs.of("skipped")]
    v = rows[f"{SID}/Vivax/img/1709041080-0003-R_T.jpg"]
    assert v["objects"]["bbox"] == [] and label_name(v["label"]) == "plasmodium_vivax"
    assert v["group_id"] == "1709041080" == rows[f"{SID}/Vivax/img/1709041080-0007-T.jpg"]["group_id"]
    gray = np.asarray(Image.open(truth.root / "Vivax" / "gt" / "1709041080-0003-R_T.jpg").convert("L"))
    idx = decode_semantic(v["semantic_mask"]["bytes"])
    assert np.array_equal(np.array([c == "parasite" for c in v["mask_classes"]])[idx], gray >= 128)
    assert "mask_thresholded:128" in v["qc_flags"]


def test_box_outside_image_names_csv_line(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    csv = truth.root / CSV_REL
    lines = csv.read_text().splitlines()
    f = lines[1].split(",")
    lines[1] = ",".join(f[:2] + ["90", "5", "20", "5"])
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert f"{CSV_REL}:2" in str(ei.value) and "outside" in str(ei.value)


def test_two_masks_for_one_field_is_an_error(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    gt = truth.root / "Falciparum" / "gt"
    Image.open(gt / "1305121398-0001-R_S.jpg").save(gt / "1305121398-0001-R_S.tif")
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "1305121398-0001-R_S.jpg" in str(ei.value) and "1305121398-0001-R_S.tif" in str(ei.value)


def test_csv_row_without_image_is_an_error(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    csv = truth.root / CSV_REL
    csv.write_text(csv.read_text() + "1305121398-0099-R.jpg,ring,10,10,5,5\n")
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert f"{CSV_REL}:" in str(ei.value) and "1305121398-0099-R.jpg" in str(ei.value)
