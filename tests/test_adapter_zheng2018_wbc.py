"""zheng2018_wbc: real-sample conformance (masks pixel-identical, labels from the CSVs) and
format quirks (header variants, spaces in names, missing rows/masks, bad masks)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.schema import label_name
from unihema_data.adapters.base import CorruptInputError
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.masks import decode_semantic
from unihema_data.outdir import all_parquet_files
from unihema_data.taxonomy import load_taxonomy

SID = "zheng2018_wbc"
REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples" / SID
NATIVE_VALUE = {"background": 0, "cytoplasm": 128, "nucleus": 255}  # README: black / gray / white


def _rows(out: Path) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()]


def _convert(raw: Path, out: Path):
    return convert([SID], raw, out, ConvertOptions(num_proc=1, progress=False))[0]


def _csv_labels(path: Path) -> dict[int, str]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return {int(r[0]): r[1].strip() for r in rows[1:] if r}


@pytest.fixture(scope="module")
def real_rows(tmp_path_factory):
    if not REAL.is_dir():
        pytest.skip(f"real sample absent: {REAL}")
    out = tmp_path_factory.mktemp("zheng_real") / "out"
    report = _convert(REAL, out)
    return report, _rows(out)


def test_real_sample_counts(real_rows):
    report, rows = real_rows
    images = sorted(REAL.glob("Dataset */*.bmp"))
    assert len(rows) == len(images) == report.total == 8
    assert {r["subset"] for r in rows} == {"Dataset 1", "Dataset 2"}


def test_real_sample_matches_independent_parse(real_rows):
    _, rows = real_rows
    tax = load_taxonomy()
    by_id = {r["sample_id"]: r for r in rows}
    for img in sorted(REAL.glob("Dataset */*.bmp")):
        subset = img.parent.name
        r = by_id[f"{SID}/{subset}/{img.name}"]
        # label: verbatim CSV code, mapped through the taxonomy
        code = _csv_labels(REAL / f"Class Labels of {subset}.csv")[int(img.stem)]
        assert r["source_label"] == code
        assert label_name(r["label"]) == tax.map_label(SID, code)
        assert label_name(r["label"]) == {"1": "neutrophil", "2": "lymphocyte", "3": "monocyte",
                              "4": "eosinophil", "5": "basophil"}[code]
        # image: BMP re-encoded losslessly
        native = np.asarray(Image.open(img).convert("RGB"))
        stored = Image.open(io.BytesIO(r["image"]["bytes"]))
        assert stored.format == "PNG" and "reencoded_from:bmp" in r["qc_flags"]
        assert np.array_equal(np.asarray(stored.convert("RGB")), native)
        assert (r["width"], r["height"]) == (native.shape[1], native.shape[0])
        # mask: pixel-identical to the PNG ground truth after mapping the indices back
        gt = np.asarray(Image.open(img.with_suffix(".png")))
        idx = decode_semantic(r["semantic_mask"]["bytes"])
        back = np.array([NATIVE_VALUE[c] for c in r["mask_classes"]], dtype=np.uint8)[idx]
        assert np.array_equal(back, gt), img
        assert set(r["mask_classes"]) <= {"background", "cytoplasm", "nucleus"}
        assert r["tasks"] == ["segmentation", "classification"]
        assert r["granularity"] == "single_cell"
        assert ("Motic" in r["microscope"]) == (subset == "Dataset 1")


# ---------------------------------------------------------------- quirks on the fake layout
@pytest.fixture
def fake(tmp_path):
    adapter = get_adapter(SID)
    truth = adapter.fake(tmp_path / "raw" / SID, seed=5)
    return adapter, truth, tmp_path


def test_both_header_variants_and_spaces(fake):
    adapter, truth, tmp = fake
    assert (truth.root / "Class Labels of Dataset 1.csv").read_bytes().startswith(b"image ID,class label\r\n")
    assert (truth.root / "Class Labels of Dataset 2.csv").read_bytes().startswith(b"image ID,class\r\n")
    samples = list(adapter.iter_samples(adapter.locate(tmp / "raw")))
    assert [s.rel_path for s in samples] == sorted(truth.samples)
    assert {s.subset for s in samples} == {"Dataset 1", "Dataset 2"}
    assert all(s.label == truth.samples[s.rel_path].label for s in samples)


def test_unknown_header_rejected(fake):
    adapter, truth, tmp = fake
    p = truth.root / "Class Labels of Dataset 2.csv"
    p.write_bytes(p.read_bytes().replace(b"image ID,class", b"id,label", 1))
    with pytest.raises(CorruptInputError, match="Class Labels of Dataset 2.csv.*unexpected header"):
        list(adapter.iter_samples(truth.root))


def test_image_missing_from_csv(fake):
    adapter, truth, tmp = fake
    p = truth.root / "Class Labels of Dataset 1.csv"
    lines = p.read_bytes().split(b"\r\n")
    p.write_bytes(b"\r\n".join(l for l in lines if not l.startswith(b"2,")))
    with pytest.raises(ConversionError) as ei:
        _convert(tmp / "raw", tmp / "out")
    assert "Class Labels of Dataset 1.csv" in str(ei.value) and "002.bmp" in str(ei.value)


def test_duplicate_and_non_integer_ids(fake):
    adapter, truth, _ = fake
    p = truth.root / "Class Labels of Dataset 1.csv"
    original = p.read_bytes()
    p.write_bytes(original + b"1,3\r\n")
    with pytest.raises(CorruptInputError, match=r"Dataset 1.csv:\d+: image ID 1 is listed twice"):
        list(adapter.iter_samples(truth.root))
    p.write_bytes(original + b"x7,3\r\n")
    with pytest.raises(CorruptInputError, match="not a non-negative integer"):
        list(adapter.iter_samples(truth.root))


def test_missing_mask(fake):
    adapter, truth, tmp = fake
    (truth.root / "Dataset 2" / "002.png").unlink()
    with pytest.raises(ConversionError, match="Dataset 2/002.png is missing"):
        _convert(tmp / "raw", tmp / "out")


def test_mask_size_mismatch(fake):
    _, truth, tmp = fake
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(truth.root / "Dataset 1" / "003.png")
    with pytest.raises(ConversionError) as ei:
        _convert(tmp / "raw", tmp / "out")
    assert "003.png" in str(ei.value) and "mask is 12x10 but image is 30x30" in str(ei.value)


def test_stray_mask_values_snap_to_nearest_level_and_are_flagged(fake, monkeypatch):
    """The full release has brush-edge values (e.g. 2, 7, 25) in five masks: snapped + flagged.
    With snapping off (any other source) the same value is an error naming the file."""
    adapter, truth, tmp = fake
    p = truth.root / "Dataset 2" / "002.png"
    m = np.asarray(Image.open(p)).copy()
    m[0, 0], m[0, 1] = 77, 200  # -> 128 (cytoplasm), 255 (nucleus)
    Image.fromarray(m).save(p)
    _convert(tmp / "raw", tmp / "out")
    import pyarrow.parquet as pq
    from unihema_data.masks import decode_semantic
    from unihema_data.outdir import all_parquet_files

    rows = [r for f in all_parquet_files(tmp / "out") for r in pq.read_table(f).to_pylist()
            if r["sample_id"].endswith("Dataset 2/002.bmp")]
    (row,) = rows
    idx = decode_semantic(row["semantic_mask"]["bytes"])
    assert row["mask_classes"][idx[0, 0]] == "cytoplasm" and row["mask_classes"][idx[0, 1]] == "nucleus"
    assert "mask_stray_pixels:2" in row["qc_flags"]
    monkeypatch.setattr(type(adapter), "mask_snap_stray_values", False)
    with pytest.raises(ConversionError) as ei:
        _convert(tmp / "raw", tmp / "out2")
    # the fake's own quirky mask (Dataset 2/001.png, values 2, 7, 25, 140) is met first
    assert "Dataset 2/001.png" in str(ei.value) and "unexpected mask value(s) [2, 7, 25, 140]" in str(ei.value)


def test_readme_preview_images_ignored(fake):
    """``Dataset 1.png`` next to the ``Dataset 1`` folder is not a subset."""
    adapter, truth, _ = fake
    assert (truth.root / "Dataset 1.png").is_file()
    assert adapter.subsets(truth.root) == ["Dataset 1", "Dataset 2"]
