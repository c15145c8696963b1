"""Curation written back into a converted folder (``OUT``): relabels, tags, exclusions, undo.

Any curation front end (the FiftyOne loop in :mod:`unihema_data.fiftyone_io`, a script) describes
the curator's wanted state of each sample it shows as an :class:`Edit`; :func:`apply_curation`
compares it with ``OUT`` and writes the differences.

Conventions
-----------
Relabel      the row's ``label`` (or ``objects.category[i]``) becomes the new canonical label
             (it must be a taxonomy label); the qc flag ``relabeled:<previous label>`` (or
             ``relabeled_object:<i>:<previous label>``) records what it was. ``source_label`` /
             ``source_category`` keep the native label, untouched. Stored ids (ClassLabel ints)
             stay ids.
Tags         a curator's tag ``t`` is stored as the qc flag ``tag:<t>`` (so ``mislabeled`` is
             ``tag:mislabeled``); removing the tag removes the flag. Tags starting with ``qc:``
             are derived from qc flags by the loader and are not curator tags.
Exclusion    the tag ``exclude`` removes a row from its split: the schema has no "excluded" split,
             so the row (same schema, its ``split`` column unchanged, qc flag ``excluded`` added)
             moves from ``OUT/data/<folder>/`` into ``OUT/.unihema/excluded/<folder>.parquet``,
             which loaders and ``validate`` do not read as data. Removing the tag puts the row back
             into its split. Derived text sets built from an excluded image are not rebuilt here.
Change log   ``OUT/.unihema/changes.jsonl``: one JSON object per change, appended after the change
             is in place: ``batch``, ``time``, ``actor``, ``folder``, ``sample_id``, ``field``
             (``label``, ``objects.category[i]``, ``tags``, ``split``; ``undo`` for undos),
             ``old``, ``new``.
History      before a batch touches ``data/<folder>``, its shards (hard links, no copy) and its
             excluded store are kept in ``OUT/.unihema/history/<batch>/``; :func:`undo_curation`
             restores the newest batch's previous state.
Atomicity    every touched folder is rewritten in a staging folder and swapped in with
             :func:`unihema_data.outdir.staged_source` (the same machinery as ``convert``); edited
             rows are re-checked with :func:`unihema_data.validate.check_row` before the swap; a
             file lock (``OUT/.unihema/lock``, shared with convert) serializes write-backs. The manifest keeps
             the source's fingerprint (so ``convert`` does not undo the curation of an unchanged
             source; ``convert --overwrite`` does, and the history keeps it) and records counts.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from .card import write_card
from .corpus import (EXCLUDED_SPLIT, CorpusError, corpus_shards, excluded_path, iter_row_groups, label_name,
                     label_value_like, require_corpus)
from .outdir import read_manifest, source_files, staged_source
from .schema import ARROW_SCHEMA
from .taxonomy import load_taxonomy

EXCLUDE_TAG = "exclude"
EXCLUDED_FLAG = "excluded"
USER_TAG_FLAG = "tag:"
CHANGES = Path(".unihema") / "changes.jsonl"
HISTORY = Path(".unihema") / "history"
#: the one writer lock of OUT (``outdir.LOCK``): a write-back never interleaves with a convert or generate
from .outdir import LOCK  # noqa: E402


class CurationError(Exception):
    """The curation cannot be written; ``OUT`` is unchanged. The message names sample and problem."""


@dataclass
class Edit:
    """The curator's wanted state of one sample. ``label`` None: not shown / unchanged;
    ``objects``: object index -> wanted category (indices not given keep their label);
    ``tags`` None: tags not managed, else the full set of curator tags (``exclude`` included);
    ``label`` "": the curator removed the image label (not written back, reported);
    ``boxes``: object index -> ``[x, y, w, h]`` relative to the image as the curator sees it
    (geometry edits are detected and reported, not written back);
    ``new_objects``: objects drawn by the curator (not written back, reported)."""

    sample_id: str
    label: Optional[str] = None
    objects: dict[int, str] = field(default_factory=dict)
    tags: Optional[set[str]] = None
    new_objects: int = 0
    boxes: dict[int, list[float]] = field(default_factory=dict)


@dataclass
class CurationReport:
    batch: str
    changes: list[dict] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    new_objects_ignored: int = 0
    deleted_objects_ignored: int = 0
    removed_labels_ignored: int = 0
    moved_boxes_ignored: int = 0
    planned: list[dict] = field(default_factory=list)  # what a dry run (or the run) found to change

    def count(self, kind: str, dry_run: bool = False) -> int:
        changes = self.planned if dry_run else self.changes
        return sum(1 for c in changes if c["field"] == kind or c["field"].startswith(kind + "["))

    def summary(self, dry_run: bool = False) -> str:
        changes = self.planned if dry_run else self.changes
        if not changes:
            head = "no changes to write"
        else:
            excl = sum(1 for c in changes if c["field"] == "split" and c["new"] == EXCLUDED_SPLIT)
            restored = sum(1 for c in changes if c["field"] == "split" and c["old"] == EXCLUDED_SPLIT)
            what = "dry run, nothing written: would write" if dry_run else f"batch {self.batch}:"
            head = (f"{what} {len(changes)} changes in {', '.join(self.folders)}: "
                    f"{self.count('label', dry_run)} image labels, {self.count('objects.category', dry_run)} object "
                    f"labels, {self.count('tags', dry_run)} tag changes, {excl} excluded, {restored} restored")
        notes = []
        if self.new_objects_ignored:
            notes.append(f"{self.new_objects_ignored} objects drawn in FiftyOne were NOT written back "
                         f"(only label edits, tags and exclusions are)")
        if self.deleted_objects_ignored:
            notes.append(f"{self.deleted_objects_ignored} objects deleted in FiftyOne were NOT removed from the "
                         f"corpus (tag the sample instead, e.g. `exclude` or `mislabeled`)")
        if self.removed_labels_ignored:
            notes.append(f"{self.removed_labels_ignored} image labels removed in FiftyOne were NOT removed from the "
                         f"corpus (tag the sample instead)")
        if self.moved_boxes_ignored:
            notes.append(f"{self.moved_boxes_ignored} boxes moved or resized in FiftyOne (> 0.5 px) were NOT written "
                         f"back (box geometry is not curated here; tag the sample instead)")
        return "\n".join([head, *notes])


# ------------------------------------------------------------------------------- applying edits
def _apply(row: dict, edit: Edit, excluded: bool, report: CurationReport) -> tuple[list[dict], bool]:
    """Apply ``edit`` to ``row`` in place; returns the changes and whether the row is excluded."""
    tax = load_taxonomy()
    sid = row["sample_id"]
    changes: list[dict] = []
    flags = list(row["qc_flags"])

    def check(new: str, what: str) -> None:
        if not tax.is_known_label(new):
            raise CurationError(f"{sid}: {what} {new!r} is not a canonical taxonomy label "
                                f"(see unihema_data/taxonomy.yaml)")

    if edit.label == "" and label_name(row["label"]):
        report.removed_labels_ignored += 1
    elif edit.label is not None:
        cur = label_name(row["label"])
        if edit.label != cur:
            if not cur:
                raise CurationError(f"{sid}: the corpus row has no image label; a new label {edit.label!r} "
                                    f"cannot be written back (only existing labels are edited)")
            check(edit.label, "new label")
            row["label"] = label_value_like(row["label"], edit.label)
            info = tax.labels[edit.label]  # the label's group and Cell Ontology id follow it
            if "label_group" in row:
                row["label_group"] = info.group
            if "label_cl" in row:
                row["label_cl"] = info.cl or ""
            flags.append(f"relabeled:{cur}")
            changes.append({"field": "label", "old": cur, "new": edit.label})
    cats = row["objects"]["category"]
    for idx, new in sorted(edit.objects.items()):
        if not 0 <= idx < len(cats):
            raise CurationError(f"{sid}: object index {idx}, but the corpus row has {len(cats)} objects")
        cur = label_name(cats[idx])
        if new != cur:
            check(new, f"new label of object {idx}")
            cats[idx] = label_value_like(cats[idx], new)
            flags.append(f"relabeled_object:{idx}:{cur}")
            changes.append({"field": f"objects.category[{idx}]", "old": cur, "new": new})
    report.new_objects_ignored += edit.new_objects
    W, H = row.get("width"), row.get("height")
    for idx, rel in edit.boxes.items():
        if W and H and 0 <= idx < len(cats) and row["objects"]["bbox_source"][idx] != "from_point":
            x, y, w, h = row["objects"]["bbox"][idx]
            got = (rel[0] * W, rel[1] * H, (rel[0] + rel[2]) * W, (rel[1] + rel[3]) * H)
            if max(abs(a - b) for a, b in zip(got, (x, y, x + w, y + h))) > 0.5:
                report.moved_boxes_ignored += 1
    if edit.tags is not None:
        report.deleted_objects_ignored += len(set(range(len(cats))) - set(edit.objects))
        want = {t for t in edit.tags if t != EXCLUDE_TAG}
        for t in want:
            if not t.strip() or t != t.strip() or "\n" in t:
                raise CurationError(f"{sid}: tag {t!r} is empty or has surrounding/line-break whitespace")
        have = {f[len(USER_TAG_FLAG):] for f in flags if f.startswith(USER_TAG_FLAG)}
        for t in sorted(want - have):
            flags.append(USER_TAG_FLAG + t)
            changes.append({"field": "tags", "old": None, "new": t})
        for t in sorted(have - want):
            flags.remove(USER_TAG_FLAG + t)
            changes.append({"field": "tags", "old": t, "new": None})
        want_ex = EXCLUDE_TAG in edit.tags
        if want_ex != excluded:
            if want_ex:
                flags.append(EXCLUDED_FLAG)
                changes.append({"field": "split", "old": row["split"], "new": EXCLUDED_SPLIT})
            else:
                flags = [f for f in flags if f != EXCLUDED_FLAG]
                changes.append({"field": "split", "old": EXCLUDED_SPLIT, "new": row["split"]})
            excluded = want_ex
    row["qc_flags"] = flags
    return changes, excluded


def apply_curation(out: Path | str, edits: Iterable[Edit], actor: str = "unknown",
                   lock_timeout: float = 60.0, dry_run: bool = False) -> CurationReport:
    """Write ``edits`` into ``out`` (see the module docstring). Raises :class:`CurationError`
    before anything is written when an edit names an unknown sample, object or label.
    ``dry_run``: only compute the changes (``report.changes``, without ``batch``/``time``), write nothing."""
    from filelock import FileLock, Timeout

    try:
        out = require_corpus(Path(out))
    except CorpusError as e:
        raise CurationError(str(e)) from None
    by_id: dict[str, Edit] = {}
    for e in edits:
        if e.sample_id in by_id:
            raise CurationError(f"{e.sample_id}: two edits for one sample")
        by_id[e.sample_id] = e
    batch = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    report = CurationReport(batch)
    (out / LOCK).parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(out / LOCK), timeout=lock_timeout):
            plan = _plan(out, by_id, report)
            if not plan or dry_run:
                report.folders = sorted(plan) if dry_run else []
                return report
            try:
                for folder in sorted(plan):
                    _rewrite_folder(out, folder, by_id, batch, actor, report)
                    report.folders.append(folder)
            except BaseException:
                _drop_history(out / HISTORY / batch, keep=report.folders)
                raise
            finally:
                if report.folders:
                    write_card(out)
    except Timeout:
        raise CurationError(f"{out}: another write-back holds {out / LOCK}; try again when it has finished") from None
    except OSError as e:
        raise CurationError(f"cannot write {out}: {e}") from None
    return report


def _plan(out: Path, by_id: dict[str, Edit], report: CurationReport) -> set[str]:
    """Dry run over the light columns: folders that change; unknown samples fail loudly."""
    found: set[str] = set()
    folders: set[str] = set()
    cols = ["sample_id", "label", "objects", "qc_flags", "split", "width", "height"]
    for shard, rows in iter_row_groups(corpus_shards(out), columns=cols):
        for row in rows:
            e = by_id.get(row["sample_id"])
            if e is None:
                continue
            found.add(row["sample_id"])
            changes, _ = _apply(row, e, shard.split == EXCLUDED_SPLIT, report)
            if changes:
                folders.add(shard.folder)
                report.planned.extend({"folder": shard.folder, "sample_id": row["sample_id"], **c} for c in changes)
    missing = sorted(set(by_id) - found)
    if missing:
        raise CurationError(f"{out}: {len(missing)} curated samples are not in this corpus (first: "
                            f"{', '.join(missing[:3])}); was the FiftyOne dataset loaded from another folder?")
    return folders


def _snapshot(out: Path, folder: str, dest: Path) -> None:
    """Keep the current shards of ``folder`` (hard links) and its excluded store under ``dest``."""
    d = dest / "data" / folder
    d.mkdir(parents=True, exist_ok=True)
    for files in source_files(out, folder).values():
        for f in files:
            try:
                os.link(f, d / f.name)
            except OSError:
                shutil.copy2(f, d / f.name)
    ex = excluded_path(out, folder)
    if ex.exists():
        (dest / "excluded").mkdir(parents=True, exist_ok=True)
        shutil.copy2(ex, dest / "excluded" / ex.name)


def _drop_history(hist: Path, keep: list[str]) -> None:
    """After a failed batch: forget the snapshots of the folders it did not change."""
    if not keep:
        shutil.rmtree(hist, ignore_errors=True)
        return
    meta_path = hist / "batch.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    for folder in list(meta["manifest_entries"]):
        if folder not in keep:
            shutil.rmtree(hist / "data" / folder, ignore_errors=True)
            (hist / "excluded" / f"{folder}.parquet").unlink(missing_ok=True)
            del meta["manifest_entries"][folder]
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _staged_beside(path: Path) -> Path:
    """A new hidden name next to ``path`` for its replacement (committed with the data swap:
    :func:`unihema_data.outdir.commit` ``files``); the folder is created if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def _write_excluded(path: Path, rows: list[dict]) -> Optional[Path]:
    """Excluded rows into a temporary file next to ``path`` (None when there are none)."""
    if not rows:
        return None
    tmp = _staged_beside(path)
    pq.write_table(pa.Table.from_pylist(rows, schema=ARROW_SCHEMA), tmp, compression="zstd")
    return tmp


def _rewrite_folder(out: Path, folder: str, by_id: dict[str, Edit], batch: str, actor: str,
                    report: CurationReport) -> None:
    from .validate import check_row

    hist = out / HISTORY / batch
    _snapshot(out, folder, hist)
    manifest = read_manifest(out)
    meta_path = hist / "batch.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {
        "batch": batch, "actor": actor, "manifest_entries": {}}
    meta["manifest_entries"][folder] = manifest["sources"].get(folder)
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    changes: list[dict] = []
    excluded_rows: list[dict] = []
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with staged_source(out, folder) as st:
        for shard, rows in iter_row_groups(corpus_shards(out, [folder])):
            for row in rows:
                is_ex = shard.split == EXCLUDED_SPLIT
                e = by_id.get(row["sample_id"])
                if e is not None:
                    ch, is_ex = _apply(row, e, is_ex, CurationReport(batch))  # ignored objects counted in _plan
                    if ch:
                        problems = check_row(row)
                        if problems:
                            raise CurationError(f"{row['sample_id']}: the curated row is invalid: "
                                                + "; ".join(m for _, m in problems))
                        changes.extend({"batch": batch, "time": now, "actor": actor, "folder": folder,
                                        "sample_id": row["sample_id"], **c} for c in ch)
                (excluded_rows.append if is_ex else st.add)(row)
        st.finish()
        counts = st.counts()
        if not counts:
            raise CurationError(f"{folder}: the curation would exclude every row of this source; "
                                f"keep at least one row (or remove the source from OUT)")
        ex_target = excluded_path(out, folder)
        tmp = _write_excluded(ex_target, excluded_rows)
        manifest = read_manifest(out)
        entry = manifest["sources"].setdefault(folder, {"kind": "source"})
        entry["counts"] = counts
        entry["curation"] = {"last_batch": batch, "excluded": len(excluded_rows), "at": now}
        # the manifest and the excluded store are journaled with the data swap (no window between them)
        st.commit(manifest, files={ex_target: tmp})
    _append_log(out, changes)
    report.changes.extend(changes)


def _append_log(out: Path, entries: list[dict]) -> None:
    if not entries:
        return
    p = out / CHANGES
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a", encoding="utf-8") as fh:
        for e in entries:
            fh.write(json.dumps(e, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_changes(out: Path | str) -> list[dict]:
    """Every entry of ``OUT/.unihema/changes.jsonl``, oldest first."""
    p = Path(out) / CHANGES
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


# ----------------------------------------------------------------------------------------- undo
def curation_batches(out: Path | str) -> list[str]:
    """Batches that can be undone, oldest first."""
    h = Path(out) / HISTORY
    if not h.is_dir():
        return []
    return sorted(d.name for d in h.iterdir() if d.is_dir() and (d / "batch.json").exists()
                  and not (d / "UNDONE").exists())


def undo_curation(out: Path | str, actor: str = "unknown") -> str:
    """Restore ``OUT`` as it was before the newest curation batch (its data folders, excluded
    stores and manifest counts), log the undo and return the batch id."""
    from filelock import FileLock

    out = Path(out).resolve()
    batches = curation_batches(out)
    if not batches:
        raise CurationError(f"{out}: no curation batch to undo")
    batch = batches[-1]
    hist = out / HISTORY / batch
    meta = json.loads((hist / "batch.json").read_text(encoding="utf-8"))
    with FileLock(str(out / LOCK), timeout=60):
        entries = []
        for folder in sorted(p.name for p in (hist / "data").iterdir()):
            manifest = read_manifest(out)
            prev = (meta.get("manifest_entries") or {}).get(folder)
            if prev is None:
                manifest["sources"].pop(folder, None)
            else:
                manifest["sources"][folder] = prev
            with staged_source(out, folder) as st:
                for f in sorted((hist / "data" / folder).iterdir()):
                    try:
                        os.link(f, st.folder / f.name)
                    except OSError:
                        shutil.copy2(f, st.folder / f.name)
                ex = excluded_path(out, folder)
                kept = hist / "excluded" / ex.name
                tmp = None
                if kept.exists():
                    tmp = _staged_beside(ex)
                    shutil.copy2(kept, tmp)
                st.commit(manifest, files={ex: tmp})  # the manifest and excluded store journaled with the data swap
            entries.append({"batch": batch, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "actor": actor, "folder": folder, "sample_id": None, "field": "undo",
                            "old": batch, "new": None})
        (hist / "UNDONE").write_text("")
        _append_log(out, entries)
        write_card(out)
    return batch
