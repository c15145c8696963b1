"""Generic adapter harness, parametrized over the adapter registry.

For every adapter: fake -> convert -> expected counts, schema, round trip to the native
annotation (boxes within 0.5 px in the native convention, masks pixel-identical), labels mapped,
no split overlap, rerun is a no-op, corrupted and missing inputs give clear errors and leave no
partial output, ``datasets.load_dataset`` loads the per-source config.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from unihema_data.adapters import adapter_ids, get_adapter
from unihema_data.schema import label_name
from unihema_data.boxes import from_coco
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.integrity import base_split
from unihema_data.masks import decode_rle, decode_semantic
from unihema_data.outdir import all_parquet_files, read_manifest
from unihema_data.schema import ARROW_SCHEMA
from unihema_data.splits import normalize_split
from unihema_data.taxonomy import load_taxonomy
from unihema_data.validate import validate

IDS = adapter_ids()


def _rows(out: Path, source: str) -> list[dict]:
    rows = []
    for f in all_parquet_files(out):
        if f.parent.name == source:
            rows.extend(pq.read_table(f).to_pylist())
    return rows


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module", params=IDS)
def converted(request, tmp_path_factory):
    sid = request.param
    base = tmp_path_factory.mktemp(sid)
    adapter = get_adapter(sid)
    truth = adapter.fake(base / "raw" / sid, seed=1)
    out = base / "out"
    reports = convert([sid], base / "raw", out, ConvertOptions(num_proc=2, progress=False))
    return sid, adapter, truth, out, reports[0], base


def test_counts_and_schema(converted):
    sid, adapter, truth, out, report, _ = converted
    rows = _rows(out, sid)
    assert report.status == "converted"
    assert len(rows) == truth.num_images == report.total
    assert sum(len(r["objects"]["bbox"]) for r in rows) == truth.num_objects
    for f in all_parquet_files(out):
        assert pq.read_schema(f).remove_metadata().equals(ARROW_SCHEMA.remove_metadata())
    assert Path(report.root).resolve() == truth.root.resolve(), "locate() must find the native root two levels down"


def test_round_trip_to_native(converted):
    """Every converted row reproduces the generator's ground truth in the native convention."""
    sid, adapter, truth, out, _, _ = converted
    tax = load_taxonomy()
    rows = {r["sample_id"]: r for r in _rows(out, sid)}
    for rel, t in truth.samples.items():
        r = rows.get(f"{sid}/{rel}")
        assert r is not None, f"{rel} missing from the conversion"
        W, H = r["width"], r["height"]
        assert r["source_split"] == t.source_split
        if t.source_split and normalize_split(t.source_split):
            # the split policy may move a duplicate (e.g. a validation copy of a training image)
            # to its group's split: it then says so in a split_moved flag
            assert base_split(r["split"], r["qc_flags"]) == normalize_split(t.source_split)
        if t.group_id:
            assert r["group_id"] == t.group_id
        if t.label is not None:
            assert r["source_label"] == str(t.label)
            want = tax.map_label(sid, str(t.label), table=t.label_table)
            got = label_name(r["label"])  # or a refinement of it, flagged (WBCAtt: file-name prefix)
            assert got == want or (f"label_refined:{want}" in r["qc_flags"] and tax.is_refinement(want, got))
        assert r["objects"]["source_category"] == [str(c) for c in t.categories]
        for got, want in zip(r["objects"]["bbox"], t.boxes):
            if adapter.box_format is not None:
                g = from_coco(got, adapter.box_format, W, H)
                w = from_coco(want, adapter.box_format, W, H)
                scale = (W, H, W, H) if adapter.box_format.value == "yolo" else (1, 1, 1, 1)
                assert np.allclose(np.multiply(g, scale), np.multiply(w, scale), atol=0.5), (rel, got, want)
            assert np.allclose(got, want, atol=0.5), (rel, got, want)
        for k, m in enumerate(t.object_masks):
            assert np.array_equal(decode_rle(r["objects"]["mask_rle"][k], H, W), np.asarray(m) > 0)
        if t.semantic_mask is not None:
            idx = decode_semantic(r["semantic_mask"]["bytes"])
            values = adapter.mask_values
            back = {r["mask_classes"].index(tax.map_mask_class(sid, name)): v for v, name in values.items()}
            native = np.vectorize(back.get)(idx)
            assert np.array_equal(native, t.semantic_mask), f"{rel}: semantic mask not pixel-identical"
        if t.attributes:
            got_attrs = {a["name"]: a["value"] for a in r["attributes"]}
            want_attrs = dict(tax.map_attribute(sid, k, v) for k, v in t.attributes.items())
            assert got_attrs == want_attrs
        for k, oa in enumerate(t.object_attributes):
            got_attrs = {a["name"]: a["value"] for a in r["objects"]["attributes"][k]}
            assert got_attrs == dict(tax.map_attribute(sid, a, v) for a, v in oa.items())


def test_validate_and_no_split_overlap(converted):
    sid, _, _, out, _, _ = converted
    rep = validate(out)
    assert rep.ok, rep.summary()
    rows = _rows(out, sid)
    by_split: dict[str, set] = {}
    groups: dict[str, set] = {}
    for r in rows:
        by_split.setdefault(r["split"], set()).add(r["image_sha256"])
        groups.setdefault(r["group_id"], set()).add(r["split"])
    splits = list(by_split.values())
    for i in range(len(splits)):
        for j in range(i + 1, len(splits)):
            assert not (splits[i] & splits[j]), "the same image bytes appear in two splits"
    assert all(len(s) == 1 for s in groups.values()), "a group spans two splits"


def test_load_dataset(converted):
    datasets = pytest.importorskip("datasets")
    sid, _, truth, out, _, _ = converted
    ds = datasets.load_dataset(str(out), sid)
    assert sum(len(ds[s]) for s in ds) == truth.num_images
    first = ds[next(iter(ds))][0]
    assert first["image"].size == (first["width"], first["height"])
    ds_all = datasets.load_dataset(str(out), "all")
    assert sum(len(ds_all[s]) for s in ds_all) >= truth.num_images


def test_rerun_is_noop(converted):
    sid, _, _, out, _, base = converted
    before = _snapshot(out / "data")
    rep = convert([sid], base / "raw", out, ConvertOptions(num_proc=1, progress=False))[0]
    assert rep.status == "up_to_date"
    assert _snapshot(out / "data") == before


def test_deterministic_output(converted, tmp_path):
    """Converting again from scratch (different worker count) gives identical rows."""
    sid, _, _, out, _, base = converted
    out2 = tmp_path / "out2"
    convert([sid], base / "raw", out2, ConvertOptions(num_proc=1, progress=False))
    assert _rows(out, sid) == _rows(out2, sid)


@pytest.mark.parametrize("sid", IDS)
def test_corrupted_input_fails_cleanly(sid, tmp_path):
    adapter = get_adapter(sid)
    truth = adapter.fake(tmp_path / "raw" / sid, seed=2)
    out = tmp_path / "out"
    # a converted, healthy OUT must survive a failed reconversion untouched
    convert([sid], tmp_path / "raw", out, ConvertOptions(num_proc=1, progress=False))
    before = _snapshot(out)
    bad_name = adapter.corrupt(truth)
    with pytest.raises(ConversionError) as ei:
        convert([sid], tmp_path / "raw", out, ConvertOptions(num_proc=2, progress=False, overwrite=True))
    assert bad_name in str(ei.value)
    after = _snapshot(out)
    assert {k: v for k, v in after.items() if not k.startswith(".unihema/staging")} == before
    assert not any((out / ".unihema" / "staging").glob("*/*.parquet"))


@pytest.mark.parametrize("sid", IDS)
def test_missing_input_fails_cleanly(sid, tmp_path):
    adapter = get_adapter(sid)
    truth = adapter.fake(tmp_path / "raw" / sid, seed=3)
    marker = truth.root / adapter.markers[0].split("*")[0].rstrip("/")
    if marker.is_dir():
        shutil.rmtree(marker)
    elif marker.exists():
        marker.unlink()
    else:  # glob marker: remove every match
        for p in truth.root.glob(adapter.markers[0]):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    out = tmp_path / "out"
    with pytest.raises(ConversionError) as ei:
        convert([sid], tmp_path / "raw", out, ConvertOptions(num_proc=1, progress=False))
    assert sid in str(ei.value)
    assert not all_parquet_files(out)
    assert not read_manifest(out)["sources"]


def test_unmapped_label_fails_loudly(tmp_path):
    """A native label missing from the taxonomy stops the conversion, naming source, file and label."""
    sid = "bccd"
    adapter = get_adapter(sid)
    truth = adapter.fake(tmp_path / "raw" / sid, seed=4)
    xml = next((truth.root / "Annotations").glob("*.xml"))
    xml.write_text(xml.read_text().replace("<name>WBC</name>", "<name>Megakaryocyte-ish</name>", 1))
    with pytest.raises(ConversionError) as ei:
        convert([sid], tmp_path / "raw", tmp_path / "out", ConvertOptions(num_proc=1, progress=False))
    msg = str(ei.value)
    assert "Megakaryocyte-ish" in msg and "bccd" in msg and xml.name in msg
    assert not all_parquet_files(tmp_path / "out")


def test_every_adapter_module_is_named_after_its_id_and_loads_alone():
    """``get_adapter(id)`` imports ``unihema_data/adapters/<id>.py`` alone (a conversion does not
    import the other adapters); that needs every adapter's module to carry its id."""
    import subprocess
    import sys

    from unihema_data.adapters import REGISTRY

    for sid in adapter_ids():
        assert REGISTRY[sid].__module__ == f"unihema_data.adapters.{sid}"
    code = ("import sys; from unihema_data.adapters import get_adapter; a = get_adapter('bccd'); "
            "mods = sorted(m for m in sys.modules if m.startswith('unihema_data.adapters.')); print(a.id, mods)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("bccd ") and "unihema_data.adapters.pbc'" not in out and "adapters.txl_pbc" not in out, out
    # the ids of the registry, for locate()'s "other sources' folders", from the module names alone
    code = ("import sys; from unihema_data.adapters import adapter_ids; ids = adapter_ids(load=False); "
            "print(ids); print(sorted(m for m in sys.modules if m.startswith('unihema_data.adapters.')))")
    ids, mods = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert ids == str(adapter_ids()), ids
    assert "pbc'" not in mods and "bccd'" not in mods, mods
