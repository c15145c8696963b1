"""Corpus integrity: one split policy over a whole output folder, duplicates and label conflicts.

The policy (also in the README)
-------------------------------
Every row has a *base split*: its published split (``source_split`` normalized) when the source
publishes one, else the deterministic grouped split of :func:`unihema_data.splits.grouped_split`.
After a source is staged, :func:`resolve` looks at **every** image row of ``OUT`` (all sources,
plus the staged one) and:

1. groups rows showing the same picture: byte-identical images (same ``image_sha256``) and
   near-duplicates (:mod:`unihema_data.neardup`: perceptual-hash candidates confirmed by a
   pixel comparison), transitively (union-find);
2. joins each such group with the rows sharing a ``group_id`` within a source (a field of view
   and its single-cell crops, a patient's images), so a moved duplicate takes its whole group
   along (flag ``split_moved:<base>-><split>:group:<sample_id>`` on the rows moved only for their
   group), and gives each joined group one split, the strongest base split of its members, ranked
   published test > published validation > published train > generated test > generated
   validation > generated train. So nothing in any published test split is trained on, a
   published split beats a generated one, and a group split never depends on the order in
   which sources were converted (it is a function of the set of rows only);
3. flags, on every member but the group's *representative* (its strongest member, ties broken
   by the smallest ``sample_id``): ``duplicate_of:<sample_id>`` (byte-identical to that row: the
   representative when it is byte-identical, else the first of its own byte-identical set) or
   ``near_duplicate_of:<representative>``; and ``split_moved:<base>-><group split>:<why>:<sample_id>``
   when the row left its base split, ``why`` = ``duplicate`` | ``near_duplicate`` and the
   sample id being the representative that holds the split;
4. flags ``label_conflict:<other sample_id>:<its label>`` on both rows of every byte-identical
   pair that disagree on the image label (``<its label>`` is the other row's canonical label),
   and/or ``label_conflict:<other sample_id>:boxes`` / ``:mask`` when they disagree on the boxes
   or the masks. Only annotations both rows carry are
   compared (a classification row and a detection row of one image do not conflict).

``source_split`` never changes. The flags above are recomputed from scratch on every pass (the
base split is recovered from a ``split_moved`` flag), so the result is a function of the rows
only: converting sources in any order, or reconverting one, gives the same rows and splits.
Rows of other sources whose split or flags change are rewritten and committed together with the
new source in one atomic exchange (:func:`unihema_data.outdir.commit`). Text-set rows (derived
from a parent source's images) follow their parent row's split and resolution flags.
"""
from __future__ import annotations

import bisect
import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import pyarrow.parquet as pq

from . import neardup
from .schema import SPLITS, label_name
from .splits import normalize_split

#: qc flags owned by this module (recomputed on every pass)
RESOLUTION_FLAGS = ("duplicate_of", "near_duplicate_of", "label_conflict", "split_moved")
_RANK = {("published", "test"): 5, ("published", "validation"): 4, ("published", "train"): 3,
         ("generated", "test"): 2, ("generated", "validation"): 1, ("generated", "train"): 0}
_LIGHT = ["sample_id", "source", "split", "source_split", "group_id", "image_sha256", "image_phash", "label",
          "tasks", "objects", "qc_flags"]
BOX_TOL = 0.5


def is_resolution_flag(flag: str) -> bool:
    return flag.split(":", 1)[0] in RESOLUTION_FLAGS


def base_split(split: str, flags: list[str]) -> str:
    """The split a row had before the policy moved it (from its ``split_moved:`` flag)."""
    for f in flags:
        if f.startswith("split_moved:"):
            move = f.split(":", 2)[1]
            if "->" in move:
                return move.split("->", 1)[0]
    return split


@dataclass(slots=True)
class _Row:
    """What the resolution pass keeps of one row. Every row of ``OUT`` is held at once (the
    policy is global), so it is kept small: no per-instance ``__dict__``, and the boxes and object
    masks, only ever compared for equality, as 16-byte digests (a 50k-image corpus held ~100 MB
    of box tuples, most of the growth of peak memory from 10k to 50k images)."""

    sample_id: str
    source: str
    file: Path
    index: int
    split: str                   # as stored
    flags: list[str]             # as stored
    base: str
    published: bool
    sha: str
    phash: list[str]
    label: int
    tasks: tuple[str, ...]
    group: str                   # group_id (a field of view and its single-cell crops share one)
    boxes: bytes                 # digest of the canonical sorted (category, x, y, w, h) tuples
    rles: bytes                  # digest of the sorted object mask RLEs

    @property
    def rank(self) -> int:
        return _RANK[("published" if self.published else "generated", self.base)]


@dataclass
class Plan:
    """What a resolution pass decided: per source, ``sample_id -> (split, qc_flags)`` for rows
    that change, and why rows moved."""

    updates: dict[str, dict[str, tuple[str, list[str]]]] = field(default_factory=dict)
    moved: Counter = field(default_factory=Counter)        # (source, "from->to", why) -> n
    groups: int = 0                                         # duplicate groups (>= 2 rows)
    near_pairs: int = 0                                     # confirmed near-duplicate pairs
    conflicts: int = 0                                      # rows with a label_conflict flag
    candidates: int = 0                                     # near-duplicate candidate pairs checked
    cache: Optional[neardup.DecisionCache] = None

    def sources(self) -> list[str]:
        return sorted(s for s, u in self.updates.items() if u)


def _iter_files(folder: Path) -> Iterator[Path]:
    for split in SPLITS:
        yield from sorted(folder.glob(f"{split}-*.parquet"))


def _box_key(cats: list, boxes: list) -> tuple:
    return tuple(sorted((int(c), *(round(float(v) / BOX_TOL) for v in b)) for c, b in zip(cats, boxes)))


def _box_keys(objs) -> list[tuple]:
    """:func:`_box_key` of every row of an ``objects`` struct array, with the rounding done in
    numpy (the same values: float32 -> float64, divided by :data:`BOX_TOL`, rounded half to
    even as Python's ``round``)."""
    import numpy as np

    cat_col, box_col = objs.field("category"), objs.field("bbox")
    if cat_col.null_count or box_col.null_count:  # not written by convert; keep the plain path
        return [_box_key(c or [], b or []) for c, b in zip(cat_col.to_pylist(), box_col.to_pylist())]
    offsets = box_col.offsets.to_numpy()
    coords = box_col.flatten().flatten().to_numpy(zero_copy_only=False).astype(np.float64)
    q = np.round(coords / BOX_TOL).astype(np.int64).reshape(-1, 4).tolist()
    cats = cat_col.flatten().to_numpy(zero_copy_only=False).tolist()
    coff = cat_col.offsets.to_numpy()
    b0, c0 = int(offsets[0]), int(coff[0])
    keys = []
    for i in range(len(objs)):
        s, e = int(offsets[i]) - b0, int(offsets[i + 1]) - b0
        cs = int(coff[i]) - c0
        keys.append(tuple(sorted((int(c), *b) for c, b in zip(cats[cs:cs + e - s], q[s:e]))))
    return keys


def _read_columns(path: Path, columns) -> "pa.Table":
    """Columns of one shard. (``pq.read_table`` goes through ``pyarrow.dataset``, whose import
    pulls in pandas: ~0.5 s of every conversion for nothing.)"""
    with pq.ParquetFile(path) as pf:
        return pf.read(columns=list(columns))


#: rows of a shard turned into Python objects at a time by :func:`_scan` (a shard of small images
#: holds tens of thousands of rows: converting all its columns at once held ~2.5 KB per row of
#: transient lists and kept the peak RSS of the resolution pass growing with the corpus)
SCAN_BATCH_ROWS = 2048


def _digest(value) -> bytes:
    """16-byte digest of a tuple of ints/floats/strings (equality stands in for the value's)."""
    return hashlib.blake2b(repr(value).encode(), digest_size=16).digest()


def _scan(source: str, folder: Path) -> Iterator[_Row]:
    interned: dict[tuple, tuple] = {}
    for f in _iter_files(folder):
        with pq.ParquetFile(f) as pf:
            start = 0
            for t in pf.iter_batches(batch_size=SCAN_BATCH_ROWS, columns=list(_LIGHT), use_threads=False):
                yield from _scan_batch(source, f, start, t, interned)
                start += t.num_rows


def _scan_batch(source: str, f: Path, start: int, t, interned: dict) -> Iterator[_Row]:
    """:class:`_Row` of the rows of record batch ``t``, the rows ``start...`` of shard ``f``."""
    cols = {c: t.column(c).to_pylist() for c in _LIGHT if c != "objects"}
    objs = t.column("objects")
    box_keys = _box_keys(objs)
    rles = objs.field("mask_rle").to_pylist()
    for i, sid in enumerate(cols["sample_id"]):
        flags = list(cols["qc_flags"][i] or [])
        base = base_split(cols["split"][i], flags)
        published = bool(normalize_split(cols["source_split"][i] or ""))
        yield _Row(
            sample_id=sid, source=source, file=f, index=start + i, split=cols["split"][i], flags=flags, base=base,
            published=published and normalize_split(cols["source_split"][i]) == base,
            sha=cols["image_sha256"][i], phash=list(cols["image_phash"][i] or []),
            label=cols["label"][i] if cols["label"][i] is not None else -1,
            tasks=interned.setdefault(tasks := tuple(cols["tasks"][i] or ()), tasks),
            group=cols["group_id"][i] or sid,
            boxes=_digest(box_keys[i]),
            rles=_digest(tuple(sorted(r for r in (rles[i] or []) if r))),
        )


class _UnionFind:
    def __init__(self, n: int):
        self.p = list(range(n))

    def find(self, a: int) -> int:
        while self.p[a] != a:
            self.p[a] = self.p[self.p[a]]
            a = self.p[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.p[max(ra, rb)] = min(ra, rb)


@dataclass(frozen=True)
class _RowLoc:
    file: Path
    index: int


class _ImageFetcher:
    """Image (and semantic mask) bytes of a row, reading only its row group's column (row groups
    hold <= 100 rows / 32 MiB), with a small cache."""

    def __init__(self, max_cached: int = 32, max_open: int = 16) -> None:
        self._cache: dict[tuple[Path, int, str], list] = {}
        self._starts: dict[Path, list[int]] = {}
        self._files: dict[Path, pq.ParquetFile] = {}  # open shards: parsing a footer costs more than a read
        self._max = max_cached
        self._max_open = max_open

    def _file(self, f: Path) -> pq.ParquetFile:
        pf = self._files.pop(f, None)
        if pf is None:
            if len(self._files) >= self._max_open:
                self._files.pop(next(iter(self._files))).close()
            pf = pq.ParquetFile(f)
        self._files[f] = pf  # most recently used last
        return pf

    def row_group(self, r: "_Row") -> tuple[Path, int]:
        """(shard, row group) holding row ``r``: the locality key confirmations are ordered by."""
        f = r.file
        if f not in self._starts:
            meta = self._file(f).metadata
            starts, n = [], 0
            for g in range(meta.num_row_groups):
                starts.append(n)
                n += meta.row_group(g).num_rows
            self._starts[f] = starts
        return f, bisect.bisect_right(self._starts[f], r.index) - 1

    def _value(self, f: Path, index: int, col: str):
        g = self.row_group_of(f, index)
        key = (f, g, col)
        if key not in self._cache:
            if len(self._cache) >= self._max:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = self._file(f).read_row_group(g, columns=[col]).column(col).to_pylist()
        return self._cache[key][index - self._starts[f][g]]

    def row_group_of(self, f: Path, index: int) -> int:
        if f not in self._starts:
            self.row_group(_RowLoc(f, index))
        return bisect.bisect_right(self._starts[f], index) - 1

    def close(self) -> None:
        for pf in self._files.values():
            pf.close()
        self._files.clear()

    def image(self, r: _Row) -> bytes:
        return self._value(r.file, r.index, "image")["bytes"]

    def semantic(self, r: _Row) -> Optional[str]:
        """A digest of the semantic mask as class names per pixel (None when the row has none)."""
        m = self._value(r.file, r.index, "semantic_mask")
        if not m:
            return None
        from .masks import decode_semantic

        classes = self._value(r.file, r.index, "mask_classes")
        idx = decode_semantic(m["bytes"])
        h = hashlib.sha256(f"{idx.shape}".encode())
        names = {v: (classes[v] if v < len(classes) else f"#{v}") for v in set(idx.ravel().tolist())}
        for v, name in sorted(names.items(), key=lambda t: t[1]):  # by class name: index order is per source
            h.update(f"{name}:".encode())
            h.update((idx == v).tobytes())
        return h.hexdigest()


def _conflicts(a: _Row, b: _Row, fetch: _ImageFetcher) -> list[str]:
    """What ``b`` says differently from ``a``: ``b``'s label, ``boxes``, ``mask`` (each at most once)."""
    out = []
    if a.label >= 0 and b.label >= 0 and a.label != b.label:
        out.append(label_name(b.label))
    if "detection" in a.tasks and "detection" in b.tasks and a.boxes != b.boxes:
        out.append("boxes")
    if "segmentation" in a.tasks and "segmentation" in b.tasks:
        if a.rles != b.rles or fetch.semantic(a) != fetch.semantic(b):
            out.append("mask")
    return out


def resolve(folders: dict[str, Path], derived: dict[str, tuple[Path, str]], out: Optional[Path] = None,
            near_duplicates: bool = True, save_cache: bool = True) -> Plan:
    """One resolution pass over the image rows of ``folders`` (``source -> folder of shards``:
    every data source of OUT, the staged one included) and the text-set rows of ``derived``
    (``textset id -> (folder, parent source id)``). Returns the rows to rewrite. ``out`` holds the near-duplicate
    decision cache."""
    rows: list[_Row] = []
    for src in sorted(folders):
        rows.extend(_scan(src, folders[src]))
    n = len(rows)
    uf = _UnionFind(n)
    by_sha: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_sha[r.sha].append(i)
    for members in by_sha.values():
        for j in members[1:]:
            uf.union(members[0], j)
    plan = Plan()
    fetch = _ImageFetcher()
    if near_duplicates and n > 1:
        # one representative per byte-identical set: near-duplicate pairs between distinct images
        reps = [m[0] for m in by_sha.values()]
        cache = neardup.DecisionCache(out)
        pairs = neardup.candidate_pairs([rows[i].phash for i in reps])
        plan.candidates = len(pairs)
        # confirm in shard/row-group order: each row group is read once per run of pairs, not per pair
        loc = {i: fetch.row_group(rows[reps[i]]) for i in {k for a, b, _ in pairs for k in (a, b)}}
        pairs.sort(key=lambda p: (str(loc[p[0]][0]), loc[p[0]][1], str(loc[p[1]][0]), loc[p[1]][1], p))
        for a, b, mode in pairs:
            if uf.find(reps[a]) == uf.find(reps[b]):
                continue  # already one group (transitively): no need to look at the pixels
            ra, rb = rows[reps[a]], rows[reps[b]]
            if cache.decide(ra.sha, rb.sha, mode, lambda: (fetch.image(ra), fetch.image(rb))):
                uf.union(reps[a], reps[b])
                plan.near_pairs += 1
        plan.cache = cache
        if save_cache:
            cache.save()
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        groups[uf.find(i)].append(i)

    # split groups: duplicate groups joined with the rows of one (source, group_id), so a moved
    # duplicate takes its whole group along (a field of view and its crops, a patient's images)
    sg = _UnionFind(n)
    for members in groups.values():
        for j in members[1:]:
            sg.union(members[0], j)
    first_of_group: dict[tuple[str, str], int] = {}
    for i, r in enumerate(rows):
        sg.union(first_of_group.setdefault((r.source, r.group), i), i)
    split_rep: dict[int, _Row] = {}
    for i in range(n):
        k = sg.find(i)
        cur = split_rep.get(k)
        if cur is None or (-rows[i].rank, rows[i].sample_id) < (-cur.rank, cur.sample_id):
            split_rep[k] = rows[i]

    def group_move(i: int, flags: list[str]) -> str:
        """The split of row ``i``'s split group; a row moved for its group says so."""
        r, srep = rows[i], split_rep[sg.find(i)]
        if r.base != srep.base and not any(f.startswith("split_moved:") for f in flags):
            flags.append(f"split_moved:{r.base}->{srep.base}:group:{srep.sample_id}")
            plan.moved[(r.source, f"{r.base}->{srep.base}", "group")] += 1
        return srep.base

    target: dict[str, tuple[str, list[str]]] = {}
    for members in groups.values():
        if len(members) == 1:
            r = rows[members[0]]
            flags = [f for f in r.flags if not is_resolution_flag(f)]
            target[r.sample_id] = (group_move(members[0], flags), flags)
            continue
        plan.groups += 1
        ms = sorted(members, key=lambda i: (-rows[i].rank, rows[i].sample_id))
        rep = rows[ms[0]]
        split = split_rep[sg.find(ms[0])].base
        exact_rep: dict[str, str] = {}
        for i in ms:
            exact_rep.setdefault(rows[i].sha, rows[i].sample_id)
        for i in ms:
            r = rows[i]
            flags = [f for f in r.flags if not is_resolution_flag(f)]
            why = "duplicate" if r.sha == rep.sha else "near_duplicate"
            if r is not rep:
                if r.sha == rep.sha:
                    flags.append(f"duplicate_of:{rep.sample_id}")
                elif exact_rep[r.sha] != r.sample_id:
                    flags.append(f"duplicate_of:{exact_rep[r.sha]}")
                else:
                    flags.append(f"near_duplicate_of:{rep.sample_id}")
            conflicts = [f"label_conflict:{rows[j].sample_id}:{c}" for j in ms
                         if j != i and rows[j].sha == r.sha for c in _conflicts(r, rows[j], fetch)]
            if conflicts:
                plan.conflicts += 1
                flags.extend(conflicts)
            if r.base != split and rep.base == split:
                flags.append(f"split_moved:{r.base}->{split}:{why}:{rep.sample_id}")
                plan.moved[(r.source, f"{r.base}->{split}", why)] += 1
            target[r.sample_id] = (group_move(i, flags), flags)

    for r in rows:
        new = target[r.sample_id]
        if (r.split, r.flags) != new:
            plan.updates.setdefault(r.source, {})[r.sample_id] = new
    for src in sorted(derived):
        dfolder, parent_source = derived[src]
        for f in _iter_files(dfolder):
            t = _read_columns(f, ["sample_id", "split", "qc_flags"])
            for sid, split, flags in zip(*(t.column(c).to_pylist() for c in ("sample_id", "split", "qc_flags"))):
                parent = _parent_id(sid, parent_source)
                if parent is None or parent not in target:
                    continue
                psplit, pflags = target[parent]
                keep = [fl for fl in flags if not is_resolution_flag(fl)]
                new = (psplit, keep + [fl for fl in pflags if is_resolution_flag(fl)])
                if (split, list(flags)) != new:
                    plan.updates.setdefault(src, {})[sid] = new
    fetch.close()
    return plan


def _parent_id(sample_id: str, parent: str) -> Optional[str]:
    """Parent ``sample_id`` of a text-set row ``<textset>/<rel>#<kind>-<n>``."""
    if "#" not in sample_id or "/" not in sample_id:
        return None
    return f"{parent}/{sample_id.split('/', 1)[1].rsplit('#', 1)[0]}"


def rewrite(folder: Path, staged, updates: dict[str, tuple[str, list[str]]]) -> None:
    """Copy every row of the shards in ``folder`` into ``staged`` (a
    :class:`~unihema_data.outdir.StagedSource`), applying ``updates`` (split, qc_flags). Rows keep
    their relative order within each split; rows that change split follow the rows of their new
    split in the order of the old shards (test, train, validation)."""
    for f in _iter_files(folder):
        pf = pq.ParquetFile(f)
        for g in range(pf.num_row_groups):
            for row in pf.read_row_group(g).to_pylist():
                u = updates.get(row["sample_id"])
                if u is not None:
                    row["split"], row["qc_flags"] = u[0], list(u[1])
                staged.add(row)


def moved_summary(plan: Plan) -> dict[str, dict[str, int]]:
    """``{source: {"train->test (duplicate)": n}}`` of the rows a pass moved."""
    out: dict[str, dict[str, int]] = {}
    for (src, move, why), k in sorted(plan.moved.items()):
        out.setdefault(src, {})[f"{move} ({why})"] = k
    return out


def commit_with_policy(out: Path, source: str, staged_folder: Path, manifest: dict,
                       near_duplicates: bool = True, before_commit=None) -> Plan:
    """Resolve the whole of ``OUT`` with ``source`` replaced by ``staged_folder`` (complete
    shards), rewrite the rows that change (of any source, text sets included) and commit
    everything, ``manifest`` included, in one :func:`~unihema_data.outdir.commit`. Updates the
    ``counts`` of every rewritten source in ``manifest``; ``before_commit(plan)`` may add to
    ``manifest`` (the run report) before it is committed. Call under
    :func:`~unihema_data.outdir.out_lock`; on any error ``OUT`` is unchanged."""
    from contextlib import ExitStack

    from .croissant import remember_sha256
    from .outdir import commit, staged_source

    out = Path(out)
    data = out / "data"
    kinds = {s: m.get("kind", "source") for s, m in manifest["sources"].items()}
    folders: dict[str, Path] = {}
    derived: dict[str, tuple[Path, str]] = {}
    if data.is_dir():
        for d in sorted(p for p in data.iterdir() if p.is_dir() and p.name != source):
            if kinds.get(d.name, "source") == "source":
                folders[d.name] = d
            elif manifest["sources"][d.name].get("parent"):
                derived[d.name] = (d, manifest["sources"][d.name]["parent"])
    folders[source] = staged_folder
    plan = resolve(folders, derived, out=out, near_duplicates=near_duplicates, save_cache=False)
    replacements: dict[str, Path] = {}
    with ExitStack() as stack:
        for src in sorted(set(plan.sources()) | {source}):
            updates = plan.updates.get(src, {})
            if src == source and not updates:
                replacements[src] = staged_folder
                continue
            origin = staged_folder if src == source else data / src
            st = stack.enter_context(staged_source(out, src))
            rewrite(origin, st, updates)
            st.finish()
            remember_sha256(out, {f"data/{src}/{name}": v for name, v in st.sha256().items()})
            replacements[src] = st.folder
            if src in manifest["sources"]:
                manifest["sources"][src]["counts"] = {s: n for s, n in st.counts().items() if n}
            if src == source:
                manifest.setdefault("sources", {}).setdefault(src, {})["counts"] = {
                    s: n for s, n in st.counts().items() if n}
        moved = moved_summary(plan)
        for src, m in manifest["sources"].items():
            if m.get("kind", "source") == "source" and (src in folders):
                m["moved"] = moved.get(src, {})
        if before_commit is not None:
            before_commit(plan)
        commit(out, replacements, manifest)
    if plan.cache is not None:
        plan.cache.save()  # only after the commit: a failed run leaves OUT as it was
    if staged_folder.exists():  # rewritten into another staging folder: the original is spare
        import shutil

        shutil.rmtree(staged_folder, ignore_errors=True)
    return plan
