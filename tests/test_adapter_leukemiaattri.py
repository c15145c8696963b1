"""leukemiaattri: the real sample (images without labels, WBC_v1.yaml), both label variants (6 and 7
attribute columns) end to end, variant mixing, the LLD 16-column form, domain folders and file-name
metadata."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters.base import CorruptInputError, MissingInputError
from unihema_data.adapters.leukemiaattri import (ATTRS_6, ATTRS_7, CLASS_NAMES, LeukemiaAttriAdapter,
                                                 parse_domain_part)
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.formats import yolo
from unihema_data.outdir import all_parquet_files
from unihema_data.taxonomy import NOT_ANNOTATED, load_taxonomy

SID = "leukemiaattri"
REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples" / SID


def _rows(out: Path) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()]


def _need_real() -> Path:
    if not REAL.is_dir():
        pytest.skip(f"real sample absent: {REAL}")
    return REAL


def _label_of(root: Path, rel: str) -> Path:
    img = root / rel
    return img.parent.parent.parent / "labels" / img.parent.name / f"{img.stem}.txt"


# ------------------------------------------------------------------------------------ real sample
def test_real_sample_images_found_and_missing_labels_reported():
    real = _need_real()
    images = sorted((real / "data" / "sample_data").glob("*.png"))
    assert len(images) == 3
    with pytest.raises(MissingInputError) as ei:
        LeukemiaAttriAdapter().locate(real)
    msg = str(ei.value)
    assert "leukemiaattri" in msg and "Found 3 image(s)" in msg and "no YOLO label files" in msg
    assert "data/sample_data/" in msg and "data/WBC_v1.yaml" in msg


def test_real_sample_convert_fails_cleanly(tmp_path):
    real = _need_real()
    with pytest.raises(ConversionError, match="no YOLO label files"):
        convert([SID], real, tmp_path / "out", ConvertOptions(num_proc=1, progress=False))
    assert not all_parquet_files(tmp_path / "out")


def test_real_wbc_v1_yaml_class_names(tmp_path):
    real = _need_real()
    names = yolo.read_yaml_names(real / "data" / "WBC_v1.yaml")
    assert names == list(CLASS_NAMES) and len(names) == 14 and names[0] == "None"
    # the adapter reads it from <root>/data/*.yaml
    root = tmp_path / "LeukemiaAttri"
    (root / "data").mkdir(parents=True)
    shutil.copy(real / "data" / "WBC_v1.yaml", root / "data" / "WBC_v1.yaml")
    a = LeukemiaAttriAdapter()
    assert a.class_names(root) == names and a.class_source == "data/WBC_v1.yaml"
    tax = load_taxonomy()
    assert [tax.map_label(SID, n) for n in names][:3] == ["artifact", "myeloblast", "lymphoblast"]


def test_real_images_with_synthetic_labels(tmp_path):
    """The real file names (4_15_1000_ALL.png ...) and 640x640 PNGs in a YOLO layout, with label
    files written here (7-attribute lines): file-name metadata and boxes from an independent parse."""
    real = _need_real()
    root = tmp_path / "raw" / "LeukemiaAttri"
    lines = {}
    for k, img in enumerate(sorted((real / "data" / "sample_data").glob("*.png"))):
        (root / "images" / "test").mkdir(parents=True, exist_ok=True)
        (root / "images" / "test" / img.name).symlink_to(img)
        lines[img.stem] = [f"{k + 1} 0.5{k} 0.4{k} 0.1{k} 0.12 1 0 1 2 0 1 0"] if k != 1 else []
        yolo.write_yolo(root / "labels" / "test" / f"{img.stem}.txt", lines[img.stem])
    out = tmp_path / "out"
    convert([SID], tmp_path / "raw", out, ConvertOptions(num_proc=1, progress=False))
    rows = {r["sample_id"].rsplit("/", 1)[-1]: r for r in _rows(out)}
    assert len(rows) == 3
    tax = load_taxonomy()
    for stem, lns in lines.items():
        r = rows[f"{stem}.png"]
        a, b, mag, disease = stem.split("_")
        assert (r["width"], r["height"]) == Image.open(real / "data" / "sample_data" / f"{stem}.png").size == (640, 640)
        assert (mag, disease) == ("1000", "ALL")
        assert r["disease"] == "leukemia" and r["magnification"] == "100x"
        assert r["subset"] == "ALL" and r["group_id"] == f"{a}_{b}_ALL"
        assert r["source_split"] == "test" and r["split"] == "test"
        assert "attr_variant:7" in r["qc_flags"]
        want = []
        for ln in lns:
            t = ln.split()
            xc, yc, w, h = float(t[1]) * 640, float(t[2]) * 640, float(t[3]) * 640, float(t[4]) * 640
            want.append([xc - w / 2, yc - h / 2, w, h])
            assert r["objects"]["source_category"] == [CLASS_NAMES[int(t[0])]]
            got_attrs = {x["name"]: x["value"] for x in r["objects"]["attributes"][0]}
            assert got_attrs == dict(tax.map_attribute(SID, n, v) for n, v in zip(ATTRS_7, t[5:]))
            assert got_attrs["nucleoli"] == NOT_ANNOTATED  # "Nucleus" code 2
        assert np.allclose(r["objects"]["bbox"], want, atol=0.5) if want else r["objects"]["bbox"] == []


# ------------------------------------------------------------------------------------ variants
@pytest.mark.parametrize("seed, n_attr, multi", [(2, 6, True), (4, 6, False), (3, 7, False)])
def test_fake_variants_end_to_end(tmp_path, seed, n_attr, multi):
    a = LeukemiaAttriAdapter()
    truth = a.fake(tmp_path / "raw" / SID, seed=seed)
    out = tmp_path / "out"
    report = convert([SID], tmp_path / "raw", out, ConvertOptions(num_proc=1, progress=False))[0]
    assert Path(report.root) == truth.root
    rows = {r["sample_id"]: r for r in _rows(out)}
    assert len(rows) == truth.num_images
    assert report.flags.get("attr_variant") == truth.num_images
    tax = load_taxonomy()
    names = ATTRS_7 if n_attr == 7 else ATTRS_6
    assert names == tax.attribute_columns(SID, n_attr)
    empty = 0
    for rel, t in truth.samples.items():
        r = rows[f"{SID}/{rel}"]
        assert f"attr_variant:{n_attr}" in r["qc_flags"]
        assert r["objects"]["source_category"] == t.categories
        assert np.allclose(r["objects"]["bbox"], t.boxes, atol=0.5) if t.boxes else not r["objects"]["bbox"]
        for got, want in zip(r["objects"]["attributes"], t.object_attributes):
            assert list(want) == list(names)
            assert {x["name"]: x["value"] for x in got} == dict(tax.map_attribute(SID, k, v) for k, v in want.items())
        empty += not t.boxes
        assert r["disease"] == "leukemia"
        assert r["subset"].split("/")[-1] in ("ALL", "AML", "APML", "CLL", "CML")
        if multi:
            assert r["microscope"] in ("HCM", "LCM") and r["magnification"] in ("100x", "40x")
            assert r["subset"].split("/")[0] in ("HCM_100x", "L_40x_C2")
            if r["microscope"] == "LCM":
                assert "magnification_conflict:40x!=100x" in r["qc_flags"]
        else:
            assert r["magnification"] == "100x" and "/" not in r["subset"]
    assert empty == (2 if multi else 1)
    assert len({r["subset"].split("/")[-1] for r in rows.values()}) == 5
    assert a.variant is None  # convert() uses its own adapter instance
    list(a.iter_samples(truth.root))
    assert a.variant == n_attr


def test_fake_variant_argument(tmp_path):
    a = LeukemiaAttriAdapter()
    t6 = a.fake(tmp_path / "a", seed=1, variant=6)
    t7 = a.fake(tmp_path / "b", seed=2, variant=7)
    assert all(len(o) == 6 for s in t6.samples.values() for o in s.object_attributes)
    assert all(len(o) == 7 for s in t7.samples.values() for o in s.object_attributes)
    with pytest.raises(ValueError):
        a.fake(tmp_path / "c", variant=16)


def test_mixed_variants_across_files_is_an_error(tmp_path):
    a = LeukemiaAttriAdapter()
    truth = a.fake(tmp_path / "raw", seed=3)  # 7 attributes
    rel = next(r for r, s in sorted(truth.samples.items()) if s.boxes)
    lab = _label_of(truth.root, rel)
    lab.write_text("".join(" ".join(ln.split()[:-1]) + "\n" for ln in lab.read_text().splitlines() if ln.strip()))
    with pytest.raises(CorruptInputError, match=r"mix variants: .*11 columns \(6 attributes\).*12 \(7 attributes\)") as ei:
        list(a.iter_samples(truth.root))
    assert lab.name in str(ei.value)


def test_mixed_columns_inside_a_file_names_the_line(tmp_path):
    a = LeukemiaAttriAdapter()
    truth = a.fake(tmp_path / "raw", seed=4)  # 6 attributes
    rel = next(r for r, s in sorted(truth.samples.items()) if s.boxes)
    lab = _label_of(truth.root, rel)
    lab.write_text(lab.read_text().rstrip("\n") + "\n0 0.5 0.5 0.1 0.1 1 1 1 1 1 1 1\n")
    n = len([ln for ln in lab.read_text().splitlines()])
    with pytest.raises(CorruptInputError, match=rf"{lab.name}: line {n}: 12 columns, expected 11"):
        list(a.iter_samples(truth.root))


def test_lld_16_columns_and_bad_codes(tmp_path):
    a = LeukemiaAttriAdapter()
    truth = a.fake(tmp_path / "raw", seed=3)
    rel = next(r for r, s in sorted(truth.samples.items()) if s.boxes)
    lab = _label_of(truth.root, rel)
    lab.write_text("1 0.5 0.5 0.1 0.1 0.1 0.9 0.1 0.9 1 0 1 0 1 0 1\n")
    with pytest.raises(CorruptInputError, match=r"16 columns .*LLD.*`lld` adapter") as ei:
        list(a.iter_samples(truth.root))
    assert lab.name in str(ei.value)
    lab.write_text("1 0.5 0.5 0.1 0.1 1 0 x 0 1 0 1\n")
    with pytest.raises(CorruptInputError, match=rf"{lab.name}: line 1: attribute 'Nuclear Shape' code 'x'"):
        list(a.iter_samples(truth.root))
    lab.write_text("14 0.5 0.5 0.1 0.1 1 0 1 0 1 0 1\n")
    with pytest.raises(CorruptInputError, match=r"class id 14 is out of range \(0\.\.13\)"):
        list(a.iter_samples(truth.root))


# ------------------------------------------------------------------------------------ layout
def test_missing_label_file_is_reported(tmp_path):
    a = LeukemiaAttriAdapter()
    truth = a.fake(tmp_path / "raw", seed=3)
    rel = sorted(truth.samples)[0]
    _label_of(truth.root, rel).unlink()
    with pytest.raises(MissingInputError, match=rf"{Path(rel).name}: label file .*{Path(rel).stem}\.txt is missing"):
        list(a.iter_samples(truth.root))


def test_unknown_domain_folder_is_an_error(tmp_path):
    a = LeukemiaAttriAdapter()
    truth = a.fake(tmp_path / "raw", seed=1)  # multi-domain
    shutil.copytree(truth.root / "HCM_100x", truth.root / "mystery")
    assert a.locate(tmp_path / "raw") == truth.root
    with pytest.raises(CorruptInputError, match=r"unknown layout: .*mystery.*'mystery' has no microscope"):
        a.check(truth.root)


def test_nested_domain_folders(tmp_path):
    a = LeukemiaAttriAdapter()
    truth = a.fake(tmp_path / "raw", seed=1)
    nested = tmp_path / "nested" / "LeukemiaAttri"
    shutil.copytree(truth.root / "HCM_100x", nested / "HCM" / "40x")
    shutil.copytree(truth.root / "data", nested / "data")
    assert a.locate(tmp_path / "nested") == nested
    samples = list(a.iter_samples(nested))
    assert {s.meta["microscope"] for s in samples} == {"HCM"}
    assert {s.meta["magnification"] for s in samples} == {"40x"}
    assert all(s.subset.startswith("HCM/40x/") for s in samples)


@pytest.mark.parametrize("name, want", [
    ("HCM_100x", ("HCM", "100x")), ("L_40x_C2", ("LCM", "40x")), ("H_100x_C2", ("HCM", "100x")),
    ("1000_HCM_Microscope_data", ("HCM", "100x")), ("LCM", ("LCM", "")), ("10x", ("", "10x")),
    ("C2", ("", "")), ("images_v2", None), ("LeukemiaAttri", None),
])
def test_parse_domain_part(name, want):
    assert parse_domain_part(name) == want


def test_coco_copy_is_explained(tmp_path):
    ann = tmp_path / "raw" / "COCO Dataset" / "Annotations"
    ann.mkdir(parents=True)
    (ann / "train.json").write_text("{}")
    with pytest.raises(MissingInputError, match="COCO annotations .*reads the YOLO release"):
        LeukemiaAttriAdapter().locate(tmp_path / "raw")


def test_unparsed_file_name_is_flagged(tmp_path):
    a = LeukemiaAttriAdapter()
    truth = a.fake(tmp_path / "raw", seed=4)
    rel = next(r for r, s in sorted(truth.samples.items()) if s.boxes)
    img, lab = truth.root / rel, _label_of(truth.root, rel)
    img.rename(img.with_name("field_0001.png"))
    lab.rename(lab.with_name("field_0001.txt"))
    odd = truth.root / "images" / "train" / "3_3_1000_MDS.png"
    shutil.copy(truth.root / sorted(truth.samples)[-1], odd)
    (truth.root / "labels" / "train" / "3_3_1000_MDS.txt").write_text("")
    by_name = {Path(s.rel_path).name: s for s in a.iter_samples(truth.root)}
    s = by_name["field_0001.png"]
    assert s.qc_flags == ["attr_variant:6", "unparsed_file_name"] and s.group_id == "" and s.subset == ""
    assert "disease" not in s.meta
    m = by_name["3_3_1000_MDS.png"]
    assert "unknown_disease_token:MDS" in m.qc_flags and "disease" not in m.meta and m.subset == ""
