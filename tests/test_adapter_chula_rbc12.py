"""chula_rbc12: real-sample conformance (every point against an independent parse of the label
files), the format's quirks (unlabelled images, empty and Latin-1 label files, .DS_Store,
byte-identical images labelled differently, diagnosis photos) and strict line parsing.

Opt-in full check: ``UNIHEMA_CHULA_FULL=<folder holding Dataset/ and Label/ of the GitHub repo>``
converts the whole release and compares it with an independent parse."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name
from unihema_data.taxonomy import load_taxonomy

SID = "chula_rbc12"
REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples" / SID
README_NAMES = ["Normal cell", "Macrocyte", "Microcyte", "Spherocyte", "Target cell", "Stomatocyte", "Ovalocyte",
                "Teardrop", "Burr cell", "Schistocyte", "uncategorised", "Hypochromia", "Elliptocyte"]


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID
            for r in pq.read_table(f).to_pylist()}


def _independent(root: Path) -> dict[str, list[tuple[int, int, int]]]:
    """``Dataset/<n>.jpg`` -> [(x, y, type)] straight from the label files (split on whitespace)."""
    want = {}
    for lab in sorted((root / "Label").glob("*.txt")):
        img = root / "Dataset" / f"{lab.stem}.jpg"
        if img.exists():
            want[f"Dataset/{img.name}"] = [tuple(int(v) for v in ln.split())
                                           for ln in lab.read_bytes().decode("latin-1").splitlines() if ln.strip()]
    return want


def _check(root: Path, out: Path, crops: bool = True) -> int:
    """Fields against the label files; every cell crop against an independent crop of the field."""
    tax = load_taxonomy()
    rows = _rows(out)
    want = _independent(root)
    cells = {}
    for rel, pts in want.items():
        for p in pts:
            name = f"{SID}/{rel[:-4]}_x{p[0]}_y{p[1]}"
            k = sum(c.startswith(name + ".") or c.startswith(name + "_") for c in cells)
            cells[f"{name}.png" if k == 0 else f"{name}_{k}.png"] = (rel, p)
    assert set(rows) == {f"{SID}/{k}" for k in want} | set(cells)
    for sid, (rel, (x, y, t)) in cells.items() if crops else ():
        r = rows[sid]
        field = np.asarray(Image.open(root / rel).convert("RGB"))
        H, W = field.shape[:2]
        x0, y0, x1, y1 = max(0, x - 32), max(0, y - 32), min(W, x + 32), min(H, y + 32)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(r["image"]["bytes"]))), field[y0:y1, x0:x1]), sid
        assert (r["width"], r["height"]) == (x1 - x0, y1 - y0)
        assert ("crop_clipped" in r["qc_flags"]) == ((x1 - x0, y1 - y0) != (64, 64))
        assert r["source_label"] == str(t) and label_name(r["label"]) == tax.map_label(SID, README_NAMES[t])
        assert r["tasks"] == ["classification"] and r["granularity"] == "single_cell"
        assert r["group_id"] == rel and r["split"] == rows[f"{SID}/{rel}"]["split"]
    n = 0
    for rel, pts in want.items():
        r = rows[f"{SID}/{rel}"]
        assert r["granularity"] == "field_of_view" and r["group_id"] == rel
        W, H = Image.open(root / rel).size
        assert (r["width"], r["height"]) == (W, H)
        o = r["objects"]
        assert [tuple(int(v) for v in p) for p in o["point"]] == [(x, y) for x, y, _ in pts]
        assert [b[:2] for b in o["bbox"]] == [[float(x), float(y)] for x, y, _ in pts]
        assert all(b[2:] == [0.0, 0.0] for b in o["bbox"]) and set(o["bbox_source"]) <= {"from_point"}
        assert o["source_category"] == [str(t) for _, _, t in pts]
        assert [label_name(c) for c in o["category"]] == [tax.map_label(SID, README_NAMES[t]) for _, _, t in pts]
        assert r["tasks"] == (["detection"] if pts else [])
        n += len(pts)
    return n


def test_real_sample(tmp_path):
    if not REAL.is_dir():
        pytest.skip(f"real sample absent: {REAL}")
    rep = convert([SID], REAL, tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    assert Path(rep.root) == REAL
    assert _check(REAL, tmp_path / "out") == sum(len(v) for v in _independent(REAL).values())
    cats = {c for r in _rows(tmp_path / "out").values() for c in r["objects"]["source_category"]}
    assert cats == {str(i) for i in range(13)}  # the sample covers every README id
    assert ("RBC Diseases/Thalassemia/Thalassemia_1.JPG",
            "diagnosis photo (thalassemia) without cell annotations (not converted)") in rep.inputs.of("skipped")


@pytest.mark.skipif(not os.environ.get("UNIHEMA_CHULA_FULL"), reason="set UNIHEMA_CHULA_FULL to the full release")
def test_full_release(tmp_path):
    root = Path(os.environ["UNIHEMA_CHULA_FULL"])
    rep = convert([SID], root, tmp_path / "out", ConvertOptions(num_proc=2, progress=False))[0]
    assert _check(Path(rep.root), tmp_path / "out", crops=False) == 22106
    assert rep.total == 623 + 22106
    assert rep.inputs.info["unlabelled_images"] == "115"
    rows = _rows(tmp_path / "out")
    conflicts = [r for r in rows.values() if any(f.startswith("label_conflict:") for f in r["qc_flags"])]
    assert len(conflicts) >= 2


def _fake(tmp_path, mutate=None):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=3)
    if mutate:
        mutate(truth.root)
    rep = convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    return truth, rep, _rows(tmp_path / "out")


def test_fake_quirks_reported(tmp_path):
    truth, rep, rows = _fake(tmp_path)
    assert ("Dataset/700.jpg", "image without a label file (not converted)") in rep.inputs.of("orphaned")
    assert f"{SID}/Dataset/700.jpg" not in rows
    assert ("Label/10.txt", "not UTF-8: read as Latin-1") in rep.inputs.of("repaired")
    assert ("Label/53.txt", "empty label file: the image has no annotated cell") in rep.inputs.of("flagged")
    assert rows[f"{SID}/Dataset/53.jpg"]["objects"]["point"] == []
    assert "Label/.DS_Store" in [p for p, _ in rep.inputs.of("skipped")]
    assert rep.inputs.info == {"unlabelled_images": "1", "diagnosis_images": "1"}
    a, b = rows[f"{SID}/Dataset/563.jpg"], rows[f"{SID}/Dataset/610.jpg"]
    assert a["image_sha256"] == b["image_sha256"] and a["split"] == b["split"]
    assert any(f.startswith(f"label_conflict:{SID}/Dataset/610.jpg") for f in a["qc_flags"])
    # no zero_area flag noise for points: a point has no size by definition
    assert not any(f.startswith("zero_area_box") for r in rows.values() for f in r["qc_flags"])
    assert rows[f"{SID}/Dataset/1.jpg"]["prompt"].startswith("This image is for the detection of")
    _check(truth.root, tmp_path / "out")
    # the corner points (0, 0) and (639, 479) of 1.jpg give clipped crops
    corners = [rows[f"{SID}/Dataset/1_x0_y0.png"], rows[f"{SID}/Dataset/1_x639_y479.png"]]
    assert [(r["width"], r["height"]) for r in corners] == [(32, 32), (33, 33)]
    assert all("crop_clipped" in r["qc_flags"] for r in corners)
    # a field moved to test as a duplicate takes its crops along (one split per group)
    assert {r["split"] for r in rows.values() if r["group_id"] == "Dataset/563.jpg"} == {a["split"]}


@pytest.mark.parametrize("line, what", [("12 34", "three integers"), ("12 34 13", "not one of the README ids"),
                                        ("641 10 0", "outside the 640x480 image"), ("1.5 2 0", "three integers")])
def test_bad_line_names_file_and_line(tmp_path, line, what):
    def edit(root):
        f = root / "Label" / "2.txt"
        f.write_text(f.read_text() + line + "\n")
    with pytest.raises(ConversionError) as ei:
        _fake(tmp_path, edit)
    msg = str(ei.value)
    assert "2.txt:" in msg and what in msg
    assert not all_parquet_files(tmp_path / "out")


def test_unknown_diagnosis_folder_fails(tmp_path):
    def edit(root):
        (root / "RBC Diseases" / "Thalassemia").rename(root / "RBC Diseases" / "Sickle")
    with pytest.raises(ConversionError, match="Sickle"):
        _fake(tmp_path, edit)


def test_label_file_without_image_is_an_error(tmp_path):
    with pytest.raises(ConversionError, match=r"129\.txt: image Dataset/129\.jpg is missing"):
        _fake(tmp_path, lambda root: (root / "Dataset" / "129.jpg").unlink())
    assert not all_parquet_files(tmp_path / "out")
