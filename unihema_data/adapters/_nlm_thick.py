"""Shared reader of the NLM (LHNCBC) thick-smear malaria releases: ``nlm_thick_pf``
(ThickBloodSmears_150) and ``nlm_thick_pv`` (NIH-NLM-ThickBloodSmearsPV).

Native layout (research note datasets-detection.md sections 14-15, from third-party loaders;
the class of each source names its folders)::

    <root>/<images dir>/<patient>/<image>.jpg
    <root>/<annotations dir>/<patient>/<image>.txt

Annotation file (one per image, comma separated)::

    count,A,B                                   header: A,B = the image's height,width (or width,height)
    id,label,comment,shape,npoints,x1,y1[,x2,y2,...]

Conventions (what is UNCONFIRMED is detected at run time and reported, never assumed):

* Header order: third-party parsers disagree on ``H,W`` vs ``W,H``. Each file's header is compared
  with its image's real size; the order found is counted in ``report.info["header_order"]``
  (``count,H,W`` / ``count,W,H`` / ``square`` when both fit). A header that matches neither is an
  error naming file and line 1. ``count`` is compared with the number of object lines; a
  difference is flagged on the row (``nlm_header_count:<count>!=<lines>``) and in the run report.
* Shapes: ``Circle`` (2 points: centre and a point on the circumference) -> ``RawObject.circle``
  ``(cx, cy, x, y)`` verbatim: the core keeps the centre in ``point`` and stores the circumscribed square as
  the box with ``bbox_source = from_circle``. ``Point`` (1 point) -> ``RawObject.point`` only: no
  size is invented (``bbox_source = from_point``, zero-size box). ``Polygon`` (>= 3 points, the
  thin-smear variant of the format) -> a polygon mask, box from the mask (``from_mask``). Any other
  shape, a point count that disagrees with the coordinates, a non-finite coordinate or a centre /
  point outside the image is an error naming file and line. Coordinates are taken as continuous
  pixel positions (base UNCONFIRMED; a 0/1 base shift is below the circles' size). A circle
  reaching past the border is clipped by the core and flagged ``clipped_box:<i>:circle:cx,cy,x,y``.
* The ``id`` and ``comment`` fields are not converted (``comment`` is ``No_Comment`` in every
  quoted line).
* Pairing: the same stem in the same patient folder. Where the exact stem is missing, an
  image and an annotation whose stems are equal once ``_`` is removed are paired (a third-party
  loader strips ``_`` from ``All_PvTk`` names, UNCONFIRMED) and each such pair is reported
  (``repaired``); ``report.info["name_matching"]`` says how many. Two files meeting on one key are
  an error naming both. An image without an annotation file is reported (``orphaned``) and not
  converted (no objects are invented for it); an annotation file without its image is an error.
* ``group_id`` = the patient folder; no published split (grouped split by patient).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator

import numpy as np
from ..errors import CorruptInputError, MissingInputError
from ..formats import disk
from ..formats.disk import show
from ..refs import Polygon
from . import _synthetic as syn
from .base import Adapter, FakeSample, FakeTruth, RawObject, RawSample, _glob_any

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
SHAPES = {"circle": 2, "point": 1, "polygon": None}


@dataclass(frozen=True)
class NlmRecord:
    rel_path: str
    image: Path
    ann: Path
    patient: str
    width: int
    height: int
    count: int


def _header(path: Path) -> tuple[int, int, int]:
    for lineno, line in disk.read_lines(path, "annotation file"):
        parts = [p.strip() for p in line.split(",")]
        try:
            if len(parts) != 3:
                raise ValueError
            vals = tuple(int(p) for p in parts)
        except ValueError:
            raise CorruptInputError(f"{show(path)}:{lineno}: expected the header 'count,height,width' "
                                    f"(three integers), got {line.strip()!r}") from None
        if min(vals) < 0:
            raise CorruptInputError(f"{show(path)}:{lineno}: negative value in the header {line.strip()!r}")
        return vals  # type: ignore[return-value]
    raise CorruptInputError(f"{show(path)}: empty annotation file (expected the header 'count,height,width')")


def _key(stem: str) -> str:
    return stem.replace("_", "")


class NlmThickAdapter(Adapter):
    """Base of the two NLM thick-smear adapters; a subclass sets ``id``, the folder names and the
    fake's labels."""

    version = "1"
    tasks = ("detection",)
    box_format = None
    images_dir: ClassVar[str] = ""
    annotations_dir: ClassVar[str] = ""
    #: labels written by the fake (parasite label, WBC label)
    fake_labels: ClassVar[tuple[str, str]] = ("Parasite", "White_Blood_Cell")
    #: header order written by the fake: "hw" or "wh"
    fake_header: ClassVar[str] = "hw"
    fake_top: ClassVar[str] = ""

    def signature(self, path: Path) -> bool:
        return _glob_any(path, f"{self.annotations_dir}/*/*.txt")

    # ------------------------------------------------------------------ listing
    def records(self, root: Path) -> Iterator[NlmRecord]:
        idir, adir = root / self.images_dir, root / self.annotations_dir
        ipat, ifiles = disk.list_dir(idir, self.report, root)
        apat, afiles = disk.list_dir(adir, self.report, root)
        for f in (*ifiles, *afiles):
            self.report.skip(disk.rel(f, root), "file outside a patient folder")
        ipat_by = disk.index_by_stem(ipat, "patient folder", key=lambda p: p.name)
        apat_by = disk.index_by_stem(apat, "patient folder", key=lambda p: p.name)
        for name in sorted(set(apat_by) - set(ipat_by)):
            raise MissingInputError(f"{show(apat_by[name])}: annotations of patient {show(name)} but no image "
                                    f"folder {self.images_dir}/{show(name)}")
        orders: dict[str, int] = {}
        fuzzy = 0
        found = False
        for name in sorted(ipat_by, key=lambda n: n.encode("utf-8", "surrogateescape")):
            images = disk.list_files(ipat_by[name], IMAGE_SUFFIXES, self.report, root, "an image file")
            disk.refuse_case_collisions(images)
            anns = (disk.list_files(apat_by[name], (".txt",), self.report, root, "an annotation file")
                    if name in apat_by else [])
            disk.refuse_case_collisions(anns, "annotation")
            by_img = disk.index_by_stem(images, "image")
            by_ann = disk.index_by_stem(anns, "annotation")
            pairs = {s: (by_img[s], by_ann[s]) for s in set(by_img) & set(by_ann)}
            lone_i = {s: p for s, p in by_img.items() if s not in by_ann}
            lone_a = {s: p for s, p in by_ann.items() if s not in by_img}
            if lone_i and lone_a:  # names differing by '_' (UNCONFIRMED quirk of All_PvTk)
                ki = disk.index_by_stem(lone_i.values(), "image", key=lambda p: _key(p.stem))
                ka = disk.index_by_stem(lone_a.values(), "annotation", key=lambda p: _key(p.stem))
                for k in sorted(set(ki) & set(ka)):
                    img, ann = ki[k], ka[k]
                    pairs[img.stem] = (img, ann)
                    lone_i.pop(img.stem)
                    lone_a.pop(ann.stem)
                    fuzzy += 1
                    self.report.repair(disk.rel(img, root), f"paired with {disk.rel(ann, root)} "
                                                            "(names differ only by '_')")
            for s in sorted(lone_a):
                raise MissingInputError(f"{show(lone_a[s])}: image {self.images_dir}/{show(name)}/{show(s)}.jpg is missing")
            for s in sorted(lone_i):
                self.report.orphan(disk.rel(lone_i[s], root), "image without an annotation file (not converted)")
            for s in sorted(pairs, key=lambda t: t.encode("utf-8", "surrogateescape")):
                img, ann = pairs[s]
                count, a, b = _header(ann)
                w, h = disk.image_size(img)
                if (a, b) == (h, w) and h == w:
                    order = "square (either order)"
                elif (a, b) == (h, w):
                    order = "count,H,W"
                elif (a, b) == (w, h):
                    order = "count,W,H"
                else:
                    raise CorruptInputError(f"{show(ann)}:1: header size {a},{b} matches neither height,width nor "
                                            f"width,height of image {show(img.name)} ({w}x{h})")
                orders[order] = orders.get(order, 0) + 1
                found = True
                yield NlmRecord(disk.rel(img, root), img, ann, name, w, h, count)
        if not found:
            raise MissingInputError(f"{self.id}: no image with an annotation file under {show(root)} (expected "
                                    f"{self.images_dir}/<patient>/<image>.jpg with {self.annotations_dir}/<patient>/<image>.txt)")
        self.report.info["header_order"] = ", ".join(f"{k}: {v} files" for k, v in sorted(orders.items()))
        self.report.info["name_matching"] = (f"{fuzzy} pairs matched ignoring '_'" if fuzzy else "exact names")

    # ------------------------------------------------------------------ parsing
    def parse(self, rec: NlmRecord) -> RawSample:
        W, H = rec.width, rec.height
        lines = disk.read_lines(rec.ann, "annotation file")[1:]
        objects: list[RawObject] = []
        for lineno, line in lines:
            where = f"{show(rec.ann)}:{lineno}"
            f = [p.strip() for p in line.split(",")]
            if len(f) < 7:
                raise CorruptInputError(f"{where}: expected 'id,label,comment,shape,npoints,x1,y1[,x2,y2...]', got {line.strip()!r}")
            label, shape = f[1], f[3]
            kind = shape.lower()
            if not label:
                raise CorruptInputError(f"{where}: empty label")
            if kind not in SHAPES:
                raise CorruptInputError(f"{where}: unknown shape {shape!r} (expected Circle, Point or Polygon)")
            try:
                n = int(f[4])
            except ValueError:
                raise CorruptInputError(f"{where}: point count {f[4]!r} is not an integer") from None
            try:
                xy = [float(v) for v in f[5:]]
            except ValueError:
                raise CorruptInputError(f"{where}: non-numeric coordinate in {','.join(f[5:])!r}") from None
            if len(xy) != 2 * n or (SHAPES[kind] is not None and n != SHAPES[kind]) or (kind == "polygon" and n < 3):
                need = {"circle": "2 points (centre, rim)", "point": "1 point", "polygon": ">= 3 points"}[kind]
                raise CorruptInputError(f"{where}: {shape} with point count {f[4]} and {len(xy)} coordinates "
                                        f"(expected {need}, two coordinates each)")
            if not all(math.isfinite(v) for v in xy):
                raise CorruptInputError(f"{where}: non-finite coordinate in {','.join(f[5:])!r}")
            if kind in ("circle", "point") and not (0 <= xy[0] <= W and 0 <= xy[1] <= H):
                raise CorruptInputError(f"{where}: {shape.lower()} centre ({xy[0]:g}, {xy[1]:g}) is outside the {W}x{H} image")
            if kind == "circle":
                objects.append(RawObject(label, None, circle=tuple(xy)))  # centre + rim point, verbatim
            elif kind == "point":
                objects.append(RawObject(label, None, point=(xy[0], xy[1])))
            else:
                objects.append(RawObject(label, None, mask=Polygon.of(xy)))
        notes, flags = [], []
        if rec.count != len(objects):
            flags.append(f"nlm_header_count:{rec.count}!={len(objects)}")
            notes.append(("flagged", rec.rel_path, f"header count {rec.count} but {len(objects)} object lines "
                                                   f"in {rec.ann.name}"))
        return RawSample(rel_path=rec.rel_path, image_path=rec.image, group_id=rec.patient, objects=objects,
                         annotation_file=show(rec.ann), qc_flags=flags, notes=notes)

    def input_files(self, root: Path) -> Iterator[Path]:
        for sub in (self.images_dir, self.annotations_dir):
            yield from disk.walk_files(root / sub)

    # ------------------------------------------------------------------ synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Two patients, portrait phone-like fields (small: 300x400, one square 320x320), circles
        (parasites, one reaching past the border: clipped) and points (WBCs), float coordinates,
        the subclass's header order, an image without an annotation file, one annotation whose
        header count disagrees, CRLF line ends in one file, a ``.DS_Store``, and a name pair
        differing by ``_``."""
        rng = np.random.default_rng(seed)
        root = Path(out) / self.fake_top
        par, wbc = self.fake_labels
        truth: dict[str, FakeSample] = {}
        items = [("P01", "IMG_0001", 300, 400), ("P01", "IMG_0002", 300, 400), ("P01", "IMG_0003", 320, 320),
                 ("P07", "IMG_0101", 300, 400), ("P07", "IMG_0102", 300, 400)]
        for k, (pat, stem, W, H) in enumerate(items):
            objs, lines, boxes, cats = [], [], [], []
            for j in range(int(rng.integers(2, 6))):
                cx, cy = round(float(rng.uniform(20, W - 20)), 2), round(float(rng.uniform(20, H - 20)), 2)
                if j == 0 and k == 1:
                    cx = W - 3.5  # a circle reaching past the right border
                if j % 3 == 2:
                    lines.append(f"{k}-{j},{wbc},No_Comment,Point,1,{cx:g},{cy:g}")
                    boxes.append([cx, cy, 0.0, 0.0])
                    cats.append(wbc)
                    objs.append(((cx - 9, cy - 9, 18, 18), "wbc"))
                else:
                    r = float(rng.uniform(4, 12))
                    rx, ry = round(cx + r, 2), cy
                    r = math.hypot(rx - cx, ry - cy)
                    lines.append(f"{k}-{j},{par},No_Comment,Circle,2,{cx:g},{cy:g},{rx:g},{ry:g}")
                    x0, y0 = max(cx - r, 0.0), max(cy - r, 0.0)
                    boxes.append([x0, y0, min(cx + r, W) - x0, min(cy + r, H) - y0])
                    cats.append(par)
                    objs.append(((cx - r, cy - r, 2 * r, 2 * r), "parasite"))
            img_name = stem
            ann_name = stem.replace("_", "") if k == 3 else stem  # the '_' quirk
            idir = root / self.images_dir / pat
            adir = root / self.annotations_dir / pat
            idir.mkdir(parents=True, exist_ok=True)
            adir.mkdir(parents=True, exist_ok=True)
            im = syn.smear(W, H, objs, seed * 100 + k)
            (idir / f"{img_name}.jpg").write_bytes(syn.encode(im, "JPEG", quality=90))
            count = len(lines) + (1 if k == 4 else 0)  # header count disagreeing with the lines
            a, b = (H, W) if self.fake_header == "hw" else (W, H)
            text = "\n".join([f"{count},{a},{b}", *lines]) + "\n"
            if k == 2:
                text = text.replace("\n", "\r\n")
            (adir / f"{ann_name}.txt").write_text(text, newline="")
            rel = f"{self.images_dir}/{pat}/{img_name}.jpg"
            truth[rel] = FakeSample(rel_path=rel, boxes=boxes, categories=cats, group_id=pat)
        # an image without annotations (reported, not converted) and macOS junk
        (root / self.images_dir / "P07" / "IMG_0199.jpg").write_bytes(
            syn.encode(syn.smear(300, 400, [], seed + 99), "JPEG", quality=90))
        (root / self.annotations_dir / "P07" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        return FakeTruth(root=root, samples=truth)

    def corrupt(self, truth: FakeTruth) -> str:
        """A circle line with a missing rim coordinate: the error names the annotation file."""
        rel = sorted(truth.samples)[0]
        pat = Path(rel).parent.name
        ann = truth.root / self.annotations_dir / pat / f"{Path(rel).stem}.txt"
        text = ann.read_text()
        lines = text.splitlines()
        for i, ln in enumerate(lines):
            if ",Circle," in ln:
                lines[i] = ln.rsplit(",", 1)[0]
                break
        ann.write_text("\n".join(lines) + "\n")
        return ann.name
