"""bionet (detection part): junk/typo labels mapped and flagged, XMLs without image reported,
stale <filename> flagged, byte-identical duplicates with other boxes left to the split policy,
unannotated Testing/validation copies measured and reported.

Opt-in full check: ``UNIHEMA_BIONET_FULL=<folder holding 'Blood Cell Detection & Counting
Dataset'>`` converts the whole release and compares every box with an ElementTree reading."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "bionet"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID
            for r in pq.read_table(f).to_pylist()}


def test_fake_quirks(tmp_path):
    get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    rep = convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    rows = _rows(tmp_path / "out")
    assert len(rows) == 7
    assert rep.inputs.of("orphaned") == [("Training/XML Files/1431(1).xml", "annotation XML without an image (not converted)")]
    r761 = rows[f"{SID}/Training/Images/761.jpg"]
    n = len(r761["objects"]["bbox"])
    assert f"label_variant:{n - 2}:dog" in r761["qc_flags"] and f"label_variant:{n - 1}:Platlets" in r761["qc_flags"]
    assert [label_name(c) for c in r761["objects"]["category"][-2:]] == ["rbc", "platelet"]
    flagged = dict(rep.inputs.of("flagged"))
    assert flagged["Training/Images/761.jpg"] == "junk/typo labels mapped by the alias table: Platlets, dog"
    assert "does not match" in flagged["Training/Images/1200.jpg"]
    assert "voc_filename_mismatch" in rows[f"{SID}/Training/Images/1200.jpg"]["qc_flags"]
    a, b = rows[f"{SID}/Training/Images/1151.jpg"], rows[f"{SID}/Training/Images/1151(1).jpg"]
    assert a["split"] == b["split"] and any(f.startswith("label_conflict:") for f in a["qc_flags"])
    assert rep.inputs.info["unannotated_copies"] == ("Testing: 1 of 1 byte-identical to a Training image; "
                                                     "validation: 1 of 2 byte-identical to a Training image")
    assert len([p for p, _ in rep.inputs.of("skipped") if p.startswith(("Testing/", "validation/"))]) == 3


@pytest.mark.skipif(not os.environ.get("UNIHEMA_BIONET_FULL"), reason="set UNIHEMA_BIONET_FULL to the release")
def test_full_release(tmp_path):
    rep = convert([SID], Path(os.environ["UNIHEMA_BIONET_FULL"]), tmp_path / "out",
                  ConvertOptions(num_proc=2, progress=False))[0]
    root = Path(rep.root)
    rows = _rows(tmp_path / "out")
    images = {p.stem for p in (root / "Training" / "Images").glob("*.jpg")}
    xmls = sorted(p for p in (root / "Training" / "XML Files").glob("*.xml") if p.stem in images)
    assert len(rows) == len(xmls) == rep.total == 2002
    assert len(rep.inputs.of("orphaned")) == 3
    n = 0
    for x in xmls:
        r = rows[f"{SID}/Training/Images/{x.stem}.jpg"]
        objs = list(ET.parse(x).getroot().iter("object"))
        want = []
        for o in objs:
            b = [float(o.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
            x0, y0 = max(b[0] - 1, 0.0), max(b[1] - 1, 0.0)  # 1-based; a 0 is clipped by the core
            want.append([x0, y0, b[2] - x0, b[3] - y0])
        got = r["objects"]["bbox"]
        assert r["objects"]["source_category"] == [o.findtext("name") for o in objs], x.name
        assert all(g == pytest.approx(w, abs=0.5) for g, w in zip(got, want)), x.name
        n += len(objs)
    assert n == 113620  # 113862 boxes in all 2005 XMLs, 242 of them in the 3 XMLs without an image
    assert sum("voc_filename_mismatch" in r["qc_flags"] for r in rows.values()) == 233  # + 3 orphan XMLs = 236
    assert sum(f.startswith("label_variant:") for r in rows.values() for f in r["qc_flags"]) == 90 + 15 + 10 + 1 + 1


def test_other_xml_without_image_is_an_error(tmp_path):
    from unihema_data.convert import ConversionError

    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    (truth.root / "Training" / "Images" / "2.jpg").unlink()
    with pytest.raises(ConversionError, match=r"XML Files/2\.xml: image Training/Images/2\.jpg is missing"):
        convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))
