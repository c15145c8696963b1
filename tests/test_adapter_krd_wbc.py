"""krd_wbc: image<N> <-> mask<N> pairing, JPEG masks thresholded by the documented rule (and
flagged), the 'Categoriy' column, orphans both ways, bad CSV rows, non-mask files. No real sample
exists (Mendeley only)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.adapters.base import CorruptInputError
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.errors import AdapterError
from unihema_data.formats.jpegmask import threshold_mask
from unihema_data.masks import decode_semantic
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "krd_wbc"
CSV = "class labels.csv"


def _rows(out: Path) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()]


def _convert(raw: Path, out: Path):
    return convert([SID], raw, out, ConvertOptions(num_proc=1, progress=False))[0]


def test_threshold_rule(tmp_path):
    a = np.zeros((40, 40), np.uint8)
    a[10:30, 12:28] = 255
    p = tmp_path / "m.jpg"
    Image.fromarray(a).save(p, quality=75)
    gray = np.asarray(Image.open(p).convert("L"))
    values, lossy = threshold_mask(p)
    assert np.array_equal(values, np.where(gray >= 128, 255, 0))  # the documented rule, exactly
    assert np.array_equal(values, a)  # ringing never crosses the midpoint on a hard edge
    assert lossy == int(((gray != 0) & (gray != 255)).sum()) > 0
    inv, _ = threshold_mask(p, invert=True)
    assert np.array_equal(inv, 255 - a)
    ramp = np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (40, 1))
    Image.fromarray(ramp).save(tmp_path / "photo.jpg")
    with pytest.raises(CorruptInputError, match="photo.jpg: not a binary mask"):
        threshold_mask(tmp_path / "photo.jpg")


def test_fake_pairs_by_index_and_flags_threshold(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    report = _convert(tmp_path / "raw", tmp_path / "out")
    rows = {r["sample_id"]: r for r in _rows(tmp_path / "out")}
    assert len(rows) == truth.num_images == 6
    assert report.info["csv_columns"] == "'Image' (image), 'Categoriy' (class)"
    orphans = [p for p, _ in report.inputs.of("orphaned")]
    assert orphans == ["Dataset/mask/mask8.jpg", f"{CSV}:image9"]
    for rel, t in truth.samples.items():
        r = rows[f"{SID}/{rel}"]
        assert "mask_thresholded:128" in r["qc_flags"]
        assert any(f.startswith("mask_lossy_pixels:") and int(f.split(":")[1]) > 0 for f in r["qc_flags"])
        n = rel.rsplit("image", 1)[1].split(".")[0]
        gray = np.asarray(Image.open(truth.root / "Dataset" / "mask" / f"mask{n}.jpg").convert("L"))
        idx = decode_semantic(r["semantic_mask"]["bytes"])
        assert np.array_equal(np.array([c == "wbc" for c in r["mask_classes"]])[idx], gray >= 128)
        assert label_name(r["label"]) == t.label.lower()


def _edit_csv(root: Path, text: str) -> None:
    (root / CSV).write_text(text)


def test_corrected_spelling_flagged_and_lower_case_labels(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    lines = (truth.root / CSV).read_text().splitlines()
    body = [f"{l.split(',')[0].replace('.jpg', '')},{l.split(',')[1].lower()}" for l in lines[1:]]
    _edit_csv(truth.root, "\n".join(["image,Category", *body]) + "\n")
    report = _convert(tmp_path / "raw", tmp_path / "out")
    assert report.total == 6
    assert any("Category" in why for _, why in report.inputs.of("flagged"))
    assert {label_name(r["label"]) for r in _rows(tmp_path / "out")} == {
        "neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil"}


@pytest.mark.parametrize("csv_text, expect", [
    ("Image,Categoriy\nimage1.jpg,Neutrophil\nimage1.jpg,Monocyte\n", "listed twice"),
    ("Image,Categoriy\ncell one,Neutrophil\n", "is not image<N>"),
    ("Image,Label\nimage1.jpg,Neutrophil\n", "Categoriy"),
    ("Image,Categoriy\nimage1.jpg,Neutrophil\n", "no row for image 2"),
    ("Image,Categoriy\n" + "".join(f"image{n}.jpg,Megakaryocyte\n" for n in (1, 2, 3, 4, 5, 7)), "Megakaryocyte"),
])
def test_bad_csv_is_an_error(tmp_path, csv_text, expect):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    _edit_csv(truth.root, csv_text)
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert expect in str(ei.value)


def test_image_without_mask_is_an_error(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw")
    (truth.root / "Dataset" / "mask" / "mask3.jpg").unlink()
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "image3.jpg" in str(ei.value) and "missing" in str(ei.value)


def test_damaged_jpeg_mask_is_an_error_not_a_wrong_mask(tmp_path):
    """A cut JPEG still decodes in Pillow (grey fill): the strict decode refuses it, naming the file."""
    truth = get_adapter(SID).fake(tmp_path / "raw")
    m = truth.root / "Dataset" / "mask" / "mask4.jpg"
    data = m.read_bytes()
    m.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises((ConversionError, AdapterError)) as ei:
        _convert(tmp_path / "raw", tmp_path / "out")
    assert "mask4.jpg" in str(ei.value) and "damaged" in str(ei.value)
