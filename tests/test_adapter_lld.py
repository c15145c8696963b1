"""lld: the 16-column journal release read by LeukemiaAttri's code (layouts and the rest are
tested in test_adapter_leukemiaattri.py). Here: the region columns (order checked, normalization
detected and reported, kept verbatim on the row), the 7 attributes after them, and the MICCAI
12-column files refused with a pointer to ``leukemiaattri``.

No real labels are public (the repositories hold images only); opt-in full check:
``UNIHEMA_LLD_FULL=<the extracted Google Drive download>``."""
from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.taxonomy import load_taxonomy

SID = "lld"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path, seed=0, mutate=None):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=seed)
    if mutate:
        mutate(truth.root)
    rep = convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    return truth, rep, _rows(tmp_path / "out")


def _label(root: Path, rel: str) -> Path:
    img = root / rel
    return img.parent.parent.parent / "labels" / img.parent.name / f"{img.stem}.txt"


def _check(root: Path, rows: dict) -> int:
    """Every row against an independent split of its label file: region tokens 5..8, attributes 9..15."""
    tax = load_taxonomy()
    names = ["Cell Size", "Nuclear Chromatin", "Nuclear Shape", "Nucleus", "Cytoplasm", "Cytoplasmic Basophilia",
             "Cytoplasmic Vacuoles"]
    n = 0
    for sid, r in rows.items():
        rel = sid.split("/", 1)[1]
        lines = [ln.split() for ln in _label(root, rel).read_text().splitlines() if ln.strip()]
        regions = list(dict.fromkeys("annotated_region:" + ",".join(t[5:9]) for t in lines))
        assert [f for f in r["qc_flags"] if f.startswith("annotated_region:")] == regions
        for k, t in enumerate(lines):
            want = dict(tax.map_attribute(SID, a, str(int(float(v)))) for a, v in zip(names, t[9:16]))
            assert {a["name"]: a["value"] for a in r["objects"]["attributes"][k]} == want
        n += len(lines)
    return n


@pytest.mark.parametrize("seed", [0, 1])
def test_fake_regions_and_attributes(tmp_path, seed):
    truth, rep, rows = _convert(tmp_path, seed)
    assert _check(truth.root, rows) == truth.num_objects
    assert rep.inputs.info["region_coordinates"] == "normalized"
    assert rep.inputs.info["attribute_variant"] == "7 attribute columns"
    assert all("attr_variant:7" in r["qc_flags"] for r in rows.values() if r["objects"]["bbox"])
    assert all(r["prompt"] == "This image is for the detection of leukemia cells." for r in rows.values() if r["tasks"])


def _edit(line_fn):
    def mutate(root):
        lab = sorted(p for p in root.rglob("labels/*/*.txt") if p.read_text().strip())[0]
        lines = lab.read_text().splitlines()
        lines[0] = line_fn(lines[0].split())
        lab.write_text("\n".join(lines) + "\n")
    return mutate


def test_miccai_12_columns_point_to_leukemiaattri(tmp_path):
    with pytest.raises(ConversionError, match=r"12 columns .*MICCAI LeukemiaAttri release.*`leukemiaattri` adapter"):
        _convert(tmp_path, mutate=_edit(lambda t: " ".join(t[:5] + t[9:])))
    assert not all_parquet_files(tmp_path / "out")


def test_region_in_xyxy_order_is_an_error(tmp_path):  # px1 py1 px2 py2 read as px1 px2 py1 py2: py1 < px2 fails
    def swap(t):
        t[5:9] = ["0.6", "0.2", "0.9", "0.8"]
        return " ".join(t)
    with pytest.raises(ConversionError, match=r"\.txt: line 1: region '0\.6 0\.2 0\.9 0\.8' is not in the documented order"):
        _convert(tmp_path, mutate=_edit(swap))
    assert not all_parquet_files(tmp_path / "out")


def test_bad_region_values(tmp_path):
    def bad(t):
        t[6] = "nan"
        return " ".join(t)
    with pytest.raises(ConversionError, match=r"\.txt: line 1: region values .* must be finite"):
        _convert(tmp_path, mutate=_edit(bad))


def test_absolute_regions_are_detected_and_reported(tmp_path):
    def mutate(root):
        for lab in root.rglob("labels/*/*.txt"):
            out = []
            for ln in lab.read_text().splitlines():
                t = ln.split()
                if t:
                    t[5:9] = ["25", "230", "12", "243"]
                out.append(" ".join(t))
            lab.write_text("\n".join(out) + "\n")
    truth, rep, rows = _convert(tmp_path, mutate=mutate)
    assert rep.inputs.info["region_coordinates"] == "absolute pixels"
    assert all(f"annotated_region:25,230,12,243" in r["qc_flags"] for r in rows.values() if r["objects"]["bbox"])


def test_normalized_then_absolute_in_one_file_is_an_error(tmp_path):
    def mutate(root):
        lab = next(p for p in sorted(root.rglob("labels/*/*.txt")) if len(p.read_text().split("\n")) > 2)
        lines = lab.read_text().splitlines()
        t = lines[1].split()
        t[5:9] = ["25", "230", "12", "243"]
        lines[1] = " ".join(t)
        lab.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConversionError, match=r"line 2: region .* is not normalized but earlier lines of this file are"):
        _convert(tmp_path, mutate=mutate)


@pytest.mark.skipif(not os.environ.get("UNIHEMA_LLD_FULL"), reason="set UNIHEMA_LLD_FULL to the extracted release")
def test_full_release(tmp_path):
    rep = convert([SID], Path(os.environ["UNIHEMA_LLD_FULL"]), tmp_path / "out", ConvertOptions(num_proc=2, progress=False))[0]
    assert _check(Path(rep.root), _rows(tmp_path / "out")) > 0
    print(rep.inputs.info)
