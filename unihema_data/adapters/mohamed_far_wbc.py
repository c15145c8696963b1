"""White Blood Cell dataset of Mohamed & Far (IEEE HealthCom 2012; github arbackes/White-Blood-Cell-dataset):
WBC nucleus masks drawn on the BCCD images.

Native layout (the masks zip, extracted; ``locate`` accepts up to two levels above)::

    <root>/BloodImageSetS6NucSeg_masks/BloodImage_00000.png ... BloodImage_00410.png  (367, gaps)

The images are BCCD's (``Shenggan/BCCD_Dataset``: ``BCCD/JPEGImages/BloodImage_NNNNN.jpg``, 640x480):
the catalog declares ``images_from: [bccd]`` and the core hands the located BCCD folder to
``self.linked["bccd"]`` (a copy inside this source's download first, else ``raw/bccd``; a partial
copy with only ``JPEGImages/`` is enough). The repository's own image zip
(``BloodImageSetS6NucSeg.zip``) has an UNCONFIRMED layout and is not read.

Conventions:
* Pairing: mask ``BloodImage_NNNNN.png`` <-> BCCD ``JPEGImages/BloodImage_NNNNN.jpg`` (same stem).
  A mask without a BCCD image (three in the full release) is reported (``orphaned``) and not
  converted; BCCD images without a mask are not part of this source (their number goes to
  ``report.info["bccd_images_without_mask"]``).
* ``rel_path`` (hence ``sample_id``) is the image's BCCD path ``JPEGImages/<stem>.jpg``, stable
  wherever the BCCD copy sits.
* Masks (checked on the real sample: 8 masks, PIL mode ``"1"``, 640x480): True = WBC nucleus. A
  1-bit mask is read like PIL's ``convert("L")``, so native values are ``0`` (background) and
  ``255`` (nucleus), as in an 8-bit {0,255} mask.
* RGBA masks (8 of the 367 per the issue; not in the real sample, encoding UNCONFIRMED): decoded in
  the worker and the rule is detected, never assumed: opaque alpha -> the gray level is the mask;
  constant colour with varying alpha -> alpha > 0 is the nucleus; colour and alpha both varying
  must agree, else the mask is an error naming the file. Coloured (non-gray) RGBA masks are an
  error. The rule used is flagged on the row (``mask_rgba:opaque_gray`` / ``mask_rgba:alpha``).
* No labels (nucleus segmentation only), no split, no patient ids: ``group_id`` is empty.

Evidence: research note ``datasets-segmentation.md`` section 9; real sample
``shared/real-samples/mohamed_far_wbc`` (masks register on the BCCD JPEGs: mean RGB inside the mask
is purple).
"""
from __future__ import annotations

import io

import re
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw

from ..formats import disk
from . import _synthetic as syn
from .base import CorruptInputError, FakeSample, FakeTruth, MissingInputError, RawSample, _glob_any
from .families import FileRecord, ImageMaskPairAdapter, pair_by_stem, refuse_case_collisions, refuse_unreadable_names

MASKS_DIR = "BloodImageSetS6NucSeg_masks"
STEM_RE = re.compile(r"^BloodImage_\d{5}$")


def rgba_mask_values(path: Path) -> tuple[np.ndarray, str]:
    """``(values in {0, 255}, rule)`` of an RGBA (or LA) nucleus mask; the rule is detected from
    the content (see the module docstring). Raises :class:`CorruptInputError` naming the file."""
    from ..images import read_pixel_file

    try:
        with Image.open(io.BytesIO(read_pixel_file(path))) as im:  # integrity-checked (PNG CRCs, TIFF tags)
            a = np.asarray(im.convert("RGBA"))
    except (OSError, ValueError) as e:
        raise CorruptInputError(f"{disk.show(path)}: unreadable mask ({e})") from None
    rgb, alpha = a[..., :3], a[..., 3]
    if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
        raise CorruptInputError(f"{disk.show(path)}: RGBA mask holds colours; a nucleus mask is expected to be gray")
    gray = rgb[..., 0]
    if alpha.min() == alpha.max():
        return gray.copy(), "opaque_gray"
    if not set(np.unique(alpha).tolist()) <= {0, 255}:
        raise CorruptInputError(f"{disk.show(path)}: RGBA mask with partial transparency (alpha values "
                                f"{np.unique(alpha).tolist()[:6]}...): encoding not understood")
    from_alpha = np.where(alpha > 0, 255, 0).astype(np.uint8)
    if gray.min() == gray.max() or np.array_equal(from_alpha, gray):
        return from_alpha, "alpha"
    raise CorruptInputError(f"{disk.show(path)}: RGBA mask whose gray levels and transparency disagree: "
                            f"cannot tell which one is the nucleus")


class MohamedFarWBCAdapter(ImageMaskPairAdapter):
    id = "mohamed_far_wbc"
    version = "2"
    tasks = ("segmentation",)
    markers = (MASKS_DIR,)
    mask_values = {0: "background", 255: "nucleus"}
    image_suffixes = (".jpg",)
    mask_suffixes = (".png",)

    def signature(self, path: Path) -> bool:
        return _glob_any(path, f"{MASKS_DIR}/BloodImage_*.png")

    def _bccd_images(self) -> Path:
        if "bccd" not in self.linked:
            raise MissingInputError(
                f"{self.id}: BCCD images not found: the masks are drawn on BCCD's JPEGImages/BloodImage_NNNNN.jpg "
                f"(catalog images_from: bccd). Put the BCCD download under raw/bccd/ (`unihema-data fetch bccd`).")
        return self.linked["bccd"] / "JPEGImages"

    def check(self, root: Path) -> None:
        super().check(root)
        self._bccd_images()

    def folders(self, root: Path) -> list[tuple[str, Path, Path]]:
        return [("", self._bccd_images(), root / MASKS_DIR)]

    def records(self, root: Path) -> Iterator[FileRecord]:
        img_dir, mask_dir = self._bccd_images(), root / MASKS_DIR
        masks = disk.list_files(mask_dir, self.mask_suffixes, self.report, root, "a mask file")
        all_images = disk.list_files(img_dir, self.image_suffixes)
        for files in (masks, all_images):
            refuse_case_collisions(files)
            refuse_unreadable_names(files)
        images = [p for p in all_images if STEM_RE.match(p.stem)]
        pairs, lonely_images, lonely_masks = pair_by_stem(images, masks)
        for m in lonely_masks:
            self.report.orphan(disk.rel(m, root), "mask without a BCCD image (not converted)")
        self.report.info["bccd_images_without_mask"] = str(len(lonely_images))
        self.report.info["bccd_images"] = disk.show(img_dir)
        if not pairs:
            raise MissingInputError(f"{self.id}: no mask in {disk.show(mask_dir)} has a BCCD image in {disk.show(img_dir)}")
        for img, mask in pairs:
            yield FileRecord(f"JPEGImages/{disk.show(img.name)}", img, (), (mask,))

    def parse(self, rec: FileRecord) -> RawSample:
        s = super().parse(rec)
        mask: Path = rec.extra[0]
        disk.require_regular(mask, "mask file")
        try:
            with Image.open(mask) as im:  # header only: the pixels stay lazy for 1-bit / gray masks
                mode = im.mode
        except (OSError, ValueError) as e:
            raise CorruptInputError(f"{disk.show(mask)}: unreadable mask ({e})") from None
        if mode in ("RGBA", "LA", "PA"):
            s.semantic_mask, rule = rgba_mask_values(mask)
            s.qc_flags.append(f"mask_rgba:{rule}")
        return s

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/White-Blood-Cell-dataset/`` with ``BloodImageSetS6NucSeg_masks/`` (1-bit
        masks with non-contiguous ids, one opaque RGBA mask, one transparency-coded RGBA mask, one
        mask without a BCCD image) and a partial BCCD copy ``_bccd/BCCD/JPEGImages/`` (JPEG images,
        one without a mask)."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "White-Blood-Cell-dataset"
        mdir = root / MASKS_DIR
        idir = root / "_bccd" / "BCCD" / "JPEGImages"
        mdir.mkdir(parents=True, exist_ok=True)
        idir.mkdir(parents=True, exist_ok=True)
        W, H = 160, 120
        truth: dict[str, FakeSample] = {}
        for k, i in enumerate([0, 1, 3, 7, 11, 410]):
            stem = f"BloodImage_{i:05d}"
            box = syn.random_boxes(rng, W, H, 1, lo=30, hi=60)[0]
            syn.smear(W, H, [(box, "wbc")], seed * 1000 + i).save(idir / f"{stem}.jpg", quality=90)
            values = _fake_nucleus(W, H, box, rng)
            if i == 7:  # opaque RGBA, gray levels carry the mask
                a = np.dstack([values, values, values, np.full_like(values, 255)])
                Image.fromarray(a, "RGBA").save(mdir / f"{stem}.png")
            elif i == 11:  # RGBA with constant colour: transparency carries the mask
                a = np.dstack([np.zeros_like(values)] * 3 + [values])
                Image.fromarray(a, "RGBA").save(mdir / f"{stem}.png")
            else:  # the common case: 1-bit PNG
                Image.fromarray(values > 0).convert("1").save(mdir / f"{stem}.png")
            rel = f"JPEGImages/{stem}.jpg"
            truth[rel] = FakeSample(rel_path=rel, semantic_mask=values)
        syn.smear(W, H, [], seed).save(idir / "BloodImage_00005.jpg")  # a BCCD image without a mask
        Image.fromarray(np.zeros((H, W), bool)).convert("1").save(mdir / "BloodImage_00409.png")  # no image
        return FakeTruth(root=root, samples=truth)

    def corrupt(self, truth: FakeTruth) -> str:
        """Truncate the first mask."""
        path = truth.root / MASKS_DIR / "BloodImage_00000.png"
        path.write_bytes(path.read_bytes()[:30])
        return path.name


def _fake_nucleus(w: int, h: int, box, rng: np.random.Generator) -> np.ndarray:
    im = Image.new("L", (w, h), 0)
    x, y, bw, bh = box
    d = ImageDraw.Draw(im)
    d.ellipse([x + bw * 0.2, y + bh * 0.25, x + bw * float(rng.uniform(0.6, 0.8)), y + bh * 0.75], fill=255)
    return np.asarray(im, dtype=np.uint8).copy()


ADAPTER = MohamedFarWBCAdapter
