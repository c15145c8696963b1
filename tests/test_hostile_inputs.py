"""Hostile native inputs for single adapters and the row pipeline (issue 18): each case ends in a
ConversionError naming the file, never a traceback or a silently wrong row."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.rows import MASK_SNAP_MAX_FRACTION


def _convert(sid: str, raw: Path, out: Path):
    return convert([sid], raw, out, ConvertOptions(num_proc=1, progress=False))[0]


@pytest.fixture
def zheng(tmp_path):
    adapter = get_adapter("zheng2018_wbc")
    truth = adapter.fake(tmp_path / "raw" / "zheng2018_wbc", seed=5)
    return adapter, truth, tmp_path


def test_zheng_superscript_digit_image_id_is_a_clean_error(zheng):
    """'²' passes str.isdigit() and fails int(): it must be refused naming the CSV."""
    _, truth, tmp = zheng
    csv = truth.root / "Class Labels of Dataset 1.csv"
    lines = csv.read_bytes().split(b"\r\n")
    lines[1] = "²,1".encode()
    csv.write_bytes(b"\r\n".join(lines))
    with pytest.raises(ConversionError) as ei:
        _convert("zheng2018_wbc", tmp / "raw", tmp / "out")
    assert "Class Labels of Dataset 1.csv" in str(ei.value) and "'²'" in str(ei.value)
    assert not all_parquet_files(tmp / "out")


def test_zheng_superscript_digit_image_name_is_a_clean_error(zheng):
    _, truth, tmp = zheng
    src = truth.root / "Dataset 1" / "001.bmp"
    src.rename(src.with_name("²³.bmp"))
    with pytest.raises(ConversionError) as ei:
        _convert("zheng2018_wbc", tmp / "raw", tmp / "out")
    assert "²³.bmp" in str(ei.value)


def test_zheng_superscript_subset_folder_is_not_a_subset(zheng):
    """``Dataset ²`` is not a ``Dataset N`` folder (it used to crash the subset sort)."""
    adapter, truth, tmp = zheng
    (truth.root / "Dataset ²").mkdir()
    assert adapter.subsets(truth.root) == ["Dataset 1", "Dataset 2"]
    assert _convert("zheng2018_wbc", tmp / "raw", tmp / "out").total == truth.num_images


def test_mask_mostly_undeclared_values_is_refused(zheng):
    """Snapping is for a few brush-edge pixels; a mask made of undeclared values is refused."""
    _, truth, tmp = zheng
    p = truth.root / "Dataset 1" / "002.png"
    m = np.asarray(Image.open(p)).copy()
    m[m == 128] = 120  # the whole cytoplasm in an undeclared value
    assert (m == 120).mean() > MASK_SNAP_MAX_FRACTION
    Image.fromarray(m).save(p)
    with pytest.raises(ConversionError) as ei:
        _convert("zheng2018_wbc", tmp / "raw", tmp / "out")
    msg = str(ei.value)
    assert "Dataset 1/002.png" in msg and "undeclared" in msg and "[120]" in msg
    assert not all_parquet_files(tmp / "out")


def test_mask_few_stray_values_still_snap(zheng):
    _, truth, tmp = zheng
    p = truth.root / "Dataset 1" / "002.png"
    m = np.asarray(Image.open(p)).copy()
    m[0, :3] = 9  # 3 of 900 pixels: under the threshold
    assert 3 <= MASK_SNAP_MAX_FRACTION * m.size
    Image.fromarray(m).save(p)
    assert _convert("zheng2018_wbc", tmp / "raw", tmp / "out").flags.get("mask_stray_pixels") == 2


def test_clipped_box_flag_keeps_the_native_value_exactly(tmp_path):
    """The ``clipped_box`` flag must give back the native coordinates exactly (``:g`` kept 6 digits)."""
    import pyarrow.parquet as pq

    truth = get_adapter("bccd").fake(tmp_path / "raw" / "bccd", seed=1)
    xml = sorted((truth.root / "Annotations").glob("*.xml"))[0]
    text = xml.read_text()
    first = text.index("<xmax>")
    end = text.index("</xmax>", first)
    xml.write_text(text[:first] + "<xmax>12345678901234567890" + text[end:])
    _convert("bccd", tmp_path / "raw", tmp_path / "out")
    rows = [r for f in all_parquet_files(tmp_path / "out") for r in pq.read_table(f).to_pylist()
            if r["sample_id"].endswith(xml.stem + ".jpg")]
    flag = next(f for f in rows[0]["qc_flags"] if f.startswith("clipped_box:0:"))
    assert float(flag.split(":")[2].split(",")[2]) == float("12345678901234567890")
    assert flag.split(":")[2].split(",")[0].isdigit()  # integers stay integers: "41", not "41.0"


def _with_alarm(fn, seconds=20):
    import signal

    def _hang(*a):
        raise TimeoutError("blocked on a FIFO")

    old = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(seconds)
    try:
        return fn()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_fifo_image_is_an_error_not_a_hang(tmp_path):
    """BCCD lists JPEGImages/ without a file-type filter: the image reader must refuse a FIFO."""
    import os

    truth = get_adapter("bccd").fake(tmp_path / "raw" / "bccd", seed=1)
    p = truth.root / "JPEGImages" / "BloodImage_00003.jpg"
    p.unlink()
    os.mkfifo(p)
    with pytest.raises(ConversionError) as ei:
        _with_alarm(lambda: _convert("bccd", tmp_path / "raw", tmp_path / "out"))
    msg = str(ei.value)  # the disk layer names the file and what it found instead of a file
    assert "BloodImage_00003.jpg" in msg and ("not a regular file" in msg or "FIFO" in msg)
    assert not all_parquet_files(tmp_path / "out")


def test_readers_refuse_fifos_and_devices(tmp_path):
    import os

    from unihema_data.images import ImageDecodeError, load_image_for_storage, read_regular_file

    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    # (native masks: the adapter-contract-v2 disk layer checks the file type before opening)
    for call in (lambda: load_image_for_storage(fifo), lambda: read_regular_file(fifo),
                 lambda: read_regular_file("/dev/zero")):
        with pytest.raises(ImageDecodeError, match="not a regular file"):
            _with_alarm(call, 10)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400"])
def test_voc_size_that_is_not_a_finite_integer_is_a_clean_error(tmp_path, value):
    """``<width>inf</width>`` raised OverflowError out of the VOC reader (found by the fuzz test)."""
    truth = get_adapter("bccd").fake(tmp_path / "raw" / "bccd", seed=1)
    xml = sorted((truth.root / "Annotations").glob("*.xml"))[0]
    text = xml.read_text()
    start = text.index("<width>") + len("<width>")
    xml.write_text(text[:start] + value + text[text.index("</width>"):])
    with pytest.raises(ConversionError) as ei:
        _convert("bccd", tmp_path / "raw", tmp_path / "out")
    assert xml.name in str(ei.value) and "<width>" in str(ei.value)
