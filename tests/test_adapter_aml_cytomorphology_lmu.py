"""aml_cytomorphology_lmu: the real annotations.dat (18,365 lines) parsed label by label against an
independent reading, a conversion of a tree laid out from it (synthetic TIFF pixels, real names,
labels and re-annotations), and the format's quirks on the fake."""
from __future__ import annotations

import io
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.adapters.aml_cytomorphology_lmu import CLASSES, read_annotations
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name
from unihema_data.taxonomy import load_taxonomy

SID = "aml_cytomorphology_lmu"
REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples" / SID
COUNTS = {"BAS": 79, "EBO": 78, "EOS": 424, "KSC": 15, "LYA": 11, "LYT": 3937, "MMZ": 15, "MOB": 26, "MON": 1789,
          "MYB": 42, "MYO": 3268, "NGB": 109, "NGS": 8484, "PMB": 18, "PMO": 70}


def _need_real() -> Path:
    if not (REAL / "annotations.dat").is_file():
        pytest.skip(f"real sample absent: {REAL}")
    return REAL


def _independent(path: Path) -> list[list[str]]:
    return [line.split(" ") for line in path.read_bytes().decode("ascii").split("\n") if line]


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def test_real_annotations_parsed_label_by_label():
    real = _need_real()
    ann = read_annotations(real / "annotations.dat")
    ref = _independent(real / "annotations.dat")
    assert len(ann) == len(ref) == 18365
    for i, (path, label, r1, r2) in enumerate(ref, 1):
        assert ann[path] == (i, label, r1, r2)
        assert path.split("/")[0] == label and path.startswith(f"{label}/{label}_") and path.endswith(".tiff")
    assert Counter(label for _, label, _, _ in ref) == COUNTS
    assert sum(1 for *_, r1, r2 in ref if r1 != "nan" and r2 != "nan") == 1905
    tax = load_taxonomy()
    codes = {c for _, *labels in ref for c in labels if c != "nan"}
    assert codes <= set(CLASSES) | {"UNC"}
    assert {tax.map_label(SID, c) for c in CLASSES} >= {"myeloblast", "myelocyte", "promyelocyte_bilobed"}
    assert tax.map_label(SID, "MYO") == "myeloblast" and tax.map_label(SID, "MYB") == "myelocyte"
    abbrev = (real / "abbreviations.txt").read_text()
    assert all(f"{c} " in abbrev for c in CLASSES)


def test_real_annotations_drive_a_conversion(tmp_path):
    """Three images per class laid out with the real names; every row is checked against the
    independent parse; the other lines are reported as orphans (a partial download)."""
    real = _need_real()
    ref = _independent(real / "annotations.dat")
    root = tmp_path / "raw" / SID / "AML-Cytomorphology_LMU"
    root.mkdir(parents=True)
    shutil.copy(real / "annotations.dat", root)
    shutil.copy(real / "abbreviations.txt", root)
    reannotated = [r for r in ref if r[2] != "nan"][:6]
    chosen = {r[0]: r for r in reannotated}
    for code in CLASSES:
        for r in [r for r in ref if r[1] == code][:3]:
            chosen[r[0]] = r
    for k, path in enumerate(sorted(chosen)):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        Image.new("RGB", (40, 40), (100 + k % 100, 60, 150)).save(buf, format="TIFF")
        (root / path).write_bytes(buf.getvalue())
    rep = convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=2, progress=False))[0]
    rows = _rows(tmp_path / "out")
    assert rep.total == len(chosen) == len(rows)
    tax = load_taxonomy()
    for path, label, r1, r2 in chosen.values():
        r = rows[f"{SID}/{path}"]
        assert r["source_label"] == label and label_name(r["label"]) == tax.map_label(SID, label)
        flags = [f for f in r["qc_flags"] if f.startswith("reannotat")]
        if r1 == "nan" and r2 == "nan":
            assert flags == []
        else:
            assert flags[0] == f"reannotated:{r1},{r2}"
            assert ("reannotation_differs" in flags) == any(x not in ("nan", label) for x in (r1, r2))
        assert "reencoded_from:tiff" in r["qc_flags"] and r["image"]["path"].endswith(".png")
    assert rep.inputs.counts().get("orphaned") == 18365 - len(chosen)


def test_fake_quirks(tmp_path):
    a = get_adapter(SID)
    truth = a.fake(tmp_path / "raw" / SID, seed=2)
    rep = convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images
    assert [p for p, _ in rep.inputs.of("orphaned")] == ["annotations.dat:8"]
    assert [p for p, _ in rep.inputs.of("skipped")] == [".DS_Store"]
    unc = next(r for k, r in rows.items() if "/BAS/" in k)
    assert "reannotated:UNC,UNC" in unc["qc_flags"] and "reannotation_differs" in unc["qc_flags"]
    ngs = next(r for k, r in rows.items() if "/NGS/" in k)
    assert label_name(ngs["label"]) == "neutrophil_segmented" and "reannotation_differs" in ngs["qc_flags"]
    # an image missing from annotations.dat is converted from its folder and flagged
    extra = truth.root / "MON" / "MON_0001.tiff"
    extra.parent.mkdir()
    shutil.copy(next((truth.root / "LYT").glob("*.tiff")), extra)
    rep = convert([SID], tmp_path / "raw", tmp_path / "out2", ConvertOptions(num_proc=1, progress=False))[0]
    assert ("MON/MON_0001.tiff", "not listed in annotations.dat; label taken from the folder") in rep.inputs.of("flagged")
    # an unknown class folder is an error naming it
    (truth.root / "XYZ").mkdir()
    shutil.copy(extra, truth.root / "XYZ" / "XYZ_0001.tiff")
    with pytest.raises(ConversionError, match="XYZ.*unknown class folder 'XYZ'"):
        convert([SID], tmp_path / "raw", tmp_path / "out3", ConvertOptions(num_proc=1, progress=False))


def test_real_sample_without_images_is_explained():
    real = _need_real()
    from unihema_data.errors import MissingInputError

    with pytest.raises(MissingInputError, match=r"annotations.dat but no class folders .*the images are missing"):
        get_adapter(SID).locate(real.parent)
