"""Corpus integrity (issue 17): one split policy over OUT independent of conversion order,
duplicate groups, label conflicts, the lock, the commit window, ClassLabel ids."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest

from unihema_data import integrity
from unihema_data.adapters import get_adapter
from unihema_data.adapters.base import RawSample
from unihema_data.boxes import BoxFormat, native_degenerate
from unihema_data.convert import ConvertOptions, convert
from unihema_data.outdir import JOURNAL, all_parquet_files, read_manifest, staged_source
from unihema_data.rows import SourceContext, build_row
from unihema_data.schema import CLASS_NAMES, empty_row, label_name
from unihema_data.splits import normalize_split
from unihema_data.stats import compute_stats
from unihema_data.taxonomy import load_taxonomy
from unihema_data.validate import validate

OPTS = dict(num_proc=1, progress=False)
REPO = Path(__file__).resolve().parents[1]


def all_rows(out: Path, columns=None) -> dict[str, dict]:
    rows = {}
    for f in all_parquet_files(out):
        for r in pq.read_table(f, columns=columns).to_pylist():
            r["_shard_split"] = f.name.split("-", 1)[0]
            rows[r["sample_id"]] = r
    return rows


def assert_no_leak(out: Path) -> None:
    """No image hash in two splits anywhere in OUT, and every row in the shard of its split."""
    split_of: dict[str, str] = {}
    for r in all_rows(out, ["sample_id", "split", "image_sha256"]).values():
        assert r["split"] == r["_shard_split"]
        assert split_of.setdefault(r["image_sha256"], r["split"]) == r["split"], r["sample_id"]


def _raw_with_conflicting_wbcatt(raw: Path) -> None:
    """pbc + wbcatt fakes sharing images, plus the real WBCAtt quirk: EO_225902.jpg (Eosinophil,
    test) and BNE_191112.jpg (Neutrophil, val) are one image (the pbc fake writes that pair)."""
    get_adapter("pbc").fake(raw / "pbc", seed=1)
    truth = get_adapter("wbcatt").fake(raw / "wbcatt", seed=1, pbc_out=raw / "pbc")
    sub = truth.root
    line = (sub / "pbc_attr_v1_train.csv").read_text(encoding="utf-8").splitlines()[1].split(",")
    attrs = line[2:-1]
    for split, name, label, folder in (("test", "EO_225902.jpg", "Eosinophil", "eosinophil"),
                                       ("val", "BNE_191112.jpg", "Neutrophil", "neutrophil")):
        p = sub / f"pbc_attr_v1_{split}.csv"
        text = p.read_text(encoding="utf-8").rstrip("\n")
        p.write_text(text + "\n" + ",".join([name, label, *attrs, f"PBC_dataset_normal_DIB/{folder}/{name}"]) + "\n",
                     encoding="utf-8")


@pytest.fixture(scope="module")
def two_orders(tmp_path_factory):
    base = tmp_path_factory.mktemp("orders")
    raw = base / "raw"
    _raw_with_conflicting_wbcatt(raw)
    convert(["pbc", "wbcatt"], raw, base / "ab", ConvertOptions(**OPTS))
    convert(["wbcatt", "pbc"], raw, base / "ba", ConvertOptions(**OPTS))
    return base


def test_either_order_gives_identical_rows_and_splits(two_orders):
    ab, ba = all_rows(two_orders / "ab"), all_rows(two_orders / "ba")
    assert ab.keys() == ba.keys() and len(ab) == (14 + 8) + (8 + 2)  # pbc holds the WBCAtt images too
    for sid in ab:
        assert ab[sid] == ba[sid], sid
    for out in (two_orders / "ab", two_orders / "ba"):
        assert_no_leak(out)
        rep = validate(out)
        assert rep.ok, rep.summary()


def test_published_splits_kept_except_conflicting_groups(two_orders):
    rows = all_rows(two_orders / "ab", ["sample_id", "source", "split", "source_split", "qc_flags", "label"])
    wb = {k: r for k, r in rows.items() if r["source"] == "wbcatt"}
    eo = "wbcatt/PBC_dataset_normal_DIB/eosinophil/EO_225902.jpg"
    bne = "wbcatt/PBC_dataset_normal_DIB/neutrophil/BNE_191112.jpg"
    for sid, r in wb.items():
        if sid == bne:  # official val, but the same image is officially test: the stronger split wins
            assert r["split"] == "test" and r["source_split"] == "val"
            assert f"split_moved:validation->test:duplicate:{eo}" in r["qc_flags"]
        else:
            assert r["split"] == normalize_split(r["source_split"]), sid
            assert not any(f.startswith("split_moved:") for f in r["qc_flags"])
    # every PBC copy of a WBCAtt image follows the published split, flagged as the duplicate
    for sid, r in rows.items():
        if r["source"] != "pbc":
            continue
        twin = "wbcatt/PBC_dataset_normal_DIB/" + sid.split("/", 1)[1]
        if twin in wb:
            assert r["split"] == wb[twin]["split"]
            assert any(f.startswith("duplicate_of:wbcatt/") for f in r["qc_flags"])


def test_label_conflict_names_the_other_row_and_its_label(two_orders):
    rows = all_rows(two_orders / "ab", ["sample_id", "qc_flags", "label"])
    eo_pbc, bne_pbc = "pbc/eosinophil/EO_225902.jpg", "pbc/neutrophil/BNE_191112.jpg"
    eo_wb = "wbcatt/PBC_dataset_normal_DIB/eosinophil/EO_225902.jpg"
    bne_wb = "wbcatt/PBC_dataset_normal_DIB/neutrophil/BNE_191112.jpg"
    assert label_name(rows[bne_wb]["label"]) == "neutrophil_band"  # refined from the prefix, as PBC's
    conflicts = lambda sid: sorted(f for f in rows[sid]["qc_flags"] if f.startswith("label_conflict:"))  # noqa: E731
    assert conflicts(eo_pbc) == [f"label_conflict:{bne_pbc}:neutrophil_band", f"label_conflict:{bne_wb}:neutrophil_band"]
    assert conflicts(bne_wb) == [f"label_conflict:{eo_pbc}:eosinophil", f"label_conflict:{eo_wb}:eosinophil"]
    # same image, same label: no conflict between the pbc and wbcatt copies of one file
    other = [s for s in rows if s.startswith("wbcatt/") and s not in (eo_wb, bne_wb)]
    assert other and not any(conflicts(s) for s in other)


def test_stats_report_moved_rows_per_source_and_why(two_orders):
    st = compute_stats(two_orders / "ab").as_dict()
    assert st["moved"]["wbcatt"] == {"validation->test (duplicate of wbcatt)": 1}
    assert sum(st["moved"]["pbc"].values()) >= 1 and all("duplicate" in k for k in st["moved"]["pbc"])
    manifest = read_manifest(two_orders / "ab")
    assert manifest["sources"]["wbcatt"]["moved"] == {"validation->test (duplicate)": 1}


def test_reconverting_either_source_changes_nothing(two_orders, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(two_orders / "ab", out)
    before = all_rows(out)
    raw = two_orders / "raw"
    for sid in ("pbc", "wbcatt"):
        rep = convert([sid], raw, out, ConvertOptions(overwrite=True, seed=0, **OPTS))[0]
        assert rep.status == "converted"
        assert all_rows(out) == before
    assert not list((out / ".unihema" / "staging").iterdir())


def test_classlabel_ids_identical_across_corpora(two_orders, tmp_path):
    raw = tmp_path / "raw"
    get_adapter("bccd").fake(raw / "bccd", seed=2)
    convert(["bccd"], raw, tmp_path / "bccd_out", ConvertOptions(**OPTS))
    a = datasets.load_dataset(str(two_orders / "ab"), "all", split="train")
    b = datasets.load_dataset(str(tmp_path / "bccd_out"), "all", split="train")
    for ds in (a, b):
        assert isinstance(ds.features["label"], datasets.ClassLabel)
        assert ds.features["label"].names == list(CLASS_NAMES)
        cat = ds.features["objects"]["category"]
        inner = getattr(cat, "feature", None) or cat[0]
        assert isinstance(inner, datasets.ClassLabel) and inner.names == list(CLASS_NAMES)
    tax = load_taxonomy()
    r = a[0]
    assert r["label"] == tax.class_id(CLASS_NAMES[r["label"]])
    assert r["label_group"] == tax.labels[CLASS_NAMES[r["label"]]].group
    assert all(isinstance(c, int) for row in b for c in row["objects"]["category"])
    assert {b.features["label"].int2str(c) for row in b for c in row["objects"]["category"]} <= {"wbc", "rbc", "platelet"}
    # stratified splitting works on a ClassLabel column
    a.train_test_split(test_size=0.5, stratify_by_column="label", seed=0) if len(set(a["label"])) * 2 <= len(a) else None


# ---------------------------------------------------------------- crafted rows: boxes and masks
def _write(folder_out: Path, source: str, rows: list[dict]) -> Path:
    with staged_source(folder_out, source) as st:
        for r in rows:
            st.add(r)
        st.finish()
        keep = folder_out / f"keep-{source}"
        os.replace(st.folder, keep)
    return keep


def _row(source: str, name: str, sha: str, *, label: int = -1, boxes=None, rle=None, split="train",
         source_split="") -> dict:
    r = empty_row()
    r.update(sample_id=f"{source}/{name}", source=source, split=split, source_split=source_split,
             image_sha256=sha, image={"bytes": b"x", "path": name}, width=10, height=10, label=label)
    tasks = []
    if label >= 0:
        tasks.append("classification")
    for i, b in enumerate(boxes or []):
        r["objects"]["bbox"].append(list(b))
        r["objects"]["category"].append(CLASS_NAMES.index("wbc"))
        r["objects"]["source_category"].append("WBC")
        r["objects"]["bbox_source"].append("annotated")
        r["objects"]["mask_rle"].append(rle[i] if rle else "")
        r["objects"]["attributes"].append([])
        r["objects"]["point"].append([])
    if boxes is not None:
        tasks.append("detection")
    if rle:
        tasks.append("segmentation")
    r["tasks"] = tasks
    return r


def test_conflicts_on_boxes_and_masks_only_between_comparable_rows(tmp_path):
    from unihema_data.masks import encode_rle

    m1 = np.zeros((10, 10), bool)
    m1[2:5, 2:5] = True
    m2 = np.zeros((10, 10), bool)
    m2[2:6, 2:5] = True
    a = _write(tmp_path, "a", [
        _row("a", "box.png", "1" * 64, boxes=[[1, 1, 3, 3]]),
        _row("a", "same.png", "2" * 64, boxes=[[1, 1, 3, 3]]),
        _row("a", "mask.png", "3" * 64, boxes=[[2, 2, 3, 3]], rle=[encode_rle(m1)]),
        _row("a", "cls.png", "4" * 64, boxes=[[1, 1, 3, 3]], split="test"),
    ])
    b = _write(tmp_path, "b", [
        _row("b", "box.png", "1" * 64, boxes=[[1, 1, 5, 3]]),          # box 2 px wider: conflict
        _row("b", "same.png", "2" * 64, boxes=[[1.2, 1, 3, 3]]),       # within 0.5 px: same
        _row("b", "mask.png", "3" * 64, boxes=[[2, 2, 3, 3]], rle=[encode_rle(m2)]),
        _row("b", "cls.png", "4" * 64, label=CLASS_NAMES.index("monocyte")),  # classification only
    ])
    plan = integrity.resolve({"a": a, "b": b}, {}, near_duplicates=False)
    flags = {sid: f for u in plan.updates.values() for sid, (_s, f) in u.items()}
    assert "label_conflict:b/box.png:boxes" in flags["a/box.png"]
    assert "label_conflict:a/box.png:boxes" in flags["b/box.png"]
    assert "label_conflict:b/mask.png:mask" in flags["a/mask.png"]
    assert not any(f.startswith("label_conflict") for f in flags.get("a/same.png", []) + flags.get("b/same.png", []))
    assert not any(f.startswith("label_conflict") for f in flags.get("a/cls.png", []) + flags.get("b/cls.png", []))
    # generated splits only: the strongest (test) wins, independent of which source comes first
    assert plan.updates["b"]["b/cls.png"][0] == "test"
    plan2 = integrity.resolve({"b": b, "a": a}, {}, near_duplicates=False)
    assert plan2.updates == plan.updates


# ---------------------------------------------------------------- commit window and lock
KILL_AFTER_SWAP = textwrap.dedent(
    """
    import os, signal, sys
    import unihema_data.outdir as od
    real = od._finish
    def die(out, journal, old):
        os.kill(os.getpid(), signal.SIGKILL)  # data swapped in, manifest not yet written
    od._finish = die
    from unihema_data.convert import ConvertOptions, convert
    convert(["wbcatt"], sys.argv[1], sys.argv[2], ConvertOptions(num_proc=1, progress=False))
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_kill_between_data_swap_and_manifest_is_detected_and_finished(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    _raw_with_conflicting_wbcatt(raw)
    convert(["pbc"], raw, out, ConvertOptions(**OPTS))
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_SWAP, str(raw), str(out)], cwd=REPO, timeout=300)
    assert proc.returncode == -9
    assert (out / JOURNAL).exists() and "wbcatt" not in read_manifest(out)["sources"]
    assert (out / "data" / "wbcatt").is_dir()  # new shards under the old manifest...
    rep = validate(out)
    assert not rep.ok and "interrupted commit" in rep.summary()  # ...are not accepted
    # the next writer finishes the commit under the lock: the manifest now describes the data
    again = convert(["wbcatt"], raw, out, ConvertOptions(**OPTS))[0]
    assert again.status == "up_to_date"
    assert not (out / JOURNAL).exists()
    manifest = read_manifest(out)
    assert manifest["sources"]["wbcatt"]["counts"] == {
        s: n for s, n in ((s, len(list(pq.read_table(f).to_pylist()))) for s, f in
                          ((f.name.split("-")[0], f) for f in (out / "data" / "wbcatt").glob("*.parquet")))}
    assert validate(out).ok
    clean = tmp_path / "clean"
    convert(["pbc", "wbcatt"], raw, clean, ConvertOptions(**OPTS))
    assert all_rows(out) == all_rows(clean)


CONVERT_ONE = textwrap.dedent(
    """
    import sys, time
    from unihema_data.convert import ConvertOptions, convert
    go = float(sys.argv[4])
    while time.time() < go:
        time.sleep(0.005)
    convert([sys.argv[3]], sys.argv[1], sys.argv[2], ConvertOptions(num_proc=1, progress=False))
    """
)


def test_two_converts_started_at_once_are_serialised(tmp_path):
    import time

    raw, out = tmp_path / "raw", tmp_path / "out"
    _raw_with_conflicting_wbcatt(raw)
    go = time.time() + 8  # both processes import first, then start converting at the same instant
    procs = [subprocess.Popen([sys.executable, "-c", CONVERT_ONE, str(raw), str(out), sid, str(go)], cwd=REPO)
             for sid in ("pbc", "wbcatt")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    assert_no_leak(out)
    assert set(read_manifest(out)["sources"]) == {"pbc", "wbcatt"}
    clean = tmp_path / "clean"
    convert(["wbcatt", "pbc"], raw, clean, ConvertOptions(**OPTS))
    assert all_rows(out) == all_rows(clean)
    assert validate(out).ok


# ---------------------------------------------------------------- degenerate native boxes
def test_degenerate_native_box_is_flagged(tmp_path):
    assert native_degenerate([10, 5, 10, 9], BoxFormat.VOC) and not native_degenerate([10, 5, 11, 9], BoxFormat.VOC)
    assert native_degenerate([0.5, 0.5, 0.0, 0.1], BoxFormat.YOLO)
    from unihema_data.adapters import _synthetic as syn
    from unihema_data.adapters.base import RawObject

    img = tmp_path / "a.png"
    img.write_bytes(syn.encode(syn.single_cell(40, "wbc", 1), "PNG"))
    ctx = SourceContext(source="bccd", license="MIT", granularity="field_of_view", disease="",
                        box_format="voc", adapter_tasks=("detection",))
    s = RawSample(rel_path="a.png", image_path=img, objects=[RawObject(category="WBC", bbox=(5, 5, 5, 9)),
                                                             RawObject(category="WBC", bbox=(5, 5, 8, 9))])
    row = build_row(s, ctx)
    assert row["objects"]["bbox"][0] == [4.0, 4.0, 1.0, 5.0]  # kept: 1 px wide in the inclusive convention
    assert "degenerate_native_box:0:5,5,5,9" in row["qc_flags"]
    assert not any(f.startswith("degenerate_native_box:1") for f in row["qc_flags"])
    assert row["label"] == -1 and row["objects"]["category"] == [CLASS_NAMES.index("wbc")] * 2


def test_base_split_comes_back_from_the_flag():
    assert integrity.base_split("test", ["x", "split_moved:train->test:duplicate:a/b"]) == "train"
    assert integrity.base_split("test", ["split_moved:validation->test"]) == "validation"  # old text-set form
    assert integrity.base_split("train", []) == "train"
    assert hashlib  # noqa: B018


def test_schema_1_folder_is_refused_with_a_migration_hint(tmp_path):
    import json

    from unihema_data.convert import ConversionError
    from unihema_data.outdir import MANIFEST

    raw, out = tmp_path / "raw", tmp_path / "out"
    get_adapter("pbc").fake(raw / "pbc", seed=1)
    (out / MANIFEST).parent.mkdir(parents=True)
    (out / MANIFEST).write_text(json.dumps({"schema_version": "1.0.0", "sources": {"bccd": {"kind": "source"}}}))
    with pytest.raises(ConversionError, match=r"bccd written with schema 1\.0\.0.*Migrating from schema 1"):
        convert(["pbc"], raw, out, ConvertOptions(**OPTS))
    assert not (out / "data").exists()


def test_cli_convert_and_stats_show_moved_rows(two_orders, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from unihema_data.cli import app

    out = tmp_path / "out"
    shutil.copytree(two_orders / "ab", out)
    r = CliRunner().invoke(app, ["stats", str(out)])
    assert r.exit_code == 0, r.output
    assert "rows moved by the split policy" in r.output and "validation->test (duplicate of wbcatt)" in r.output
    r = CliRunner().invoke(app, ["convert", "wbcatt", "--raw-dir", str(two_orders / "raw"), "--out", str(out),
                                 "--overwrite", "--num-proc", "1"])
    assert r.exit_code == 0, r.output
    assert "moved in wbcatt: validation->test (duplicate): 1" in r.output


def test_card_states_the_policy_and_moved_rows(two_orders):
    text = (two_orders / "ab" / "README.md").read_text(encoding="utf-8")
    assert "## Splits and de-duplication" in text and "published test > validation > train" in text
    # the per-source table says what the conversion changed, moved rows included
    assert "moved by the split policy: validation->test (duplicate): 1" in text


REAL_BCCD = Path(__file__).resolve().parents[2] / "shared" / "real-samples" / "bccd"


@pytest.mark.skipif(not (REAL_BCCD / "BCCD").is_dir(), reason="real BCCD sample absent")
def test_real_bccd_degenerate_boxes_are_flagged(tmp_path):
    import xml.etree.ElementTree as ET

    out = tmp_path / "out"
    convert(["bccd"], REAL_BCCD.parent, out, ConvertOptions(**OPTS))
    rows = all_rows(out, ["sample_id", "qc_flags", "objects"])
    flagged = {sid: [f for f in r["qc_flags"] if f.startswith("degenerate_native_box:")] for sid, r in rows.items()}
    for name in ("BloodImage_00338", "BloodImage_00343"):
        sid = f"bccd/JPEGImages/{name}.jpg"
        root = ET.parse(REAL_BCCD / "BCCD" / "Annotations" / f"{name}.xml").getroot()
        want = []
        for i, ob in enumerate(root.iter("object")):
            bb = ob.find("bndbox")
            x1, y1, x2, y2 = (float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            if x1 == x2 or y1 == y2:
                want.append(f"degenerate_native_box:{i}:{x1:g},{y1:g},{x2:g},{y2:g}")
                assert rows[sid]["objects"]["bbox"][i][2:] == [1.0, 1.0] or x1 != x2  # kept, 1 px in VOC
        assert want and flagged[sid] == want, (sid, flagged[sid])
    assert sum(bool(v) for v in flagged.values()) == 2  # no other sample image has one


def test_semantic_mask_conflicts_compare_class_maps_not_encodings(tmp_path):
    from unihema_data.masks import encode_semantic

    m = np.zeros((10, 10), np.uint8)
    m[2:6, 2:6] = 1

    def seg(source, name, idx, classes):
        r = _row(source, name, "9" * 64)
        r["tasks"] = ["segmentation"]
        r["semantic_mask"] = {"bytes": encode_semantic(idx), "path": "mask.png"}
        r["mask_classes"] = classes
        return r

    a = _write(tmp_path, "a", [seg("a", "x.png", m, ["background", "wbc_cytoplasm"])])
    # same pixels, classes numbered the other way round: the same mask
    b = _write(tmp_path, "b", [seg("b", "x.png", 1 - m, ["wbc_cytoplasm", "background"])])
    m2 = m.copy()
    m2[7, 7] = 1
    c = _write(tmp_path, "c", [seg("c", "x.png", m2, ["background", "wbc_cytoplasm"])])
    plan = integrity.resolve({"a": a, "b": b, "c": c}, {}, near_duplicates=False)
    flags = {sid: f for u in plan.updates.values() for sid, (_s, f) in u.items()}
    assert "label_conflict:c/x.png:mask" in flags["a/x.png"] and "label_conflict:c/x.png:mask" in flags["b/x.png"]
    assert not any(f.startswith("label_conflict:b/") for f in flags["a/x.png"])


REAL_ZHENG = Path(__file__).resolve().parents[2] / "shared" / "real-samples" / "zheng2018_wbc"


@pytest.mark.skipif(not (REAL_ZHENG / "Dataset 1").is_dir(), reason="real Zheng sample absent")
def test_real_zheng_identical_images_with_different_masks_conflict(tmp_path):
    """The real quirk (Dataset 1: 139.bmp == 112.bmp, masks differ), reproduced on the sample:
    002.bmp gets 001.bmp's bytes, each keeps its own real mask and CSV label."""
    import csv as _csv
    import shutil

    raw = tmp_path / "raw" / "zheng2018_wbc"
    shutil.copytree(REAL_ZHENG, raw)
    d1 = raw / "Dataset 1"
    (d1 / "002.bmp").write_bytes((d1 / "001.bmp").read_bytes())
    out = tmp_path / "out"
    convert(["zheng2018_wbc"], tmp_path / "raw", out, ConvertOptions(**OPTS))
    rows = all_rows(out, ["sample_id", "split", "qc_flags", "label"])
    a, b = "zheng2018_wbc/Dataset 1/001.bmp", "zheng2018_wbc/Dataset 1/002.bmp"
    assert rows[a]["split"] == rows[b]["split"]
    assert f"label_conflict:{b}:mask" in rows[a]["qc_flags"] and f"label_conflict:{a}:mask" in rows[b]["qc_flags"]
    with open(raw / "Class Labels of Dataset 1.csv", newline="", encoding="utf-8-sig") as fh:
        table = list(_csv.reader(fh))
    same_label = rows[a]["label"] == rows[b]["label"]
    assert (f"label_conflict:{b}:{label_name(rows[b]['label'])}" in rows[a]["qc_flags"]) == (not same_label), table[:3]
    assert_no_leak(out)


def test_resolution_scan_in_small_batches_keeps_each_rows_place_in_its_shard(tmp_path, monkeypatch):
    """The resolution pass reads shards a few rows at a time (its memory must not grow with the
    shard); every row it yields still points at its own place in its shard: the image the
    fetcher reads for it hashes to the row's sha256, and the rows are the same as in one read."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    get_adapter("bccd").fake(raw / "bccd", seed=2)
    convert(["bccd"], raw, out, ConvertOptions(**OPTS))
    folder = out / "data" / "bccd"
    whole = list(integrity._scan("bccd", folder))
    monkeypatch.setattr(integrity, "SCAN_BATCH_ROWS", 3)
    small = list(integrity._scan("bccd", folder))
    assert len(small) == len(whole) > 3
    fields = ("sample_id", "file", "index", "split", "sha", "phash", "label", "tasks", "group", "boxes", "rles")
    assert [[getattr(r, k) for k in fields] for r in small] == [[getattr(r, k) for k in fields] for r in whole]
    fetch = integrity._ImageFetcher()
    try:
        for r in small:
            assert hashlib.sha256(fetch.image(r)).hexdigest() == r.sha, r.sample_id
    finally:
        fetch.close()
