"""C-NMC 2019, the ALL challenge of ISBI 2019 (Mourya et al.; TCIA doi:10.7937/tcia.2019.dc64i46r,
UNCONFIRMED): 450x450 BMP images of single B-lymphoid cells, pre-segmented on a black
background, from 118 subjects; ``all`` = leukemic B-lymphoblast, ``hem`` = normal B-lymphoid
precursor (hematogone).

Native layout (``locate`` accepts up to two levels above the root)::

    <root>/C-NMC_training_data/fold_{0,1,2}/{all,hem}/UID_<subject>_<image>_<cell>_<all|hem>.bmp
    <root>/C-NMC_test_prelim_phase_data/<n>.bmp
    <root>/C-NMC_test_prelim_phase_data_labels.csv   Patient_ID,new_names,labels  (or inside the folder)
    <root>/C-NMC_test_final_phase_data/<n>.bmp       unlabeled: not converted, counted in the report

Conventions:
* Training: label = the ``all``/``hem`` folder (``sources.c_nmc_2019.labels``),
  ``source_split = "train"``, ``subset`` = the fold (``fold_0`` ...). Prelim test: label = the CSV
  ``labels`` value (``1`` = all, ``0`` = hem), ``source_split = "validation"`` (the labelled
  preliminary test set serves as validation: the catalog's ``expected_counts``),
  ``subset = "test_prelim_phase"``.
* ``disease`` per image from ``sources.c_nmc_2019.diagnosis`` (``all`` -> ALL, ``hem`` -> normal).
* ``group_id = "subject:<subject>"`` from ``UID_<subject>_...`` (the training name; for the prelim
  test, ``Patient_ID`` holds the original name). Normal subjects reportedly carry an ``H`` prefix
  (``UID_H10_...``, UNCONFIRMED): the subject string is kept verbatim. A name not matching is its
  own group and is flagged ``no_subject_id``.
* The name's ``_all``/``_hem`` suffix must agree with the folder / CSV label: a disagreement is kept
  (the folder / CSV wins) and flagged ``name_label_conflict:<suffix>``.
* CSV: a missing column, a non-0/1 label or a name listed twice is an error naming the file and
  line; a CSV row without an image and an image without a row are reported (``orphaned``).

Detected at run time and reported (``report.info``): the folds found, how many subjects appear in
more than one fold (``subjects_across_folds``: the folds reportedly group by patient,
UNCONFIRMED; the published folds are all ``train`` here, so this does not affect the split), and
the number of unlabeled final-test images (``final_test``).

Evidence: research note ``datasets-classification.md`` §7 (layout, CSV columns, counts 10,661 +
1,867). No real sample is available (the GitHub copies hold Git LFS pointers only).
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from ..errors import CorruptInputError, MissingInputError
from ..formats import csvfmt, disk
from ..taxonomy import load_taxonomy
from . import _synthetic as syn
from .base import Adapter, FakeSample, FakeTruth, RawSample

TRAIN = "C-NMC_training_data"
PRELIM = "C-NMC_test_prelim_phase_data"
PRELIM_CSV = "C-NMC_test_prelim_phase_data_labels.csv"
FINAL = "C-NMC_test_final_phase_data"
CLASSES = ("all", "hem")
FOLD = re.compile(r"^fold_\d+$")
NAME = re.compile(r"^UID_([A-Za-z]*\d+)_.*_(all|hem)$")
CSV_LABEL = {"1": "all", "0": "hem"}


@dataclass(frozen=True)
class Record:
    rel_path: str
    path: Path
    label: str
    split: str
    subset: str
    native_name: str
    where: str


def subject_of(name: str) -> tuple[str, Optional[str]]:
    """``(subject, all|hem suffix)`` of ``UID_<subject>_..._<all|hem>.bmp`` (``("", None)`` if not)."""
    m = NAME.match(Path(name).stem)
    return (m.group(1), m.group(2)) if m else ("", None)


class CNmc2019Adapter(Adapter):
    id = "c_nmc_2019"
    version = "1"
    tasks = ("classification",)
    markers = (TRAIN,)
    layout_hint = f"{TRAIN}/fold_N/{{all,hem}}/"

    def signature(self, path: Path) -> bool:
        return any(FOLD.match(d.name) for d in disk.subdirs(path / TRAIN))

    def records(self, root: Path) -> Iterator[Record]:
        recs = list(self._training(root)) + list(self._prelim(root))
        final = root / FINAL
        if final.is_dir():
            n = len(disk.list_files(final, (".bmp",)))
            self.report.info["final_test"] = f"{n} unlabeled images in {FINAL}/ (not converted)"
        if not recs:
            raise MissingInputError(f"{self.id}: no images under {disk.show(root / TRAIN)} (expected fold_N/all|hem/*.bmp)")
        yield from recs

    def _training(self, root: Path) -> Iterator[Record]:
        base = root / TRAIN
        folds, files = disk.list_dir(base, self.report, root)
        for f in files:
            self.report.skip(disk.rel(f, root), "file outside a fold_N folder")
        subjects: dict[str, set[str]] = defaultdict(set)
        for fold in folds:
            if not FOLD.match(fold.name):
                raise CorruptInputError(f"{disk.show(fold)}: unknown folder {disk.show(fold.name)!r} (expected fold_0, fold_1, ...)")
            classes, cfiles = disk.list_dir(fold, self.report, root)
            for f in cfiles:
                self.report.skip(disk.rel(f, root), "file outside an all/hem folder")
            for cls in classes:
                if cls.name not in CLASSES:
                    raise CorruptInputError(f"{disk.show(cls)}: unknown class folder {disk.show(cls.name)!r} (expected all or hem)")
                cls_files = disk.list_files(cls, disk.IMAGE_SUFFIXES, self.report, root, "an image file")
                disk.refuse_case_collisions(cls_files)
                for f in cls_files:
                    subj = subject_of(f.name)[0]
                    if subj:
                        subjects[subj].add(fold.name)
                    yield Record(disk.rel(f, root), f, cls.name, "train", fold.name, f.name, disk.show(f))
        self.report.info["folds"] = ", ".join(f.name for f in folds)
        across = sorted(s for s, fs in subjects.items() if len(fs) > 1)
        self.report.info["subjects_across_folds"] = (f"{len(across)} of {len(subjects)}"
                                                     + (f": {', '.join(across[:10])}" if across else ""))

    def _prelim(self, root: Path) -> Iterator[Record]:
        folder = root / PRELIM
        if not folder.is_dir():
            return
        csv_path = next((p for p in (root / PRELIM_CSV, folder / PRELIM_CSV) if p.is_file()), None)
        images = disk.index_by_stem(disk.list_files(folder, (".bmp",), self.report, root, "an image file"), "image")
        if csv_path is None:
            raise MissingInputError(f"{disk.show(folder)}: {PRELIM_CSV} is missing (labels of the preliminary test)")
        table = csvfmt.read_csv(csv_path, required=("Patient_ID", "new_names", "labels"))
        seen: dict[str, int] = {}
        for row in table:
            where = f"{disk.show(csv_path)}:{row.line}"
            stem = Path(row["new_names"]).stem
            if row["labels"] not in CSV_LABEL:
                raise CorruptInputError(f"{where}: labels {row['labels']!r} is not 0 (hem) or 1 (all)")
            if stem in seen:
                raise CorruptInputError(f"{where}: {row['new_names']} is already listed on line {seen[stem]}")
            seen[stem] = row.line
            img = images.get(stem)
            if img is None:
                self.report.orphan(f"{disk.rel(csv_path, root)}:{row.line}", f"{row['new_names']} is absent")
                continue
            yield Record(disk.rel(img, root), img, row["labels"], "validation", "test_prelim_phase", row["Patient_ID"], where)
        for stem in sorted(set(images) - set(seen)):
            self.report.orphan(disk.rel(images[stem], root), f"not listed in {PRELIM_CSV} (no label; not converted)")

    def parse(self, rec: Record) -> RawSample:
        subject, suffix = subject_of(rec.native_name)
        native_class = CSV_LABEL.get(rec.label, rec.label)
        flags = [] if subject else ["no_subject_id"]
        if suffix is not None and suffix != native_class:
            flags.append(f"name_label_conflict:{suffix}")
        disease = load_taxonomy().map_diagnosis(self.id, rec.label, file=rec.where)
        return RawSample(rel_path=rec.rel_path, image_path=rec.path, label=rec.label, source_split=rec.split,
                         subset=rec.subset, group_id=f"subject:{subject}" if subject else "", qc_flags=flags,
                         annotation_file=rec.where, meta={"disease": disease})

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/C-NMC_Leukemia/``: three folds with ``all``/``hem`` BMP cells on black
        (one subject in two folds, one ``H`` subject, one name without a subject id, one whose
        ``_hem`` suffix contradicts its ``all`` folder), the prelim test (CSV next to the folder,
        with an orphan row) and two unlabeled final-test images."""
        import numpy as np
        from PIL import Image

        root = Path(out) / "C-NMC_Leukemia"
        truth: dict[str, FakeSample] = {}

        def cell(path: Path, k: int) -> None:
            im = np.asarray(syn.single_cell(48, "wbc", seed * 100 + k)).copy()
            yy, xx = np.mgrid[:48, :48]
            im[(yy - 24) ** 2 + (xx - 24) ** 2 > 18 ** 2] = 0  # pre-segmented: black background
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(im).save(path, format="BMP")

        train = [("fold_0", "all", "UID_11_10_1_all.bmp", "11"), ("fold_0", "hem", "UID_H10_3_2_hem.bmp", "H10"),
                 ("fold_1", "all", "UID_11_12_4_all.bmp", "11"), ("fold_1", "all", "UID_57_29_1_hem.bmp", "57"),
                 ("fold_2", "hem", "UID_H22_1_1_hem.bmp", "H22"), ("fold_2", "all", "cell_9.bmp", "")]
        for k, (fold, cls, name, subj) in enumerate(train):
            rel = f"{TRAIN}/{fold}/{cls}/{name}"
            cell(root / rel, k)
            truth[rel] = FakeSample(rel_path=rel, label=cls, source_split="train", group_id=f"subject:{subj}" if subj else "")
        prelim = [("UID_60_1_1_all.bmp", "1.bmp", "1", "60"), ("UID_H30_2_1_hem.bmp", "2.bmp", "0", "H30"),
                  ("UID_61_4_2_all.bmp", "3.bmp", "1", "61")]
        for k, (orig, new, lab, subj) in enumerate(prelim):
            rel = f"{PRELIM}/{new}"
            cell(root / rel, 20 + k)
            truth[rel] = FakeSample(rel_path=rel, label=lab, source_split="validation", group_id=f"subject:{subj}")
        lines = ["Patient_ID,new_names,labels"] + [f"{o},{n},{lab}" for o, n, lab, _ in prelim] + ["UID_62_1_1_all.bmp,4.bmp,1"]
        (root / PRELIM_CSV).write_text("\n".join(lines) + "\n")
        for k in (1, 2):
            cell(root / FINAL / f"{k}.bmp", 40 + k)
        return FakeTruth(root=root, samples=truth)

    def corrupt(self, truth: FakeTruth) -> str:
        """A prelim-test label that is neither 0 nor 1."""
        path = truth.root / PRELIM_CSV
        path.write_text(path.read_text().replace("2.bmp,0", "2.bmp,hem", 1))
        return PRELIM_CSV


ADAPTER = CNmc2019Adapter
