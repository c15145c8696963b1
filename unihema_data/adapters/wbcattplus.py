"""WBCAtt+ (Tsutsui, Pang, He, Wen, "WBCAtt+: Fine-Grained Pixel-Level Morphological Annotations
for White Blood Cell Images", Medical Image Analysis 2026, arXiv 2605.19692; Hugging Face
``apple2373/wbcattplus``, doi:10.57967/hf/8143, MIT): pixel-level component maps of the WBCAtt
(PBC) white-cell images.

**The release layout is UNCONFIRMED** (research note ``datasets-segmentation.md`` section 12: the
Hub viewer only shows that the files are TAR archives). What is documented comes from the
authors' own training code (github ``apple2373/wbcsegmentor``,
``m2f_tiny_1024_color_*/explore_m2f_finetune_v2.py``) and its README:

* each mask sits next to its image: ``<data root>/<img_name>`` and
  ``<img_name with .jpg replaced by _mask.png>``; the images are center-cropped PBC crops
  (``pbc_attr_v1_ccrop_all.csv``; 360x360 output resolution);
* the mask is read with PIL ``convert("RGB")`` and channel 0 is the class index, 6 classes:
  ``0`` background, ``1`` cytoplasm, ``2`` nucleus, ``3`` platelets, ``4`` "RWBC" (the README's
  name; meaning UNCONFIRMED, taken as other blood cells: mask class ``cell``), ``5`` vacuoles.

Converted layout (the extracted archives; ``locate`` accepts up to two levels above)::

    <root>/<class folder>/<name>.jpg          PBC class folders: basophil, eosinophil, lymphocyte, ...
    <root>/<class folder>/<name>_mask.png

Conventions:
* Pairing: ``<stem>.jpg`` <-> ``<stem>_mask.png`` in one folder. An image without a mask is reported
  (``orphaned``) and converted without segmentation; a mask without an image is reported. A folder
  with masks but no image at all is an error that says so: pairing the masks with PBC's own
  360x363 originals needs the exact crop offset, which is UNCONFIRMED (the catalog therefore does
  not declare ``images_from: [pbc]``). Names differing only in case are an error naming both.
* Mask values, read as the authors do (channel 0 of the RGB conversion; a gray or palette PNG gives
  the same values): ``0..5``; any other value is an error naming the file and the value. A mask
  whose size differs from its image is an error naming both files (core).
* Label: the class folder name (PBC's folder names, ``sources.wbcattplus.labels``), refined by the
  file-name prefix like PBC (``BNE_`` -> band neutrophil, flag ``label_refined:...``). A folder that
  is not a PBC class is an error naming it. No split is read (UNCONFIRMED where the release keeps
  it): each image its own group.
* The images are PBC's cells: converting ``pbc``/``wbcatt`` into the same OUT lets the near-duplicate
  pass group them (a center crop is a near-duplicate).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw

from ..errors import CorruptInputError, MissingInputError
from ..formats import disk
from . import _synthetic as syn
from .base import Adapter, FakeSample, FakeTruth, RawSample
from .families import FileRecord, refuse_unreadable_names

FOLDERS = ("basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte", "neutrophil", "platelet")
MASK_SUFFIX = "_mask"
CLASSES = {0: "background", 1: "cytoplasm", 2: "nucleus", 3: "platelets", 4: "RWBC", 5: "vacuoles"}


def read_class_mask(path: Path) -> np.ndarray:
    """Class indices of one ``*_mask.png``: channel 0 of PIL's RGB conversion (the authors' reading)."""
    import io

    from ..images import read_pixel_file

    try:  # read through the shared mask reader: integrity-checked (PNG CRCs and stream length, TIFF tags)
        with Image.open(io.BytesIO(read_pixel_file(path))) as im:
            im.load()
            a = np.asarray(im.convert("RGB"))[..., 0].copy()
    except (OSError, ValueError, SyntaxError) as e:
        raise CorruptInputError(f"{disk.show(path)}: unreadable mask ({type(e).__name__}: {e})") from None
    bad = sorted(set(np.unique(a).tolist()) - set(CLASSES))
    if bad:
        raise CorruptInputError(f"{disk.show(path)}: unexpected class value(s) {bad[:8]} (expected 0..5: "
                                + ", ".join(f"{k} {v}" for k, v in CLASSES.items()) + ")")
    return a


def file_prefix(name: str) -> str:
    stem = Path(name).stem
    return stem.split("_", 1)[0] if "_" in stem else ""


class WBCAttPlusAdapter(Adapter):
    id = "wbcattplus"
    version = "1"
    tasks = ("segmentation", "classification")
    markers = ("*/*_mask.png",)
    mask_values = dict(CLASSES)
    layout_hint = "PBC class folders holding <name>.jpg with <name>_mask.png"

    def signature(self, path: Path) -> bool:
        return any((path / f).is_dir() for f in FOLDERS)

    def records(self, root: Path) -> Iterator[FileRecord]:
        dirs, files = disk.list_dir(root, self.report, root)
        for f in files:
            self.report.skip(disk.rel(f, root), "outside a class folder")
        n_img = n_mask = 0
        for d in dirs:
            if d.name not in FOLDERS:
                raise CorruptInputError(f"{disk.show(d)}: unknown class folder {disk.show(d.name)!r} "
                                        f"(expected PBC's: {', '.join(FOLDERS)})")
            sub, entries = disk.list_dir(d, self.report, root)
            for s in sub:
                self.report.skip(disk.rel(s, root) + "/", "folder inside a class folder: not converted")
            disk.refuse_case_collisions(entries)
            refuse_unreadable_names(entries)
            masks = {f.stem[: -len(MASK_SUFFIX)]: f for f in entries
                     if f.suffix.lower() == ".png" and f.stem.endswith(MASK_SUFFIX)}
            images = [f for f in entries if f.suffix.lower() in disk.IMAGE_SUFFIXES and f not in masks.values()]
            for f in entries:
                if f not in images and f not in masks.values():
                    self.report.skip(disk.rel(f, root), "neither an image nor a <name>_mask.png")
            if masks and not images:
                raise MissingInputError(
                    f"{disk.show(d)}: {len(masks)} mask(s) but no image: the WBCAtt+ images (center-cropped PBC cells) "
                    "must sit next to their masks; pairing masks with PBC's 360x363 originals needs the crop offset, "
                    "which is UNCONFIRMED, so it is not attempted")
            stems = {f.stem: f for f in images}
            for stem, m in sorted(masks.items()):
                if stem not in stems:
                    self.report.orphan(disk.rel(m, root), "mask without an image (not converted)")
            for img in images:
                mask = masks.get(img.stem)
                n_img += 1
                if mask is None:
                    self.report.orphan(disk.rel(img, root), "image without a <name>_mask.png (converted without segmentation)")
                else:
                    n_mask += 1
                yield FileRecord(disk.rel(img, root), img, (("class", d.name),), (mask,))
        if not n_img:
            raise MissingInputError(f"{self.id}: no images under {disk.show(root)} ({self.layout_hint})")
        self.report.info["layout"] = f"<class>/<name>.jpg + <name>_mask.png: {n_mask} of {n_img} image(s) with a mask"

    def parse(self, rec: FileRecord) -> RawSample:
        mask = rec.extra[0]
        return RawSample(
            rel_path=rec.rel_path, image_path=rec.path, label=rec.part("class"),
            semantic_mask=read_class_mask(mask) if mask is not None else None, mask_values=dict(CLASSES),
            annotation_file=disk.show(mask or rec.path), meta={"refine_label": file_prefix(rec.path.name)},
        )

    def input_files(self, root: Path) -> Iterator[Path]:
        yield from disk.walk_files(root)

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/wbcattplus/`` with PBC class folders of center-cropped JPEG cells and their
        ``_mask.png`` class maps (gray and RGB-with-index-in-red variants, all six classes), one
        image without a mask and one mask without an image."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "wbcattplus"
        S = 48
        plan = [("neutrophil", "BNE"), ("neutrophil", "SNE"), ("eosinophil", "EO"), ("lymphocyte", "LY"),
                ("monocyte", "MO"), ("basophil", "BA")]
        truth: dict[str, FakeSample] = {}
        for k, (folder, prefix) in enumerate(plan):
            name = f"{prefix}_{int(rng.integers(1000, 999999))}"
            d = root / folder
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{name}.jpg").write_bytes(syn.encode(syn.single_cell(S, "wbc", seed * 100 + k), "JPEG", quality=90))
            rel = f"{folder}/{name}.jpg"
            if k == 5:  # an image without a mask
                truth[rel] = FakeSample(rel_path=rel, label=folder)
                continue
            m = Image.new("L", (S, S), 0)
            dr = ImageDraw.Draw(m)
            dr.ellipse([2, 30, 12, 40], fill=4)                    # another cell
            dr.ellipse([10, 8, 40, 38], fill=1)                    # cytoplasm
            dr.ellipse([18, 14, 32, 30], fill=2)                   # nucleus
            dr.ellipse([34, 2, 38, 6], fill=3)                     # platelet
            if k % 2:
                dr.ellipse([14, 30, 18, 34], fill=5)               # vacuole
            values = np.asarray(m).copy()
            if k == 1:  # index in the red channel of an RGB PNG
                rgb = np.dstack([values, np.full_like(values, 7), np.zeros_like(values)])
                Image.fromarray(rgb, "RGB").save(d / f"{name}{MASK_SUFFIX}.png")
            else:
                Image.fromarray(values, "L").save(d / f"{name}{MASK_SUFFIX}.png")
            truth[rel] = FakeSample(rel_path=rel, label=folder, semantic_mask=values)
        Image.new("L", (S, S), 0).save(root / "monocyte" / f"MO_1{MASK_SUFFIX}.png")  # no image
        return FakeTruth(root=root, samples=truth)


ADAPTER = WBCAttPlusAdapter
