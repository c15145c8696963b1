"""MP-IDB, the Malaria Parasite Image Database (Loddo, Di Ruberto, Kocher, Prod'Hom, PAB 2019;
github andrealoddo/MP-IDB-The-Malaria-Parasite-Image-Database-for-Image-Processing-and-Analysis).

Native layout (repository root; ``locate`` accepts up to two levels above)::

    <root>/<Species>/img/<slide>-<seq>-<stages>.jpg     e.g. Falciparum/img/1305121398-0001-R_S.jpg
    <root>/<Species>/gt/<slide>-<seq>-<stages>.jpg      binary parasite mask, JPEG (.png / .tif in some commits)
    <root>/Falciparum/mp-idb-falciparum.csv             filename,parasite_type,xmin,xmax,ymin,ymax (sic)
    <root>/<Species>/crops*/...                         per-parasite crops (derived: not converted, reported)

Conventions:
* ``<Species>`` in Falciparum / Malariae / Ovale / Vivax: the image label, mapped by the
  taxonomy's ``sources.mp_idb.species_folders`` table; ``subset`` = the species.
* Pairing: ``img/`` and ``gt/`` files of one species by the ``<slide>-<seq>`` key. The repository
  history holds masks whose stage suffix differs from the image name: such a pair is still made
  and flagged (``mask_name_differs:<mask name>``, and ``report.flag``). Two files for one key is an
  error naming both; a mask without an image is reported (``orphaned``); an image without a mask
  is an error.
* Masks are JPEG with non-binary values and colour noise: thresholded in the worker by the
  shared rule of :mod:`unihema_data.formats.jpegmask` (luminance ``>= 128`` -> ``255`` =
  ``parasite``); rows are flagged ``mask_thresholded:128`` / ``mask_lossy_pixels:<n>``; a file that is
  not a binary mask (over 5 % mid-tones) is an error naming it. (dataset-ninja uses a colour rule,
  >= (70,110,0) white and <= 20 black; the luminance rule is used here for every lossy mask of the
  corpus. UNCONFIRMED on the real files.)
* Stages: the file name's stage letters (``R`` ring, ``T`` trophozoite, ``S`` schizont, ``G``
  gametocyte, joined by ``_``) stay readable in ``sample_id``. For Falciparum, the CSV gives one
  box per parasite with its stage word (``ring``/``tro``/``schi``/``game``, labels table): the
  header says ``xmin,xmax,ymin,ymax`` but the values are ``x,y,w,h`` (the first row would have
  xmax < xmin), so the columns are read as ``x,y,w,h`` (``box_format = xywh``); the rows where the
  header's reading would be impossible are counted in ``report.info["csv_header_impossible_rows"]``
  as evidence. A box outside its image, or a CSV row naming no image of ``Falciparum/img``, is an
  error naming the CSV line.
* No split, no patient ids: ``group_id`` = the slide id (``<slide>``: fields of one slide stay in
  one split).

Evidence: research note ``datasets-segmentation.md`` section 3 (no real sample: the repository is
607 MB).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
from PIL import Image, ImageDraw

from ..boxes import BoxFormat
from ..formats import disk
from ..formats.csvfmt import read_csv, write_csv
from ..formats.jpegmask import threshold_mask
from . import _synthetic as syn
from .base import CorruptInputError, FakeSample, FakeTruth, RawObject, RawSample
from .families import FileRecord, ImageMaskPairAdapter

SPECIES = ("Falciparum", "Malariae", "Ovale", "Vivax")
CSV_REL = "Falciparum/mp-idb-falciparum.csv"
CSV_HEADER = ("filename", "parasite_type", "xmin", "xmax", "ymin", "ymax")
NAME_RE = re.compile(r"^(\d+)-(\d+)(?:-([A-Za-z_]+))?$")
THRESHOLD = 128


def _key(path: Path) -> str:
    m = NAME_RE.match(path.stem)
    return f"{m.group(1)}-{m.group(2)}" if m else path.stem


class MPIDBAdapter(ImageMaskPairAdapter):
    id = "mp_idb"
    version = "1"
    tasks = ("segmentation", "detection", "classification")
    box_format = BoxFormat.XYWH
    markers = ("*/img", "*/gt")
    mask_values = {0: "background", 255: "parasite"}
    image_suffixes = (".jpg", ".jpeg", ".png")
    mask_suffixes = (".jpg", ".jpeg", ".png", ".tif", ".tiff")

    def signature(self, path: Path) -> bool:
        return any((path / s / "img").is_dir() and (path / s / "gt").is_dir() for s in SPECIES)

    def folders(self, root: Path) -> list[tuple[str, Path, Path]]:
        return [(s, root / s / "img", root / s / "gt") for s in SPECIES if (root / s / "img").is_dir()]

    image_key = staticmethod(_key)
    mask_key = staticmethod(_key)

    # ---------------------------------------------------------------- listing
    def prepare(self, root: Path) -> None:
        super().prepare(root)
        self.boxes: dict[str, list[tuple[int, str, tuple[float, ...]]]] = {}
        csv = root / CSV_REL
        if not disk.present(csv):  # a FIFO / broken link is refused by read_csv, a non-UTF-8 rename by present()
            self.report.info["falciparum_csv"] = "absent (no per-parasite boxes)"
            return
        table = read_csv(csv, header_variants=(CSV_HEADER,))
        impossible = 0
        for row in table:
            try:
                box = tuple(float(row[c]) for c in CSV_HEADER[2:])
            except ValueError:
                raise CorruptInputError(f"{table.where(row)}: non-numeric box {[row[c] for c in CSV_HEADER[2:]]}") from None
            impossible += box[1] < box[0] or box[3] < box[2]  # the header's own reading
            self.boxes.setdefault(row["filename"], []).append((row.line, row["parasite_type"], box))
        self.report.info["falciparum_csv"] = f"{len(table)} boxes, header xmin,xmax,ymin,ymax read as x,y,w,h"
        self.report.info["csv_header_impossible_rows"] = str(impossible)

    def records(self, root: Path) -> Iterator[FileRecord]:
        if not hasattr(self, "boxes"):
            self.prepare(root)
        seen = set()
        for s in disk.subdirs(root):
            for c in disk.subdirs(s):
                if c.name.lower().startswith("crops"):
                    self.report.skip(disk.rel(c, root) + "/", "per-parasite crops (derived from the fields): not converted")
        for rec in super().records(root):
            mask = rec.extra[0]
            if mask is not None and mask.stem != rec.path.stem:
                self.report.flag(disk.rel(mask, root), f"mask name differs from its image {rec.path.name} (paired by slide-seq)")
            if rec.part("subset") == "Falciparum":
                seen.add(rec.path.name)
            yield rec
        for name in sorted(set(self.boxes) - seen):  # the per-parasite truth must match the images
            line = self.boxes[name][0][0]
            raise CorruptInputError(f"{CSV_REL}:{line}: {name!r} is not an image of Falciparum/img "
                                    f"(CSV and images disagree)")

    # ---------------------------------------------------------------- hooks
    def label(self, rec: FileRecord) -> Optional[str]:
        return rec.part("subset")

    def group_id(self, rec: FileRecord) -> str:
        return _key(rec.path).split("-")[0]

    def parse(self, rec: FileRecord) -> RawSample:
        s = super().parse(rec)
        s.label_table = "species_folders"
        mask: Path = rec.extra[0]
        s.semantic_mask, lossy = threshold_mask(mask, THRESHOLD)
        s.qc_flags += [f"mask_thresholded:{THRESHOLD}", f"mask_lossy_pixels:{lossy}"]
        if mask.stem != rec.path.stem:
            s.qc_flags.append(f"mask_name_differs:{disk.show(mask.name)}")
        rows = self.boxes.get(rec.path.name, []) if rec.part("subset") == "Falciparum" else []
        if rows:
            w, h = disk.image_size(rec.path)
            for line, stage, (x, y, bw, bh) in rows:
                if x < 0 or y < 0 or bw <= 0 or bh <= 0 or x + bw > w or y + bh > h:
                    raise CorruptInputError(f"{CSV_REL}:{line}: box x,y,w,h = {x:g},{y:g},{bw:g},{bh:g} is outside "
                                            f"the {w}x{h} image {rec.path.name}")
                s.objects.append(RawObject(stage, (x, y, bw, bh)))
            s.annotation_file = CSV_REL
        return s

    def input_files(self, root: Path) -> Iterator[Path]:
        if (root / CSV_REL).exists():
            yield root / CSV_REL
        yield from super().input_files(root)

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/MP-IDB-master/`` with Falciparum (3 fields, the x,y,w,h CSV under the
        xmin,xmax,ymin,ymax header, one mask whose stage suffix differs from its image), Vivax (2 fields, one ``.png`` mask) and a ``crops`` folder; masks are
        JPEG with compression noise."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "MP-IDB-master"
        W, H = 96, 72
        truth: dict[str, FakeSample] = {}
        csv_rows = []
        plan = {"Falciparum": ["1305121398-0001-R_S", "1305121398-0004-R_R", "1408161544-0002-R_G_R"],
                "Vivax": ["1709041080-0003-R_T", "1709041080-0007-T"]}
        stages = {"R": "ring", "T": "tro", "S": "schi", "G": "game"}
        for sp, stems in plan.items():
            idir, gdir = root / sp / "img", root / sp / "gt"
            idir.mkdir(parents=True, exist_ok=True)
            gdir.mkdir(parents=True, exist_ok=True)
            for k, stem in enumerate(stems):
                boxes = syn.random_boxes(rng, W, H, 2, lo=8, hi=16)
                syn.smear(W, H, [(b, "rbc") for b in boxes], seed * 10 + k).save(idir / f"{stem}.jpg", quality=90)
                m = Image.new("L", (W, H), 0)
                d = ImageDraw.Draw(m)
                for x, y, bw, bh in boxes:
                    d.ellipse([x, y, x + bw - 1, y + bh - 1], fill=255)
                mask_name = f"{stem}.jpg"
                if stem == "1305121398-0004-R_R":
                    mask_name = "1305121398-0004-R.jpg"  # the history's differing stage suffix
                if stem == "1709041080-0007-T":
                    mask_name = f"{stem}.png"
                    m.save(gdir / mask_name)
                else:
                    m.save(gdir / mask_name, quality=90)
                values = np.where(np.asarray(m) >= THRESHOLD, 255, 0).astype(np.uint8)
                letters = stem.split("-")[2].split("_")
                cats, fboxes = [], []
                if sp == "Falciparum":
                    for (x, y, bw, bh), letter in zip(boxes, letters):
                        csv_rows.append((f"{stem}.jpg", stages[letter], x, y, bw, bh))
                        cats.append(stages[letter])
                        fboxes.append([float(x), float(y), float(bw), float(bh)])
                rel = f"{sp}/img/{stem}.jpg"
                truth[rel] = FakeSample(rel_path=rel, label=sp, label_table="species_folders", semantic_mask=values,
                                        boxes=fboxes, categories=cats, group_id=stem.split("-")[0])
        write_csv(root / CSV_REL, CSV_HEADER, csv_rows)
        (root / "Vivax" / "crops" / "R").mkdir(parents=True, exist_ok=True)
        syn.single_cell(12, "rbc", seed).save(root / "Vivax" / "crops" / "R" / "1709041080-0003-R_T_0.png")
        return FakeTruth(root=root, samples=truth)


ADAPTER = MPIDBAdapter
