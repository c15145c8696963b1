"""Adapter contract v2: discovery by content signature, run report, images_from, lazy references
decoded in the workers, one end-to-end test per format family, LeukemiaAttri's released layout."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image
from pycocotools import mask as mask_utils
from typer.testing import CliRunner

import unihema_data.convert as cv
from unihema_data.adapters import REGISTRY, get_adapter
from unihema_data.adapters.base import AmbiguousLayoutError, FakeSample, FakeTruth, MissingInputError
from unihema_data.adapters.families import (ClassFolderAdapter, CocoJsonAdapter, CvatXmlAdapter,
                                            ImageMaskPairAdapter, YoloAdapter)
from unihema_data.catalog import Catalog, DatasetEntry, load_catalog
from unihema_data.cli import app
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.masks import decode_rle, decode_semantic
from unihema_data.outdir import all_parquet_files, read_manifest
from unihema_data.refs import (ArrayImage, ImageBytes, MaskColour, MaskValue, Polygon, Rle, TiffPage,
                               canonical_sha256, decode_object_mask, load_image_ref)
from unihema_data.taxonomy import load_taxonomy

TAX = Path(load_taxonomy.__code__.co_filename).with_name("taxonomy.yaml")


def _rows(out: Path, source: str) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == source
            for r in pq.read_table(f).to_pylist()}


def _opts(**kw) -> ConvertOptions:
    return ConvertOptions(progress=False, **{"num_proc": 1, **kw})


# ------------------------------------------------------------------------------------ discovery
def test_wrong_source_is_never_converted(tmp_path):
    """Only raw/txl_pbc present: converting leukemiaattri must not parse TXL-PBC's labels."""
    get_adapter("txl_pbc").fake(tmp_path / "raw" / "txl_pbc", seed=1)
    with pytest.raises(ConversionError, match="leukemiaattri: native layout not found"):
        convert(["leukemiaattri"], tmp_path / "raw", tmp_path / "out", _opts())
    # even pointed straight at the TXL-PBC tree, the content signature (5-column lines) refuses it
    with pytest.raises(MissingInputError):
        get_adapter("leukemiaattri").locate(tmp_path / "raw" / "txl_pbc")
    assert not all_parquet_files(tmp_path / "out")


def test_txl_tree_under_raw_leukemiaattri_is_refused(tmp_path):
    get_adapter("txl_pbc").fake(tmp_path / "raw" / "leukemiaattri", seed=1)
    with pytest.raises(ConversionError, match="native layout not found"):
        convert(["leukemiaattri"], tmp_path / "raw", tmp_path / "out", _opts())


def test_two_candidates_is_an_error_naming_both(tmp_path):
    a = get_adapter("bccd")
    t1 = a.fake(tmp_path / "raw" / "bccd", seed=1)
    copy = tmp_path / "raw" / "bccd" / "BCCD_copy"
    shutil.copytree(t1.root, copy)
    with pytest.raises(AmbiguousLayoutError) as ei:
        a.locate(tmp_path / "raw" / "bccd")
    msg = str(ei.value)
    assert str(t1.root) in msg and str(copy) in msg
    with pytest.raises(ConversionError, match="two folders .* look like its native root"):
        convert(["bccd"], tmp_path / "raw", tmp_path / "out", _opts())


def test_raw_id_folder_is_preferred(tmp_path):
    """A copy in raw/bccd wins over another BCCD tree elsewhere under raw/."""
    a = get_adapter("bccd")
    own = a.fake(tmp_path / "raw" / "bccd", seed=1)
    shutil.copytree(own.root, tmp_path / "raw" / "old_stuff" / "BCCD")
    assert a.locate(tmp_path / "raw") == own.root
    # without raw/bccd, the search of raw/ finds the other one (and only it)
    shutil.rmtree(tmp_path / "raw" / "bccd")
    assert a.locate(tmp_path / "raw") == tmp_path / "raw" / "old_stuff" / "BCCD"


# ------------------------------------------------------------------------------------ run report
def test_run_report_in_summary_verbose_and_manifest(tmp_path):
    get_adapter("pbc").fake(tmp_path / "raw" / "pbc", seed=1)
    (tmp_path / "raw" / "pbc" / "PBC_dataset_normal_DIB" / "__MACOSX").mkdir()
    rep = convert(["pbc"], tmp_path / "raw", tmp_path / "out", _opts(num_proc=2))[0]
    assert rep.inputs.counts() == {"skipped": 2}
    assert ("neutrophil/.DS_169665.jpg" in [p for p, _ in rep.inputs.of("skipped")])
    m = read_manifest(tmp_path / "out")["sources"]["pbc"]["inputs"]
    assert m["counts"] == {"skipped": 2} and {e["path"] for e in m["skipped"]} == {"neutrophil/.DS_169665.jpg", "__MACOSX"}
    res = CliRunner().invoke(app, ["convert", "pbc", "--raw-dir", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                                   "--verbose", "--overwrite", "--num-proc", "1"])
    assert res.exit_code == 0, res.output
    assert "skipped (2):" in res.output and "neutrophil/.DS_169665.jpg" in res.output
    res = CliRunner().invoke(app, ["convert", "pbc", "--raw-dir", str(tmp_path / "raw"), "--out", str(tmp_path / "out")])
    assert "up_to_date" in res.output and "skipped 2 input(s)" in res.output  # an up-to-date rerun still says it


def test_leukemiaattri_released_layout_detected_and_reported(tmp_path):
    a = get_adapter("leukemiaattri")
    truth = a.fake(tmp_path / "miccai", seed=1)  # multi-domain MICCAI layout
    rel_root = tmp_path / "raw" / "leukemiaattri" / "LeukemiaAttri_Dataset"
    for dom, new in (("HCM_100x", "H_100x_C2"), ("L_40x_C2", "L_40x_C2")):
        src = truth.root / dom
        shutil.copytree(src / "images", rel_root / new / "Images")
        shutil.copytree(src / "labels", rel_root / new / "txt_labels" / "AttriDet")
        (rel_root / new / "json_labels").mkdir()
        (rel_root / new / "json_labels" / "train.json").write_text("{}")
    rep = convert(["leukemiaattri"], tmp_path / "raw", tmp_path / "out", _opts(num_proc=2))[0]
    assert rep.total == truth.num_images
    assert rep.info["layout"] == "released layout (Images/ + txt_labels/AttriDet/)"
    assert rep.info["attribute_variant"] == "7 attribute columns"
    assert any(p.endswith("json_labels/") for p, _ in rep.inputs.of("skipped"))
    rows = _rows(tmp_path / "out", "leukemiaattri")
    by_rel = {k.split("/", 1)[1]: r for k, r in rows.items()}
    for rel, t in truth.samples.items():
        dom, rest = rel.split("/", 1)
        new = {"HCM_100x": "H_100x_C2"}.get(dom, dom)
        r = by_rel[f"{new}/Images/{rest.split('/', 1)[1]}"]
        assert r["objects"]["source_category"] == t.categories
        assert np.allclose(r["objects"]["bbox"], t.boxes, atol=0.5) if t.boxes else not r["objects"]["bbox"]
    m = read_manifest(tmp_path / "out")["sources"]["leukemiaattri"]
    assert m["info"]["layout"].startswith("released")
    # the MICCAI layout is reported as such
    rep2 = convert(["leukemiaattri"], tmp_path / "miccai", tmp_path / "out2", _opts())[0]
    assert rep2.info["layout"] == "MICCAI YOLO layout (images/ + labels/)"


def test_images_from_declared_in_catalog(tmp_path):
    assert load_catalog().get("wbcatt").images_from == ["pbc"]
    src = Path(get_adapter("wbcatt").__class__.__module__.replace(".", "/") + ".py")
    text = (Path(__file__).resolve().parents[1] / src).read_text()
    assert "from .pbc" not in text and ".parents" not in text  # no PBC internals, no ancestor climbing
    a = get_adapter("wbcatt")
    a.fake(tmp_path / "raw" / "wbcatt", seed=3, pbc_out=tmp_path / "raw" / "pbc")
    rep = convert(["wbcatt"], tmp_path / "raw", tmp_path / "out", _opts())[0]
    assert rep.info["images_from:pbc"] == str(tmp_path / "raw" / "pbc" / "PBC_dataset_normal_DIB")


# ------------------------------------------------------------------------------------ lazy refs
def test_image_refs_decode(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", images=np.stack([rgb, rgb[::-1]]))
    np.save(tmp_path / "b.npy", rgb)
    pages = [Image.fromarray(rgb), Image.fromarray(rgb[::-1].copy())]
    pages[0].save(tmp_path / "c.tif", save_all=True, append_images=pages[1:])
    png = io.BytesIO()
    Image.fromarray(rgb).save(png, format="PNG")
    got = {
        "npz": load_image_ref(ArrayImage(tmp_path / "a.npz", "images", 1)),
        "npy": load_image_ref(ArrayImage(tmp_path / "b.npy")),
        "tiff": load_image_ref(TiffPage(tmp_path / "c.tif", 1)),
        "bytes": load_image_ref(ImageBytes(png.getvalue(), "zip:x.png")),
    }
    want = {"npz": rgb[::-1], "npy": rgb, "tiff": rgb[::-1], "bytes": rgb}
    for k, st in got.items():
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(st.data))), want[k]), k
        assert (st.width, st.height) == (16, 12)
    assert got["npz"].sha256 == got["tiff"].sha256 == canonical_sha256(rgb[::-1])  # same pixels, same hash
    assert not got["bytes"].reencoded and got["npz"].reencoded
    with pytest.raises(Exception, match="page"):
        load_image_ref(TiffPage(tmp_path / "c.tif", 5))
    with pytest.raises(Exception, match="no array 'nope'"):
        load_image_ref(ArrayImage(tmp_path / "a.npz", "nope"))


def test_object_mask_refs_decode(tmp_path):
    H, W = 40, 50
    inst = np.zeros((H, W), np.uint16)
    inst[5:15, 5:20] = 3
    inst[20:35, 30:45] = 700
    Image.fromarray(inst).save(tmp_path / "inst.png")
    col = np.zeros((H, W, 3), np.uint8)
    col[5:15, 5:20] = (255, 0, 0)
    Image.fromarray(col).save(tmp_path / "col.png")
    m = decode_rle(decode_object_mask(MaskValue(tmp_path / "inst.png", 700), H, W), H, W)
    assert np.array_equal(m, inst == 700)
    m = decode_rle(decode_object_mask(MaskColour(tmp_path / "col.png", (255, 0, 0)), H, W), H, W)
    assert np.array_equal(m, inst == 3)
    poly = Polygon.of([10, 10, 30, 10, 30, 20, 10, 20])
    want = mask_utils.decode(mask_utils.frPyObjects([[10, 10, 30, 10, 30, 20, 10, 20]], H, W)[0]).astype(bool)
    assert np.array_equal(decode_rle(decode_object_mask(poly, H, W), H, W), want)
    enc = mask_utils.encode(np.asfortranarray((inst == 3).astype(np.uint8)))
    assert np.array_equal(decode_rle(decode_object_mask(Rle(enc["counts"].decode(), (H, W)), H, W), H, W), inst == 3)
    counts = []  # uncompressed, column-major
    flat = (inst == 3).flatten(order="F")
    cur, run = False, 0
    for v in flat:
        if v != cur:
            counts.append(run)
            cur, run = v, 0
        run += 1
    counts.append(run)
    assert np.array_equal(decode_rle(decode_object_mask(Rle(tuple(counts), (H, W)), H, W), H, W), inst == 3)
    with pytest.raises(Exception, match="no pixel has instance value 9"):
        decode_object_mask(MaskValue(tmp_path / "inst.png", 9), H, W)
    with pytest.raises(Exception, match="mask is 50x40 but image is 10x10"):
        decode_object_mask(MaskValue(tmp_path / "inst.png", 3), 10, 10)


# ------------------------------------------------------------------------------------ families
_FAMILY_TAX = {
    "labels": {"wbc": "lymphocyte", "rbc": "rbc", "lym": "lymphocyte", "neu": "neutrophil"},
    "mask_classes": {"0": "background", "1": "nucleus", "2": "cytoplasm"},
}


@pytest.fixture
def family_env(tmp_path, monkeypatch):
    """Register a throw-away adapter class under an id with its catalog entry and alias table."""
    tax = yaml.safe_load(TAX.read_text())

    def register(cls):
        sid = cls.id
        tax["sources"][sid] = _FAMILY_TAX
        path = tmp_path / "taxonomy.yaml"
        path.write_text(yaml.safe_dump(tax, allow_unicode=True))
        monkeypatch.setitem(REGISTRY, sid, cls)
        base = load_catalog()
        entry = DatasetEntry(id=sid, name=sid, citation="test", homepage="https://example.org", license="MIT",
                             redistributable=True, access="manual", manual_instructions="test", tasks=list(cls.tasks),
                             disease=["normal"], granularity="field_of_view", native_format=sid)
        monkeypatch.setattr(cv, "load_catalog", lambda: base.merged(Catalog(datasets=[entry])))
        return str(path)

    return register


def _convert_family(cls, family_env, tmp_path, num_proc=2):
    taxp = family_env(cls)
    truth = cls().fake(tmp_path / "raw" / cls.id, seed=1)
    rep = convert([cls.id], tmp_path / "raw", tmp_path / "out", _opts(num_proc=num_proc, taxonomy_path=taxp))[0]
    return truth, rep, _rows(tmp_path / "out", cls.id)


class _Folders(ClassFolderAdapter):
    id = "family_folders"
    levels = ("split", "patient", "class")
    markers = ("train",)

    def fake(self, out, seed=0):
        root = Path(out) / "cells"
        truth = {}
        for split, patient, cls, n in (("train", "p1", "lym", 2), ("train", "p2", "neu", 1), ("test", "p3", "lym", 1)):
            for i in range(n):
                rel = f"{split}/{patient}/{cls}/{i}.png"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (8, 8), (i * 40, 10, 10)).save(root / rel)
                truth[rel] = FakeSample(rel, label=cls, source_split=split, group_id=patient)
        (root / "train" / "p1" / "lym" / "notes.txt").write_text("x")
        return FakeTruth(root, truth)


def test_family_class_folders(family_env, tmp_path):
    truth, rep, rows = _convert_family(_Folders, family_env, tmp_path)
    assert len(rows) == truth.num_images
    for rel, t in truth.samples.items():
        r = rows[f"family_folders/{rel}"]
        assert (r["source_label"], r["source_split"], r["group_id"]) == (t.label, t.source_split, t.group_id)
    assert [p for p, _ in rep.inputs.of("skipped")] == ["train/p1/lym/notes.txt"]
    # a case twin (0.PNG beside 0.png) is an error naming both (tests/test_hostile_disk.py)


class _Pairs(ImageMaskPairAdapter):
    id = "family_pairs"
    markers = ("images", "masks")
    images_dir, masks_dir = "images", "masks"
    mask_values = {0: "0", 1: "1", 2: "2"}
    mask_palette = {(0, 0, 0): 0, (255, 0, 0): 1, (0, 255, 0): 2}

    def mask_key(self, path):
        return path.stem.removesuffix("_mask")

    def fake(self, out, seed=0):
        root = Path(out)
        (root / "images").mkdir(parents=True)
        (root / "masks").mkdir()
        truth = {}
        for i in range(3):
            Image.new("RGB", (20, 10), (200, 180, 190)).save(root / "images" / f"c{i}.jpg")
            native = np.zeros((10, 20), np.uint8)
            native[2:8, 3:9] = 2
            native[4:6, 4:7] = 1
            rgb = np.zeros((10, 20, 3), np.uint8)
            rgb[native == 1] = (255, 0, 0)
            rgb[native == 2] = (0, 255, 0)
            Image.fromarray(rgb).save(root / "masks" / f"c{i}_mask.png")
            truth[f"images/c{i}.jpg"] = FakeSample(f"images/c{i}.jpg", semantic_mask=native)
        Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(root / "masks" / "lonely_mask.png")
        return FakeTruth(root, truth)


def test_family_image_mask_pairs_rgb_palette(family_env, tmp_path):
    truth, rep, rows = _convert_family(_Pairs, family_env, tmp_path)
    tax_native = {"background": 0, "nucleus": 1, "cytoplasm": 2}
    for rel, t in truth.samples.items():
        r = rows[f"family_pairs/{rel}"]
        idx = decode_semantic(r["semantic_mask"]["bytes"])
        back = np.vectorize(lambda i: tax_native[r["mask_classes"][i]])(idx)
        assert np.array_equal(back, t.semantic_mask)
    assert rep.inputs.of("orphaned") == [("masks/lonely_mask.png", "mask without an image (not converted)")]
    # an undeclared colour is an error naming the mask
    bad = np.zeros((10, 20, 3), np.uint8)
    bad[0, 0] = (1, 2, 3)
    Image.fromarray(bad).save(truth.root / "masks" / "c1_mask.png")
    with pytest.raises(ConversionError, match=r"c1_mask.png: colour\(s\) \[\(1, 2, 3\)\] are not in the declared mask palette"):
        convert(["family_pairs"], tmp_path / "raw", tmp_path / "out", _opts(overwrite=True, taxonomy_path=str(tmp_path / "taxonomy.yaml")))


class _Coco(CocoJsonAdapter):
    id = "family_coco"
    markers = ("annotations/instances.json",)
    annotation_files = {"train": ("annotations/instances.json", "images")}

    def fake(self, out, seed=0):
        root = Path(out)
        (root / "images").mkdir(parents=True)
        (root / "annotations").mkdir()
        H, W = 30, 40
        Image.new("RGB", (W, H), (230, 220, 225)).save(root / "images" / "f.png")
        m = np.zeros((H, W), np.uint8)
        m[3:9, 20:33] = 1
        rle = mask_utils.encode(np.asfortranarray(m))
        poly = [5.0, 5.0, 15.0, 5.0, 15.0, 12.0, 5.0, 12.0]
        data = {"images": [{"id": 1, "file_name": "f.png", "width": W, "height": H}],
                "categories": [{"id": 1, "name": "wbc"}, {"id": 2, "name": "rbc"}],
                "annotations": [
                    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 7], "segmentation": [poly], "iscrowd": 0},
                    {"id": 2, "image_id": 1, "category_id": 2, "bbox": [20, 3, 13, 6],
                     "segmentation": {"size": [H, W], "counts": rle["counts"].decode()}, "iscrowd": 1}]}
        (root / "annotations" / "instances.json").write_text(json.dumps(data))
        pm = mask_utils.decode(mask_utils.frPyObjects([poly], H, W)[0])
        return FakeTruth(root, {"images/f.png": FakeSample("images/f.png", boxes=[[5, 5, 10, 7], [20, 3, 13, 6]],
                                                           categories=["wbc", "rbc"], object_masks=[pm, m],
                                                           source_split="train")})


def test_family_coco_json(family_env, tmp_path):
    truth, rep, rows = _convert_family(_Coco, family_env, tmp_path)
    (t,) = truth.samples.values()
    r = rows["family_coco/images/f.png"]
    assert r["objects"]["source_category"] == t.categories and np.allclose(r["objects"]["bbox"], t.boxes)
    for k, m in enumerate(t.object_masks):
        assert np.array_equal(decode_rle(r["objects"]["mask_rle"][k], 30, 40), m > 0)
    # a JSON size that disagrees with the image is an error naming the JSON
    p = truth.root / "annotations" / "instances.json"
    p.write_text(p.read_text().replace('"width": 40', '"width": 41'))
    with pytest.raises(ConversionError, match=r"instances.json: image images/f.png is 40x30 but the JSON says 41x30"):
        convert(["family_coco"], tmp_path / "raw", tmp_path / "out", _opts(overwrite=True, taxonomy_path=str(tmp_path / "taxonomy.yaml")))


class _Cvat(CvatXmlAdapter):
    id = "family_cvat"
    markers = ("annotations.xml",)

    def fake(self, out, seed=0):
        root = Path(out)
        (root / "images").mkdir(parents=True)
        Image.new("RGB", (60, 40), (230, 220, 225)).save(root / "images" / "a.jpg")
        (root / "annotations.xml").write_text(
            '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>'
            '<image id="0" name="a.jpg" width="60" height="40">'
            '<box label="rbc" occluded="0" xtl="2.5" ytl="3.0" xbr="12.5" ybr="9.0"/>'
            '<polygon label="wbc" occluded="0" points="20.0,5.0;40.0,5.0;40.0,25.0;20.0,25.0"/>'
            '</image></annotations>')
        pm = mask_utils.decode(mask_utils.frPyObjects([[20, 5, 40, 5, 40, 25, 20, 25]], 40, 60)[0])
        return FakeTruth(root, {"images/a.jpg": FakeSample("images/a.jpg", categories=["rbc", "wbc"],
                                                           boxes=[[2.5, 3.0, 10.0, 6.0], mask_utils.toBbox(
                                                               mask_utils.encode(np.asfortranarray(pm))).tolist()],
                                                           object_masks=[np.zeros((40, 60)), pm])})


def test_family_cvat_xml(family_env, tmp_path):
    truth, rep, rows = _convert_family(_Cvat, family_env, tmp_path)
    (t,) = truth.samples.values()
    r = rows["family_cvat/images/a.jpg"]
    assert r["objects"]["source_category"] == ["rbc", "wbc"]
    assert np.allclose(r["objects"]["bbox"], t.boxes)
    assert r["objects"]["bbox_source"] == ["annotated", "from_mask"] and r["objects"]["mask_rle"][0] == ""
    assert np.array_equal(decode_rle(r["objects"]["mask_rle"][1], 40, 60), t.object_masks[1] > 0)


class _Yolo(YoloAdapter):
    id = "family_yolo"
    markers = ("images", "labels")
    missing_label_is_empty = True

    def fake(self, out, seed=0):
        root = Path(out)
        for d in ("images/train", "labels/train"):
            (root / d).mkdir(parents=True)
        (root / "classes.txt").write_text("wbc\nrbc\n")
        Image.new("RGB", (100, 50)).save(root / "images/train/a.jpg")
        Image.new("RGB", (100, 50)).save(root / "images/train/b.jpg")  # no label file: reported, no objects
        (root / "labels/train/a.txt").write_text("\ufeff1 0.5 0.5 0.2 0.4\r\n")  # BOM + CRLF
        return FakeTruth(root, {"images/train/a.jpg": FakeSample("images/train/a.jpg", boxes=[[40, 15, 20, 20]],
                                                                 categories=["rbc"], source_split="train"),
                                "images/train/b.jpg": FakeSample("images/train/b.jpg", source_split="train")})


def test_family_yolo(family_env, tmp_path):
    truth, rep, rows = _convert_family(_Yolo, family_env, tmp_path)
    for rel, t in truth.samples.items():
        r = rows[f"family_yolo/{rel}"]
        assert r["objects"]["source_category"] == t.categories
        assert len(r["objects"]["bbox"]) == len(t.boxes) and all(np.allclose(g, w) for g, w in zip(r["objects"]["bbox"], t.boxes))
    assert rep.inputs.of("orphaned") == [("images/train/b.jpg", "image without a label file (read as no objects)")]


def test_family_voc_size_checked(tmp_path):
    """Pascal VOC family (bccd): a <size> that disagrees with the image is an error naming the XML."""
    a = get_adapter("bccd")
    truth = a.fake(tmp_path / "raw" / "bccd", seed=1)
    xml = sorted((truth.root / "Annotations").glob("*.xml"))[2]
    xml.write_text(xml.read_text().replace("<width>640</width>", "<width>320</width>"))
    with pytest.raises(ConversionError, match=rf"{xml.name}: <size> says 320x480 but image {xml.stem}.jpg is 640x480"):
        convert(["bccd"], tmp_path / "raw", tmp_path / "out", _opts(num_proc=2))


def test_parsing_runs_in_workers(tmp_path, monkeypatch):
    """The main process only lists records: VOC XML parsing happens in process_record (workers)."""
    import unihema_data.adapters.families as fam

    calls = []
    real = fam.parse_voc
    monkeypatch.setattr(fam, "parse_voc", lambda p: calls.append(p) or real(p))
    a = get_adapter("bccd")
    truth = a.fake(tmp_path / "raw" / "bccd", seed=1)
    records = list(a.records(truth.root))
    assert records and not calls and all(type(r).__name__ == "VocRecord" for r in records)
    convert(["bccd"], tmp_path / "raw", tmp_path / "out", _opts(num_proc=2))
    assert not calls  # parse_voc ran only in the worker processes (their calls are not seen here)


# ------------------------------------------------------------------------------------ memory
def test_instance_mask_family_small(family_env, tmp_path):
    """Instance masks as lazy (mask file, value) refs: every cell becomes one object whose RLE is
    pixel-identical to ``mask == value`` and whose box is derived from it."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from instance_masks_rss import BenchInstances

    class Small(BenchInstances):
        images, cells, width, height = 2, 30, 320, 240

    taxp = family_env(Small)
    yaml_tax = yaml.safe_load(Path(taxp).read_text())
    yaml_tax["sources"][Small.id]["labels"] = {"wbc": "lymphocyte", "rbc": "rbc"}
    Path(taxp).write_text(yaml.safe_dump(yaml_tax, allow_unicode=True))
    truth = Small().fake(tmp_path / "raw" / Small.id)
    rep = convert([Small.id], tmp_path / "raw", tmp_path / "out", _opts(num_proc=2, taxonomy_path=taxp))[0]
    rows = _rows(tmp_path / "out", Small.id)
    assert rep.total == 2
    for rel in truth.samples:
        r = rows[f"{Small.id}/{rel}"]
        inst = np.asarray(Image.open(truth.root / "masks" / (Path(rel).stem + ".png")))
        assert len(r["objects"]["mask_rle"]) == 30
        for k, v in enumerate(range(1, 31)):
            m = decode_rle(r["objects"]["mask_rle"][k], 240, 320)
            assert np.array_equal(m, inst == v)
            assert r["objects"]["bbox_source"][k] == "from_mask"
            assert r["objects"]["source_category"][k] == ("wbc" if v % 10 == 0 else "rbc")


@pytest.mark.skipif(not __import__("os").environ.get("UNIHEMA_BENCH_RSS"),
                    reason="set UNIHEMA_BENCH_RSS=1 to convert 4000x3000 images with 250 cells each (~15 s)")
def test_instance_masks_peak_rss_under_1gb():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "benchmarks" / "instance_masks_rss.py"),
                          "--images", "6", "--cells", "250", "--num-proc", "2"], capture_output=True, text=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert res.returncode == 0 and out["ok"], out
    assert out["peak_rss_mb"] < 1024 and out["objects"] == 1500
