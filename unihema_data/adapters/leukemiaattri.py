"""LeukemiaAttri (Rehman et al., MICCAI 2024, arXiv:2405.10803): WBC detection with per-cell
morphology attributes, YOLO release.

Native layout (YOLO release; README + ``data/WBC_v1.yaml`` of
intelligentMachines-ITU/Blood-Cancer-Dataset-Lukemia-Attri-MICCAI-2024; ``locate`` accepts up to two
levels above the root)::

    <root>/images/{train,val,test}/<a>_<b>_<mag>_<disease>.png     e.g. 4_15_1000_ALL.png
    <root>/labels/{train,val,test}/<same stem>.txt                 cls xc yc w h a1..a6 (or a0..a6)
    <root>/[data/]WBC_v1.yaml                                      optional: nc 14 + names

Released layout (public readers of the released data; detected per domain and reported in the
run report, ``info.layout``)::

    LeukemiaAttri_Dataset/<H|L>_<mag>_<camera>/Images/{train,test}/<stem>.<ext>
    LeukemiaAttri_Dataset/<H|L>_<mag>_<camera>/txt_labels/AttriDet/{train,test}/<stem>.txt   12 columns
    LeukemiaAttri_Dataset/<H|L>_<mag>_<camera>/txt_labels/WBC_Detection/                    not read
    LeukemiaAttri_Dataset/<H|L>_<mag>_<camera>/json_labels/{train,test}.json                not read

(both YOLO folders are read the same way; ``json_labels`` and ``WBC_Detection`` repeat the same
boxes and are reported as skipped). Discovery also checks the content: a tree whose label lines
have the 5 columns of plain YOLO (TXL-PBC) is not LeukemiaAttri.

The full download covers two microscopes (HCM/LCM) x three magnifications (100x/40x/10x) x
cameras; its exact folder names are UNCONFIRMED. Supported: one ``images/`` + ``labels/`` pair at the
root (single domain), or one pair per *domain folder* one or two levels below the root, whose name
parts each carry a recognised token - microscope ``HCM``/``LCM`` (or ``H``/``L`` as in Uni-Hema's
subset names ``H_100x_C2``), magnification ``10x``/``40x``/``100x`` (``400x``/``1000x`` and bare
``100``/``400``/``1000`` are read as total magnification = 10 x objective, as in the spreadsheet
folder ``1000_HCM_Microscope_data``), camera ``C<n>``. A folder holding ``images/`` + ``labels/``
whose name has none of these is an "unknown layout" :class:`CorruptInputError`. A COCO-format copy
(``Annotations/*.json``) is not read (where its attributes live is UNCONFIRMED); ``locate`` says so.

Conventions:
* Boxes: YOLO normalized centre/size (:attr:`BoxFormat.YOLO`), verbatim.
* Native category = the class name at the line's class index in ``WBC_v1.yaml`` (a ``*.yaml`` with
  ``names`` at the root or in ``root/data``; if none is shipped, the 14 names of the authors'
  ``data/WBC_v1.yaml``, :data:`CLASS_NAMES`). Class 0 ``None`` is the artefact / non-WBC class: kept.
* Object attributes: the integer codes after the box, emitted as ``{native attribute name: "<int>"}``
  (``"1.0"`` becomes ``"1"``; non-integers are an error). Names, in column order:
  6-attribute variant (11 columns; the README's ``cls x y w h a1 a2 a3 a4 a5 a6``):
  ``Nuclear Chromatin, Nuclear Shape, Nucleus, Cytoplasm, Cytoplasmic Basophilia, Cytoplasmic Vacuoles``
  (the ``attribute_names`` of the authors' val.py/test.py). 7-attribute variant (12 columns; what the
  authors' loader asserts): ``Cell Size`` first, then the same six. Code ``2`` (n/a sentinel) is passed
  through; the taxonomy maps it. Vocabularies: research note datasets-detection.md section 1.
* Variant detection: every label file's first line is pre-scanned; a dataset mixing 11- and 12-column
  files is a :class:`CorruptInputError` naming one file of each kind, a line whose column count differs
  from its file's is an error naming file and line, and 16 columns (the LLD journal release, with a
  region box) is rejected with a hint. The detected variant is visible as the qc flag
  ``attr_variant:6`` / ``attr_variant:7`` on every row and as :attr:`LeukemiaAttriAdapter.variant`
  after iteration (``None`` when no label file has any line).
* File name ``<a>_<b>_<mag>_<disease>``: ``<disease>`` (ALL, AML, APML/APL, CLL, CML) ->
  ``meta['disease'] = "leukemia"`` and the subtype goes into ``subset``; ``<mag>`` = total
  magnification code -> objective ``meta['magnification']`` = code / 10 + "x" (``1000`` -> ``"100x"``,
  confirmed by the notes; other codes UNCONFIRMED). A domain folder's microscope/magnification win
  over the file name (annotations were transferred between domains, so names may keep ``1000``); a
  disagreement is flagged ``magnification_conflict:<folder>!=<file>``. Unparseable names get the flag
  ``unparsed_file_name``; unknown disease tokens ``unknown_disease_token:<tok>``.
* ``subset`` = ``"<domain folder path>/<subtype>"`` (e.g. ``HCM_100x/ALL``), or just the subtype for a
  single-domain layout. ``meta['microscope']`` = ``HCM``/``LCM`` when the domain says so.
* ``group_id`` = ``<a>_<b>_<disease>`` (the file stem without the magnification code), i.e. one field of
  view, shared by its copies in other domains. ``<a>`` looks like a patient number (48 patients,
  spreadsheets ``Annotation_v8/{1..48}_data.xlsx``) but that is UNCONFIRMED, so patients are not
  grouped. Unparseable names: the image is its own group.
* Published split = the ``images/<split>`` folder name, verbatim.
* An image without a label file is a :class:`MissingInputError`: the GitHub repository circulates the
  images without labels (the real sample has none), and silently reading them as "no cells" would
  produce false negatives; an image without cells must have an (empty) label file.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator, Optional

import numpy as np

from ..boxes import BoxFormat
from ..formats import disk, yolo
from . import _synthetic as syn
from .base import (Adapter, CorruptInputError, FakeSample, FakeTruth, MissingInputError, RawObject,
                   RawSample, _subdirs)

log = logging.getLogger(__name__)

#: ``names`` of the authors' data/WBC_v1.yaml (nc: 14), index order
CLASS_NAMES = ("None", "Myeloblast", "Lymphoblast", "Neutrophil", "Atypical lymphocyte", "Promonocyte",
               "Monoblast", "Lymphocyte", "Myelocyte", "Abnormal promyelocyte", "Monocyte",
               "Metamyelocyte", "Eosinophil", "Basophil")
ATTRS_6 = ("Nuclear Chromatin", "Nuclear Shape", "Nucleus", "Cytoplasm", "Cytoplasmic Basophilia",
           "Cytoplasmic Vacuoles")
ATTRS_7 = ("Cell Size",) + ATTRS_6
#: total column count of a label line -> attribute names of that variant
VARIANTS = {5 + len(ATTRS_6): ATTRS_6, 5 + len(ATTRS_7): ATTRS_7}
LLD_COLUMNS = 16
LEUKEMIA_SUBTYPES = ("ALL", "AML", "APML", "APL", "CLL", "CML")
NAME_RE = re.compile(r"^(\d+)_(\d+)_(\d+)_([A-Za-z]+)$")


#: the two known layouts of one domain: (images folder, labels folder) relative to the domain folder
LAYOUTS = {
    "miccai": ("images", "labels"),                     # GitHub/MICCAI YOLO release
    "released": ("Images", "txt_labels/AttriDet"),      # LeukemiaAttri_Dataset/<H|L>_<mag>_<cam>/ release
}
LAYOUT_NAMES = {"miccai": "MICCAI YOLO layout (images/ + labels/)",
                "released": "released layout (Images/ + txt_labels/AttriDet/)"}


@dataclass(frozen=True)
class Domain:
    """One images + labels pair: ``rel`` = its folder relative to the root ("" = the root);
    ``layout`` is a key of :data:`LAYOUTS`."""

    rel: str
    path: Path
    microscope: str = ""
    magnification: str = ""
    layout: str = "miccai"

    @property
    def images(self) -> Path:
        return self.path / LAYOUTS[self.layout][0]

    @property
    def labels(self) -> Path:
        return self.path / LAYOUTS[self.layout][1]


@dataclass(frozen=True)
class LaRecord:
    domain: Domain
    pair: yolo.YoloPair


def _objective(n: int, total: bool) -> str:
    return f"{n // 10}x" if total else f"{n}x"


def parse_domain_part(part: str) -> Optional[tuple[str, str]]:
    """``(microscope, magnification)`` tokens of one domain folder name, ``None`` when the name has
    no recognised token (microscope, magnification or camera)."""
    micro = mag = ""
    known = False
    for tok in re.split(r"[_\-\s.]+", part):
        up = tok.upper()
        if up in ("HCM", "LCM"):
            micro, known = up, True
        elif tok in ("H", "L"):
            micro, known = tok + "CM", True
        elif re.fullmatch(r"C\d+", up):
            known = True  # camera code (meaning of C2 UNCONFIRMED); kept in the subset string only
        elif m := re.fullmatch(r"(\d+)X", up):
            n = int(m.group(1))
            if n in (10, 40, 100):
                mag, known = _objective(n, total=False), True
            elif n in (400, 1000):
                mag, known = _objective(n, total=True), True
        elif tok.isdigit() and int(tok) in (100, 400, 1000):
            mag, known = _objective(int(tok), total=True), True
    return (micro, mag) if known else None


class LeukemiaAttriAdapter(Adapter):
    id = "leukemiaattri"
    version = "1"
    box_format = BoxFormat.YOLO
    tasks = ("detection", "attributes")
    markers = ("images", "labels")  # single-domain root; multi-domain roots: see is_root()
    required = ()
    #: total column count of a label line -> attribute names (the release variants this id reads)
    variants: ClassVar[dict[int, tuple[str, ...]]] = VARIANTS
    #: columns between the box and the attributes (LLD: the sparse-annotation region px1 px2 py1 py2)
    region_columns: ClassVar[int] = 0
    #: column counts of the sibling release -> why they are refused here (and which id reads them)
    foreign_columns: ClassVar[dict[int, str]] = {
        LLD_COLUMNS: "16 columns (cls x y w h px1 px2 py1 py2 + 7 attributes) is the LLD journal release, "
                     "not LeukemiaAttri; convert it with the `lld` adapter"}
    #: top folder of the fake's single-domain layout / multi-domain layout
    fake_dirs: ClassVar[tuple[str, str]] = ("LeukemiaAttri_YOLO/LeukemiaAttri", "LeukemiaAttri")

    def __init__(self) -> None:
        #: number of attribute columns found (6 or 7) after iter_samples; None = no labelled object
        self.variant: Optional[int] = None
        #: where the class names came from
        self.class_source: str = ""

    # ------------------------------------------------------------------ layout
    @staticmethod
    def _layout_of(p: Path) -> Optional[str]:
        for name, (i, lab) in LAYOUTS.items():
            if (p / i).is_dir() and (p / lab).is_dir():
                return name
        return None

    @classmethod
    def _is_unit(cls, p: Path) -> bool:
        return cls._layout_of(p) is not None

    def _unit_dirs(self, root: Path) -> list[tuple[str, Path]]:
        """Folders holding images/ + labels/ at depth 0, 1 or 2 below ``root``."""
        found = []
        if self._is_unit(root):
            found.append(("", root))
        for c in sorted(_subdirs(root)):
            if c.name in ("images", "labels", "Images", "txt_labels", "json_labels"):
                continue
            if self._is_unit(c):
                found.append((c.name, c))
            else:
                found += [(f"{c.name}/{g.name}", g) for g in sorted(_subdirs(c)) if self._is_unit(g)]
        return found

    def is_root(self, path: Path) -> bool:
        if not path.is_dir():
            return False
        if self._is_unit(path):
            return self.signature(path)
        units = [(rel, u) for rel, u in self._unit_dirs(path) if all(parse_domain_part(p) for p in rel.split("/"))]
        return bool(units) and self.signature(path)

    def signature(self, path: Path) -> bool:
        """Label lines carry attribute columns: some label file's first line has 11 or 12
        columns, and none has the 5 of a plain YOLO tree (TXL-PBC, BCCD-YOLO...). A tree whose
        label files are all empty is accepted (nothing tells it apart)."""
        seen = 0
        plain = attributed = False
        for _rel, unit in ([("", path)] if self._is_unit(path) else self._unit_dirs(path)):
            layout = self._layout_of(unit)
            labels = unit / LAYOUTS[layout][1]
            for folder in [labels, *_subdirs(labels)]:
                for f in yolo.label_files(folder)[:10]:
                    seen += 1
                    try:
                        n = yolo.first_row_columns(f)
                    except CorruptInputError:
                        continue
                    plain |= n == 5
                    attributed |= n in VARIANTS or n == LLD_COLUMNS
                    if seen >= 40:
                        break
        return attributed or not plain

    def domains(self, root: Path) -> list[Domain]:
        units = self._unit_dirs(root)
        if not units:
            raise MissingInputError(f"{self.id}: no images/ + labels/ folders under {root}")
        if len(units) > 1 and any(rel == "" for rel, _ in units):
            others = ", ".join(rel for rel, _ in units if rel)
            raise CorruptInputError(
                f"{self.id}: unknown layout under {root}: images/ + labels/ both at the root and in {others}"
            )
        out = []
        for rel, path in units:
            micro = mag = ""
            for part in filter(None, rel.split("/")):
                parsed = parse_domain_part(part)
                if parsed is None:
                    raise CorruptInputError(
                        f"{self.id}: unknown layout: {path} holds images/ + labels/ but its folder name "
                        f"{part!r} has no microscope (HCM/LCM, H/L), magnification (10x/40x/100x) or camera "
                        f"(C<n>) token"
                    )
                micro, mag = parsed[0] or micro, parsed[1] or mag
            out.append(Domain(rel, path, micro, mag, self._layout_of(path) or "miccai"))
        layouts = sorted({d.layout for d in out})
        self.report.info["layout"] = " + ".join(LAYOUT_NAMES[k] for k in layouts)
        for d in out:
            if d.layout == "released":
                for extra in ("json_labels", "txt_labels/WBC_Detection"):
                    if (d.path / extra).exists():
                        self.report.skip(f"{d.rel + '/' if d.rel else ''}{extra}/",
                                         "not read: the YOLO AttriDet labels carry boxes and attributes")
        return out

    def check(self, root: Path) -> None:
        self.domains(root)

    def locate(self, raw_dir: Path | str) -> Path:
        try:
            return super().locate(raw_dir)
        except MissingInputError as e:
            raw = Path(raw_dir)
            start = next((d for d in (raw / self.id, raw / "raw" / self.id) if d.is_dir()), raw)
            hint = _diagnose(start)
            raise MissingInputError(f"{e} {hint}".strip()) from None

    # ------------------------------------------------------------------ class names
    def class_names(self, root: Path) -> list[str]:
        found: dict[tuple[str, ...], Path] = {}
        for f in sorted(root.glob("*.yaml")) + sorted(root.glob("data/*.yaml")):
            names = yolo.read_yaml_names(f, required=False)
            if names is not None:
                found.setdefault(tuple(names), f)
        if len(found) > 1:
            a, b = list(found.items())[:2]
            raise CorruptInputError(f"{b[1]}: class names {list(b[0])} differ from {a[1]}: {list(a[0])}")
        if found:
            names, f = next(iter(found.items()))
            self.class_source = f.relative_to(root).as_posix()
            self.report.info["class_names_from"] = self.class_source
            if names != CLASS_NAMES:
                log.warning("%s: %s names differ from the published WBC_v1.yaml: %s", self.id, f, list(names))
            return list(names)
        self.class_source = "built-in (authors' data/WBC_v1.yaml)"
        self.report.info["class_names_from"] = self.class_source
        return list(CLASS_NAMES)

    # ------------------------------------------------------------------ parsing
    def detect_variant(self, label_files: list[Path]) -> Optional[int]:
        """Column count shared by every label file's first line (11 or 12); ``None`` if all are empty."""
        first: dict[int, Path] = {}
        for f in label_files:
            n = yolo.first_row_columns(f)
            if n is None:
                continue
            if n in self.foreign_columns:
                raise CorruptInputError(f"{f}: {self.foreign_columns[n]}")
            if n not in self.variants:
                extra = f" + {self.region_columns} region values" if self.region_columns else ""
                want = " or ".join(f"{c} (cls x y w h{extra} + {len(a)} attributes)" for c, a in self.variants.items())
                raise CorruptInputError(f"{f}: line 1 has {n} columns, expected {want}")
            first.setdefault(n, f)
            if len(first) > 1:
                (n1, f1), (n2, f2) = sorted(first.items())
                raise CorruptInputError(
                    f"{self.id}: label files mix variants: {f1} has {n1} columns ({len(self.variants[n1])} attributes) but "
                    f"{f2} has {n2} ({len(self.variants[n2])} attributes)"
                )
        return next(iter(first), None)

    def input_files(self, root: Path) -> Iterator[Path]:
        for p in sorted(root.glob("*.yaml")) + sorted(root.glob("data/*.yaml")):
            yield p
        for d in self.domains(root):
            for sub in (d.images, d.labels):
                yield from disk.walk_files(sub)

    def prepare(self, root: Path) -> None:
        """Main process: class names, domains, every image/label pair, the variant (pre-scan of
        each label file's first line). The per-file parse runs in the workers (:meth:`parse`)."""
        super().prepare(root)
        self._root = root
        self.names = self.class_names(root)
        domains = self.domains(root)
        pairs = [(d, p) for d in domains for p in yolo.iter_yolo_pairs(d.images, d.labels, self.report, root)]
        for d, p in pairs:
            if p.label is None:
                rel = disk.rel(d.labels / p.split / f"{p.image.stem}.txt", root)
                raise MissingInputError(
                    f"{p.image}: label file {rel} is missing (every LeukemiaAttri image needs a YOLO label "
                    f"file; an image without cells has an empty one)"
                )
        self.ncols = self.detect_variant([p.label for _, p in pairs])
        self.variant = len(self.variants[self.ncols]) if self.ncols else None
        self.report.info["attribute_variant"] = f"{self.variant} attribute columns" if self.variant else "no labelled cell"
        self._pairs = pairs

    def records(self, root: Path) -> Iterator[LaRecord]:
        if getattr(self, "_root", None) != root:
            self.prepare(root)
        for d, p in self._pairs:
            yield LaRecord(d, p)

    def parse(self, rec: LaRecord) -> RawSample:
        return self._sample(self._root, rec.domain, rec.pair, self.names, self.ncols)

    def _sample(self, root: Path, d: Domain, p: yolo.YoloPair, names: list[str], ncols: Optional[int]) -> RawSample:
        parsed = yolo.parse_yolo(p.label, columns=(ncols,) if ncols else tuple(self.variants), num_classes=len(names))
        attr_names = self.variants[ncols] if ncols else ()
        objects = []
        k = self.region_columns
        for r in parsed.rows:
            attrs = {a: _code(tok, p.label, r.line, a) for a, tok in zip(attr_names, r.extra[k:])}
            objects.append(RawObject(names[r.cls], r.box, attributes=attrs))
        flags = [f"attr_variant:{len(attr_names)}"] if ncols else []
        if k:
            flags += self.region_flags(p, parsed.rows)
        meta: dict[str, str] = {}
        subtype = ""
        group = ""
        m = NAME_RE.match(p.image.stem)
        if m:
            a, b, code, disease = m.groups()
            group = f"{a}_{b}_{disease}"
            if disease.upper() in LEUKEMIA_SUBTYPES:
                meta["disease"] = "leukemia"
                subtype = disease
            else:
                flags.append(f"unknown_disease_token:{disease}")
            file_mag = _objective(int(code), total=True) if int(code) % 10 == 0 else ""
            if d.magnification and file_mag and file_mag != d.magnification:
                flags.append(f"magnification_conflict:{d.magnification}!={file_mag}")
            if d.magnification or file_mag:
                meta["magnification"] = d.magnification or file_mag
        else:
            flags.append("unparsed_file_name")
            if d.magnification:
                meta["magnification"] = d.magnification
        if d.microscope:
            meta["microscope"] = d.microscope
        return RawSample(
            rel_path=disk.rel(p.image, root),
            image_path=p.image,
            source_split=p.split,
            subset="/".join(s for s in (d.rel, subtype) if s),
            group_id=group,
            objects=objects,
            annotation_file=disk.show(p.label),
            meta=meta,
            qc_flags=flags,
        )

    def region_flags(self, p: yolo.YoloPair, rows) -> list[str]:
        """Row flags for the region columns of a release that has them (none here)."""
        return []

    # ------------------------------------------------------------------ synthetic data
    def fake_region(self, rng: np.random.Generator, box: tuple[float, float, float, float]) -> list:
        """Values written between the box and the attributes by the fake (none here)."""
        return []

    def fake(self, out: Path, seed: int = 0, variant: Optional[int] = None) -> FakeTruth:
        """Synthetic YOLO release. ``variant`` = number of attribute columns (6 or 7); default: 7 for
        odd seeds, 6 for even ones. Seeds with ``seed % 4 in (1, 2)`` write the multi-domain layout
        ``out/LeukemiaAttri/{HCM_100x,L_40x_C2}/{images,labels}/{train,val,test}`` with
        ``data/WBC_v1.yaml`` (the LCM copy keeps the ``1000`` code in its file names -> a
        magnification_conflict flag); the others the single-domain layout
        ``out/LeukemiaAttri_YOLO/LeukemiaAttri/{images,labels}/...`` without a YAML (built-in names).
        Quirks: several diseases (ALL, AML, APML, CLL, CML), class 0 ``None``, the n/a code ``2``, an
        image without cells (empty label file), a label file with trailing blank lines and extra
        spaces. Images are 256x256 PNG (the real ones are 640x640; smaller keeps tests fast)."""
        n_attr = variant if variant is not None else (7 if seed % 2 else 6)
        allowed = sorted(len(a) for a in self.variants.values())
        if n_attr not in allowed:
            raise ValueError(f"variant must be {' or '.join(map(str, allowed))} attribute columns, got {n_attr}")
        attr_names = ATTRS_7 if n_attr == 7 else ATTRS_6
        rng = np.random.default_rng(seed)
        multi = seed % 4 in (1, 2)
        if multi:
            root = Path(out) / self.fake_dirs[1]
            (root / "data").mkdir(parents=True, exist_ok=True)
            (root / "data" / "WBC_v1.yaml").write_text(
                "train: ../images/train\nval: ../images/val\ntest: ../images/test\n\n\n# number of classes\n"
                "nc: 14\n\n# class names\nnames: " + "[" + ",".join(f'"{n}"' for n in CLASS_NAMES) + "]\n",
                encoding="utf-8",
            )
            domains = [("HCM_100x", "HCM", "100x"), ("L_40x_C2", "LCM", "40x")]
        else:
            root = Path(out) / self.fake_dirs[0]
            domains = [("", "", "")]
        stems = [("4_15_1000_ALL", "train"), ("2_3_1000_AML", "train"), ("7_21_1000_APML", "val"),
                 ("11_2_1000_CLL", "test"), ("16_9_1000_CML", "train")]
        if not multi:
            stems.append(("5_1_1000_AML", "test"))
        W = H = 256
        truth: dict[str, FakeSample] = {}
        for di, (drel, micro, mag) in enumerate(domains):
            base = root / drel if drel else root
            for k, (stem, split) in enumerate(stems):
                empty = k == 2
                n = 0 if empty else int(rng.integers(1, 5))
                classes = [int(c) for c in rng.integers(0, len(CLASS_NAMES), size=n)]
                if k == 0 and n:
                    classes[0] = 0  # the artefact class "None"
                boxes = syn.random_boxes(rng, W, H, n, lo=20, hi=70)
                lines, coco, oattrs = [], [], []
                for c, b in zip(classes, boxes):
                    codes = [int(rng.integers(0, 3))] if n_attr == 7 else []   # Cell Size: 0/1/2
                    codes += [int(v) for v in rng.choice([0, 1, 1, 2], size=6)]  # 2 = n/a sentinel
                    yb = yolo.coco_to_yolo(b, W, H)
                    line = yolo.format_row(c, yb, self.fake_region(rng, yb) + codes)
                    lines.append(line)
                    coco.append(yolo.yolo_to_coco([float(t) for t in line.split()[1:5]], W, H))
                    oattrs.append({a: str(v) for a, v in zip(attr_names, codes)})
                im = syn.smear(W, H, [(b, "wbc") for b in boxes], seed * 1000 + di * 100 + k)
                img = base / "images" / split / f"{stem}.png"
                img.parent.mkdir(parents=True, exist_ok=True)
                img.write_bytes(syn.encode(im, "PNG"))
                lab = base / "labels" / split / f"{stem}.txt"
                if k == 1 and lines:  # extra spaces and trailing blank lines
                    lines = ["  " + ln.replace(" ", "  ") + " " for ln in lines] + ["", "  "]
                yolo.write_yolo(lab, lines)
                rel = img.relative_to(root).as_posix()
                a, b_, _code_, disease = stem.split("_")
                truth[rel] = FakeSample(
                    rel_path=rel, boxes=coco, categories=[CLASS_NAMES[c] for c in classes],
                    object_attributes=oattrs, source_split=split, group_id=f"{a}_{b_}_{disease}",
                )
        return FakeTruth(root=root, samples=truth)

    def corrupt(self, truth: FakeTruth) -> str:
        """Drop the last attribute column of one label line (its file then mixes column counts, or
        has an unknown count): must be rejected naming the label file."""
        for rel in sorted(truth.samples):
            if truth.samples[rel].boxes:
                img = truth.root / rel
                lab = img.parent.parent.parent / "labels" / img.parent.name / f"{img.stem}.txt"
                lines = lab.read_text().splitlines()
                lines[0] = " ".join(lines[0].split()[:-1])
                lab.write_text("\n".join(lines) + "\n")
                return lab.name
        return super().corrupt(truth)  # pragma: no cover


def _code(tok: str, path: Path, line: int, name: str) -> str:
    try:
        v = float(tok)
    except ValueError:
        v = float("nan")
    if not v == v or not float(v).is_integer() or v < 0:
        raise CorruptInputError(f"{path}: line {line}: attribute {name!r} code {tok!r} is not a non-negative integer")
    return str(int(v))


def _diagnose(raw_dir: Path, max_depth: int = 8) -> str:
    """Explain why no layout was found: images without labels (the GitHub repository), COCO copy."""
    if not raw_dir.is_dir():
        return ""
    images: list[Path] = []
    labels = 0
    coco: list[Path] = []
    yamls: list[Path] = []
    base_depth = len(raw_dir.parts)
    for dirpath, dirnames, filenames in os.walk(raw_dir):
        d = Path(dirpath)
        if len(d.parts) - base_depth >= max_depth:
            dirnames[:] = []
        dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
        for fn in sorted(filenames):
            low = fn.lower()
            if low.endswith(yolo.IMAGE_EXTENSIONS):
                images.append(d / fn)
            elif low.endswith(".txt") and low not in yolo.CLASS_FILE_NAMES and (
                    NAME_RE.match(Path(fn).stem) or {"labels", "attridet", "txt_labels"} & {x.lower() for x in d.parts}):
                labels += 1
            elif low.endswith(".json") and d.name.lower() == "annotations":
                coco.append(d / fn)
            elif low.endswith((".yaml", ".yml")):
                yamls.append(d / fn)
    hints = []
    if coco:
        hints.append(f"Found COCO annotations ({coco[0]}); this adapter reads the YOLO release "
                     f"(images/ + labels/ with attribute columns).")
    if images and not labels:
        ex = images[0].relative_to(raw_dir).as_posix()
        ys = f" and {yamls[0].relative_to(raw_dir).as_posix()}" if yamls else ""
        hints.append(f"Found {len(images)} image(s) (e.g. {ex}){ys} but no YOLO label files: the labels are "
                     f"missing (the GitHub repository ships sample images without labels); download the YOLO "
                     f"release from the authors' Google Drive.")
    elif images and labels:
        hints.append(f"Found {len(images)} image(s) and {labels} label file(s) but in neither known layout "
                     f"(unknown layout): expected <domain>/images/ + <domain>/labels/ (MICCAI YOLO release) or "
                     f"<H|L>_<mag>_<camera>/Images/ + txt_labels/AttriDet/ (released LeukemiaAttri_Dataset).")
    return " ".join(hints)


ADAPTER = LeukemiaAttriAdapter
