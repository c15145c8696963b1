"""``validate`` finds every corruption of a converted folder and never crashes on one (issue 18)."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data import outdir
from unihema_data.adapters import get_adapter
from unihema_data.convert import ConvertOptions, convert
from unihema_data.images import image_from_bytes, native_bytes, sha256_bytes
from unihema_data.outdir import MANIFEST, all_parquet_files
from unihema_data.validate import validate

SOURCES = ("bccd", "zheng2018_wbc")  # native JPEGs (sha-checkable) and PNGs re-encoded from BMP + masks


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    base = tmp_path_factory.mktemp("valid")
    for sid in SOURCES:
        get_adapter(sid).fake(base / "raw" / sid, seed=7)
    mp = pytest.MonkeyPatch()
    mp.setattr(outdir, "ROW_GROUP_ROWS", 1)  # one row per shard: several -of-N shards per split
    mp.setattr(outdir, "SHARD_BYTES", 1)
    try:
        convert(list(SOURCES), base / "raw", base / "out", ConvertOptions(num_proc=1, progress=False))
    finally:
        mp.undo()
    rep = validate(base / "out")
    assert rep.ok, rep.summary()
    return base / "out"


@pytest.fixture
def out(healthy, tmp_path):
    dst = tmp_path / "out"
    shutil.copytree(healthy, dst)
    return dst


def _problems(out: Path, **kw) -> tuple[dict, str]:
    seen = []
    rep = validate(out, on_progress=lambda done, total: seen.append((done, total)), **kw)
    assert not rep.ok
    return dict(rep.counts_by_kind), rep.summary()


def _shards(out: Path, sid: str, split: str | None = None) -> list[Path]:
    return [f for f in all_parquet_files(out) if f.parent.name == sid and (split is None or f.name.startswith(split + "-"))]


@pytest.mark.parametrize("damage", ["truncated", "zero_bytes", "footer"])
def test_unreadable_shard_is_a_finding_not_a_crash(out, damage):
    f = _shards(out, "bccd")[0]
    data = f.read_bytes()
    if damage == "truncated":
        f.write_bytes(data[: len(data) // 2])
    elif damage == "zero_bytes":
        f.write_bytes(b"")
    else:  # damaged footer: the metadata length and the magic survive, the metadata does not
        m = bytearray(data)
        for i in range(len(m) - 40, len(m) - 8):
            m[i] ^= 0xFF
        f.write_bytes(bytes(m))
    kinds, text = _problems(out)
    assert kinds.get("file"), text
    assert f.name in text


@pytest.mark.parametrize("num_proc", [1, 2])
def test_manifest_not_json(out, num_proc):
    (out / MANIFEST).write_text("{ not json", encoding="utf-8")
    kinds, text = _problems(out, num_proc=num_proc)
    assert kinds.get("manifest") and "manifest.json" in text and "not valid JSON" in text


def test_manifest_of_the_wrong_shape(out):
    (out / MANIFEST).write_text(json.dumps(["a", "list"]), encoding="utf-8")
    kinds, text = _problems(out)
    assert kinds.get("manifest")


def test_deleted_shard(out):
    shards = _shards(out, "bccd", "train")
    assert len(shards) >= 2
    shards[1].unlink()
    kinds, text = _problems(out)
    assert kinds.get("missing") and shards[1].name in text
    assert kinds.get("counts")


def test_missing_of_n_shard_with_manifest_counts_made_to_agree(out):
    """Even when the manifest was edited to agree, the -of-N numbering shows the gap."""
    shards = _shards(out, "bccd", "train")
    shards[-1].unlink()
    m = json.loads((out / MANIFEST).read_text())
    m["sources"]["bccd"]["counts"]["train"] -= 1
    (out / MANIFEST).write_text(json.dumps(m))
    kinds, text = _problems(out)
    assert kinds == {"missing": 1}, text
    assert shards[-1].name in text


def test_deleted_source_folder(out):
    shutil.rmtree(out / "data" / "zheng2018_wbc")
    kinds, text = _problems(out)
    assert kinds.get("missing") and "data/zheng2018_wbc/" in text


def test_data_folder_without_manifest_entry(out):
    m = json.loads((out / MANIFEST).read_text())
    del m["sources"]["zheng2018_wbc"]
    (out / MANIFEST).write_text(json.dumps(m))
    kinds, text = _problems(out)
    assert kinds.get("manifest") and "data/zheng2018_wbc/" in text


def test_manifest_counts_disagree_with_shards(out):
    m = json.loads((out / MANIFEST).read_text())
    split = next(iter(m["sources"]["bccd"]["counts"]))
    m["sources"]["bccd"]["counts"][split] += 3
    (out / MANIFEST).write_text(json.dumps(m))
    kinds, text = _problems(out)
    assert kinds == {"counts": 1}, text


def _rewrite(f: Path, edit) -> None:
    t = pq.read_table(f)
    rows = t.to_pylist()
    edit(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=t.schema), f)


def test_image_replaced_by_another_valid_image_of_the_same_size(out):
    a, b = _shards(out, "bccd")[:2]
    other = pq.read_table(b).to_pylist()[0]["image"]["bytes"]

    def swap(rows):
        assert rows[0]["image"]["bytes"] != other
        rows[0]["image"]["bytes"] = other

    _rewrite(a, swap)
    kinds, text = _problems(out)
    assert kinds == {"image": 1}, text
    assert "image_sha256" in text


def _flip_in_file(f: Path, payload: bytes, at: float) -> None:
    data = bytearray(f.read_bytes())
    start = bytes(data).index(payload)  # image bytes are stored uncompressed in the shard
    pos = start + int(len(payload) * at)
    data[pos] ^= 0x04
    f.write_bytes(bytes(data))


@pytest.mark.parametrize("sid", SOURCES)
def test_byte_flip_inside_a_stored_image(out, sid):
    f = _shards(out, sid)[0]
    payload = pq.read_table(f).to_pylist()[0]["image"]["bytes"]
    _flip_in_file(f, payload, 0.6)
    kinds, text = _problems(out)
    assert kinds.get("image") or kinds.get("file"), text


def test_byte_flip_inside_a_semantic_mask(out):
    f = _shards(out, "zheng2018_wbc")[0]
    payload = pq.read_table(f).to_pylist()[0]["semantic_mask"]["bytes"]
    _flip_in_file(f, payload, 0.5)
    kinds, text = _problems(out)
    assert kinds.get("mask") or kinds.get("file"), text


def test_native_bytes_of_an_orientation_reset_jpeg():
    im = Image.fromarray((np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes())
    data = buf.getvalue()
    st = image_from_bytes(data, "rot.jpg")
    assert st.data != data and "exif_orientation_reset:6" in st.flags
    assert native_bytes(st.data, st.flags) == data
    assert sha256_bytes(native_bytes(st.data, st.flags)) == st.sha256
    assert native_bytes(b"png", ["reencoded_from:bmp"]) is None
