"""Pipeline behaviour across sources and reruns: cache freshness, damaged shards, duplicates of a
half-committed source, clipped boxes."""
from __future__ import annotations

import datasets
import pyarrow.parquet as pq

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConvertOptions, convert
from unihema_data.splits import normalize_split
from unihema_data.outdir import MANIFEST, all_parquet_files, read_manifest, write_manifest
from unihema_data.validate import validate

OPTS = dict(num_proc=1, progress=False)


def test_load_dataset_sees_a_reconversion(tmp_path):
    """``datasets`` caches local folders by card content: a reconversion must change the card."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    get_adapter("pbc").fake(raw / "pbc", seed=1)
    cache = tmp_path / "hf-cache"
    for seed in (0, 11):
        rep = convert(["pbc"], raw, out, ConvertOptions(seed=seed, **OPTS))[0]
        ds = datasets.load_dataset(str(out), "pbc", cache_dir=str(cache))
        assert {k: len(v) for k, v in ds.items()} == {k: v for k, v in rep.counts.items() if v}
        ids = {s: sorted(ds[s]["sample_id"]) for s in ds}
        rows = {s: sorted(r["sample_id"] for f in all_parquet_files(out) if f.name.startswith(s)
                          for r in pq.read_table(f, columns=["sample_id"]).to_pylist()) for s in ds}
        assert ids == rows


def test_validate_reports_a_damaged_shard(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    get_adapter("txl_pbc").fake(raw / "txl_pbc", seed=1)
    convert(["txl_pbc"], raw, out, ConvertOptions(**OPTS))
    f = all_parquet_files(out)[0]
    pristine = f.read_bytes()
    # damage inside the data pages: reported (as an undecodable image or an unreadable row group)
    data = bytearray(pristine)
    mid = len(data) // 2
    data[mid:mid + 4096] = bytes(b ^ 0x5A for b in data[mid:mid + 4096])
    f.write_bytes(bytes(data))
    rep = validate(out)
    assert not rep.ok
    # damage to the first page headers: the shard is named, the other shards are still checked
    data = bytearray(pristine)
    data[4:2048] = bytes(2044)
    f.write_bytes(bytes(data))
    rep = validate(out)
    assert not rep.ok and f.name in rep.summary() and rep.rows > 0


def test_duplicates_seen_even_without_a_manifest_entry(tmp_path):
    """A run killed after swapping data in but before writing the manifest must not let the
    next source put the same images in other splits."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    # WBCAtt's CSVs reference PBC images: write them into the pbc tree, so both sources share them
    get_adapter("pbc").fake(raw / "pbc", seed=1)
    get_adapter("wbcatt").fake(raw / "wbcatt", seed=1, pbc_out=raw / "pbc")
    convert(["pbc"], raw, out, ConvertOptions(**OPTS))
    manifest = read_manifest(out)
    del manifest["sources"]["pbc"]
    write_manifest(out, manifest)
    for seed in (5, 6, 7):  # whatever the seed, the shared images follow pbc's splits
        rep = convert(["wbcatt"], raw, out, ConvertOptions(seed=seed, overwrite=True, **OPTS))[0]
        # one group per shared image + pbc's own cross-class pair; WBCAtt's published splits win
        assert rep.duplicates == rep.total + 1 > 1
        for r in pq.read_table(out / "data" / "wbcatt", columns=["split", "source_split"]).to_pylist():
            assert r["split"] == normalize_split(r["source_split"])
        v = validate(out)  # the deleted manifest entry is itself a finding (data/pbc/ has none)
        assert dict(v.counts_by_kind) == {"manifest": 1} and "data/pbc/" in v.problems[0], v.summary()


def test_clipped_box_keeps_its_native_coordinates(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    truth = get_adapter("bccd").fake(raw / "bccd", seed=1)
    xml = sorted((truth.root / "Annotations").glob("*.xml"))[0]
    text = xml.read_text()
    first = text.index("<xmax>")
    end = text.index("</xmax>", first)
    xml.write_text(text[:first] + "<xmax>700" + text[end:])
    convert(["bccd"], raw, out, ConvertOptions(**OPTS))
    rows = [r for f in all_parquet_files(out) for r in pq.read_table(f).to_pylist()
            if r["sample_id"].endswith(xml.stem + ".jpg")]
    (row,) = rows
    flag = next(f for f in row["qc_flags"] if f.startswith("clipped_box:0:"))
    native = [float(v) for v in flag.split(":", 2)[2].split(",")]
    assert native[2] == 700 and row["objects"]["bbox"][0][0] + row["objects"]["bbox"][0][2] == 640
    assert validate(out).ok


def test_replacing_a_source_swaps_folders_atomically(tmp_path):
    """On Linux the old and new shard folders are exchanged in one renameat2 call, so there is
    no moment at which data/<source> is missing."""
    import sys

    import pytest

    from unihema_data.outdir import _exchange

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x").write_text("new"), (b / "x").write_text("old")
    if not _exchange(a, b):
        pytest.skip(f"no atomic exchange on {sys.platform}")
    assert (b / "x").read_text() == "new" and (a / "x").read_text() == "old"


def test_reconverting_the_first_of_two_sharing_sources_keeps_one_copy_unflagged(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    get_adapter("pbc").fake(raw / "pbc", seed=1)
    get_adapter("wbcatt").fake(raw / "wbcatt", seed=1, pbc_out=raw / "pbc")
    convert(["pbc", "wbcatt"], raw, out, ConvertOptions(**OPTS))
    convert(["pbc"], raw, out, ConvertOptions(seed=7, overwrite=True, **OPTS))
    rows = [r for f in all_parquet_files(out) for r in pq.read_table(f, columns=["sample_id", "image_sha256", "qc_flags"]).to_pylist()]
    by_sha: dict[str, list] = {}
    for r in rows:
        by_sha.setdefault(r["image_sha256"], []).append(r)
    shared = [group for group in by_sha.values() if len(group) > 1]
    assert shared
    for group in shared:  # exactly one copy of each shared image is the unflagged original
        assert sum(not any(f.startswith("duplicate_of:") for f in r["qc_flags"]) for r in group) == 1
    assert validate(out).ok
