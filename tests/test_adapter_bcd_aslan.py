"""bcd_aslan: normalized-CSV corners scaled by the image size, the KITTI copy cross-checked (the
disagreement reported, the CSV kept), absolute-pixel CSVs of older commits detected, strict rows.

Opt-in full check: ``UNIHEMA_BCD_ASLAN_FULL=<folder of the GitHub repository>`` converts the whole
release (100 images, 2339 boxes) and compares every box with an independent parse of the CSV."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files

SID = "bcd_aslan"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID
            for r in pq.read_table(f).to_pylist()}


def _check_against_csv(root: Path, out: Path) -> int:
    """Independent parse: csv.DictReader, corners * the PIL image size, COCO boxes."""
    want: dict[str, list] = {}
    with open(root / "annotations.csv", newline="") as f:
        for r in csv.DictReader(f):
            want.setdefault(r["image"], []).append(r)
    rows = _rows(out)
    assert set(rows) == {f"{SID}/images/{n}" for n in want}
    n = 0
    for name, rs in want.items():
        W, H = Image.open(root / "images" / name).size
        got = rows[f"{SID}/images/{name}"]["objects"]
        assert got["source_category"] == [r["label"] for r in rs]
        for g, r in zip(got["bbox"], rs):
            x0, y0, x1, y1 = (float(r[k]) * s for k, s in zip(("xmin", "ymin", "xmax", "ymax"), (W, H, W, H)))
            assert g == pytest.approx([x0, y0, x1 - x0, y1 - y0], abs=0.5), name
        n += len(rs)
    return n


@pytest.mark.skipif(not os.environ.get("UNIHEMA_BCD_ASLAN_FULL"), reason="set UNIHEMA_BCD_ASLAN_FULL to the repository")
def test_full_release(tmp_path):
    root = Path(os.environ["UNIHEMA_BCD_ASLAN_FULL"])
    rep = convert([SID], root, tmp_path / "out", ConvertOptions(num_proc=2, progress=False))[0]
    assert rep.total == 100
    assert _check_against_csv(Path(rep.root), tmp_path / "out") == 2339
    assert rep.inputs.info["csv_coordinates"].startswith("normalized")
    assert [p for p, _ in rep.inputs.of("flagged")] == ["labels/image-1.txt"]  # 19 KITTI boxes vs 18 CSV rows


def _fake(tmp_path, mutate=None):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=6)
    if mutate:
        mutate(truth.root)
    rep = convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    return truth, rep, _rows(tmp_path / "out")


def test_fake_against_csv_and_kitti(tmp_path):
    truth, rep, rows = _fake(tmp_path)
    assert _check_against_csv(truth.root, tmp_path / "out") == truth.num_objects
    n = len(truth.samples["images/image-1.png"].boxes)
    assert rep.inputs.of("flagged") == [("labels/image-1.txt", f"KITTI copy disagrees with annotations.csv "
                                         f"({n + 1} vs {n} boxes); annotations.csv used")]
    assert ("labels/.ipynb_checkpoints", "hidden file or folder") in rep.inputs.of("skipped")
    r = rows[f"{SID}/images/image-1.png"]
    assert r["objects"]["bbox"][2][0] + r["objects"]["bbox"][2][2] == pytest.approx(256.0)  # xmax = border
    assert not any(f.startswith("clipped_box") for f in r["qc_flags"])


def test_absolute_csv_detected(tmp_path):
    """A CSV in absolute pixels (the release before 721d642) converts to the same boxes."""
    def to_absolute(root):
        p = root / "annotations.csv"
        rows = list(csv.reader(p.open()))
        body = [rows[0]] + [r[:2] + [str(float(v) * 256) for v in r[2:6]] + [r[6]] for r in rows[1:]]
        p.write_text("".join(",".join(r) + "\n" for r in body))
    truth, rep, rows = _fake(tmp_path, to_absolute)
    assert rep.inputs.info["csv_coordinates"] == "absolute pixels (before 721d642)"
    for rel, t in truth.samples.items():
        got = rows[f"{SID}/{rel}"]["objects"]["bbox"]
        assert len(got) == len(t.boxes)
        assert all(g == pytest.approx(w, abs=1e-3) for g, w in zip(got, t.boxes))


@pytest.mark.parametrize("edit, what", [
    (lambda s: s.replace(",rbc\n", ",\n", 1), "empty label"),
    (lambda s: s.replace(",rbc\n", ",rbc,extra\n", 1), "expected 7 comma-separated fields"),
    (lambda s: s.replace("image_id,image", "id,image", 1), "unexpected header"),
    (lambda s: s.replace("image-2.png", "image-999.png", 1), "images/image-999.png is missing"),
])
def test_bad_csv_names_file_and_line(tmp_path, edit, what):
    def mutate(root):
        p = root / "annotations.csv"
        p.write_text(edit(p.read_text()))
    with pytest.raises(ConversionError) as ei:
        _fake(tmp_path, mutate)
    assert "annotations.csv" in str(ei.value) and what in str(ei.value)


def test_bad_kitti_line(tmp_path):
    def mutate(root):
        (root / "labels" / "image-3.txt").write_text("rbc 0 0 0 1 2 3\n")
    with pytest.raises(ConversionError, match=r"image-3\.txt:1: expected a 15-field KITTI line"):
        _fake(tmp_path, mutate)


def test_mixed_conventions_are_an_error(tmp_path):
    def mutate(root):
        p = root / "annotations.csv"
        lines = p.read_text().split("\n")
        cells = lines[3].split(",")
        cells[4] = "1e30"
        lines[3] = ",".join(cells)
        p.write_text("\n".join(lines))
    with pytest.raises(ConversionError, match=r"annotations\.csv:4: corners are absolute \(> 1\) while most rows"):
        _fake(tmp_path, mutate)
