"""wbcattplus: the authors' training layout (UNCONFIRMED release layout): class maps read as the
authors' code reads them (channel 0 of the RGB conversion), compared with an independent decode;
orphans both ways; bad values, masks without images, unknown folders and prefix refinement."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.masks import decode_semantic
from unihema_data.outdir import all_parquet_files
from unihema_data.schema import label_name

SID = "wbcattplus"
#: the README's class table, written out independently: value -> canonical mask class
CLASSES = {0: "background", 1: "cytoplasm", 2: "nucleus", 3: "platelet", 4: "cell", 5: "vacuole"}


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path: Path, name: str = "out"):
    return convert([SID], tmp_path / "raw", tmp_path / name, ConvertOptions(num_proc=1, progress=False))[0]


def test_class_maps_round_trip(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=1)
    rep = _convert(tmp_path)
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images == 6
    assert rep.info["layout"] == "<class>/<name>.jpg + <name>_mask.png: 5 of 6 image(s) with a mask"
    assert sorted(p for p, _ in rep.inputs.of("orphaned")) == ["basophil/" + next(
        Path(k).name for k in truth.samples if k.startswith("basophil/")), "monocyte/MO_1_mask.png"]
    for rel, t in truth.samples.items():
        r = rows[f"{SID}/{rel}"]
        mfile = (truth.root / rel).with_name(Path(rel).stem + "_mask.png")
        if not mfile.exists():
            assert r["semantic_mask"] is None and r["tasks"] == ["classification"]
            continue
        native = np.asarray(Image.open(mfile).convert("RGB"))[..., 0]  # the authors' reading
        idx = decode_semantic(r["semantic_mask"]["bytes"])
        back = np.full(idx.shape, -1)
        for v, cls in CLASSES.items():
            if cls in r["mask_classes"]:
                back[idx == r["mask_classes"].index(cls)] = v
        assert np.array_equal(back, native), rel
        assert r["tasks"] == ["segmentation", "classification"]
    band = next(r for k, r in rows.items() if "/BNE_" in k)
    assert label_name(band["label"]) == "neutrophil_band" and "label_refined:neutrophil" in band["qc_flags"]


def test_bad_value_names_file_and_value(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=2)
    m = next((truth.root / "eosinophil").glob("*_mask.png"))
    a = np.asarray(Image.open(m)).copy()
    a[0, 0] = 9
    Image.fromarray(a).save(m)
    with pytest.raises(ConversionError) as ei:
        _convert(tmp_path)
    assert m.name in str(ei.value) and "[9]" in str(ei.value)


def test_masks_without_images_and_unknown_folder(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=3)
    for f in (truth.root / "eosinophil").glob("*.jpg"):
        f.unlink()
    with pytest.raises(ConversionError, match="eosinophil: 1 mask\\(s\\) but no image"):
        _convert(tmp_path)
    shutil.rmtree(truth.root / "eosinophil")
    (truth.root / "lymphocyte").rename(truth.root / "lymphocytes")
    with pytest.raises(ConversionError, match="unknown class folder 'lymphocytes'"):
        _convert(tmp_path, "out2")
