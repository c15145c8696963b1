"""nlm_thick_pf (and the shared NLM thick-smear reader, also used by nlm_thick_pv): circles and
points checked against an independent reading of the annotation files, the run-time detection of
the header order, and bad input (every error names the file and line, no partial output).

No real sample exists (the NLM archives are not on GitHub); opt-in full check:
``UNIHEMA_NLM_PF_FULL=<folder holding ThickBloodSmears_150/ and GT_updated/>``."""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name
from unihema_data.taxonomy import load_taxonomy

IDS = ("nlm_thick_pf", "nlm_thick_pv")


def _rows(out: Path, sid: str) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == sid for r in pq.read_table(f).to_pylist()}


def _independent(root: Path, images: str, anns: str) -> dict[str, list[tuple]]:
    """``<images>/<patient>/<image>`` -> [(label, kind, coords)] read with the csv module; images
    are matched to annotation files by stem, or by stem without '_'."""
    want = {}
    for ann in sorted((root / anns).glob("*/*.txt")):
        cands = [p for p in (root / images / ann.parent.name).glob("*.jpg")
                 if p.stem == ann.stem or p.stem.replace("_", "") == ann.stem.replace("_", "")]
        assert len(cands) == 1, ann
        with open(ann, newline="") as fh:
            rows = [r for r in csv.reader(fh) if r]
        want[f"{images}/{ann.parent.name}/{cands[0].name}"] = [
            (r[1], r[3], [float(v) for v in r[5:]]) for r in rows[1:]]
    return want


def _check(root: Path, out: Path, sid: str) -> int:
    ad = get_adapter(sid)
    tax = load_taxonomy()
    rows = _rows(out, sid)
    want = _independent(root, ad.images_dir, ad.annotations_dir)
    assert set(rows) == {f"{sid}/{k}" for k in want}
    n = 0
    for rel, objs in want.items():
        r = rows[f"{sid}/{rel}"]
        W, H = Image.open(root / rel).size
        o = r["objects"]
        assert o["source_category"] == [lab for lab, _, _ in objs]
        assert [label_name(c) for c in o["category"]] == [tax.map_label(sid, lab) for lab, _, _ in objs]
        for i, (lab, kind, c) in enumerate(objs):
            if kind == "Circle":
                cx, cy = c[0], c[1]
                rad = math.hypot(c[2] - c[0], c[3] - c[1])
                x0, y0, x1, y1 = max(cx - rad, 0), max(cy - rad, 0), min(cx + rad, W), min(cy + rad, H)
                assert o["bbox_source"][i] == "from_circle"
                assert o["bbox"][i] == pytest.approx([x0, y0, x1 - x0, y1 - y0], abs=1e-3)
                assert o["point"][i] == pytest.approx([cx, cy], abs=1e-3)
                clipped = (x0, y0, x1, y1) != (cx - rad, cy - rad, cx + rad, cy + rad)
                assert any(f.startswith(f"clipped_box:{i}:circle:") for f in r["qc_flags"]) == clipped
            else:
                assert kind == "Point"
                assert o["bbox_source"][i] == "from_point"
                assert o["point"][i] == pytest.approx(c, abs=1e-3)
                assert o["bbox"][i] == pytest.approx([c[0], c[1], 0, 0], abs=1e-3)
        assert r["tasks"] == ["detection"]
        assert r["prompt"] == "This image is for the detection of malaria cells."
        n += len(objs)
    return n


def _fake(tmp_path, sid, mutate=None, seed=3):
    truth = get_adapter(sid).fake(tmp_path / "raw" / sid, seed=seed)
    if mutate:
        mutate(truth.root)
    rep = convert([sid], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    return truth, rep


@pytest.mark.parametrize("sid", IDS)
def test_fake_against_independent_parse(tmp_path, sid):
    truth, rep = _fake(tmp_path, sid)
    assert _check(truth.root, tmp_path / "out", sid) == truth.num_objects
    order = "count,H,W" if sid == "nlm_thick_pf" else "count,W,H"
    assert rep.inputs.info["header_order"] == f"{order}: 4 files, square (either order): 1 files"
    assert rep.inputs.info["name_matching"] == "1 pairs matched ignoring '_'"
    img = get_adapter(sid).images_dir
    assert (f"{img}/P07/IMG_0199.jpg", "image without an annotation file (not converted)") in rep.inputs.of("orphaned")
    rows = _rows(tmp_path / "out", sid)
    assert f"{sid}/{img}/P07/IMG_0199.jpg" not in rows
    n = truth.samples[f"{img}/P07/IMG_0102.jpg"].boxes
    assert f"nlm_header_count:{len(n) + 1}!={len(n)}" in rows[f"{sid}/{img}/P07/IMG_0102.jpg"]["qc_flags"]
    assert not any(f.startswith("nlm_header_count:") for k, r in rows.items() if not k.endswith("IMG_0102.jpg")
                   for f in r["qc_flags"])
    assert {r["group_id"] for r in rows.values()} == {"P01", "P07"}


@pytest.mark.skipif(not os.environ.get("UNIHEMA_NLM_PF_FULL"), reason="set UNIHEMA_NLM_PF_FULL to the full release")
def test_full_release(tmp_path):
    rep = convert(["nlm_thick_pf"], Path(os.environ["UNIHEMA_NLM_PF_FULL"]), tmp_path / "out",
                  ConvertOptions(num_proc=2, progress=False))[0]
    assert _check(Path(rep.root), tmp_path / "out", "nlm_thick_pf") > 0
    print(rep.inputs.info)


def _edit(sid, pat, stem, fn):
    def mutate(root):
        f = root / get_adapter(sid).annotations_dir / pat / f"{stem}.txt"
        f.write_text(fn(f.read_text()))
    return mutate


BAD = [
    (lambda t: t + "9-9,Parasite,No_Comment,Square,2,10,10,20,20\n", "unknown shape 'Square'"),
    (lambda t: t + "9-9,Parasite,No_Comment,Circle,2,10,10,20\n", "Circle with point count 2 and 3 coordinates"),
    (lambda t: t + "9-9,Parasite,No_Comment,Point,x,10,10\n", "point count 'x' is not an integer"),
    (lambda t: t + "9-9,Parasite,No_Comment,Point,1,10,abc\n", "non-numeric coordinate"),
    (lambda t: t + "9-9,Parasite,No_Comment,Point,1,10,nan\n", "non-finite coordinate"),
    (lambda t: t + "9-9,Parasite,No_Comment,Point,1,-5,10\n", "outside the 300x400 image"),
    (lambda t: t + "9-9,Parasite\n", "expected 'id,label,comment,shape,npoints"),
]


@pytest.mark.parametrize("fn, what", BAD)
def test_bad_line_names_file_and_line(tmp_path, fn, what):
    with pytest.raises(ConversionError) as ei:
        _fake(tmp_path, "nlm_thick_pf", _edit("nlm_thick_pf", "P01", "IMG_0001", fn))
    msg = str(ei.value)
    assert "IMG_0001.txt:" in msg and what in msg, msg
    assert not all_parquet_files(tmp_path / "out")


@pytest.mark.parametrize("header, what", [("5,401,300", "matches neither height,width nor width,height"),
                                          ("5,400", "expected the header 'count,height,width'"),
                                          ("", "expected the header")])
def test_bad_header(tmp_path, header, what):
    def fn(t):
        lines = t.split("\n")
        lines[0] = header
        return "\n".join(lines) if header else "\n".join(["junk,line"] + lines[1:])
    with pytest.raises(ConversionError) as ei:
        _fake(tmp_path, "nlm_thick_pf", _edit("nlm_thick_pf", "P01", "IMG_0001", fn))
    assert "IMG_0001.txt" in str(ei.value) and what in str(ei.value)
    assert not all_parquet_files(tmp_path / "out")


def test_annotation_without_image_is_an_error(tmp_path):
    with pytest.raises(ConversionError, match=r"IMG_0002\.txt: image ThickBloodSmears_150/P01/IMG_0002\.jpg is missing"):
        _fake(tmp_path, "nlm_thick_pf", lambda root: (root / "ThickBloodSmears_150" / "P01" / "IMG_0002.jpg").unlink())
    assert not all_parquet_files(tmp_path / "out")


def test_patient_folder_without_images_is_an_error(tmp_path):
    def mutate(root):
        (root / "ThickBloodSmears_150" / "P07").rename(root / "ThickBloodSmears_150" / "P08")
    with pytest.raises(ConversionError, match="annotations of patient P07 but no image folder"):
        _fake(tmp_path, "nlm_thick_pf", mutate)


def test_ambiguous_underscore_pairing_is_an_error(tmp_path):
    def mutate(root):  # IMG_0101.jpg and IMG0_101.jpg both meet IMG0101.txt once '_' is ignored
        src = root / "ThickBloodSmears_150" / "P07" / "IMG_0101.jpg"
        (src.parent / "IMG0_101.jpg").write_bytes(src.read_bytes())
    with pytest.raises(ConversionError, match="two image files for 'IMG0101'"):
        _fake(tmp_path, "nlm_thick_pf", mutate)
