"""Curation write-back into OUT without FiftyOne: relabels, tags, exclusions, refusals, atomicity,
undo, and label ids (ClassLabel ints) read like names."""
from __future__ import annotations

import shutil

import pytest

from unihema_data.adapters import get_adapter
from unihema_data.convert import ConvertOptions, convert
from unihema_data.corpus import corpus_shards, iter_row_groups, label_name, label_value_like
from unihema_data.curation import (CHANGES, LOCK, CurationError, Edit, apply_curation, curation_batches,
                                   read_changes, undo_curation)
from unihema_data.outdir import STAGING
from unihema_data.taxonomy import load_taxonomy
from unihema_data.validate import validate


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    base = tmp_path_factory.mktemp("curation")
    for sid in ("pbc", "bccd"):
        get_adapter(sid).fake(base / "raw" / sid, seed=2)
    convert(["pbc", "bccd"], base / "raw", base / "out", ConvertOptions(num_proc=1, progress=False))
    return base / "out"


@pytest.fixture
def out(pristine, tmp_path):
    dst = tmp_path / "out"
    shutil.copytree(pristine, dst)
    return dst


def _rows(out):
    """Rows by sample id, with ``label`` / ``objects.category`` as canonical names (stored as
    ClassLabel ids since schema 2.0.0; names keep these tests readable)."""
    return {r["sample_id"]: (sh.split, _named(r)) for sh, rows in iter_row_groups(corpus_shards(out)) for r in rows}


def _named(r: dict) -> dict:
    r["label"] = label_name(r["label"])
    r["objects"]["category"] = [label_name(c) for c in r["objects"]["category"]]
    return r


def _files(out):
    return {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix != ".lock"}


def test_label_ids_and_names_are_both_read():
    names = load_taxonomy().class_names()
    assert label_name(names[5]) == names[5] and label_name(5) == names[5]
    assert label_name(-1) == "" and label_name(None) == "" and label_name("") == ""
    with pytest.raises(ValueError, match="outside"):
        label_name(len(names) + 10)
    assert label_value_like(7, "neutrophil") == load_taxonomy().class_id("neutrophil")
    assert label_value_like("basophil", "neutrophil") == "neutrophil"


def test_relabel_tag_exclude_then_undo(out):
    before = _files(out)
    rows = _rows(out)
    pbc = sorted(k for k, (_, r) in rows.items() if r["source"] == "pbc")
    bccd = sorted(k for k, (_, r) in rows.items() if r["source"] == "bccd")
    old = rows[pbc[0]][1]["label"]
    new = "monocyte" if old != "monocyte" else "lymphocyte"
    cat0 = rows[bccd[0]][1]["objects"]["category"][0]
    newcat = "platelet" if cat0 != "platelet" else "rbc"
    n_obj = len(rows[bccd[0]][1]["objects"]["category"])
    edits = [Edit(pbc[0], label=new, tags={"mislabeled"}),
             Edit(pbc[1], tags={"exclude", "blurry"}),
             Edit(bccd[0], objects={0: newcat, **{i: rows[bccd[0]][1]["objects"]["category"][i] for i in range(1, n_obj)}},
                  tags=set())]
    dry = apply_curation(out, edits, actor="test", dry_run=True)
    assert len(dry.planned) == 5 and not dry.changes and dry.folders == ["bccd", "pbc"]
    assert "dry run, nothing written: would write 5 changes" in dry.summary(dry_run=True)
    assert _files(out) == before and not (out / ".unihema" / "history").exists()
    rep = apply_curation(out, edits, actor="test")
    assert rep.folders == ["bccd", "pbc"] and validate(out).ok
    assert [(c["sample_id"], c["field"]) for c in rep.changes] == [(c["sample_id"], c["field"]) for c in sorted(
        dry.planned, key=lambda c: c["folder"])]
    assert rep.deleted_objects_ignored == 0 and rep.new_objects_ignored == 0
    after = _rows(out)
    assert after[pbc[0]][1]["label"] == new and f"relabeled:{old}" in after[pbc[0]][1]["qc_flags"]
    assert "tag:mislabeled" in after[pbc[0]][1]["qc_flags"]
    split, ex = after[pbc[1]]
    assert split == "excluded" and ex["split"] == rows[pbc[1]][0] and {"excluded", "tag:blurry"} <= set(ex["qc_flags"])
    assert after[bccd[0]][1]["objects"]["category"][0] == newcat
    assert f"relabeled_object:0:{cat0}" in after[bccd[0]][1]["qc_flags"]
    assert len(read_changes(out)) == 5
    # the same edits again: nothing to write, nothing logged
    again = apply_curation(out, edits, actor="test")
    assert not again.changes and len(read_changes(out)) == 5
    # undo restores every byte of the data (the log and history stay)
    assert undo_curation(out) == rep.batch and curation_batches(out) == []
    restored = _files(out)
    for rel, data in before.items():
        if rel.parts[0] == "data" or rel.name == "manifest.json":
            assert restored[rel] == data, rel
    assert not (out / ".unihema" / "excluded" / "pbc.parquet").exists()
    assert read_changes(out)[-1]["field"] == "undo"
    with pytest.raises(CurationError, match="no curation batch"):
        undo_curation(out)


def test_refusals_leave_out_unchanged(out):
    rows = _rows(out)
    pbc = sorted(k for k, (_, r) in rows.items() if r["source"] == "pbc")
    bccd = sorted(k for k, (_, r) in rows.items() if r["source"] == "bccd")
    before = _files(out)
    cases = [
        ([Edit("pbc/does/not/exist.jpg", label="monocyte")], "not in this corpus"),
        ([Edit(pbc[0], label="monocyte"), Edit(pbc[0], tags=set())], "two edits"),
        ([Edit(pbc[0], label="blast cell!")], "not a canonical taxonomy label"),
        ([Edit(bccd[0], objects={99: "rbc"})], "object index 99"),
        ([Edit(bccd[0], label="monocyte")], "has no image label"),
        ([Edit(pbc[0], tags={" padded"})], "whitespace"),
        ([Edit(k, tags={"exclude"}) for k in pbc], "exclude every row"),
    ]
    for edits, msg in cases:
        with pytest.raises(CurationError, match=msg):
            apply_curation(out, edits)
        assert _files(out) == before, msg
    assert not list((out / STAGING).iterdir()) if (out / STAGING).exists() else True


def test_failure_mid_write_back_leaves_out_unchanged(out, monkeypatch):
    import unihema_data.validate as v

    rows = _rows(out)
    pbc = sorted(k for k, (_, r) in rows.items() if r["source"] == "pbc")
    before = _files(out)

    def boom(row, split=None):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(v, "check_row", boom)
    with pytest.raises(CurationError, match="disk full"):
        apply_curation(out, [Edit(pbc[0], label="monocyte" if rows[pbc[0]][1]["label"] != "monocyte" else "basophil")])
    after = _files(out)
    assert {k: d for k, d in after.items() if k.parts[:2] != (".unihema", "history")} == before
    assert not (out / CHANGES).exists()


def test_a_held_lock_is_reported(out):
    from filelock import FileLock

    rows = _rows(out)
    pbc = sorted(k for k, (_, r) in rows.items() if r["source"] == "pbc")
    with FileLock(str(out / LOCK)):
        with pytest.raises(CurationError, match="another write-back"):
            apply_curation(out, [Edit(pbc[0], tags={"x"})], lock_timeout=0.2)


def test_relabel_keeps_class_ids_as_ids():
    """When the schema stores ClassLabel ids, a relabel writes an id and flags the previous name."""
    from unihema_data.curation import CurationReport, _apply

    tax = load_taxonomy()
    row = {"sample_id": "x/1.png", "label": tax.class_id("neutrophil"), "qc_flags": [], "split": "train",
           "width": 10, "height": 10,
           "objects": {"category": [tax.class_id("rbc")], "bbox": [[1.0, 1.0, 2.0, 2.0]], "bbox_source": ["annotated"]}}
    changes, excluded = _apply(row, Edit("x/1.png", label="monocyte", objects={0: "platelet"}, tags={"exclude"}),
                               False, CurationReport("b"))
    assert row["label"] == tax.class_id("monocyte") and row["objects"]["category"] == [tax.class_id("platelet")]
    assert row["qc_flags"] == ["relabeled:neutrophil", "relabeled_object:0:rbc", "excluded"] and excluded
    assert [(c["old"], c["new"]) for c in changes] == [("neutrophil", "monocyte"), ("rbc", "platelet"),
                                                       ("train", "excluded")]


class _Killed(BaseException):
    pass


@pytest.mark.parametrize("then_undo", [False, True])
def test_kill_between_data_swap_and_manifest_is_finished_with_the_new_manifest(out, monkeypatch, then_undo):
    """The curated manifest (counts, curation entry) is journaled with the data swap: a kill right
    after the swap leaves a journal whose manifest matches the new shards, and the next writer
    (or validate's recovery) finishes the commit with it — never new shards under the old counts."""
    import unihema_data.outdir as od

    rows = _rows(out)
    pbc = sorted(k for k, (_, r) in rows.items() if r["source"] == "pbc")
    edits = [Edit(pbc[0], tags={"exclude"})]
    if then_undo:
        apply_curation(out, edits, actor="test")
    real_finish = od._finish

    def killed(o, journal, old):
        raise _Killed()

    monkeypatch.setattr(od, "_finish", killed)
    with pytest.raises(_Killed):
        undo_curation(out, actor="test") if then_undo else apply_curation(out, edits, actor="test")
    monkeypatch.setattr(od, "_finish", real_finish)
    assert od.pending_commit(out) is not None
    with od.out_lock(out):  # the next writer recovers the interrupted commit
        pass
    assert od.pending_commit(out) is None
    manifest = od.read_manifest(out)
    counts = {}
    for sh, rs in iter_row_groups(corpus_shards(out, ["pbc"], include_excluded=False)):
        counts[sh.split] = counts.get(sh.split, 0) + len(rs)
    assert manifest["sources"]["pbc"]["counts"] == counts
    assert ("curation" in manifest["sources"]["pbc"]) is (not then_undo)
    # the excluded store moved with the data: the excluded row is there after the curation and
    # gone after its undo, and no staged copy of the store is left beside it
    store = out / ".unihema" / "excluded"
    excluded = {r["sample_id"] for sh, rs in iter_row_groups(corpus_shards(out, ["pbc"])) for r in rs
                if sh.split == "excluded"}
    assert excluded == (set() if then_undo else {pbc[0]})
    assert not list(store.glob(".*.tmp"))
    rep = validate(out)
    assert rep.ok, rep.summary()


def test_commit_dropped_before_the_swap_removes_its_staged_files(tmp_path):
    """Killed before the swap: the journal is dropped and so are the files staged with it;
    finished after it: each staged file replaces its target and a ``None`` target is removed."""
    import json

    import unihema_data.outdir as od

    out = tmp_path / "out"
    (out / ".unihema").mkdir(parents=True)
    (out / "data" / "s").mkdir(parents=True)
    od.write_manifest(out, {"schema_version": "x", "sources": {}})
    staged = out / ".unihema" / ".store.parquet.abc.tmp"
    staged.write_bytes(b"new")
    gone = out / ".unihema" / "gone.parquet"
    gone.write_bytes(b"old")
    journal = {"new": str(out / ".unihema" / "staging" / "never-swapped"), "dev": -1, "ino": -1,
               "manifest": {"schema_version": "x", "sources": {}},
               "files": {str(out / ".unihema" / "store.parquet"): str(staged), str(gone): None}}
    (out / od.JOURNAL).write_text(json.dumps(journal))
    assert "dropped" in od.recover(out)
    assert not staged.exists() and gone.exists() and not (out / ".unihema" / "store.parquet").exists()
    staged.write_bytes(b"new")
    od._finish(out, journal, old=None)
    assert (out / ".unihema" / "store.parquet").read_bytes() == b"new" and not staged.exists() and not gone.exists()
    od._finish(out, journal, old=None)  # a rerun (killed inside _finish) finds the files done
    assert (out / ".unihema" / "store.parquet").read_bytes() == b"new"
