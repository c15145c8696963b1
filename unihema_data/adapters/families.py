"""Format-family bases: a source is a short declaration, a few hooks and its fake.

Each base implements the v2 split of :class:`~unihema_data.adapters.base.Adapter`: the main
process *lists* small records (:meth:`records`: paths and small refs), the worker processes
*parse* them (:meth:`parse`: the XML, the label file; pixels stay lazy references decoded by
the core). All disk access goes through :mod:`unihema_data.formats.disk` (junk skipped and
reported, FIFOs refused, text encodings checked, case collisions never resolved silently).

Families and their per-record hooks (override in the source's class):

========================  ========================================================================
:class:`ClassFolderAdapter`  ``<root>/<level>/.../<image>``: ``label``, ``label_table``,
                             ``group_id``, ``split``, ``subset``, ``meta``, ``flags``
:class:`VocAdapter`          ``Annotations/*.xml`` + ``JPEGImages/`` + ``ImageSets/Main/*.txt``
                             (``<filename>`` and ``<size>`` checked against the image):
                             ``category``, ``group_id``, ``split``, ``meta``
:class:`YoloAdapter`         ``images/[<split>/]`` + ``labels/[<split>/]``, class names from
                             ``data.yaml`` / ``classes.txt``: ``class_names``, ``object_attributes``,
                             ``group_id``, ``meta``, ``flags``
:class:`ImageMaskPairAdapter`  images and semantic masks paired by stem (``mask_key``), orphans
                             reported both ways: ``label``, ``group_id``, ``split``, ``meta``
:class:`InstanceMaskPairAdapter`  the same with instance masks (one object per value / colour,
                             lazy refs): ``instance_category``
:class:`CocoJsonAdapter`     COCO instances JSON (pycocotools): polygons / RLE as lazy refs:
                             ``category``, ``group_id``, ``meta``
:class:`CvatXmlAdapter`      CVAT for images 1.1 XML: boxes and polygons (rasterized by
                             pycocotools in the workers): ``category``, ``group_id``, ``meta``
========================  ========================================================================

Every base derives ``input_files`` (the fingerprint) from what it lists.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Optional, Sequence

from ..boxes import BoxFormat
from ..errors import CorruptInputError, MissingInputError
from ..formats import disk, yolo
from ..formats.disk import show
from ..formats.voc import parse_voc
from ..refs import Polygon, Rle
from .base import Adapter, RawObject, RawSample


@dataclass(frozen=True)
class FileRecord:
    """One listed file: ``rel_path`` (POSIX, relative to the root), its ``path`` and the folder
    names between the root and the file, by level name (``parts["class"]``)."""

    rel_path: str
    path: Path
    parts: tuple[tuple[str, str], ...] = ()
    extra: tuple[Any, ...] = ()

    def part(self, level: str, default: str = "") -> str:
        return dict(self.parts).get(level, default)


# ============================================================================ class folders
class ClassFolderAdapter(Adapter):
    """``<root>/<levels...>/<image>``: one folder level per entry of :attr:`levels` (e.g.
    ``("class",)``, ``("split", "class")``, ``("patient", "class")``). The label is the
    ``class`` level's folder name unless :meth:`label` says otherwise. Hidden files, ``__MACOSX``
    and ``.DS_*`` are skipped and reported; files without an image extension and unexpected
    sub-folders are skipped and reported; names differing only in case are an error naming both."""

    tasks = ("classification",)
    levels: ClassVar[tuple[str, ...]] = ("class",)
    image_suffixes: ClassVar[tuple[str, ...]] = disk.IMAGE_SUFFIXES
    #: expected folder names of the ``class`` level; another name is an error (empty: any)
    classes: ClassVar[tuple[str, ...]] = ()
    #: files of the source that sit between the folders (label lists, READMEs): not reported
    side_files: ClassVar[tuple[str, ...]] = ()

    # hooks ------------------------------------------------------------------
    def label(self, rec: FileRecord) -> Optional[str]:
        return rec.part("class") or None

    def label_table(self, rec: FileRecord) -> str:
        return "labels"

    def group_id(self, rec: FileRecord) -> str:
        return rec.part("patient")

    def split(self, rec: FileRecord) -> str:
        return rec.part("split")

    def subset(self, rec: FileRecord) -> str:
        return ""

    def meta(self, rec: FileRecord) -> dict[str, str]:
        return {}

    def flags(self, rec: FileRecord) -> list[str]:
        return []

    def attributes(self, rec: FileRecord) -> dict[str, Any]:
        return {}

    def image_root(self, root: Path) -> Path:
        """Folder holding the first level (default: the root)."""
        return root

    # machinery ---------------------------------------------------------------
    def records(self, root: Path) -> Iterator[FileRecord]:
        base = self.image_root(root)
        found = False
        for folder, parts in self._leaf_folders(base, root, self.report):
            files = disk.list_files(folder, self.image_suffixes, self.report, root, what="an image file")
            # X.jpg / x.JPG: one picture twice, or two pictures a case-insensitive file system cannot
            # hold; refused like in every other family (never kept or picked without a word)
            disk.refuse_case_collisions(files)
            for f in files:
                found = True
                yield FileRecord(disk.rel(f, root), f, parts)
        if not found:
            raise MissingInputError(f"{self.id}: no images under {show(base)} "
                                    f"(expected {'/'.join('<' + lv + '>' for lv in self.levels)}/<image>)")

    def _leaf_folders(self, base: Path, root: Path, report=None) -> Iterator[tuple[Path, tuple[tuple[str, str], ...]]]:
        def walk(folder: Path, depth: int, parts: tuple):
            if depth == len(self.levels):
                yield folder, parts
                return
            dirs, files = disk.list_dir(folder, report, root)
            for f in files:
                if report is not None and f.name not in self.side_files:
                    report.skip(disk.rel(f, root), f"file outside a <{self.levels[depth]}> folder")
            for d in dirs:
                level = self.levels[depth]
                if level == "class" and self.classes and d.name not in self.classes:
                    raise CorruptInputError(
                        f"{show(d)}: unknown class folder {show(d.name)!r} (expected one of {', '.join(self.classes)})")
                yield from walk(d, depth + 1, parts + ((level, d.name),))

        yield from walk(base, 0, ())

    def parse(self, rec: FileRecord) -> RawSample:
        return RawSample(
            rel_path=rec.rel_path,
            image_path=rec.path,
            label=self.label(rec),
            label_table=self.label_table(rec),
            source_split=self.split(rec),
            subset=self.subset(rec),
            group_id=self.group_id(rec),
            attributes=self.attributes(rec),
            annotation_file=show(rec.path),
            meta=self.meta(rec),
            qc_flags=self.flags(rec),
        )

    def input_files(self, root: Path) -> Iterator[Path]:
        base = self.image_root(root)
        for folder, _parts in self._leaf_folders(base, root):
            yield from disk.list_files(folder, self.image_suffixes)


# ============================================================================ Pascal VOC
@dataclass(frozen=True)
class VocRecord:
    rel_path: str
    xml: Path
    image: Path
    split: str = ""


class VocAdapter(Adapter):
    """Pascal VOC: ``<annotations_dir>/<stem>.xml`` with ``<images_dir>/<stem>.<ext>`` and the
    published split lists ``<imagesets_dir>/<split>.txt``. Checked in the workers: ``<filename>``
    names the image (stem), ``<size>`` equals the image's header size (a disagreement is an error
    naming the XML: every box would cover the wrong region). An XML without an image is an
    error; an image without an XML is reported (``orphaned``); a split list naming an unknown
    stem is reported."""

    box_format = BoxFormat.VOC
    tasks = ("detection",)
    annotations_dir: ClassVar[str] = "Annotations"
    images_dir: ClassVar[str] = "JPEGImages"
    imagesets_dir: ClassVar[str] = "ImageSets/Main"
    split_names: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    image_suffixes: ClassVar[tuple[str, ...]] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
    check_size: ClassVar[bool] = True
    #: ``<filename>`` not naming the annotation's image: ``"error"`` (default) or ``"flag"``
    #: (converted, reported as ``flagged``) for sources whose tool wrote stale names
    filename_mismatch: ClassVar[str] = "error"
    #: a box with ``xmax < xmin`` or ``ymax < ymin``: ``"error"`` (default) or ``"skip"`` (dropped,
    #: reported as ``skipped``) for sources known to hold such boxes
    inverted_boxes: ClassVar[str] = "error"
    #: an XML whose image is absent: ``"error"`` (default) or ``"orphan"`` (reported, not converted)
    missing_image: ClassVar[str] = "error"

    def tolerate_missing_image(self, xml: Path) -> bool:
        """True when ``xml`` may lack its image (reported as orphaned): default per
        :attr:`missing_image`; override to tolerate only a release's known orphans."""
        return self.missing_image == "orphan"

    # hooks
    def category(self, obj) -> str:
        return obj.name

    def filename_stem(self, filename: str) -> str:
        """Stem of a ``<filename>`` value, compared with the XML's stem (override to normalize)."""
        return Path(filename).stem

    def group_id(self, stem: str) -> str:
        return stem

    def meta(self, rec: VocRecord) -> dict[str, str]:
        return {}

    def subset(self, rec: VocRecord) -> str:
        return ""

    # machinery
    def prepare(self, root: Path) -> None:
        super().prepare(root)
        self.splits = self.read_splits(root)

    def read_splits(self, root: Path) -> dict[str, str]:
        """stem -> split name, from the ``<split>.txt`` lists (a stem in two lists is an error)."""
        folder = root / self.imagesets_dir
        by_stem: dict[str, str] = {}
        for split in self.split_names:
            f = folder / f"{split}.txt"
            if not disk.present(f):  # a split list renamed to a non-UTF-8 name is refused, never "absent"
                continue
            for lineno, line in disk.read_lines(f, "split list"):
                stem = line.split()[0]
                prev = by_stem.setdefault(stem, split)
                if prev != split:
                    raise CorruptInputError(f"{show(f)}:{lineno}: {stem} is listed in both {prev}.txt and {split}.txt")
        return by_stem

    def voc_folders(self, root: Path) -> list[tuple[str, Path, Path]]:
        """``(split, images folder, annotations folder)`` triples (default: one, the split from
        the split lists). Override for releases with one folder pair per split or subset."""
        return [("", root / self.images_dir, root / self.annotations_dir)]

    def _images(self, root: Path, folder: Optional[Path] = None) -> dict[str, str]:
        """stem -> image file name in ``folder`` (names, not paths: a large source's listing is
        held for the whole conversion; each path is built when its record is handed out)."""
        folder = root / self.images_dir if folder is None else folder
        names = disk.list_file_names(folder, self.image_suffixes, self.report, root, "an image file")
        index = disk.index_names_by_stem(folder, names, "image")
        disk.refuse_case_collisions_in(folder, names)  # X.jpg / x.jpg: different stems, still one picture
        return index

    def records(self, root: Path) -> Iterator[VocRecord]:
        splits = getattr(self, "splits", None)
        if splits is None:
            splits = self.splits = self.read_splits(root)
        all_stems: set[str] = set()
        for folder_split, idir, adir in self.voc_folders(root):
            if idir == adir:  # images and XMLs side by side: one listing, told apart by suffix
                files = disk.list_file_names(idir, (*self.image_suffixes, ".xml"), self.report, root,
                                             "an image or XML file")
                xmls = [f for f in files if disk.name_suffix(f).lower() == ".xml"]
                image_names = [f for f in files if disk.name_suffix(f).lower() != ".xml"]
                images = disk.index_names_by_stem(idir, image_names, "image")
                disk.refuse_case_collisions_in(idir, image_names)
                del files, image_names
            else:
                images = self._images(root, idir)
                xmls = disk.list_file_names(adir, (".xml",), self.report, root, "an XML annotation")
            stems = disk.index_names_by_stem(adir, xmls, "annotation")
            all_stems |= set(stems)
            for stem in sorted(set(images) - set(stems)):
                self.report.orphan(disk.rel(idir / images[stem], root), "image without an annotation XML (not converted)")
            del stems
            for name in xmls:
                xml = adir / name
                img_name = images.get(xml.stem)
                if img_name is None and self.tolerate_missing_image(xml):
                    self.report.orphan(disk.rel(xml, root), "annotation XML without an image (not converted)")
                    continue
                if img_name is None:
                    raise MissingInputError(f"{show(xml)}: image {disk.rel(idir, root)}/{show(xml.stem)}.jpg is missing")
                img = idir / img_name
                yield VocRecord(disk.rel(img, root), xml, img, folder_split or splits.get(xml.stem, ""))
        for stem in sorted(set(splits) - all_stems):
            self.report.orphan(f"{self.imagesets_dir}/{splits[stem]}.txt:{stem}", "listed in a split list but has no XML")

    def parse(self, rec: VocRecord) -> RawSample:
        disk.require_regular(rec.xml, "VOC XML file")
        ann = parse_voc(rec.xml, allow_inverted=True) if self.inverted_boxes == "skip" else parse_voc(rec.xml)
        notes: list[tuple[str, str, str]] = []
        flags: list[str] = []
        if ann.filename and self.filename_stem(ann.filename) != rec.xml.stem:
            msg = f"<filename> {ann.filename!r} does not match the annotation file name"
            if self.filename_mismatch != "flag":
                raise CorruptInputError(f"{show(rec.xml)}: {msg}")
            notes.append(("flagged", rec.rel_path, msg))
            flags.append("voc_filename_mismatch")
        kept = []
        for i, o in enumerate(ann.objects):
            x0, y0, x1, y1 = o.bbox
            if x1 < x0 or y1 < y0:  # dropped, said in the run report and on the row
                notes.append(("skipped", rec.rel_path, f"object {i} ({o.name}) has xmax<xmin or ymax<ymin: {o.bbox}"))
                flags.append(f"inverted_box_dropped:{i}:" + ",".join(_exact(v) for v in o.bbox))
            else:
                kept.append(o)
        ann.objects = kept
        return RawSample(
            rel_path=rec.rel_path,
            image_path=rec.image,
            source_split=rec.split,
            group_id=self.group_id(rec.xml.stem),
            objects=[RawObject(self.category(o), o.bbox) for o in ann.objects],
            annotation_file=show(rec.xml),
            meta=self.meta(rec),
            qc_flags=[f"difficult:{i}" for i, o in enumerate(ann.objects) if o.difficult]
            + [f"truncated:{i}" for i, o in enumerate(ann.objects) if o.truncated] + flags,
            subset=self.subset(rec),
            notes=notes,
            declared_size=(ann.width, ann.height, "<size>") if self.check_size and ann.width and ann.height else None,
        )

    def input_files(self, root: Path) -> Iterator[Path]:
        folders = [p for _s, i, a in self.voc_folders(root) for p in (a, i)] + [root / self.imagesets_dir]
        for folder in dict.fromkeys(folders):
            if folder.is_dir():
                yield from disk.list_files(folder)


def _exact(v) -> str:
    """Shortest text reading back as the same float (as ``clipped_box`` flags): the dropped box
    is recoverable from the flag, ``12345678901234567890`` included."""
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


# ============================================================================ YOLO
@dataclass(frozen=True)
class YoloRecord:
    rel_path: str
    image: Path
    label: Optional[Path]
    split: str = ""
    domain: str = ""


class YoloAdapter(Adapter):
    """YOLO: ``<images_dir>/[<split>/]<stem>.<ext>`` with ``<labels_dir>/[<split>/]<stem>.txt``
    (``cls xc yc w h [extra...]``, normalized). Class names from :meth:`class_names` (read in
    :meth:`prepare`). A label file without an image is an error; an image without a label file is
    an error unless :attr:`missing_label_is_empty` (then reported and read as no objects)."""

    box_format = BoxFormat.YOLO
    tasks = ("detection",)
    images_dir: ClassVar[str] = "images"
    labels_dir: ClassVar[str] = "labels"
    columns: ClassVar[tuple[int, ...]] = (5,)
    missing_label_is_empty: ClassVar[bool] = False

    # hooks
    def class_names(self, root: Path) -> list[str]:
        for f in (root / "data.yaml", root / self.labels_dir / "classes.txt", root / "classes.txt"):
            if disk.present(f):  # a FIFO / renamed first choice is refused, never skipped for the next
                return yolo.read_yaml_names(f) if f.suffix == ".yaml" else yolo.read_classes_txt(f)
        raise MissingInputError(f"{self.id}: no class-name file under {show(root)} (data.yaml or classes.txt)")

    def object_attributes(self, rec: YoloRecord, row: yolo.YoloRow) -> dict[str, Any]:
        return {}

    def group_id(self, rec: YoloRecord) -> str:
        return ""

    def meta(self, rec: YoloRecord) -> dict[str, str]:
        return {}

    def flags(self, rec: YoloRecord) -> list[str]:
        return []

    def columns_for(self, rec: YoloRecord) -> tuple[int, ...]:
        return self.columns

    # machinery
    def prepare(self, root: Path) -> None:
        super().prepare(root)
        self.names = self.class_names(root)

    def pairs(self, root: Path, base: Path, domain: str = "") -> Iterator[YoloRecord]:
        for p in yolo.iter_yolo_pairs(base / self.images_dir, base / self.labels_dir, self.report, root):
            if p.label is None:
                rel = disk.rel(base / self.labels_dir / p.split / f"{p.image.stem}.txt", root)
                if not self.missing_label_is_empty:
                    raise MissingInputError(f"{show(p.image)}: label file {rel} is missing")
                self.report.orphan(disk.rel(p.image, root), "image without a label file (read as no objects)")
            yield YoloRecord(disk.rel(p.image, root), p.image, p.label, p.split, domain)

    def records(self, root: Path) -> Iterator[YoloRecord]:
        if not hasattr(self, "names"):
            self.names = self.class_names(root)
        yield from self.pairs(root, root)

    def parse(self, rec: YoloRecord) -> RawSample:
        objects = []
        if rec.label is not None:
            parsed = yolo.parse_yolo(rec.label, columns=self.columns_for(rec), num_classes=len(self.names))
            objects = [RawObject(self.names[r.cls], r.box, attributes=self.object_attributes(rec, r)) for r in parsed.rows]
        return RawSample(
            rel_path=rec.rel_path, image_path=rec.image, source_split=rec.split, group_id=self.group_id(rec),
            objects=objects, annotation_file=show(rec.label or rec.image), meta=self.meta(rec), qc_flags=self.flags(rec),
        )

    def input_files(self, root: Path) -> Iterator[Path]:
        yield from disk.walk_files(root)


# ============================================================================ image/mask pairs
def pair_by_stem(images: Sequence[Path], masks: Sequence[Path], mask_key=lambda p: p.stem,
                 image_key=lambda p: p.stem) -> tuple[list[tuple[Path, Path]], list[Path], list[Path]]:
    """``(pairs, images without a mask, masks without an image)``; keys must be unique on both
    sides (two files for one key is an error naming both)."""
    imgs = disk.index_by_stem(images, "image", key=image_key)
    msks = disk.index_by_stem(masks, "mask", key=mask_key)
    pairs = [(imgs[k], msks[k]) for k in sorted(imgs) if k in msks]
    return pairs, [imgs[k] for k in sorted(set(imgs) - set(msks))], [msks[k] for k in sorted(set(msks) - set(imgs))]


def refuse_case_collisions(paths: Sequence[Path]) -> None:
    """Two files of one folder whose names differ only in case (``X.png`` / ``x.PNG``) cannot
    coexist on a case-insensitive file system and one of them would be picked or both converted
    without a word: an error naming both (:func:`unihema_data.formats.disk.refuse_case_collisions`)."""
    disk.refuse_case_collisions(paths, "")


def refuse_unreadable_names(paths: Sequence[Path]) -> None:
    """A file name that is not valid UTF-8 in a folder of fixed or patterned names cannot be
    matched to anything: an error naming it, rather than a silent orphan."""
    for p in paths:
        if disk.undecodable(p.name):
            raise CorruptInputError(f"{show(p)}: file name is not valid UTF-8; rename it")


class ImageMaskPairAdapter(Adapter):
    """Images and semantic masks paired by stem: ``<images_dir>/<stem>.<ext>`` with
    ``<masks_dir>/<mask stem>.<ext>`` (the same folder allowed when the suffixes differ).
    Masks hold native values (``mask_values``) or colours (``mask_palette``). An image without
    a mask is an error unless :attr:`allow_unmasked_images` (then reported, converted without a
    mask); a mask without an image is reported (``orphaned``)."""

    tasks = ("segmentation",)
    images_dir: ClassVar[str] = "images"
    masks_dir: ClassVar[str] = "masks"
    image_suffixes: ClassVar[tuple[str, ...]] = disk.IMAGE_SUFFIXES
    mask_suffixes: ClassVar[tuple[str, ...]] = (".png", ".bmp", ".tif", ".tiff", ".gif")
    allow_unmasked_images: ClassVar[bool] = False

    # hooks
    def image_key(self, path: Path) -> str:
        return path.stem

    def mask_key(self, path: Path) -> str:
        """Key of a mask file, equal to its image's :meth:`image_key` (e.g. strip ``_mask``)."""
        return path.stem

    def expected_mask_name(self, image: Path) -> str:
        """File name of an image's mask, for the error when it is missing."""
        return f"{image.stem}{self.mask_suffixes[0]}"

    def folders(self, root: Path) -> list[tuple[str, Path, Path]]:
        """``(subset, images folder, masks folder)`` triples (default: one)."""
        return [("", root / self.images_dir, root / self.masks_dir)]

    def label(self, rec: FileRecord) -> Optional[str]:
        return None

    def group_id(self, rec: FileRecord) -> str:
        return ""

    def split(self, rec: FileRecord) -> str:
        return ""

    def meta(self, rec: FileRecord) -> dict[str, str]:
        return {}

    # machinery
    def records(self, root: Path) -> Iterator[FileRecord]:
        for subset, idir, mdir in self.folders(root):
            if idir == mdir:  # one folder: images and masks told apart by their suffixes
                overlap = {x.lower() for x in self.image_suffixes} & {x.lower() for x in self.mask_suffixes}
                if overlap:
                    raise TypeError(f"{self.id}: image and mask suffixes overlap ({sorted(overlap)}) in one folder")
                files = disk.list_files(idir, (*self.image_suffixes, *self.mask_suffixes), self.report, root, "an image or mask")
                images = [f for f in files if f.suffix.lower() in {x.lower() for x in self.image_suffixes}]
                masks = [f for f in files if f not in images]
            else:
                images = disk.list_files(idir, self.image_suffixes, self.report, root, "an image file")
                masks = disk.list_files(mdir, self.mask_suffixes, self.report, root, "a mask file")
            refuse_case_collisions([*images, *masks])
            refuse_unreadable_names([*images, *masks])
            pairs, lonely_images, lonely_masks = pair_by_stem(images, masks, self.mask_key, self.image_key)
            for m in lonely_masks:
                self.report.orphan(disk.rel(m, root), "mask without an image (not converted)")
            if lonely_images and not self.allow_unmasked_images:
                img = lonely_images[0]
                raise MissingInputError(
                    f"{show(img)}: mask {disk.rel(mdir, root)}/{show(self.expected_mask_name(img))} is missing "
                    f"({len(lonely_images)} image(s) without a mask)")
            for img in lonely_images:
                self.report.orphan(disk.rel(img, root), "image without a mask (converted without segmentation)")
            rows = [(i, m) for i, m in pairs] + [(i, None) for i in lonely_images]
            for img, mask in sorted(rows, key=lambda t: os.fsencode(t[0].name)):
                yield FileRecord(disk.rel(img, root), img, (("subset", subset),), (mask,))

    def parse(self, rec: FileRecord) -> RawSample:
        mask = rec.extra[0]
        return RawSample(
            rel_path=rec.rel_path, image_path=rec.path, subset=rec.part("subset"), label=self.label(rec),
            group_id=self.group_id(rec), source_split=self.split(rec), semantic_mask=mask,
            mask_values=dict(self.mask_values), annotation_file=show(mask or rec.path), meta=self.meta(rec),
        )

    def input_files(self, root: Path) -> Iterator[Path]:
        for _s, idir, mdir in self.folders(root):
            yield from disk.list_files(idir)
            if mdir != idir:
                yield from disk.list_files(mdir)


class InstanceMaskPairAdapter(ImageMaskPairAdapter):
    """Images paired with *instance* masks: every non-zero value (or, with
    :attr:`colour_instances`, every non-black colour) is one object. The worker lists the values
    (the file is decoded once per worker and reused by the core) and hands each object over as a
    lazy :class:`~unihema_data.refs.MaskValue` / :class:`~unihema_data.refs.MaskColour`; boxes are
    derived from the masks (``bbox_source = from_mask``). Memory stays flat whatever the number
    of cells: no full-size per-object array is ever built."""

    tasks = ("detection", "segmentation")
    colour_instances: ClassVar[bool] = False

    def instance_category(self, rec: FileRecord, value) -> str:
        """Native category of one instance (default: the ``label`` hook, else ``"cell"``)."""
        return self.label(rec) or "cell"

    def parse(self, rec: FileRecord) -> RawSample:
        from ..refs import MaskColour, MaskValue, instance_values

        s = super().parse(rec)
        mask = s.semantic_mask
        s.semantic_mask, s.mask_values, s.label = None, {}, None
        if mask is not None:
            ref = MaskColour if self.colour_instances else MaskValue
            s.objects = [RawObject(self.instance_category(rec, v), None, mask=ref(mask, v))
                         for v in instance_values(mask, self.colour_instances)]
        return s


# ============================================================================ COCO JSON
@dataclass(frozen=True)
class CocoRecord:
    rel_path: str
    image: Path
    split: str
    width: int
    height: int
    json_file: str
    objects: tuple[tuple[str, tuple[float, ...], Any, dict], ...] = field(default=())


class CocoJsonAdapter(Adapter):
    """COCO instances JSON read with pycocotools: ``annotation_files`` maps a split to a JSON
    file (relative to the root) and its image folder. Objects keep their ``[x, y, w, h]`` box
    and a lazy mask: a polygon list becomes :class:`~unihema_data.refs.Polygon`, an RLE
    (``iscrowd``) becomes :class:`~unihema_data.refs.Rle`; both are rasterized in the workers.
    The JSON's ``width``/``height`` must equal the image's header size."""

    box_format = BoxFormat.XYWH
    tasks = ("detection", "segmentation")
    #: split -> (JSON file, image folder), relative to the root
    annotation_files: ClassVar[dict[str, tuple[str, str]]] = {}

    def category(self, name: str, ann: dict) -> str:
        return name

    def group_id(self, rec: CocoRecord) -> str:
        return ""

    def meta(self, rec: CocoRecord) -> dict[str, str]:
        return {}

    def load_json(self, path: Path):
        from pycocotools.coco import COCO

        text = disk.read_text(path, "COCO JSON file")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise CorruptInputError(f"{show(path)}: not valid JSON ({e})") from None
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise CorruptInputError(f"{show(path)}: not a COCO file (no 'images' list)")
        data.setdefault("annotations", [])
        data.setdefault("categories", [])
        coco = COCO()
        coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            try:
                coco.createIndex()
            except (KeyError, TypeError) as e:
                raise CorruptInputError(f"{show(path)}: malformed COCO record ({type(e).__name__}: {e})") from None
        return coco

    def records(self, root: Path) -> Iterator[CocoRecord]:
        for split, (jf, idir) in sorted(self.annotation_files.items()):
            path = root / jf
            coco = self.load_json(path)
            cats = {c["id"]: str(c["name"]) for c in coco.dataset["categories"]}
            for a in coco.dataset["annotations"]:
                if a.get("image_id") not in coco.imgs:  # would be dropped silently otherwise
                    raise CorruptInputError(f"{show(path)}: annotation {a.get('id')} names unknown image_id {a.get('image_id')!r}")
            for img_id in sorted(coco.imgs):
                im = coco.imgs[img_id]
                objs = []
                for a in coco.imgToAnns.get(img_id, []):  # file order (an odd annotation id cannot reorder)
                    if a.get("category_id") not in cats:
                        raise CorruptInputError(f"{show(path)}: annotation {a.get('id')} has unknown category_id {a.get('category_id')}")
                    seg = a.get("segmentation")
                    if isinstance(seg, list) and seg:
                        ref = Polygon.of(*seg)
                    elif isinstance(seg, dict):
                        c = seg.get("counts")
                        ref = Rle(c if isinstance(c, str) else tuple(c), tuple(seg.get("size", (0, 0))))
                    else:
                        ref = None
                    bbox = tuple(float(v) for v in a["bbox"]) if a.get("bbox") else None
                    objs.append((cats[a["category_id"]], bbox, ref, a))
                file = root / idir / im["file_name"]
                yield CocoRecord(disk.rel(file, root), file, split, int(im.get("width", 0)), int(im.get("height", 0)),
                                 show(path), tuple(objs))

    def parse(self, rec: CocoRecord) -> RawSample:
        w, h = disk.image_size(rec.image)
        if rec.width and rec.height and (w, h) != (rec.width, rec.height):
            raise CorruptInputError(f"{rec.json_file}: image {rec.rel_path} is {w}x{h} but the JSON says {rec.width}x{rec.height}")
        return RawSample(
            rel_path=rec.rel_path, image_path=rec.image, source_split=rec.split, group_id=self.group_id(rec),
            objects=[RawObject(self.category(n, a), b, mask=m) for n, b, m, a in rec.objects],
            annotation_file=rec.json_file, meta=self.meta(rec),
        )

    def input_files(self, root: Path) -> Iterator[Path]:
        for _split, (jf, idir) in sorted(self.annotation_files.items()):
            yield root / jf
            yield from disk.list_files(root / idir)


# ============================================================================ CVAT XML
@dataclass(frozen=True)
class CvatRecord:
    rel_path: str
    image: Path
    width: int
    height: int
    xml: str
    shapes: tuple[tuple[str, str, tuple[float, ...]], ...] = ()  # (kind, label, coords)


class CvatXmlAdapter(Adapter):
    """CVAT for images 1.1 XML (``annotations.xml``): ``<image name width height>`` with
    ``<box label xtl ytl xbr ybr>`` (continuous corners, :attr:`BoxFormat.XYXY`) and
    ``<polygon label points="x,y;x,y;...">`` (lazy :class:`~unihema_data.refs.Polygon`, rasterized
    to RLE with pycocotools in the workers; the box is derived from the mask)."""

    box_format = BoxFormat.XYXY
    tasks = ("detection", "segmentation")
    annotation_file: ClassVar[str] = "annotations.xml"
    images_dir: ClassVar[str] = "images"

    def category(self, label: str) -> str:
        return label

    def group_id(self, rec: CvatRecord) -> str:
        return ""

    def meta(self, rec: CvatRecord) -> dict[str, str]:
        return {}

    def records(self, root: Path) -> Iterator[CvatRecord]:
        yield from self.read_cvat(root, root / self.annotation_file, root / self.images_dir)

    def read_cvat(self, root: Path, path: Path, images: Path) -> Iterator[CvatRecord]:
        """Records of one CVAT XML ``path`` whose ``<image name>`` files live in ``images``
        (sources with one XML per folder call it once per folder)."""
        data = disk.read_bytes(path, "CVAT XML file")
        try:
            doc = ET.fromstring(data)
        except ET.ParseError as e:
            raise CorruptInputError(f"{show(path)}: not readable XML ({e})") from None
        for im in doc.iter("image"):
            name = im.get("name")
            if not name:
                raise CorruptInputError(f"{show(path)}: <image id={im.get('id')!r}> has no name")
            shapes = []
            for sh in im:
                try:
                    if sh.tag == "box":
                        coords = tuple(float(sh.get(k)) for k in ("xtl", "ytl", "xbr", "ybr"))
                    elif sh.tag == "polygon":
                        coords = tuple(float(v) for pt in sh.get("points", "").split(";") for v in pt.split(","))
                    else:
                        continue
                    if not all(math.isfinite(c) for c in coords):
                        raise ValueError("not finite")
                except (TypeError, ValueError):
                    raise CorruptInputError(f"{show(path)}: image {name!r}: <{sh.tag}> has bad coordinates "
                                            f"(not finite numbers)") from None
                shapes.append((sh.tag, sh.get("label", ""), coords))
            file = images / name
            try:
                w, h = int(im.get("width", 0)), int(im.get("height", 0))
            except ValueError:
                raise CorruptInputError(f"{show(path)}: image {name!r} has a non-integer width/height") from None
            yield CvatRecord(disk.rel(file, root), file, w, h, show(path), tuple(shapes))

    def parse(self, rec: CvatRecord) -> RawSample:
        w, h = disk.image_size(rec.image)
        if rec.width and rec.height and (w, h) != (rec.width, rec.height):
            raise CorruptInputError(f"{rec.xml}: image {rec.rel_path} is {w}x{h} but the XML says {rec.width}x{rec.height}")
        objects = []
        for kind, label, coords in rec.shapes:
            if kind == "box":
                objects.append(RawObject(self.category(label), coords))
            else:
                objects.append(RawObject(self.category(label), None, mask=Polygon.of(coords)))
        return RawSample(rel_path=rec.rel_path, image_path=rec.image, group_id=self.group_id(rec), objects=objects,
                         annotation_file=rec.xml, meta=self.meta(rec))

    def input_files(self, root: Path) -> Iterator[Path]:
        yield root / self.annotation_file
        yield from disk.list_files(root / self.images_dir)


__all__ = [
    "ClassFolderAdapter", "CocoJsonAdapter", "CocoRecord", "CvatRecord", "CvatXmlAdapter", "FileRecord",
    "ImageMaskPairAdapter", "InstanceMaskPairAdapter", "VocAdapter", "VocRecord", "YoloAdapter", "YoloRecord", "pair_by_stem",
    "refuse_case_collisions", "refuse_unreadable_names",
]
