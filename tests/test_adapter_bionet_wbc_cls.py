"""bionet_wbc_cls: the Bio-Net WBC classification part (a second id next to ``bionet``): labels from
the class folders, Augmentor outputs and ``Copy of`` files grouped with their original, rotated
(portrait) images flagged, and the root found inside the ``bionet`` download.

Opt-in full check: ``UNIHEMA_BIONET_CLS_FULL=<folder holding 'WBC Classification Dataset/'>`` (the
GitHub repository at 0b67463) converts all 5379 images and compares them with an independent
reading of the file names and image headers."""
from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.integrity import base_split
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "bionet_wbc_cls"
PART = "WBC Classification Dataset"


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _independent(root: Path) -> dict[str, tuple[str, str, bool]]:
    """rel -> (class, original picture, portrait), from names and headers only."""
    out = {}
    for p in sorted((root / PART).glob("*/*.jpg")):
        cls, name = p.parent.name, p.name
        m = re.fullmatch(rf"{cls}_original_(?:Copy of )?(.+?)\.jpg_[0-9a-f-]{{36}}\.jpg", name)
        orig = m.group(1) if m else Path(name.replace("Copy of ", "")).stem
        w, h = Image.open(p).size
        out[f"{PART}/{cls}/{name}"] = (cls, f"{cls}/{orig}", h > w)
    return out


def _check(root: Path, rows: dict) -> None:
    want = _independent(root)
    assert set(rows) == {f"{SID}/{k}" for k in want}
    for rel, (cls, group, portrait) in want.items():
        r = rows[f"{SID}/{rel}"]
        assert r["source_label"] == cls and label_name(r["label"]) == cls.lower()
        assert r["group_id"] == group
        assert ("orientation:portrait" in r["qc_flags"]) == portrait
        assert r["tasks"] == ["classification"]
    groups: dict[str, set] = {}
    for r in rows.values():  # the base split (before the corpus duplicate policy moves a copy, flagged)
        groups.setdefault(r["group_id"], set()).add(base_split(r["split"], r["qc_flags"]))
    assert all(len(s) == 1 for s in groups.values()), "an original and its augmentations span two splits"


def test_fake(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=4)
    rep = convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    rows = _rows(tmp_path / "out")
    _check(truth.root, rows)
    assert rep.inputs.info["files"] == "original: 6, copy: 1, augmented: 4"
    assert rep.inputs.info["located_in"] == "own folder"
    aug = [r for k, r in rows.items() if "_original_" in k]
    assert all(any(f.startswith("augmented_from") for f in r["qc_flags"]) for r in aug)
    miss = [k for k, r in rows.items() if "augmented_from_missing:99.jpg" in r["qc_flags"]]
    assert len(miss) == 1 and ("flagged" in rep.inputs.counts())
    c = rows[f"{SID}/{PART}/EOSINOPHIL/Copy of 310.jpg"]
    o = rows[f"{SID}/{PART}/EOSINOPHIL/310.jpg"]
    assert "copy_of:310.jpg" in c["qc_flags"] and c["image_sha256"] == o["image_sha256"] and c["split"] == o["split"]


def test_found_inside_the_bionet_download(tmp_path):
    get_adapter(SID).fake(tmp_path / "raw" / "bionet", seed=4)
    rep = convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))[0]
    assert rep.inputs.info["located_in"] == "bionet download"
    assert rep.total == 11


def test_not_found_names_both_places(tmp_path):
    (tmp_path / "raw" / "bionet").mkdir(parents=True)
    with pytest.raises(ConversionError, match=r"bionet_wbc_cls: native layout not found .* also looked in .*raw/bionet"):
        convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))


def test_unknown_class_folder_and_misfiled_augmentation(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=4)
    (truth.root / PART / "BASOPHIL").mkdir()
    with pytest.raises(ConversionError, match="unknown class folder 'BASOPHIL'"):
        convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))
    shutil.rmtree(truth.root / PART / "BASOPHIL")
    src = next((truth.root / PART / "NEUTROPHIL").glob("NEUTROPHIL_original_*"))
    src.rename(truth.root / PART / "LYMPHOCYTE" / src.name)
    with pytest.raises(ConversionError, match=r"NEUTROPHIL_original_40\.jpg_.*augmentation of a NEUTROPHIL image filed under LYMPHOCYTE"):
        convert([SID], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))
    assert not all_parquet_files(tmp_path / "out")


@pytest.mark.skipif(not os.environ.get("UNIHEMA_BIONET_CLS_FULL"), reason="set UNIHEMA_BIONET_CLS_FULL to the release")
def test_full_release(tmp_path):
    root = Path(os.environ["UNIHEMA_BIONET_CLS_FULL"])
    rep = convert([SID], root, tmp_path / "out", ConvertOptions(num_proc=2, progress=False))[0]
    rows = _rows(tmp_path / "out")
    _check(Path(rep.root), rows)
    assert rep.total == 5379
    assert Counter(r["source_label"] for r in rows.values()) == {"EOSINOPHIL": 1892, "LYMPHOCYTE": 1547,
                                                                "MONOCYTE": 521, "NEUTROPHIL": 1419}
    assert rep.inputs.info["files"] == "original: 361, copy: 50, augmented: 4968"
    assert len({r["group_id"] for r in rows.values()}) == 411 - 50  # a copy is its original's picture
    assert not any(f.startswith("augmented_from_missing") for r in rows.values() for f in r["qc_flags"])
