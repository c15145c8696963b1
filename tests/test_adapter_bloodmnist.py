"""bloodmnist: the largest npz converted pixel-exactly item by item (stored and deflated members,
any read order), labels and published splits, mismatched or malformed arrays refused naming the
file."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.errors import CorruptInputError
from unihema_data.outdir import all_parquet_files
from unihema_data.refs import ArrayImage, load_array_image, npz_members
from unihema_data.schema import label_name

SID = "bloodmnist"
NAMES = ["basophil", "eosinophil", "erythroblast", "immature_granulocyte", "lymphocyte", "monocyte", "neutrophil", "platelet"]


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for f in all_parquet_files(out) if f.parent.name == SID for r in pq.read_table(f).to_pylist()}


def _convert(tmp_path: Path, name: str, num_proc: int = 1):
    return convert([SID], tmp_path / "raw", tmp_path / name, ConvertOptions(num_proc=num_proc, progress=False))[0]


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_items_read_in_any_order(tmp_path, save):
    a = np.random.default_rng(1).integers(0, 256, (40, 12, 10, 3), dtype=np.uint8)
    p = tmp_path / "x.npz"
    save(p, imgs=a, other=np.zeros(3))
    assert npz_members(p)["imgs"] == ((40, 12, 10, 3), np.dtype(np.uint8))
    for i in [0, 1, 2, 30, 7, 39, 39, -40, 5]:
        assert np.array_equal(load_array_image(ArrayImage(p, "imgs", i)), a[i])
    with pytest.raises(CorruptInputError, match=r"index 40 is out of range"):
        load_array_image(ArrayImage(p, "imgs", 40))
    with pytest.raises(CorruptInputError, match=r"npz has no array 'nope'"):
        load_array_image(ArrayImage(p, "nope", 0))
    save(p, imgs=a[::-1].copy())  # the file changes: the open stream is not reused
    assert np.array_equal(load_array_image(ArrayImage(p, "imgs", 0)), a[-1])
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    with pytest.raises(CorruptInputError, match="x.npz"):
        load_array_image(ArrayImage(p, "imgs", 39))


def test_fake_conversion_pixel_exact(tmp_path):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=3)
    rep = _convert(tmp_path, "out", num_proc=2)
    rows = _rows(tmp_path / "out")
    assert len(rows) == truth.num_images == 11
    with np.load(truth.root / "bloodmnist_64.npz") as z:
        for split in ("train", "val", "test"):
            imgs, labs = z[f"{split}_images"], z[f"{split}_labels"]
            for i in range(len(imgs)):
                r = rows[f"{SID}/bloodmnist_64.npz/{split}/{i:05d}"]
                assert np.array_equal(np.asarray(Image.open(io.BytesIO(r["image"]["bytes"]))), imgs[i])
                assert r["source_label"] == str(int(labs[i, 0])) and label_name(r["label"]) == NAMES[int(labs[i, 0])]
                assert r["source_split"] == split and r["subset"] == "64px" and "reencoded_from:npz" in r["qc_flags"]
    assert rep.info["file"] == "bloodmnist_64.npz (64 px) of bloodmnist.npz, bloodmnist_64.npz"
    assert dict(rep.inputs.of("skipped")) == {"bloodmnist.npz": "the same images at 28 px; bloodmnist_64.npz is converted"}


def _rewrite(path: Path, **changes):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    for k, v in list(arrays.items()):
        if v is None:
            del arrays[k]
    np.savez_compressed(path, **arrays)


@pytest.mark.parametrize("change, message", [
    (dict(test_labels=None), "npz lacks test_labels"),
    (dict(train_labels=np.full((6, 1), 8, np.uint8)), r"train_labels\[0\] = 8 is not a class id 0..7"),
    (dict(val_images=np.zeros((2, 8, 8, 3), np.float32)), "val_images is float32"),
    (dict(train_labels=np.zeros((6, 2), np.uint8)), r"train_labels is uint8 \(6, 2\)"),
    (dict(test_labels=np.zeros((2, 1), np.uint8)), "test_images holds 3 images but test_labels holds 2 labels"),
])
def test_bad_arrays_name_the_file(tmp_path, change, message):
    truth = get_adapter(SID).fake(tmp_path / "raw" / SID, seed=4)
    _rewrite(truth.root / "bloodmnist_64.npz", **change)
    with pytest.raises(ConversionError, match=f"bloodmnist_64.npz: {message}"):
        _convert(tmp_path, "out")
