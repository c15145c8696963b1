"""WBCAtt (Tsutsui, Pang, Wen, NeurIPS 2023 D&B; github apple2373/wbcatt): 11 morphological
attributes for 10,298 PBC white-cell images.

The attribute CSVs come from the WBCAtt repository; the images are PBC's (see :mod:`.pbc`) and
must be downloaded separately.

Native layout::

    <wbcatt>/.../submission/pbc_attr_v1_{train,val,test}.csv           the native root (located)
    <wbcatt>/.../submission/re-annotation/pbc_attr_reannotations.csv   optional (or next to the
                                                                       split CSVs, as fetched)
    <somewhere>/PBC_dataset_normal_DIB/<folder>/<file>.jpg              PBC images

The PBC tree is declared in the catalog (``images_from: [pbc]``): the core locates it in
``raw/pbc/`` first, else inside ``raw/wbcatt/``, and hands its root to the adapter
(:attr:`~unihema_data.adapters.base.Adapter.linked`); the adapter never searches for it. A missing tree, or any image the CSVs reference that is absent, is an error naming
the expected path (a partial PBC copy would silently drop annotated cells otherwise).

CSV format (comma-separated, LF, unquoted) with the header :data:`COLUMNS`:
``img_name`` (PBC file name), ``label`` (``Neutrophil``, ``Eosinophil``, ``Basophil``,
``Lymphocyte``, ``Monocyte``), 11 attribute columns, and ``path`` (relative to the folder holding
``PBC_dataset_normal_DIB``).

Conventions:
* ``rel_path`` = the CSV ``path`` value (so ``sample_id`` = ``wbcatt/PBC_dataset_normal_DIB/<folder>/<file>``).
* ``label`` = the CSV ``label`` verbatim (taxonomy table ``labels``), refined like PBC's by the
  ``img_name`` prefix (``meta["refine_label"]``, table ``label_prefixes``, see
  :meth:`~unihema_data.taxonomy.Taxonomy.refine_label`): ``Neutrophil`` + ``BNE_`` ->
  ``neutrophil_band`` (flag ``label_refined:neutrophil``), so a WBCAtt row and the PBC row of the
  same image carry the same label.
* ``attributes`` = the 11 :data:`ATTRIBUTES` columns, names and values verbatim (values contain
  spaces, e.g. ``light blue``; ``nil`` = no granules, a real value).
* ``source_split`` = ``train`` / ``val`` / ``test`` from the CSV the row is in.
* ``group_id``: left empty (each image is its own group); patient grouping of the official split
  is UNCONFIRMED (PBC has no patient ids).
* Re-annotation: ``pbc_attr_reannotations.csv`` holds a second, independent annotation of 1,000
  of the same images ("re-annotations of randomly selected 1000 images by different
  annotators"; an agreement study, not a correction — UNCONFIRMED from the paper text). The
  official v1 values are kept (they define the published benchmark); the row gets the flag
  ``reannotated`` and, for each attribute the second annotator labelled differently,
  ``reannotation_differs:<attribute>=<second value>`` (363 of the 1,000 real rows differ).

Quirks handled: 3 rows whose granule attributes disagree with each other are kept verbatim;
``NEUTROPHIL_`` file names; ``img_name`` must equal the last component of ``path``; an
``img_name`` listed twice (within or across splits) is an error. The image bytes are PBC's, so
converting ``pbc`` and ``wbcatt`` into one OUT makes the core flag ``duplicate_of:`` and put each
image in WBCAtt's published split (:mod:`unihema_data.integrity`).

Evidence: research note ``datasets-classification.md`` §15 (columns, every allowed value,
counts); real sample ``shared/real-samples/wbcatt`` (full CSVs, parsed in the tests).
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterator, Optional

import numpy as np

from ..formats import disk
from ..formats.csvfmt import CsvTable, read_csv, write_csv
from .base import Adapter, CorruptInputError, FakeSample, FakeTruth, MissingInputError, RawSample
from . import _synthetic as syn

#: first component of every CSV ``path`` (PBC's top folder, located by the core via images_from)
PBC_DIR = "PBC_dataset_normal_DIB"


def file_prefix(name: str) -> Optional[str]:
    """PBC's file-name class prefix, which WBCAtt's ``img_name`` keeps: ``"BNE_191112.jpg"`` ->
    ``"BNE"``; ``None`` when the name has no ``_``."""
    stem = Path(name).stem
    return stem.split("_", 1)[0] if "_" in stem else None


def write_fake_image(path: Path, kind: str, seed: int, size: tuple[int, int] = (360, 363)) -> None:
    """A synthetic PBC-like JPEG crop of ``size`` (W, H)."""
    w, h = size
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(syn.encode(syn.single_cell(w, kind, seed, size_h=h), "JPEG", quality=85))

SPLITS = ("train", "val", "test")
ATTRIBUTES = (
    "cell_size", "cell_shape", "nucleus_shape", "nuclear_cytoplasmic_ratio", "chromatin_density",
    "cytoplasm_vacuole", "cytoplasm_texture", "cytoplasm_colour", "granule_type", "granule_colour",
    "granularity",
)
COLUMNS = ("img_name", "label", *ATTRIBUTES, "path")
REANNOTATION = "re-annotation/pbc_attr_reannotations.csv"
#: where ``unihema-data fetch`` puts it (catalog files land flat in raw/wbcatt/)
REANNOTATION_FLAT = "pbc_attr_reannotations.csv"


def split_csv_name(split: str) -> str:
    return f"pbc_attr_v1_{split}.csv"


class WBCAttAdapter(Adapter):
    id = "wbcatt"
    version = "1"
    tasks = ("classification", "attributes")
    markers = tuple(split_csv_name(s) for s in SPLITS)

    # ---------------------------------------------------------------- layout
    def pbc_parent(self, root: Path, example: str = f"{PBC_DIR}/neutrophil/BNE_7323.jpg") -> Path:
        """The folder that holds ``PBC_dataset_normal_DIB`` (CSV ``path`` values are relative to it):
        the parent of the ``pbc`` root the core located (catalog ``images_from: [pbc]``,
        :func:`unihema_data.convert.link_sources`)."""
        if "pbc" not in self.linked:
            raise MissingInputError(
                f"{self.id}: PBC images not found: WBCAtt's CSVs reference PBC files such as {example!r}, "
                f"and no {PBC_DIR}/ folder was linked (catalog images_from: pbc). Put the PBC download under "
                f"raw/pbc/ (e.g. `unihema-data fetch pbc`) or under raw/wbcatt/."
            )
        return self.linked["pbc"].resolve().parent

    def check(self, root: Path) -> None:
        super().check(root)
        self.pbc_parent(root)

    # ---------------------------------------------------------------- parsing
    def read_table(self, path: Path) -> CsvTable:
        """One WBCAtt CSV, checked: exact header, non-empty cells, ``img_name`` == basename of ``path``."""
        table = read_csv(path, header_variants=(COLUMNS,))
        for row in table:
            empty = [c for c in COLUMNS if not row[c]]
            if empty:
                raise CorruptInputError(f"{table.where(row)}: empty value in column(s) {', '.join(empty)}")
            p = PurePosixPath(row["path"])
            if p.name != row["img_name"]:
                raise CorruptInputError(
                    f"{table.where(row)}: img_name {row['img_name']!r} does not match path {row['path']!r}"
                )
            if p.is_absolute() or ".." in p.parts or p.parts[0] != PBC_DIR:
                raise CorruptInputError(
                    f"{table.where(row)}: path {row['path']!r} is not relative to the PBC root ({PBC_DIR}/...)"
                )
        return table

    def read_rows(self, root: Path) -> list[tuple[str, CsvTable, dict]]:
        """All annotation rows as ``(split, table, row)`` in file order (train, val, test);
        ``img_name`` is unique over the three files."""
        seen: dict[str, str] = {}
        out = []
        for split in SPLITS:
            table = self.read_table(root / split_csv_name(split))
            for row in table:
                name = row["img_name"]
                if name in seen:
                    raise CorruptInputError(f"{table.where(row)}: {name} is already listed at {seen[name]}")
                seen[name] = table.where(row)
                out.append((split, table, row))
        return out

    def read_reannotations(self, root: Path) -> dict[str, dict[str, str]]:
        """``img_name`` -> second annotator's attribute values (empty when the file is absent)."""
        # disk.present: a re-annotation file renamed to a non-UTF-8 name is refused, never "absent"
        found = [root / p for p in (REANNOTATION, REANNOTATION_FLAT) if disk.present(root / p)]
        if len(found) > 1:
            raise CorruptInputError(f"{found[1]}: a second copy of the re-annotation file (also {found[0]}); keep one")
        if not found:
            return {}
        path = self._reannotation_path = found[0]
        table = self.read_table(path)
        out: dict[str, dict[str, str]] = {}
        for row in table:
            if row["img_name"] in out:
                raise CorruptInputError(f"{table.where(row)}: {row['img_name']} is listed twice")
            out[row["img_name"]] = {a: row[a] for a in ATTRIBUTES} | {"label": row["label"]}
        return out

    def samples(self, root: Path, parent: Path) -> list[RawSample]:
        """Every annotation row as a :class:`RawSample` whose image is ``parent / path``
        (existence not checked here), in file order: train, val, test."""
        rows = self.read_rows(root)
        second = self.read_reannotations(root)
        known = {row["img_name"] for _s, _t, row in rows}
        orphans = sorted(set(second) - known)
        if orphans:
            raise CorruptInputError(
                f"{self._reannotation_path}: {len(orphans)} re-annotated image(s) are in no split CSV "
                f"({', '.join(split_csv_name(s) for s in SPLITS)}), e.g. {orphans[0]}"
            )
        out = []
        for split, table, row in rows:
            flags: list[str] = []
            other = second.get(row["img_name"])
            if other is not None:
                if other["label"] != row["label"]:
                    raise CorruptInputError(
                        f"{self._reannotation_path}: {row['img_name']} has label {other['label']!r}, "
                        f"but {row['label']!r} in {table.path.name}"
                    )
                flags.append("reannotated")
                flags += [f"reannotation_differs:{a}={other[a]}" for a in ATTRIBUTES if other[a] != row[a]]
            out.append(RawSample(
                rel_path=row["path"],
                image_path=parent / row["path"],
                source_split=split,
                label=row["label"],
                attributes={a: row[a] for a in ATTRIBUTES},
                annotation_file=table.where(row),
                meta={"refine_label": file_prefix(row["img_name"]) or ""},
                qc_flags=flags,
            ))
        return out

    def iter_samples(self, root: Path) -> Iterator[RawSample]:
        parent = self.pbc_parent(root)
        records = self.samples(root, parent)
        missing = [s for s in records if not s.image_path.is_file()]
        if missing and not self.allow_partial:
            s = missing[0]
            raise MissingInputError(
                f"{self.id}: {len(missing)} of {len(records)} PBC images referenced by the WBCAtt CSVs are missing "
                f"under {parent}; e.g. {s.image_path} (from {s.annotation_file}). The PBC copy is incomplete "
                f"(`unihema-data convert {self.id} --allow-partial` converts the rows whose images are present)."
            )
        absent = {id(s) for s in missing}
        for s in missing:  # only with --allow-partial: listed in the run report and the manifest
            self.report.orphan(s.rel_path, f"image absent, skipped with --allow-partial (row of {s.annotation_file})")
        yield from (s for s in records if id(s) not in absent)

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0, pbc_out: Optional[Path] = None) -> FakeTruth:
        """Writes ``out/wbcatt-main/submission/`` (3 split CSVs + re-annotation CSV with one
        differing and one agreeing row) and the PBC images it references under
        ``out/PBC/PBC_dataset_normal_DIB/`` (or under ``pbc_out/PBC_dataset_normal_DIB/`` when
        given, e.g. a sibling ``raw/pbc``). Rows cover all five labels, a ``NEUTROPHIL_`` file, a
        value with a space (``light blue`` / ``purple blue``), ``nil`` granules and one row whose
        granule attributes disagree (as in the real ``BNE_125415.jpg``)."""
        rng = np.random.default_rng(seed + 10_000)  # other ids than the pbc fake of the same seed
        root = Path(out) / "wbcatt-main" / "submission"
        pbc_parent = Path(pbc_out) if pbc_out is not None else Path(out) / "PBC"
        gran = {"Neutrophil": ("small", "pink", "yes"), "Eosinophil": ("round", "red", "yes"),
                "Basophil": ("coarse", "purple", "yes"), "Lymphocyte": ("nil", "nil", "no"),
                "Monocyte": ("nil", "nil", "no")}
        plan = [  # (split, prefix, label, nucleus_shape, cytoplasm_colour)
            ("train", "BNE", "Neutrophil", "unsegmented-band", "light blue"),
            ("train", "EO", "Eosinophil", "segmented-bilobed", "light blue"),
            ("train", "LY", "Lymphocyte", "unsegmented-round", "purple blue"),
            ("train", "BA", "Basophil", "irregular", "light blue"),
            ("val", "SNE", "Neutrophil", "segmented-multilobed", "light blue"),
            ("val", "MO", "Monocyte", "unsegmented-indented", "blue"),
            ("test", "NEUTROPHIL", "Neutrophil", "segmented-multilobed", "light blue"),
            ("test", "EO", "Eosinophil", "segmented-bilobed", "light blue"),
        ]
        truth: dict[str, FakeSample] = {}
        lines: dict[str, list[list[str]]] = {s: [] for s in SPLITS}
        by_name: dict[str, list[str]] = {}
        for k, (split, prefix, label, nucleus, colour) in enumerate(plan):
            name = f"{prefix}_{int(rng.integers(1000, 999999))}.jpg"
            rel = f"{PBC_DIR}/{label.lower()}/{name}"
            write_fake_image(pbc_parent / rel, "wbc", seed * 1000 + 500 + k)
            g_type, g_col, g = gran[label]
            if k == 0:  # the real quirk: granule_colour nil although granule_type says small
                g_col = "nil"
            small = label == "Lymphocyte"
            attrs = dict(zip(ATTRIBUTES, (
                "small" if small else "big", "round" if k % 3 else "irregular", nucleus,
                "high" if small else "low", "densely", "yes" if k == 5 else "no",
                "frosted" if k == 5 else "clear", colour, g_type, g_col, g,
            )))
            row = [name, label, *attrs.values(), rel]
            lines[split].append(row)
            by_name[name] = row
            truth[rel] = FakeSample(rel_path=rel, label=label, attributes=attrs, source_split=split)
        for split in SPLITS:
            write_csv(root / split_csv_name(split), COLUMNS, lines[split])
        # second annotator: agrees on the first train row, differs on cell_size for the val monocyte
        agree = list(by_name[lines["train"][0][0]])
        differ = list(by_name[lines["val"][1][0]])
        differ[COLUMNS.index("cell_size")] = "small" if differ[COLUMNS.index("cell_size")] == "big" else "big"
        write_csv(root / REANNOTATION, COLUMNS, [agree, differ])
        return FakeTruth(root=root, samples=truth)

    def corrupt(self, truth: FakeTruth) -> str:
        """Drop a field from a data line of the train CSV."""
        path = truth.root / split_csv_name("train")
        lines = path.read_text(encoding="utf-8").split("\n")
        lines[1] = lines[1].rsplit(",", 2)[0]
        path.write_text("\n".join(lines), encoding="utf-8")
        return path.name


ADAPTER = WBCAttAdapter
