"""txl_pbc: real-sample conformance (every box against an independent YOLO parse with the real image
size), class-file quirks (three spellings of class 2, classes.txt in label folders) and the strict
shared YOLO parser (unihema_data/formats/yolo.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters.base import CorruptInputError, MissingInputError
from unihema_data.schema import label_name
from unihema_data.adapters.txl_pbc import TXLPBCAdapter
from unihema_data.convert import ConvertOptions, convert
from unihema_data.formats import yolo
from unihema_data.outdir import all_parquet_files
from unihema_data.taxonomy import load_taxonomy

SID = "txl_pbc"
REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples" / SID
NAMES = ["WBC", "RBC", "Platelets"]  # TXL_PBC/data.yaml, the authoritative class names


def _rows(out: Path) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()]


def _need_real() -> Path:
    if not REAL.is_dir():
        pytest.skip(f"real sample absent: {REAL}")
    return REAL / "TXL_PBC"


# ------------------------------------------------------------------------------------ real sample
def test_real_sample_conversion(tmp_path):
    root = _need_real()
    report = convert([SID], REAL, tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    assert Path(report.root) == root
    rows = {r["sample_id"]: r for r in _rows(tmp_path / "out")}
    tax = load_taxonomy()
    # independent parse: plain split() of every label file (classes.txt excluded), PIL image size
    pairs = sorted(p for p in (root / "labels").glob("*/*.txt") if p.name != "classes.txt")
    assert len(pairs) == len(rows) == report.total == 8
    n_boxes = 0
    sizes = set()
    for lab in pairs:
        split = lab.parent.name
        img = root / "images" / split / f"{lab.stem}.jpg"
        W, H = Image.open(img).size
        sizes.add((W, H))
        r = rows[f"{SID}/images/{split}/{img.name}"]
        assert (r["width"], r["height"]) == (W, H)
        assert r["source_split"] == split
        assert r["split"] == {"train": "train", "val": "validation", "test": "test"}[split]
        want_boxes, want_cats = [], []
        for line in lab.read_text().split("\n"):
            if not line.strip():
                continue
            c, xc, yc, w, h = line.split()
            xc, yc, w, h = float(xc) * W, float(yc) * H, float(w) * W, float(h) * H
            want_boxes.append([xc - w / 2, yc - h / 2, w, h])
            want_cats.append(NAMES[int(c)])
        n_boxes += len(want_boxes)
        got = r["objects"]["bbox"]
        assert len(got) == len(want_boxes)
        for g, wnt in zip(got, want_boxes):
            # the core clips boxes to the image; the real boxes are all inside (0, 1]
            assert np.allclose(g, wnt, atol=0.5), (lab.name, g, wnt)
        assert r["objects"]["source_category"] == want_cats
        assert [label_name(c) for c in r["objects"]["category"]] == [tax.map_label(SID, c) for c in want_cats]
        assert {label_name(c) for c in r["objects"]["category"]} <= {"wbc", "rbc", "platelet"}
        assert r["tasks"] == ["detection"]
    assert n_boxes == 155 == sum(len(r["objects"]["bbox"]) for r in rows.values())
    assert {(360, 363), (366, 369), (416, 416), (575, 575), (640, 480)} <= sizes


def test_real_sample_class_files():
    root = _need_real()
    a = TXLPBCAdapter()
    assert a.class_names(root) == NAMES
    assert a.class_source == "data.yaml"
    # class 2 has three spellings; classes 0 and 1 agree everywhere
    assert set(a.class_name_variants) == {2}
    spellings = a.class_name_variants[2]
    assert spellings["data.yaml"] == "Platelets"
    assert spellings["labels/classes.txt"] == "Platelet"
    assert {spellings[f"labels/{s}/classes.txt"] for s in ("train", "val", "test")} == {"PC"}
    # classes.txt inside label folders is never read as a label file
    samples = list(a.iter_samples(root))
    assert len(samples) == 8
    assert all(not s.annotation_file.endswith("classes.txt") for s in samples)


# ------------------------------------------------------------------------------------ quirks
@pytest.fixture()
def fake(tmp_path):
    a = TXLPBCAdapter()
    truth = a.fake(tmp_path / "raw", seed=5)
    return a, truth


def test_fake_quirks_present(fake):
    a, truth = fake
    root = a.locate(truth.root.parent.parent)
    assert root == truth.root
    samples = {s.rel_path: s for s in a.iter_samples(root)}
    assert samples.keys() == truth.samples.keys()
    empty = [s for s in samples.values() if not s.objects]
    assert len(empty) == 1 and Path(empty[0].annotation_file).read_text() == ""
    sizes = {Image.open(s.image_path).size for s in samples.values()}
    assert any(w != h for w, h in sizes)
    assert (root / "labels" / "train" / "classes.txt").read_text().split() == ["WBC", "RBC", "PC"]
    assert {s.source_split for s in samples.values()} == {"train", "val", "test"}


def test_class_count_mismatch_is_an_error(fake):
    a, truth = fake
    bad = truth.root / "labels" / "val" / "classes.txt"
    bad.write_text("WBC\nRBC\nPC\nRBC-clump\n")
    with pytest.raises(CorruptInputError, match=r"labels/val/classes\.txt.*4 classes"):
        list(a.iter_samples(truth.root))


def test_class_order_mismatch_is_an_error(fake):
    a, truth = fake
    bad = truth.root / "labels" / "classes.txt"
    bad.write_text("RBC\nWBC\nPlatelet\n")
    with pytest.raises(CorruptInputError, match=r"labels/classes\.txt: class 0 is 'RBC' but .*data\.yaml has 'WBC'"):
        list(a.iter_samples(truth.root))


def test_classes_txt_fallback_without_data_yaml(fake):
    a, truth = fake
    (truth.root / "data.yaml").unlink()
    samples = list(a.iter_samples(truth.root))
    assert a.class_source == "labels/classes.txt"
    cats = {o.category for s in samples for o in s.objects}
    assert cats <= {"WBC", "RBC", "Platelet"} and "WBC" in cats


def test_missing_label_and_orphan_label(fake):
    a, truth = fake
    rel = sorted(truth.samples)[0]
    img = truth.root / rel
    lab = truth.root / "labels" / img.parent.name / f"{img.stem}.txt"
    moved = lab.with_name("elsewhere.bak")
    lab.rename(moved)
    with pytest.raises(MissingInputError, match=img.name):
        list(a.iter_samples(truth.root))
    moved.rename(lab)
    orphan = truth.root / "labels" / "train" / "no-such-image.txt"
    orphan.write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(CorruptInputError, match="no-such-image.txt: label file has no image"):
        list(a.iter_samples(truth.root))


def test_corrupt_label_line_names_file_and_line(fake):
    a, truth = fake
    name = a.corrupt(truth)
    with pytest.raises(CorruptInputError) as ei:
        list(a.iter_samples(truth.root))
    assert name in str(ei.value) and "line 1" in str(ei.value) and "4 columns" in str(ei.value)


# ------------------------------------------------------------------------------------ YOLO parser
def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "lab.txt"
    p.write_text(text)
    return p


def test_parser_verbatim_floats_and_tolerant_whitespace(tmp_path):
    p = _write(tmp_path, "1 0.070833 0.772727 0.136111 0.234160  \n\n  2\t0.5 0.5 0.01 0.02\n\n   \n")
    f = yolo.parse_yolo(p, num_classes=3)
    assert [r.cls for r in f.rows] == [1, 2]
    assert f.rows[0].box == (0.070833, 0.772727, 0.136111, 0.234160)
    assert [r.line for r in f.rows] == [1, 3]
    assert f.columns == 5
    assert yolo.parse_yolo(_write(tmp_path, "")).rows == ()
    assert yolo.parse_yolo(_write(tmp_path, "1.0 0.5 0.5 0.1 0.1\n")).rows[0].cls == 1


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("0 0.5 0.5 0.1\n", r"line 1: 4 columns, expected 5"),
        ("0 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1 0.1 7\n", r"line 2: 6 columns"),
        ("0 0.5 abc 0.1 0.1\n", r"line 1: yc 'abc' is not a number"),
        ("0 0.5 0.5 nan 0.1\n", r"line 1: w 'nan' is not finite"),
        ("3 0.5 0.5 0.1 0.1\n", r"line 1: class id 3 is out of range \(0\.\.2\)"),
        ("-1 0.5 0.5 0.1 0.1\n", r"line 1: class id -1 is out of range"),
        ("0.5 0.5 0.5 0.1 0.1\n", r"line 1: class id '0\.5' is not an integer"),
        ("\n0 245 180 0.1 0.1\n", r"line 2: xc=245 is outside .*absolute pixels"),
        ("0 0.5 0.5 -0.1 0.1\n", r"line 1: w=-0.1 is outside"),
        ("0 1.2 0.5 0.1 0.1\n", r"line 1: xc=1.2 is outside"),
    ],
)
def test_parser_rejects_bad_lines(tmp_path, text, pattern):
    p = _write(tmp_path, text)
    with pytest.raises(CorruptInputError, match=pattern) as ei:
        yolo.parse_yolo(p, num_classes=3)
    assert str(p) in str(ei.value)


def test_parser_accepts_slightly_outside_boxes(tmp_path):
    # rounding in exporters puts edges a hair outside the image; the core clips and flags them
    f = yolo.parse_yolo(_write(tmp_path, "0 1.005 -0.004 0.02 0.01\n"))
    assert f.rows[0].box == (1.005, -0.004, 0.02, 0.01)


def test_yaml_names_list_dict_and_nc(tmp_path):
    p = tmp_path / "d.yaml"
    p.write_text("nc: 3\nnames: {0: WBC, 2: Platelets, 1: RBC}\n")
    assert yolo.read_yaml_names(p) == NAMES
    p.write_text("nc: 4\nnames: ['WBC', 'RBC','Platelets']")
    with pytest.raises(CorruptInputError, match="nc: 4 but 'names' lists 3"):
        yolo.read_yaml_names(p)
    p.write_text("names: {0: WBC, 2: RBC}\n")
    with pytest.raises(CorruptInputError, match=r"ids must be 0\.\.1"):
        yolo.read_yaml_names(p)
    p.write_text("train: x\n")
    assert yolo.read_yaml_names(p, required=False) is None
    with pytest.raises(CorruptInputError, match="no 'names'"):
        yolo.read_yaml_names(p)


def test_real_data_yaml_and_classes_txt():
    root = _need_real()
    assert yolo.read_yaml_names(root / "data.yaml") == NAMES
    assert yolo.read_classes_txt(root / "labels" / "classes.txt") == ["WBC", "RBC", "Platelet"]
    assert yolo.read_classes_txt(root / "labels" / "train" / "classes.txt") == ["WBC", "RBC", "PC"]
    assert [p.name for p in yolo.label_files(root / "labels" / "train")] == sorted(
        p.name for p in (root / "labels" / "train").glob("*.txt") if p.name != "classes.txt"
    )


def test_missing_images_folder_is_reported(tmp_path):
    root = _need_real()
    copy = tmp_path / "raw" / "TXL_PBC"
    shutil.copytree(root / "labels", copy / "labels")
    with pytest.raises(MissingInputError, match="native layout not found"):
        TXLPBCAdapter().locate(tmp_path / "raw")
