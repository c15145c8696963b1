"""Issue 18, the gaps the 2,000-case fuzz run still found: case twins of files the conversion
reads, file names that are not UTF-8 where a fixed or paired name was expected, FIFO / dangling
images in YOLO trees, bit flips in PNG masks, and the exact record of a dropped inverted box.
Each case ends in a ConversionError naming the file (OUT unchanged) or in a correct conversion."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.errors import CorruptInputError
from unihema_data.formats import disk
from unihema_data.images import ImageDecodeError, check_pixel_file, read_regular_file
from unihema_data.outdir import all_parquet_files

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


def _opts(**kw):
    return ConvertOptions(num_proc=1, progress=False, **kw)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".unihema/staging" not in p.as_posix()}


def _rows(out: Path, sid: str) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == sid
            for r in pq.read_table(f).to_pylist()}


def _fake(tmp_path: Path, sid: str):
    return get_adapter(sid).fake(tmp_path / "raw" / sid, seed=1)


def _to_non_utf8(path: Path) -> str:
    """Rename ``path`` to ``<stem>\\xe9<suffix>``; returns the printable new name."""
    os.rename(path, os.fsencode(str(path.parent)) + b"/" + os.fsencode(path.stem) + b"\xe9" + os.fsencode(path.suffix))
    return f"{path.stem}\\xe9{path.suffix}"


def _refused(tmp_path: Path, sid: str, *names: str) -> str:
    """Convert (after a healthy conversion into OUT): a ConversionError naming every one of
    ``names``, OUT unchanged."""
    out = tmp_path / "out"
    before = _snapshot(out) if out.exists() else {}
    with pytest.raises(ConversionError) as ei:
        convert([sid], tmp_path / "raw", out, _opts(overwrite=True))
    msg = str(ei.value)
    for n in names:
        assert n in msg, msg
    msg.encode("utf-8")  # printable
    assert (_snapshot(out) if out.exists() else {}) == before
    return msg


# ------------------------------------------------------------------------------ case twins
def test_case_twin_of_a_file_read_by_annotation_name_is_refused(tmp_path):
    """WBCAtt's CSVs name each PBC image exactly; a sibling differing only in case (which one the
    annotation means cannot be told) is refused naming both, not passed over."""
    truth = _fake(tmp_path, "wbcatt")
    convert(["wbcatt"], tmp_path / "raw", tmp_path / "out", _opts())
    img = next(p for p in sorted((tmp_path / "raw" / "wbcatt").rglob("*.jpg")) if p.stem.upper() != p.stem.lower()
               and any(Path(rel).name == p.name for rel in truth.samples))
    twin = img.with_name(img.stem.swapcase() + img.suffix)
    shutil.copy(img, twin)
    _refused(tmp_path, "wbcatt", img.name, twin.name)


def test_case_twin_of_a_file_never_read_is_harmless(tmp_path):
    """PBC's ``.DS_*`` junk is never opened: a case twin of it changes nothing."""
    truth = _fake(tmp_path, "pbc")
    junk = next((tmp_path / "raw" / "pbc").rglob(".DS_*.jpg"))
    shutil.copy(junk, junk.with_name(junk.name.swapcase()))
    rep = convert(["pbc"], tmp_path / "raw", tmp_path / "out", _opts())[0]
    assert rep.total == truth.num_images


def test_disk_reads_refuse_a_case_twin(tmp_path):
    a, b = tmp_path / "x.txt", tmp_path / "X.TXT"
    a.write_text("one\n")
    assert disk.read_text(a) == "one\n"
    b.write_text("two\n")
    for read in (disk.read_text, disk.read_bytes, read_regular_file):
        with pytest.raises(CorruptInputError, match=r"X\.TXT, x\.txt"):
            read(a)
    assert disk.case_twins(tmp_path / "other.txt") == ()


# ------------------------------------------------------------------------------ non-UTF-8 names
@pytest.mark.parametrize("sid, pick", [
    ("all_idb1", lambda root: next(root.rglob("*.xyc"))),                  # paired by stem: never silently lost
    ("mp_idb", lambda root: next(root.rglob("mp-idb-falciparum.csv"))),    # optional file of fixed name
    ("bloodmnist", lambda root: next(root.rglob("bloodmnist_64.npz"))),    # one of the resolutions
    ("c_nmc_2019", lambda root: next(root.rglob("*.bmp"))),                # a listed image
])
def test_non_utf8_name_where_a_name_is_expected_is_refused(tmp_path, sid, pick):
    _fake(tmp_path, sid)
    convert([sid], tmp_path / "raw", tmp_path / "out", _opts())
    new = _to_non_utf8(pick(tmp_path / "raw" / sid))
    msg = _refused(tmp_path, sid, new)
    assert "not valid UTF-8" in msg


# ------------------------------------------------------------------------------ YOLO special images
@needs_fifo
@pytest.mark.parametrize("kind", ["fifo", "dangling"])
def test_special_image_in_a_yolo_tree_names_the_image(tmp_path, kind):
    _fake(tmp_path, "txl_pbc")
    convert(["txl_pbc"], tmp_path / "raw", tmp_path / "out", _opts())
    img = sorted((tmp_path / "raw" / "txl_pbc").rglob("images/*/*.jpg"))[0]
    img.unlink()
    if kind == "fifo":
        os.mkfifo(img)
    else:
        os.symlink(img.with_name("gone.jpg"), img)
    _refused(tmp_path, "txl_pbc", img.name)


# ------------------------------------------------------------------------------ PNG masks
def _flip_in_idat(data: bytes) -> bytes:
    i = data.index(b"IDAT")
    n = int.from_bytes(data[i - 4:i], "big")
    pos = i + 4 + n // 2
    return data[:pos] + bytes([data[pos] ^ 0x04]) + data[pos + 1:]


def test_bit_flip_in_a_png_mask_is_refused(tmp_path):
    """A PNG mask is checked like a stored image (chunk CRCs, inflated length) before its values
    are read: a flipped bit never becomes other instances or classes."""
    _fake(tmp_path, "nuclick_wbc")
    convert(["nuclick_wbc"], tmp_path / "raw", tmp_path / "out", _opts())
    mask = sorted((tmp_path / "raw" / "nuclick_wbc").rglob("*_mask.png"))[0]
    data = mask.read_bytes()
    check_pixel_file(data, mask.name)  # healthy
    mask.write_bytes(_flip_in_idat(data))
    with pytest.raises(ImageDecodeError, match=mask.name):
        check_pixel_file(mask.read_bytes(), mask.name)
    _refused(tmp_path, "nuclick_wbc", mask.name)


# ------------------------------------------------------------------------------ documented drops
def test_dropped_inverted_box_is_recorded_exactly(tmp_path):
    """m5_malaria drops boxes with xmax < xmin (the documented policy); the row's flag records
    the native box so exactly that ``12345678901234567890`` is recoverable (``:g`` kept 6 digits)."""
    _fake(tmp_path, "m5_malaria")
    xml = next(p for p in sorted((tmp_path / "raw" / "m5_malaria").rglob("*.xml")) if "<xmin>" in p.read_text())
    text = xml.read_text()
    start = text.index("<xmin>") + len("<xmin>")
    end = text.index("</xmin>", start)
    xml.write_text(text[:start] + "12345678901234567890" + text[end:])
    convert(["m5_malaria"], tmp_path / "raw", tmp_path / "out", _opts())
    flags = [f for r in _rows(tmp_path / "out", "m5_malaria").values() for f in r["qc_flags"]
             if f.startswith("inverted_box_dropped:")]
    values = [float(v) for f in flags for v in f.split(":", 2)[2].split(",")]
    assert float("12345678901234567890") in values


def _break_photometric_tag(data: bytes) -> bytes:
    """Give the TIFF's PhotometricInterpretation entry an invalid type (what one flipped bit in
    the IFD did in the fuzz run): libtiff drops the tag with a warning, Pillow guesses the polarity."""
    assert data[:2] == b"II"
    ifd = int.from_bytes(data[4:8], "little")
    n = int.from_bytes(data[ifd:ifd + 2], "little")
    for k in range(n):
        at = ifd + 2 + 12 * k
        if int.from_bytes(data[at:at + 2], "little") == 262:
            return data[:at + 2] + (0x43).to_bytes(2, "little") + data[at + 4:]
    raise AssertionError("no PhotometricInterpretation tag")


def test_tiff_mask_without_a_readable_polarity_tag_is_refused(tmp_path):
    """Without tag 262 a bilevel mask decodes inverted (every pixel flipped) without an error."""
    _fake(tmp_path, "all_idb1")
    convert(["all_idb1"], tmp_path / "raw", tmp_path / "out", _opts())
    mask = sorted((tmp_path / "raw" / "all_idb1").rglob("*_RBC.tif"))[0]
    mask.write_bytes(_break_photometric_tag(mask.read_bytes()))
    with pytest.raises(ImageDecodeError, match="PhotometricInterpretation"):
        check_pixel_file(mask.read_bytes(), mask.name)
    _refused(tmp_path, "all_idb1", mask.name)


@pytest.mark.parametrize("how", ["fifo", "non_utf8"] if hasattr(os, "mkfifo") else ["non_utf8"])
def test_unreadable_first_class_name_file_is_refused_not_skipped(tmp_path, how):
    """TXL-PBC's ``data.yaml`` is authoritative: when it is a FIFO or renamed to a non-UTF-8
    name, the next class-name file must not silently take over (its order differs)."""
    _fake(tmp_path, "txl_pbc")
    convert(["txl_pbc"], tmp_path / "raw", tmp_path / "out", _opts())
    yaml_file = next((tmp_path / "raw" / "txl_pbc").rglob("data.yaml"))
    if how == "fifo":
        yaml_file.unlink()
        os.mkfifo(yaml_file)
        _refused(tmp_path, "txl_pbc", "data.yaml")
    else:
        _refused(tmp_path, "txl_pbc", _to_non_utf8(yaml_file))


def test_polygon_vertex_outside_the_image_is_flagged(tmp_path):
    """A CVAT polygon vertex at -1 is rasterized clipped to the image, and the row says so with
    the vertex extremes (as ``clipped_box`` does for boxes)."""
    _fake(tmp_path, "rv_pbs")
    xml = next((tmp_path / "raw" / "rv_pbs").rglob("NEUTROPHILS/annotations.xml"))
    text = xml.read_text()
    start = text.index('points="') + len('points="')
    end = text.index(",", start)
    xml.write_text(text[:start] + "-1" + text[end:])
    convert(["rv_pbs"], tmp_path / "raw", tmp_path / "out", _opts())
    rows = _rows(tmp_path / "out", "rv_pbs")
    flags = [f for r in rows.values() for f in r["qc_flags"] if f.startswith("clipped_polygon:")]
    assert len([f for f in flags if f.split(":", 2)[2].split(",")[0] == "-1"]) == 1
    # the fake's polygon reaching past the right border was flagged before too
    assert any(f.split(":", 2)[2].split(",")[2] == "170.25" for f in flags)
