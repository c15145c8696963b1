"""bccd_kaggle: labels.csv quirks (CRLF, empty first column, empty and multi-label categories with
and without a space), augmented crop lineages kept in one split, unknown folders refused.

The real ``labels.csv`` (``apple2373/BCCD`` holds the Kaggle file) is not in the shared samples:
``UNIHEMA_BCCD_LABELS_CSV=/path/to/labels.csv`` runs the conformance test against it."""
from __future__ import annotations

import csv
import io
import os
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.adapters.bccd_kaggle import parse_category
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name
from unihema_data.taxonomy import load_taxonomy

SID = "bccd_kaggle"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path: Path, name: str):
    return convert([SID], tmp_path / "raw", tmp_path / name, ConvertOptions(num_proc=1, progress=False))[0]


def test_category_values():
    assert parse_category("NEUTROPHIL") == ("NEUTROPHIL", [])
    assert parse_category("") == ("", ["empty_category"])
    assert parse_category("NEUTROPHIL, NEUTROPHIL") == ("NEUTROPHIL", ["cells_in_image:2", "native_category:NEUTROPHIL, NEUTROPHIL"])
    assert parse_category("EOSINOPHIL,EOSINOPHIL")[0] == "EOSINOPHIL"
    assert parse_category("NEUTROPHIL, EOSINOPHIL") == (None, []) == parse_category("NEUTROPHIL,EOSINOPHIL")
    tax = load_taxonomy()
    assert tax.map_label(SID, "") == "unlabeled" and tax.map_label(SID, "BASOPHIL") == "basophil"


def test_fake_fields_and_crops(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    rep = _convert(tmp_path, "out")
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images
    f = "bccd_kaggle/dataset-master/dataset-master/JPEGImages/BloodImage_"
    assert label_name(rows[f + "00002.jpg"]["label"]) == "unlabeled" and "empty_category" in rows[f + "00002.jpg"]["qc_flags"]
    same = rows[f + "00003.jpg"]
    assert label_name(same["label"]) == "neutrophil" and same["source_label"] == "NEUTROPHIL"
    assert {"cells_in_image:2", "native_category:NEUTROPHIL,NEUTROPHIL"} <= set(same["qc_flags"])
    assert f + "00004.jpg" not in rows and f + "00005.jpg" not in rows  # different cells: skipped, reported
    skipped = dict(rep.inputs.of("skipped"))
    assert "several different cells" in skipped["dataset-master/dataset-master/JPEGImages/BloodImage_00004.jpg"]
    assert "'MONOCYTE,LYMPHOCYTE'" in skipped["dataset-master/dataset-master/JPEGImages/BloodImage_00005.jpg"]
    orphans = dict(rep.inputs.of("orphaned"))
    assert orphans["dataset-master/dataset-master/labels.csv:9"] == "BloodImage_00009.jpg is absent"
    assert "not listed in labels.csv" in orphans["dataset-master/dataset-master/JPEGImages/BloodImage_00007.jpg"]
    assert all(r["subset"] == "dataset-master" for k, r in rows.items() if "/JPEGImages/" in k)
    # crops: one lineage, one split, although the published folders put it in TRAIN and TEST
    crops = {k: r for k, r in rows.items() if "/images/" in k}
    by_lineage = defaultdict(set)
    for k, r in crops.items():
        assert r["source_split"] == "" and r["subset"] == "dataset2-master:" + k.split("/images/")[1].split("/")[0]
        by_lineage[r["group_id"]].add(r["split"])
    assert set(by_lineage) == {"lineage:1169", "lineage:207", "lineage:9893", "lineage:44", "lineage:5"}
    assert all(len(s) == 1 for s in by_lineage.values())
    assert rep.info["lineages"].startswith("5 crop lineages; 1 of them are in more than one published folder")
    assert rep.info["layout"] == "dataset-master: dataset-master/dataset-master/; dataset2-master: dataset2-master/dataset2-master/"


def test_flat_layout_and_bad_input(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    # un-nest both parts (a re-packed copy): still found, layout reported
    for part in ("dataset-master", "dataset2-master"):
        shutil.move(str(truth.root / part / part), str(truth.root / f"{part}.tmp"))
        (truth.root / part).rmdir()
        (truth.root / f"{part}.tmp").rename(truth.root / part)
    rep = _convert(tmp_path, "out")
    assert rep.info["layout"] == "dataset-master: dataset-master/; dataset2-master: dataset2-master/"
    csvp = truth.root / "dataset-master" / "labels.csv"
    good = csvp.read_bytes()
    csvp.write_bytes(good.replace(b",1,EOSINOPHIL", b",one,EOSINOPHIL"))
    with pytest.raises(ConversionError, match=r"labels\.csv:3: Image 'one' is not an integer id"):
        _convert(tmp_path, "out1")
    csvp.write_bytes(good.replace(b",1,EOSINOPHIL", b",123456,EOSINOPHIL"))
    with pytest.raises(ConversionError, match=r"labels\.csv:3: Image '123456' is not an integer id of BloodImage_%05d"):
        _convert(tmp_path, "out1b")
    csvp.write_bytes(good.replace(b",1,EOSINOPHIL", b",0,EOSINOPHIL"))
    with pytest.raises(ConversionError, match=r"labels\.csv:3: Image 0 is already listed on line 2"):
        _convert(tmp_path, "out2")
    csvp.write_bytes(good)
    (truth.root / "dataset2-master" / "images" / "TRAIN" / "BASOPHIL").mkdir()
    with pytest.raises(ConversionError, match="unknown class folder 'BASOPHIL'"):
        _convert(tmp_path, "out3")


@pytest.mark.skipif(not os.environ.get("UNIHEMA_BCCD_LABELS_CSV"), reason="set UNIHEMA_BCCD_LABELS_CSV to a real labels.csv")
def test_real_labels_csv_label_by_label(tmp_path):
    """Every row of the real file, converted from a tree of tiny images laid out from it, is
    checked against an independent reading with the csv module."""
    real = Path(os.environ["UNIHEMA_BCCD_LABELS_CSV"])
    ref = list(csv.reader(io.StringIO(real.read_bytes().decode("utf-8"), newline="")))
    assert ref[0] == ["", "Image", "Category"]
    body = ref[1:]
    base = tmp_path / "raw" / SID / "dataset-master"
    (base / "JPEGImages").mkdir(parents=True)
    shutil.copy(real, base / "labels.csv")
    for k, (_, image, _cat) in enumerate(body):
        Image.new("RGB", (16, 12), (k % 256, (k * 7) % 256, 90)).save(base / "JPEGImages" / f"BloodImage_{int(image):05d}.jpg", quality=100)
    rep = _convert(tmp_path, "out")
    rows = _rows(tmp_path / "out")
    tax = load_taxonomy()
    multi = Counter()
    for _, image, cat in body:
        sid = f"{SID}/dataset-master/JPEGImages/BloodImage_{int(image):05d}.jpg"
        parts = [p.strip() for p in cat.split(",")] if cat else [""]
        if len(set(parts)) > 1:
            multi["mixed"] += 1
            assert sid not in rows
            continue
        assert rows[sid]["source_label"] == parts[0] and label_name(rows[sid]["label"]) == tax.map_label(SID, parts[0])
        multi["same" if len(parts) > 1 else "single"] += 1
    assert len(rep.inputs.of("skipped")) == multi["mixed"] and len(rows) == multi["same"] + multi["single"]
