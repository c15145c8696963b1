"""``export``: COCO read back by pycocotools (GT against itself gives AP 1.0), YOLO labels parsed
back against the stored boxes and masks, class folders loaded by ``datasets``' imagefolder."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from unihema_data.adapters import get_adapter
from unihema_data.cli import app
from unihema_data.convert import ConvertOptions, convert
from unihema_data.corpus import class_id, class_name, iter_rows, shards
from unihema_data.export import ExportError, export, mask_polygon, parse_yolo_label
from unihema_data.masks import decode_rle, encode_rle, rle_bbox
from unihema_data.schema import ARROW_SCHEMA
from unihema_data.taxonomy import load_taxonomy

runner = CliRunner(env={"COLUMNS": "200"})


def _add_instance_masks(out: Path, source: str) -> None:
    """Give every object of ``source`` an elliptical instance mask inside its box (box = the mask's
    tight extent), as a segmentation source stores them; rewrites the shards in place."""
    for sh in shards(out, [source]):
        rows = list(iter_rows([sh.path]))
        for r in rows:
            h, w = r["height"], r["width"]
            o = r["objects"]
            rles, boxes = [], []
            yy, xx = np.mgrid[0:h, 0:w]
            for x, y, bw, bh in o["bbox"]:
                cx, cy, rx, ry = x + bw / 2, y + bh / 2, max(bw / 2, 1.5), max(bh / 2, 1.5)
                m = ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1
                rle = encode_rle(m)
                rles.append(rle)
                boxes.append(rle_bbox(rle, h, w))
            o["mask_rle"], o["bbox"], o["bbox_source"] = rles, boxes, ["from_mask"] * len(rles)
        pq.write_table(pa.Table.from_pylist(rows, schema=ARROW_SCHEMA), sh.path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    raw, out = tmp / "raw", tmp / "out"
    for s in ("bccd", "txl_pbc", "pbc"):
        get_adapter(s).fake(raw / s, seed=2)
    convert(["bccd", "txl_pbc", "pbc"], raw, out, ConvertOptions(num_proc=1, progress=False))
    _add_instance_masks(out, "txl_pbc")
    return out


def _rows(out, sources, split=None):
    return [r for sh in shards(out, sources, split) for r in iter_rows([sh.path])]


def test_coco_reads_back_and_scores_ap_1(corpus, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    dest = tmp_path / "coco"
    rep = export(corpus, "coco", dest, ["bccd", "txl_pbc"])
    names = load_taxonomy().class_names()
    rows = {r["sample_id"]: r for r in _rows(corpus, ["bccd", "txl_pbc"])}
    n_boxes = n_masks = 0
    for split in rep.images:
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(str(dest / "annotations" / f"{split}.json"))
        assert [c["name"] for c in gt.loadCats(gt.getCatIds())] == list(names)  # stable ids, + 1
        for img in gt.loadImgs(gt.getImgIds()):
            row = rows[img["sample_id"]]
            data = (dest / "images" / split / img["file_name"]).read_bytes()
            assert data == row["image"]["bytes"]  # the stored bytes, not re-encoded
            anns = gt.loadAnns(gt.getAnnIds(imgIds=img["id"]))
            assert [v for a in anns for v in a["bbox"]] == pytest.approx([v for b in row["objects"]["bbox"] for v in b])
            assert [names[a["category_id"] - 1] for a in anns] == [class_name(c) for c in row["objects"]["category"]]
            for a, rle in zip(anns, row["objects"]["mask_rle"]):
                if rle:
                    n_masks += 1
                    assert np.array_equal(gt.annToMask(a).astype(bool), decode_rle(rle, img["height"], img["width"]))
            n_boxes += len(anns)
        for iou in ("bbox", "segm"):
            anns = gt.loadAnns(gt.getAnnIds())
            if iou == "segm":
                anns = [a for a in anns if "segmentation" in a]
                if not anns:
                    continue
            dets = [{**a, "score": 1.0} for a in anns]
            with contextlib.redirect_stdout(io.StringIO()):
                dt = gt.loadRes(dets)
                ev = COCOeval(gt, dt, iou)
                if iou == "segm":
                    ev.params.imgIds = sorted({a["image_id"] for a in anns})
                ev.evaluate()
                ev.accumulate()
                ev.summarize()
            assert ev.stats[0] == pytest.approx(1.0), (split, iou)
    assert n_boxes == sum(len(r["objects"]["bbox"]) for r in rows.values()) and n_masks > 0
    assert json.loads((dest / "unihema-export.json").read_text())["format"] == "coco"


def test_yolo_labels_match_the_boxes_and_masks(corpus, tmp_path):
    dest = tmp_path / "yolo"
    export(corpus, "yolo", dest, ["bccd", "txl_pbc"])
    data = yaml.safe_load((dest / "data.yaml").read_text())
    assert list(data["names"].values()) == list(load_taxonomy().class_names())
    assert list(data["names"]) == list(range(len(data["names"])))
    assert data["task"] == "segment"
    checked_polys = 0
    for split, ysplit in (("train", "train"), ("validation", "val"), ("test", "test")):
        for row in _rows(corpus, ["bccd", "txl_pbc"], split):
            digest = hashlib.sha256(row["image"]["bytes"]).hexdigest()
            (img,) = list((dest / "images" / ysplit).glob(f"{digest}.*"))
            assert data[ysplit] == f"images/{ysplit}" and img.read_bytes() == row["image"]["bytes"]
            lines = (dest / "labels" / ysplit / f"{digest}.txt").read_text().splitlines()
            w, h = row["width"], row["height"]
            o = row["objects"]
            assert len(lines) == len(o["bbox"])
            for line, box, cat, rle in zip(lines, o["bbox"], o["category"], o["mask_rle"]):
                cid, vals = parse_yolo_label(line)
                assert cid == class_id(cat)
                assert all(0.0 <= v <= 1.0 for v in vals)
                if rle:  # polygon: its extent is the mask's (and so the box's), within half a pixel
                    assert len(vals) >= 6 and len(vals) % 2 == 0
                    xs, ys = np.array(vals[0::2]) * w, np.array(vals[1::2]) * h
                    got = [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
                    assert got == pytest.approx(list(box), abs=0.5)
                    checked_polys += 1
                else:
                    xc, yc, bw, bh = vals
                    got = [(xc - bw / 2) * w, (yc - bh / 2) * h, bw * w, bh * h]
                    assert got == pytest.approx(list(box), abs=0.5)
    assert checked_polys > 0


def _inside(poly, shape):
    """Pixels whose centre (x + 0.5, y + 0.5) is inside the polygon (even-odd rule)."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] + 0.5
    inside = np.zeros(shape, bool)
    for (x1, y1), (x2, y2) in zip(poly, poly[1:] + poly[:1]):
        crosses = (y1 > yy) != (y2 > yy)
        with np.errstate(divide="ignore", invalid="ignore"):
            xcross = x1 + (yy - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (xx < xcross)
    return inside


def test_mask_polygon_encloses_exactly_the_mask():
    m = np.zeros((40, 50), bool)
    m[5:20, 10:30] = True
    m[20:35, 10:15] = True  # an L shape
    poly = mask_polygon(m)
    assert len(poly) == 6
    assert np.array_equal(_inside(poly, m.shape), m)
    # the largest 4-connected part, holes filled; a part touching it only at a corner stays separate
    big = np.zeros((30, 30), bool)
    big[2:20, 2:20] = True
    big[8:12, 8:12] = False      # a hole
    big[20:23, 20:23] = True     # touches the big square only diagonally
    big[25:28, 2:5] = True       # another small part
    want = np.zeros_like(big)
    want[2:20, 2:20] = True
    assert np.array_equal(_inside(mask_polygon(big), big.shape), want)
    assert mask_polygon(np.zeros((5, 5), bool)) == []
    one = np.zeros((5, 5), bool)
    one[2, 3] = True
    assert mask_polygon(one) == [(3.0, 2.0), (4.0, 2.0), (4.0, 3.0), (3.0, 3.0)]


def test_imagefolder_loads_with_datasets(corpus, tmp_path):
    import datasets

    dest = tmp_path / "folders"
    rep = export(corpus, "imagefolder", dest, ["pbc"])
    ds = datasets.load_dataset("imagefolder", data_dir=str(dest), cache_dir=str(tmp_path / "cache"))
    rows = _rows(corpus, ["pbc"])
    want = {}
    for r in rows:
        want.setdefault(r["split"], []).append(class_name(r["label"]))
    assert {k: len(v) for k, v in ds.items()} == {k: len(v) for k, v in want.items()} == rep.images
    for split, d in ds.items():
        names = d.features["label"].names
        assert sorted(names[i] for i in d["label"]) == sorted(want[split])
    stored = {hashlib.sha256(r["image"]["bytes"]).hexdigest() for r in rows}
    on_disk = {hashlib.sha256(p.read_bytes()).hexdigest() for p in dest.rglob("*") if p.suffix in (".jpg", ".png")}
    assert on_disk == stored  # stored bytes, never re-encoded


def test_export_is_atomic_and_refuses_foreign_folders(corpus, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not empty"):
        export(corpus, "coco", foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    dest = tmp_path / "exp"
    export(corpus, "yolo", dest, ["bccd"], split="train")
    assert (dest / "images" / "train").is_dir() and not (dest / "images" / "val").exists()
    # replacing a previous export: a failing export leaves it as it was
    before = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*"))
    with pytest.raises(ExportError, match="no row has an image label"):
        export(corpus, "imagefolder", dest, ["bccd"])
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".exp.")]  # no temp folder left
    export(corpus, "coco", dest, ["bccd"])
    assert (dest / "annotations").is_dir() and not (dest / "labels").exists()


def test_export_reports_a_damaged_shard(corpus, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(corpus, bad)
    shard = shards(bad, ["bccd"])[0].path
    data = bytearray(shard.read_bytes())
    data[4:4096] = bytes(4092)
    shard.write_bytes(bytes(data))
    r = runner.invoke(app, ["export", str(bad), "--format", "coco", "--out", str(tmp_path / "e"), "--source", "bccd"])
    assert r.exit_code == 1 and shard.name in r.output and "unchanged" in r.output
    assert r.exception.__class__ is SystemExit and not (tmp_path / "e").exists()


def test_export_cli(corpus, tmp_path):
    r = runner.invoke(app, ["export", str(corpus), "--format", "coco", "--out", str(tmp_path / "c"),
                            "--source", "bccd", "--split", "test"])
    assert r.exit_code == 0, r.output
    assert [p.name for p in (tmp_path / "c" / "annotations").iterdir()] == ["test.json"]
    r = runner.invoke(app, ["export", str(corpus), "--format", "voc", "--out", str(tmp_path / "v")])
    assert r.exit_code == 2 and "coco" in r.output
    r = runner.invoke(app, ["export", str(corpus), "--format", "coco", "--out", str(tmp_path / "x"),
                            "--source", "nope"])
    assert r.exit_code == 1 and "nope" in r.output and not (tmp_path / "x").exists()


def test_exports_read_class_label_ids_too(corpus, tmp_path):
    """A corpus whose ``label``/``objects.category`` are ClassLabel ints (stable taxonomy ids, as
    written since schema 2.0.0) exports exactly like one storing names (older corpora)."""
    tax = load_taxonomy()
    assert class_name(tax.class_id("neutrophil")) == "neutrophil" == class_name("neutrophil")
    assert class_id("neutrophil") == class_id(tax.class_id("neutrophil")) and class_name(-1) == ""
    ints, named = corpus, tmp_path / "named"
    import shutil

    shutil.copytree(corpus, named)
    for sh in shards(named, ["bccd", "pbc"]):
        rows = list(iter_rows([sh.path]))
        for r in rows:
            r["label"] = class_name(r["label"])
            r["objects"]["category"] = [class_name(c) for c in r["objects"]["category"]]
        pq.write_table(pa.Table.from_pylist(rows), sh.path)
    for fmt in ("coco", "yolo", "imagefolder"):
        src = ["pbc"] if fmt == "imagefolder" else ["bccd"]
        export(named, fmt, tmp_path / f"{fmt}-names", src)
        export(ints, fmt, tmp_path / f"{fmt}-ids", src)
        a = sorted((p.relative_to(tmp_path / f"{fmt}-names").as_posix(), p.read_bytes())
                   for p in (tmp_path / f"{fmt}-names").rglob("*") if p.is_file() and p.name != "unihema-export.json")
        b = sorted((p.relative_to(tmp_path / f"{fmt}-ids").as_posix(), p.read_bytes())
                   for p in (tmp_path / f"{fmt}-ids").rglob("*") if p.is_file() and p.name != "unihema-export.json")
        assert a == b, fmt


REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples"


def test_real_samples_export_byte_identical_images(tmp_path):
    """Real BCCD JPEGs and PBC class folders: exported images are the native files, byte for byte;
    COCO scores AP 1.0 against itself; class folders load with datasets."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not (REAL / "bccd").is_dir() or not (REAL / "pbc").is_dir():
        pytest.skip(f"real samples absent: {REAL}")
    out = tmp_path / "out"
    convert(["bccd", "pbc"], REAL, out, ConvertOptions(num_proc=1, progress=False))
    native = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (REAL / "bccd").rglob("*.jpg")}
    rep = export(out, "coco", tmp_path / "coco", ["bccd"])
    exported = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "coco" / "images").rglob("*.jpg")}
    assert exported and exported <= native
    for split in rep.images:
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(str(tmp_path / "coco" / "annotations" / f"{split}.json"))
            dt = gt.loadRes([{**a, "score": 1.0} for a in gt.loadAnns(gt.getAnnIds())])
            ev = COCOeval(gt, dt, "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        assert ev.stats[0] == pytest.approx(1.0)
    export(out, "imagefolder", tmp_path / "cls", ["pbc"])
    native_pbc = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (REAL / "pbc").rglob("*.jpg")}
    got = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "cls").rglob("*.jpg")}
    assert got and got <= native_pbc
