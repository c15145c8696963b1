"""FiftyOne browsing and the curation loop, against a real FiftyOne database (``mongod``).

Each test process gets its own FiftyOne home (config, database folder, dataset folder) under a
temporary folder, so parallel runs (pytest-xdist) never share ``~/.fiftyone``; FiftyOne's own
service wrapper stops ``mongod`` when the process exits. Skipped only when fiftyone cannot be
imported; a database that does not start is a failure."""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import shutil
import socket
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConvertOptions, convert
from unihema_data.corpus import corpus_shards, iter_row_groups, label_name
from unihema_data.masks import decode_rle, decode_semantic, encode_rle, rle_bbox
from unihema_data.outdir import all_parquet_files, read_manifest, staged_source
from unihema_data.schema import empty_row
from unihema_data.taxonomy import load_taxonomy
from unihema_data.validate import validate

HAVE_FO = importlib.util.find_spec("fiftyone") is not None
needs_fo = pytest.mark.skipif(not HAVE_FO, reason="fiftyone is not installed (pip install 'unihema[fiftyone]')")

SOURCES = ["bccd", "zheng2018_wbc", "pbc", "wbcatt", "leukemiaattri", "txl_pbc"]


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def fo(tmp_path_factory):
    """fiftyone imported with a private home; datasets created by the tests are deleted after."""
    if not HAVE_FO:
        pytest.skip("fiftyone is not installed (pip install 'unihema[fiftyone]')")
    base = tmp_path_factory.mktemp("fiftyone-home")
    os.environ.update({
        "FIFTYONE_DATABASE_DIR": str(base / "db"),
        "FIFTYONE_DEFAULT_DATASET_DIR": str(base / "datasets"),
        "FIFTYONE_CONFIG_PATH": str(base / "config.json"),
        "FIFTYONE_APP_CONFIG_PATH": str(base / "app_config.json"),
        "FIFTYONE_DO_NOT_TRACK": "true",
        "DO_NOT_TRACK": "1",
    })
    home = os.environ.get("HOME")
    os.environ["HOME"] = str(base)  # fiftyone.constants resolve ~/.fiftyone once, at import
    try:
        import fiftyone
    finally:
        if home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = home
    fiftyone.config.default_dataset_dir = str(base / "datasets")
    fiftyone.list_datasets()  # starts mongod: a failure here fails the tests
    yield fiftyone
    # only this process's datasets (``_name`` puts its pid in every name): FiftyOne finds a running
    # database service by its command line, not its folder, so the pytest-xdist workers share one
    # mongod, and deleting every new dataset here deleted another worker's datasets in mid-test
    for name in fiftyone.list_datasets():
        if name.startswith("t-") and f"-{os.getpid()}-" in name:
            fiftyone.delete_dataset(name)


def _add_points_and_masks(out: Path) -> None:
    """A source folder whose rows carry an instance mask (box from the mask), a point object and
    object attributes: no implemented adapter's fake has points."""
    tax = load_taxonomy()
    attr = "cell_size"
    value = sorted(tax.attributes[attr].values)[0]
    rng = np.random.default_rng(3)
    with staged_source(out, "synthpts") as st:
        for i in range(3):
            W, H = 64 + 8 * i, 48
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(buf, format="PNG")
            data = buf.getvalue()
            m = np.zeros((H, W), bool)
            m[10 + i:21, 5:17 + i] = True
            m[12, 4] = True
            rle = encode_rle(m)
            row = empty_row()
            row.update(sample_id=f"synthpts/img{i}.png", source="synthpts", split="train", group_id=f"img{i}",
                       license="unknown", image_sha256=hashlib.sha256(data).hexdigest(),
                       image={"bytes": data, "path": f"img{i}.png"}, width=W, height=H, granularity="field_of_view",
                       tasks=["detection", "segmentation", "attributes"], qc_flags=["synthetic:points"])
            row["objects"] = {"bbox": [rle_bbox(rle, H, W), [30.5, 20.25, 0.0, 0.0]],
                              "category": [tax.class_id("neutrophil"), tax.class_id("platelet")],
                              "source_category": ["N", "P"],
                              "bbox_source": ["from_mask", "from_point"], "mask_rle": [rle, ""],
                              "attributes": [[{"name": attr, "value": value}], []],
                              "point": [[], [30.5 + i, 20.25]]}
            st.add(row)
        st.finish()
        manifest = read_manifest(out)
        manifest["sources"]["synthpts"] = {"kind": "source", "license": "unknown", "fingerprint": "test",
                                           "counts": {k: n for k, n in st.counts().items() if n}}
        st.commit(manifest)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    base = tmp_path_factory.mktemp("fo-corpus")
    raw, out = base / "raw", base / "out"
    for sid in SOURCES:
        kw = {"pbc_out": raw / "pbc"} if sid == "wbcatt" else {}
        get_adapter(sid).fake(raw / sid, seed=1, **kw)
    convert(SOURCES, raw, out, ConvertOptions(num_proc=1, progress=False))
    _add_points_and_masks(out)
    assert validate(out).ok
    return out


@pytest.fixture
def work(corpus, tmp_path):
    """A private copy of the corpus (write-back tests change it)."""
    dst = tmp_path / "out"
    shutil.copytree(corpus, dst)
    return dst


def _rows(out: Path) -> dict[str, tuple[str, dict]]:
    """Rows by sample id, with ``label`` / ``objects.category`` as canonical names (stored as
    ClassLabel ids since schema 2.0.0; names keep these tests readable)."""
    return {r["sample_id"]: (sh.split, _named(r)) for sh, rows in iter_row_groups(corpus_shards(out)) for r in rows}


def _named(r: dict) -> dict:
    r["label"] = label_name(r["label"])
    r["objects"]["category"] = [label_name(c) for c in r["objects"]["category"]]
    return r


def _name(tag: str) -> str:
    return f"t-{tag}-{os.getpid()}-{time.monotonic_ns() % 10**9}"


# --------------------------------------------------------------------------------------- tests
@needs_fo
def test_load_matches_the_corpus(fo, corpus):
    from unihema_data.fiftyone_io import to_fiftyone

    ds, rep = to_fiftyone(corpus, _name("load"), batch_size=16)
    n_det, n_mask, n_kp, n_seg, n_attr = _check_matches(ds, corpus, rep)
    assert n_det > 30 and n_mask == 3 and n_kp == 3 and n_seg > 0 and n_attr > 0
    assert ds.count_sample_tags()["qc:synthetic"] == 3  # flags become filterable tags
    flat = ds.get_field_schema(flat=True)  # attributes are declared, so the App can filter on them
    assert "detections.detections.cell_size" in flat and "detections.detections.class_id" in flat
    assert any(k.startswith("attributes.") for k in flat)


@needs_fo
def test_rows_storing_class_ids_map_like_rows_storing_names(fo, corpus, tmp_path):
    """The schema may store ``label`` / ``objects.category`` as ClassLabel ids over
    ``class_names()``: the mapping must not depend on it."""
    import copy

    from unihema_data.fiftyone_io import MediaStore, mask_class_table, row_to_doc, row_to_sample

    tax = load_taxonomy()
    mask_ids = {c: i for i, c in enumerate(mask_class_table())}
    media = MediaStore(tmp_path)
    every = [r for _, r in _rows(corpus).values()]
    rows = [r for r in every if r["label"]][:6] + [r for r in every if r["objects"]["category"]][:6]
    assert any(r["label"] for r in rows) and any(r["objects"]["category"] for r in rows)
    for row in rows:
        as_ids = copy.deepcopy(row)
        as_ids["label"] = tax.class_id(row["label"]) if row["label"] else -1
        as_ids["objects"]["category"] = [tax.class_id(c) for c in row["objects"]["category"]]
        a = row_to_doc(row, row["split"], media, mask_ids, "d", None, None)
        b = row_to_doc(as_ids, row["split"], media, mask_ids, "d", None, None)
        assert _without_ids(a) == _without_ids(b)
        s = row_to_sample(fo, as_ids, row["split"], media, mask_ids, "d")
        assert (s["label"].label if s.has_field("label") else "") == row["label"]
        assert [d.label for d in (s["detections"].detections if s.has_field("detections") else [])] == [
            c for c, src in zip(row["objects"]["category"], row["objects"]["bbox_source"]) if src != "from_point"]


def _without_ids(x):
    if isinstance(x, dict):
        return {k: _without_ids(v) for k, v in x.items() if k not in ("_id", "_rand")}
    if isinstance(x, list):
        return [_without_ids(v) for v in x]
    return x


REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples"


@needs_fo
def test_real_samples_load_like_the_corpus(fo, tmp_path):
    """Real native samples (boxes, semantic masks, attributes) through convert and into FiftyOne."""
    present = [s for s in ("bccd", "zheng2018_wbc", "txl_pbc", "pbc") if (REAL / s).is_dir()]
    if not present:
        pytest.skip(f"no real samples under {REAL}")
    from unihema_data.fiftyone_io import to_fiftyone

    out, raw = tmp_path / "out", tmp_path / "raw"
    raw.mkdir()
    for sid in present:  # one folder per source, so no adapter sees another source's files
        (raw / sid).symlink_to(REAL / sid, target_is_directory=True)
    convert(present, raw, out, ConvertOptions(num_proc=1, progress=False))
    ds, rep = to_fiftyone(out, _name("real"), media_dir=tmp_path / "media")
    n_det, _, _, n_seg, _ = _check_matches(ds, out, rep)
    assert n_det > 0 or n_seg > 0


def _check_matches(ds, out, rep):
    """Every sample of ``ds`` against its corpus row; returns counts of what was compared."""
    from unihema_data.fiftyone_io import mask_class_table

    rows = _rows(out)
    assert len(ds) == rep.total == rep.added == len(rows)
    tax = load_taxonomy()
    assert ds.default_classes == list(tax.class_names())
    targets = ds.mask_targets["segmentation"]
    assert targets == dict(enumerate(mask_class_table())) and targets[0] == "background"
    n_det = n_mask = n_kp = n_seg = n_attr = 0
    for s in ds.iter_samples():
        split, row = rows[s.unihema_id]
        W, H = row["width"], row["height"]
        assert (s.source, s.split, s.source_split, s.subset, s.disease, s.magnification) == (
            row["source"], split, row["source_split"], row["subset"], row["disease"], row["magnification"])
        assert (s.prompt, s.question, s.answer, s.masked_text, s.target_text) == (
            row["prompt"], row["question"], row["answer"], row["masked_text"], row["target_text"])
        assert s.qc_flags == row["qc_flags"] and s.tasks == row["tasks"]
        assert {f"qc:{f.split(':')[0]}" for f in row["qc_flags"]} == set(s.tags)
        assert Path(s.filepath).read_bytes() == row["image"]["bytes"]
        assert (s.metadata.width, s.metadata.height) == (W, H)
        if row["label"]:
            assert s.label.label == label_name(row["label"]) and s.label.source_label == row["source_label"]
            assert s.label.class_id == tax.class_id(s.label.label)
        else:
            assert s.label is None
        if row["attributes"]:
            n_attr += 1
            assert {a["name"]: s.attributes[a["name"]] for a in row["attributes"]} == {
                a["name"]: a["value"] for a in row["attributes"]}
        objs = row["objects"]
        dets = {d.index: d for d in (s.detections.detections if s.detections else [])}
        kps = {k.index: k for k in (s.keypoints.keypoints if s.keypoints else [])}
        for i, cat in enumerate(objs["category"]):
            if objs["bbox_source"][i] != "from_point":
                d = dets.pop(i)
                n_det += 1
                x, y, w, h = d.bounding_box
                assert np.allclose([x * W, y * H, w * W, h * H], objs["bbox"][i], atol=1e-3)
                assert (d.label, d.class_id, d.source_category, d.bbox_source) == (
                    label_name(cat), tax.class_id(label_name(cat)), objs["source_category"][i], objs["bbox_source"][i])
                for a in objs["attributes"][i]:
                    assert d[a["name"]] == a["value"]
                if objs["mask_rle"][i]:  # the cropped mask pasted back at the box is the native mask
                    n_mask += 1
                    full = decode_rle(objs["mask_rle"][i], H, W)
                    bx, by, bw, bh = objs["bbox"][i]
                    x0, y0 = int(round(bx)), int(round(by))
                    assert d.mask.shape == (int(round(by + bh)) - y0, int(round(bx + bw)) - x0)
                    back = np.zeros((H, W), bool)
                    back[y0:y0 + d.mask.shape[0], x0:x0 + d.mask.shape[1]] = d.mask
                    assert np.array_equal(back, full)
            if objs["point"][i]:
                k = kps.pop(i)
                n_kp += 1
                (px, py), = k.points
                assert np.allclose([px * W, py * H], objs["point"][i], atol=1e-4) and k.label == label_name(cat)
        assert not dets and not kps
        sm = row["semantic_mask"]
        if sm:
            n_seg += 1
            native = np.asarray(row["mask_classes"])[decode_semantic(sm["bytes"])]
            shown = np.asarray([targets[i] for i in range(len(targets))])[s.segmentation.get_mask()]
            assert np.array_equal(native, shown)
        else:
            assert s.segmentation is None
    return n_det, n_mask, n_kp, n_seg, n_attr


@needs_fo
def test_bulk_documents_read_back_like_fiftyone_samples(fo, corpus, tmp_path):
    """The fast path writes FiftyOne's document layout itself: FiftyOne must read it back exactly
    as it reads samples added through its own API."""
    from unihema_data.fiftyone_io import to_fiftyone

    srcs = ["synthpts", "zheng2018_wbc", "leukemiaattri", "wbcatt"]
    a, _ = to_fiftyone(corpus, _name("bulk"), sources=srcs, engine="bulk", media_dir=tmp_path)
    b, _ = to_fiftyone(corpus, _name("samples"), sources=srcs, engine="samples", media_dir=tmp_path)
    skip = {"id", "created_at", "last_modified_at"}
    schema_a = {k: str(v) for k, v in a.get_field_schema(flat=True).items() if k not in skip and not k.endswith(".id")}
    schema_b = {k: str(v) for k, v in b.get_field_schema(flat=True).items() if k not in skip and not k.endswith(".id")}
    assert schema_a == schema_b
    assert a.media_type == b.media_type == "image"

    def dump(ds):
        res = {}
        for s in ds.iter_samples():
            d = s.to_dict()
            for k in ("_id", "created_at", "last_modified_at", "_rand", "_dataset_id", "_media_type"):
                d.pop(k, None)
            for f in ("label", "segmentation"):
                if d.get(f):
                    d[f].pop("_id")
            for f, key in (("detections", "detections"), ("keypoints", "keypoints")):
                for lab in (d.get(f) or {}).get(key, []):
                    lab.pop("_id")
            res[s.unihema_id] = d
        return res

    da, db = dump(a), dump(b)
    assert da == db and len(da) == len(a) > 10
    assert a.count("detections.detections.mask") == 3 and a.count("keypoints.keypoints") == 3


@needs_fo
def test_reload_is_incremental_and_media_written_once(fo, work):
    from unihema_data.fiftyone_io import to_fiftyone

    name = _name("reload")
    ds, rep = to_fiftyone(work, name, sources=["pbc", "txl_pbc", "synthpts"])
    media = Path(rep.media_dir)
    files = sorted(p for p in media.rglob("*") if p.is_file())
    n = len(ds)
    assert rep.added == n and len(files) == rep.media_written > 0
    assert not [p for p in files if p.name.startswith(".")]  # no temporary leftovers
    # unchanged corpus: recognised without reading a row, nothing added, no file written
    t0 = time.perf_counter()
    ds, rep2 = to_fiftyone(work, name, sources=["pbc", "txl_pbc", "synthpts"])
    assert rep2.up_to_date and len(ds) == n and time.perf_counter() - t0 < 5
    assert sorted(p for p in media.rglob("*") if p.is_file()) == files
    # a tag added by the curator survives a reload of a changed corpus
    first = ds.match({"source": "pbc"}).first()
    first.tags.append("look_again")
    first.save()
    # changed corpus: pbc re-split with another seed, txl_pbc shrunk
    raw = work.parent / "raw2"
    get_adapter("pbc").fake(raw / "pbc", seed=1)
    get_adapter("txl_pbc").fake(raw / "txl_pbc", seed=1)
    convert(["pbc"], raw, work, ConvertOptions(num_proc=1, progress=False, seed=9, overwrite=True))
    convert(["txl_pbc"], raw, work, ConvertOptions(num_proc=1, progress=False, max_samples=4, overwrite=True))
    ds, rep3 = to_fiftyone(work, name, sources=["pbc", "txl_pbc", "synthpts"])
    rows = _rows(work)
    want = {k: v[0] for k, v in rows.items() if v[1]["source"] in ("pbc", "txl_pbc", "synthpts")}
    got = dict(zip(*ds.values(["unihema_id", "split"])))
    assert got == want
    assert rep3.updated > 0 and rep3.deleted > 0 and rep3.unchanged >= 3 and rep3.added == 0
    assert rep3.shards_skipped == 1  # synthpts' shard is unchanged: its rows were not read again
    assert "look_again" in ds.match({"unihema_id": first.unihema_id}).first().tags
    assert len({p.name for p in media.rglob("*") if p.is_file()}) == len(list(media.rglob("*.*")))


@needs_fo
def test_write_back_loop(fo, work):
    from unihema_data.curation import curation_batches, read_changes, undo_curation
    from unihema_data.fiftyone_io import from_fiftyone, to_fiftyone

    name = _name("curate")
    ds, _ = to_fiftyone(work, name)
    before = _rows(work)
    # 1. relabel an image, relabel an object, tag one sample mislabeled and exclude another
    cls = ds.match({"source": "pbc", "label": {"$ne": None}}).first()
    old_label = cls.label.label
    new_label = "eosinophil" if old_label != "eosinophil" else "basophil"
    cls.label.label = new_label
    cls.tags.append("mislabeled")
    cls.save()
    det_s = ds.match({"source": "bccd"}).first()
    det = det_s.detections.detections[0]
    old_cat, idx = det.label, det.index
    det.label = "platelet" if old_cat != "platelet" else "rbc"
    dets = det_s.detections.detections
    assert len(dets) >= 3
    dets[1].bounding_box = [dets[1].bounding_box[0] + 5 / det_s.metadata.width, *dets[1].bounding_box[1:]]
    dets.pop()  # deleting an object is reported, not written back
    det_s.save()
    ex = ds.match({"source": "txl_pbc"}).first()
    ex_id, ex_split = ex.unihema_id, ex.split
    ex.tags.append("exclude")
    ex.save()

    rep = from_fiftyone(name, work)
    assert rep.moved_boxes_ignored == 1 and rep.deleted_objects_ignored == 1 and rep.new_objects_ignored == 0
    assert "boxes moved" in rep.summary() and "objects deleted" in rep.summary()
    assert {c["field"] for c in rep.changes} == {"label", f"objects.category[{idx}]", "tags", "split"}
    assert validate(work).ok
    after = _rows(work)
    split, row = after[cls.unihema_id]
    assert label_name(row["label"]) == new_label and row["source_label"] == before[cls.unihema_id][1]["source_label"]
    assert f"relabeled:{old_label}" in row["qc_flags"] and "tag:mislabeled" in row["qc_flags"]
    drow = after[det_s.unihema_id][1]
    assert label_name(drow["objects"]["category"][idx]) == det.label
    assert f"relabeled_object:{idx}:{old_cat}" in drow["qc_flags"]
    split, xrow = after[ex_id]
    assert split == "excluded" and xrow["split"] == ex_split and "excluded" in xrow["qc_flags"]
    in_data = {r["sample_id"] for f in all_parquet_files(work) for r in pq.read_table(f, columns=["sample_id"]).to_pylist()}
    assert ex_id not in in_data and cls.unihema_id in in_data
    assert (work / ".unihema" / "excluded" / "txl_pbc.parquet").exists()
    log = read_changes(work)
    assert {(c["sample_id"], c["field"], c["old"], c["new"]) for c in log} == {
        (cls.unihema_id, "label", old_label, new_label), (cls.unihema_id, "tags", None, "mislabeled"),
        (det_s.unihema_id, f"objects.category[{idx}]", old_cat, det.label), (ex_id, "split", ex_split, "excluded")}
    assert all(c["actor"] == f"fiftyone:{name}" and c["batch"] == rep.batch for c in log)
    manifest = json.loads((work / ".unihema" / "manifest.json").read_text())
    assert sum(manifest["sources"]["txl_pbc"]["counts"].values()) == sum(
        1 for s, r in after.values() if r["source"] == "txl_pbc" and s != "excluded")
    # the FiftyOne dataset was refreshed from OUT: the excluded sample is still shown, tagged
    ds.reload()
    shown = ds.match({"unihema_id": ex_id}).first()
    assert shown.split == "excluded" and "exclude" in shown.tags
    assert "qc:relabeled" in ds.match({"unihema_id": cls.unihema_id}).first().tags
    # writing back again changes nothing
    assert not from_fiftyone(name, work).changes
    # 2. un-exclude: the row goes back to its split
    shown.tags.remove("exclude")
    shown.save()
    rep2 = from_fiftyone(name, work)
    assert [(c["field"], c["old"], c["new"]) for c in rep2.changes] == [("split", "excluded", ex_split)]
    assert _rows(work)[ex_id][0] == ex_split and not (work / ".unihema" / "excluded" / "txl_pbc.parquet").exists()
    assert validate(work).ok
    # 3. the previous state is recoverable: undo the last batch -> excluded again
    assert curation_batches(work) == sorted([rep.batch, rep2.batch])
    assert undo_curation(work) == rep2.batch
    assert _rows(work)[ex_id][0] == "excluded" and validate(work).ok
    assert undo_curation(work) == rep.batch
    restored = _rows(work)
    assert {k: (s, r["qc_flags"], r["label"]) for k, (s, r) in restored.items()} == {
        k: (s, r["qc_flags"], r["label"]) for k, (s, r) in before.items()}
    assert read_changes(work)[-1]["field"] == "undo"


@needs_fo
def test_write_back_refuses_bad_labels_and_leaves_out_unchanged(fo, work):
    from unihema_data.curation import CurationError
    from unihema_data.fiftyone_io import from_fiftyone, to_fiftyone

    name = _name("bad")
    ds, _ = to_fiftyone(work, name, sources=["pbc"])
    s = ds.first()
    s.label.label = "not_a_cell_type"
    s.save()
    snapshot = {p: p.read_bytes() for p in work.rglob("*.parquet")}
    with pytest.raises(CurationError, match=r"not_a_cell_type.*not a canonical taxonomy label"):
        from_fiftyone(name, work)
    assert {p: p.read_bytes() for p in work.rglob("*.parquet")} == snapshot
    assert not (work / ".unihema" / "changes.jsonl").exists()


@needs_fo
def test_app_serves_the_dataset_and_shuts_down(fo, corpus):
    from unihema_data.fiftyone_io import free_port, launch_app, to_fiftyone

    name = _name("app")
    ds, _ = to_fiftyone(corpus, name, sources=["bccd"])
    port = free_port()
    session = launch_app(ds, port=port)
    try:
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/fiftyone", timeout=30) as r:
            assert json.load(r)["version"] == fo.__version__
        with urllib.request.urlopen(base + "/", timeout=30) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
        q = {"query": 'query { dataset(name: "%s") { name estimatedSampleCount sampleFields { path } } }' % name}
        req = urllib.request.Request(base + "/graphql", data=json.dumps(q).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            got = json.load(r)["data"]["dataset"]
        assert got["name"] == name and got["estimatedSampleCount"] == len(ds)
        assert {"detections", "unihema_id", "label"} <= {f["path"] for f in got["sampleFields"]}
        fp = ds.first().filepath
        with urllib.request.urlopen(f"{base}/media?filepath={urllib.parse.quote(fp)}", timeout=30) as r:
            assert r.read() == Path(fp).read_bytes()
    finally:
        session.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                break
        time.sleep(0.2)
    else:
        pytest.fail(f"the App still listens on port {port} after session.close()")


@needs_fo
def test_cli_to_and_from_fiftyone(fo, work):
    from typer.testing import CliRunner

    from unihema_data.cli import app

    runner = CliRunner()
    name = _name("cli")
    r = runner.invoke(app, ["to-fiftyone", str(work), "--name", name, "--source", "bccd", "--split", "train"])
    assert r.exit_code == 0, r.output
    assert "added 4" in r.output
    ds = fo.load_dataset(name)
    assert set(ds.distinct("split")) == {"train"} and set(ds.distinct("source")) == {"bccd"}
    r = runner.invoke(app, ["to-fiftyone", str(work), "--name", name, "--source", "bccd", "--split", "train"])
    assert r.exit_code == 0 and "up to date" in r.output
    r = runner.invoke(app, ["from-fiftyone", name, "--into", str(work)])
    assert r.exit_code == 0 and "no changes" in r.output
    s = ds.first()
    s.tags.append("look_again")
    s.save()
    before = {p: p.read_bytes() for p in work.glob("data/*/*.parquet")}
    r = runner.invoke(app, ["from-fiftyone", name, "--into", str(work), "--dry-run"])
    assert r.exit_code == 0 and "dry run, nothing written: would write 1 changes" in r.output, r.output
    assert "look_again" in r.output and s.unihema_id in r.output
    assert {p: p.read_bytes() for p in work.glob("data/*/*.parquet")} == before
    assert not (work / ".unihema" / "history").exists()
    r = runner.invoke(app, ["from-fiftyone", name, "--into", str(work)])
    assert r.exit_code == 0 and "1 tag changes" in r.output and "undo-curation" in r.output, r.output
    r = runner.invoke(app, ["undo-curation", str(work)])
    assert r.exit_code == 0 and {p: p.read_bytes() for p in work.glob("data/*/*.parquet")} == before
    r = runner.invoke(app, ["from-fiftyone", "no-such-dataset", "--into", str(work)])
    assert r.exit_code == 1 and "no FiftyOne dataset named 'no-such-dataset'" in r.output
    r = runner.invoke(app, ["to-fiftyone", str(work / "nope"), "--name", name])
    assert r.exit_code == 1 and "not a converted UniHema folder" in r.output
    r = runner.invoke(app, ["to-fiftyone", str(work.parent), "--name", name])
    assert r.exit_code == 1


def test_missing_fiftyone_gives_the_install_command(monkeypatch, tmp_path):
    import sys

    from typer.testing import CliRunner

    from unihema_data.cli import app
    from unihema_data.fiftyone_io import FiftyOneError, require_fiftyone

    monkeypatch.setitem(sys.modules, "fiftyone", None)  # import fiftyone -> ImportError
    with pytest.raises(FiftyOneError, match=r"pip install 'unihema\[fiftyone\]'"):
        require_fiftyone()
    r = CliRunner().invoke(app, ["from-fiftyone", "x", "--into", str(tmp_path)])
    assert r.exit_code == 1
