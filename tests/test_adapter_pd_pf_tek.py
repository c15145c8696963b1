"""pd_pf_tek: the release's format is UNCONFIRMED, so the adapter recognises VOC, YOLO or COCO JSON,
reports which, refuses two at once and anything else with the list of what was expected, and stops
on a class name nobody has confirmed. Each variant is checked box by box against an independent
reading (ElementTree / plain split / json).

Opt-in: ``UNIHEMA_PDPF_FULL=<the extracted Google Drive download>`` converts it and prints the
layout found."""
from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "pd_pf_tek"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"].split("/", 1)[1]: r for f in all_parquet_files(out) if f.parent.name == SID
            for r in pq.read_table(f).to_pylist()}


def _independent(root: Path) -> dict[str, list[list[float]]]:
    out = {}
    if (root / "Annotations").is_dir():
        for x in sorted((root / "Annotations").glob("*.xml")):
            objs = ET.parse(x).getroot().findall("object")
            out[f"JPEGImages/{x.stem}.jpg"] = [
                [float(o.find("bndbox/xmin").text) - 1, float(o.find("bndbox/ymin").text) - 1,
                 float(o.find("bndbox/xmax").text) - float(o.find("bndbox/xmin").text) + 1,
                 float(o.find("bndbox/ymax").text) - float(o.find("bndbox/ymin").text) + 1] for o in objs]
    elif (root / "labels").is_dir():
        for lab in sorted((root / "labels").glob("*.txt")):
            W, H = Image.open(root / "images" / f"{lab.stem}.jpg").size
            rows = [[float(v) for v in ln.split()[1:]] for ln in lab.read_text().splitlines() if ln.strip()]
            out[f"images/{lab.stem}.jpg"] = [[(xc - w / 2) * W, (yc - h / 2) * H, w * W, h * H] for xc, yc, w, h in rows]
    else:
        data = json.loads((root / "annotations" / "instances.json").read_text())
        for im in data["images"]:
            out[f"images/{im['file_name']}"] = [a["bbox"] for a in data["annotations"] if a["image_id"] == im["id"]]
    return out


@pytest.mark.parametrize("seed, variant", [(0, "voc"), (1, "yolo"), (2, "coco")])
def test_each_variant_against_an_independent_reading(tmp_path, seed, variant):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=seed)
    rep = convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    assert rep.inputs.info["layout"].lower().startswith({"voc": "pascal voc", "yolo": "yolo", "coco": "coco"}[variant])
    rows = _rows(tmp_path / "out")
    want = _independent(truth.root)
    assert set(rows) == set(want)
    for rel, boxes in want.items():
        got = rows[rel]["objects"]["bbox"]
        assert len(got) == len(boxes)
        for g, w in zip(got, boxes):
            assert g == pytest.approx(w, abs=0.01)
        assert {label_name(c) for c in rows[rel]["objects"]["category"]} <= {"plasmodium_falciparum"}
        if boxes:
            assert rows[rel]["prompt"] == "This image is for the detection of malaria cells."


def test_two_layouts_at_once_is_an_error(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=0)  # voc
    (truth.root / "annotations").mkdir()
    (truth.root / "annotations" / "instances.json").write_text('{"images": [], "annotations": [], "categories": []}')
    with pytest.raises(ConversionError, match="holds both a voc and a coco layout"):
        convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))


def test_unknown_layout_says_what_was_expected(tmp_path):
    root = tmp_path / "raw" / SID / "PD-PF"
    root.mkdir(parents=True)
    (root / "img1.jpg").write_bytes(b"")
    (root / "img1.csv").write_text("x,y,w,h\n1,2,3,4\n")
    with pytest.raises(ConversionError, match=r"Unknown layout: .*expected Pascal VOC .*YOLO .*COCO JSON"):
        convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))


def test_unconfirmed_class_name_stops_the_conversion(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)  # yolo
    (truth.root / "classes.txt").write_text("gametocyte\n")
    with pytest.raises(ConversionError, match="gametocyte"):
        convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))
    assert not all_parquet_files(tmp_path / "out")


def test_bad_yolo_line_names_file_and_line(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    lab = truth.root / "labels" / "pf_001.txt"
    lab.write_text(lab.read_text() + "0 0.5 0.5 0.1\n")
    with pytest.raises(ConversionError, match=r"pf_001\.txt: line \d+: 4 columns"):
        convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))


@pytest.mark.skipif(not os.environ.get("UNIHEMA_PDPF_FULL"), reason="set UNIHEMA_PDPF_FULL to the release")
def test_full_release(tmp_path):
    rep = convert([SID], Path(os.environ["UNIHEMA_PDPF_FULL"]), tmp_path / "out", ConvertOptions(num_proc=2, progress=False))[0]
    rows = _rows(tmp_path / "out")
    want = _independent(Path(rep.root))
    assert set(rows) == set(want)
    print(rep.inputs.info, rep.total)
