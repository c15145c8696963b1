"""lisc: Main Dataset class folders (Baso capitalized, numbers restarting per folder), the mixt
folder kept as unlabeled and flagged; the expert ground-truth masks (cell-type gray-level pairs,
8 px smaller than the image) converted to semantic masks and per-cell objects, both layouts,
orphans, unknown levels, size mismatch and case twins. Opt-in real data: set
``UNIHEMA_REAL_LISC_GOBLIN80`` to the git directory of github Goblin80/Leukocyte-Classify (its
``phase1/samples/*_expert.bmp`` are real LISC masks; the images are its ``phase2`` copies)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.masks import decode_rle, decode_semantic
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "lisc"
EXPECTED = {"Baso": "basophil", "eosi": "eosinophil", "lymp": "lymphocyte", "mixt": "unlabeled",
            "mono": "monocyte", "neut": "neutrophil"}
#: the gray levels, written out independently of the adapter: type -> {class: level}
LEVELS = {"Baso": {"wbc": 50}, "eosi": {"cytoplasm": 75, "nucleus": 100}, "lymp": {"cytoplasm": 125, "nucleus": 150},
          "mono": {"cytoplasm": 175, "nucleus": 200}, "neut": {"cytoplasm": 225, "nucleus": 255}}
GT = "Ground Truth Segmentation"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path: Path, name: str, raw: str = "raw"):
    return convert([SID], tmp_path / raw, tmp_path / name, ConvertOptions(num_proc=1, progress=False))[0]


def native_back(row: dict) -> np.ndarray:
    """The native gray levels rebuilt from a row: semantic class + the cell (object) covering the pixel."""
    H, W = row["height"], row["width"]
    idx = decode_semantic(row["semantic_mask"]["bytes"])
    classes = row["mask_classes"]
    out = np.zeros((H, W), np.int64)
    for k, cat in enumerate(row["objects"]["source_category"]):
        cell = decode_rle(row["objects"]["mask_rle"][k], H, W)
        for cls, level in LEVELS[cat].items():
            if cls in classes:
                out[cell & (idx == classes.index(cls))] = level
    assert not (idx[out == 0] != classes.index("background")).any(), "a foreground pixel outside every cell"
    return out


def test_labels_masks_and_report(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    rep = _convert(tmp_path, "out")
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images == 7
    assert f"{SID}/Main Dataset/Baso/1.bmp" in rows and f"{SID}/Main Dataset/lymp/1.bmp" in rows
    for rel in truth.samples:
        r = rows[f"{SID}/{rel}"]
        folder = rel.split("/")[1]
        assert r["source_label"] == folder and label_name(r["label"]) == EXPECTED[folder]
        assert ("mixed_cells" in r["qc_flags"]) == (folder == "mixt")
        assert r["image"]["path"].endswith(".png")  # BMP re-encoded losslessly
    assert rep.info["ground_truth"] == (f"{GT}/<folder>/areaforexpert1/<n>_expert.bmp: 6 image(s) with a mask, 1 without")
    assert [p for p, _ in rep.inputs.of("skipped")] == ["Main Dataset/neut/Thumbs.db"]
    assert sorted(p for p, _ in rep.inputs.of("orphaned")) == [f"{GT}/eosi/areaforexpert1/9_expert.bmp",
                                                               "Main Dataset/neut/4.bmp"]
    # round trip to the native gray levels, read independently from the files
    for rel, t in truth.samples.items():
        r = rows[f"{SID}/{rel}"]
        folder, n = rel.split("/")[1], Path(rel).stem
        mfile = truth.root / GT / folder / "areaforexpert1" / f"{n}_expert.bmp"
        if not mfile.exists():
            assert r["semantic_mask"] is None and r["objects"]["bbox"] == []
            assert r["tasks"] == ["classification"]
            continue
        native = np.asarray(Image.open(mfile).convert("L")).astype(np.int64)
        back = native_back(r)
        if native.shape != back.shape:
            assert "mask_border_padded:4" in r["qc_flags"]
            assert not back[:4].any() and not back[-4:].any() and not back[:, :4].any() and not back[:, -4:].any()
            back = back[4:-4, 4:-4]
        else:
            assert "mask_border_padded:4" not in r["qc_flags"]
        assert np.array_equal(back, native), rel
        assert r["objects"]["bbox_source"] == ["from_mask"] * len(t.boxes)
        assert r["tasks"] == ["detection", "segmentation", "classification"]
        assert ("mask_levels_inferred" in r["qc_flags"]) == (folder == "lymp")
    mixt = rows[f"{SID}/Main Dataset/mixt/2.bmp"]
    assert sorted(mixt["objects"]["source_category"]) == ["mono", "neut"]
    assert sorted(label_name(c) for c in mixt["objects"]["category"]) == ["monocyte", "neutrophil"]
    assert label_name(mixt["label"]) == "unlabeled"
    shutil.rmtree(truth.root / GT)
    rep = _convert(tmp_path, "out2")
    assert rep.info["ground_truth"] == f"{GT}/ absent"
    assert all(r["semantic_mask"] is None for r in _rows(tmp_path / "out2").values())


def test_flat_layout_detected(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    for d in (truth.root / GT).glob("*/areaforexpert1"):
        for f in d.iterdir():
            f.rename(d.parent / f.name)
        d.rmdir()
    rep = _convert(tmp_path, "out")
    assert rep.info["ground_truth"].startswith(f"{GT}/<folder>/<n>_expert.bmp: 6 image(s) with a mask")
    # both layouts in one class folder: an error naming it
    (truth.root / GT / "mono" / "areaforexpert1").mkdir()
    shutil.copyfile(truth.root / GT / "mono" / "7_expert.bmp", truth.root / GT / "mono" / "areaforexpert1" / "7_expert.bmp")
    with pytest.raises(ConversionError, match="mono: holds both"):
        _convert(tmp_path, "out2")


def test_second_expert_folder_reported(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=3)
    shutil.copytree(truth.root / GT / "mono" / "areaforexpert1", truth.root / GT / "mono" / "areaforexpert2")
    rep = _convert(tmp_path, "out")
    assert f"{GT}/mono/areaforexpert2/" in [p for p, _ in rep.inputs.of("skipped")]


def _edit_mask(path: Path, fn) -> None:
    a = np.asarray(Image.open(path).convert("L")).copy()
    Image.fromarray(fn(a), "L").save(path, format="BMP")


def test_unknown_gray_level_names_file_and_value(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=4)
    m = truth.root / GT / "neut" / "areaforexpert1" / "38_expert.bmp"

    def put(a):
        a[30, 40] = 130
        return a

    _edit_mask(m, put)
    with pytest.raises(ConversionError) as ei:
        _convert(tmp_path, "out")
    assert "38_expert.bmp" in str(ei.value) and "[130]" in str(ei.value)


def test_cell_mixing_two_types_is_an_error(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=5)
    m = truth.root / GT / "neut" / "areaforexpert1" / "38_expert.bmp"

    def put(a):
        ys, xs = np.nonzero(a == 255)
        a[ys[0], xs[0]] = 200  # a mono nucleus pixel inside a neutrophil
        return a

    _edit_mask(m, put)
    with pytest.raises(ConversionError, match="mixes the gray levels of mono and neut"):
        _convert(tmp_path, "out")


def test_size_mismatch_names_both_files(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=6)
    m = truth.root / GT / "eosi" / "areaforexpert1" / "3_expert.bmp"
    _edit_mask(m, lambda a: a[:-2])
    with pytest.raises(ConversionError) as ei:
        _convert(tmp_path, "out")
    msg = str(ei.value)
    assert "3_expert.bmp" in msg and "eosi/3.bmp" in msg and "82x62" in msg and "90x72" in msg


def test_case_twin_of_a_mask_is_refused(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=7)
    d = truth.root / GT / "eosi" / "areaforexpert1"
    shutil.copyfile(d / "3_expert.bmp", d / "3_Expert.bmp")
    with pytest.raises(ConversionError, match="differ only in case"):
        _convert(tmp_path, "out")


def test_renamed_class_folder_fails_naming_it(tmp_path):
    """Folder names are matched exactly: a renamed copy fails naming the folder."""
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    (truth.root / "Main Dataset" / "Baso").rename(truth.root / "Main Dataset" / "basophil")
    with pytest.raises(ConversionError, match="unknown class folder 'basophil'"):
        _convert(tmp_path, "out")


# ------------------------------------------------------------------ opt-in real data
#: real mask -> the image it belongs to (found by nucleus contrast at offset (4, 4); see the adapter)
REAL_PAIRS = {"1": ("mono", "phase2/train/mono/3.bmp"), "5": ("neut", "phase2/train/neut/23.bmp"),
              "8": ("eosi", "phase2/train/eosi/13.bmp"), "11": ("Baso", "phase2/train/baso/16.bmp")}


def test_real_masks_from_public_copy(tmp_path):
    git_dir = os.environ.get("UNIHEMA_REAL_LISC_GOBLIN80")
    if not git_dir:
        pytest.skip("set UNIHEMA_REAL_LISC_GOBLIN80 to the git dir of Goblin80/Leukocyte-Classify")
    root = tmp_path / "raw" / SID / "LISC Database"

    def show(obj: str) -> bytes:
        return subprocess.run(["git", f"--git-dir={git_dir}", "show", f"HEAD:{obj}"], check=True, capture_output=True).stdout

    for k, (folder, image) in REAL_PAIRS.items():
        (root / "Main Dataset" / folder).mkdir(parents=True, exist_ok=True)
        (root / GT / folder / "areaforexpert1").mkdir(parents=True, exist_ok=True)
        (root / "Main Dataset" / folder / f"{k}.bmp").write_bytes(show(image))
        (root / GT / folder / "areaforexpert1" / f"{k}_expert.bmp").write_bytes(show(f"phase1/samples/{k}_expert.bmp"))
    rep = _convert(tmp_path, "out")
    rows = _rows(tmp_path / "out")
    assert rep.total == len(rows) == 4
    for k, (folder, _image) in REAL_PAIRS.items():
        r = rows[f"{SID}/Main Dataset/{folder}/{k}.bmp"]
        native = np.asarray(Image.open(root / GT / folder / "areaforexpert1" / f"{k}_expert.bmp")).astype(np.int64)
        assert native.shape == (568, 712) and (r["width"], r["height"]) == (720, 576)
        assert "mask_border_padded:4" in r["qc_flags"]
        assert np.array_equal(native_back(r)[4:-4, 4:-4], native)
        assert set(r["objects"]["source_category"]) == {folder}
