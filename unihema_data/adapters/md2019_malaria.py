"""Malaria-Detection-2019 (Abbas & Dijkstra, Diagnostic Pathology 15:130, 2020; Mendeley 5bf2kmwvfn):
binary P. falciparum parasite masks on Giemsa thin-film fields, with pre-augmented copies.

Native layout (the Mendeley zip, extracted; ``locate`` accepts up to two levels above)::

    <root>/Giemsa stained images/<name>.<png|jpg>       e.g. "Trip 053 Day 2 19-11-05 Image 10 add_4.png"
    <root>/Ground truth images/<name>_GT.png            binary parasite mask
    <root>/LifeStages.xlsx                              per-object stages by centre point (optional)

Conventions:
* Pairing: image stem + ``_GT.png`` (dataset-ninja's ``splitext(name)[0] + "_GT.png"`` rule, so
  ``.png`` and ``.jpg`` images both pair). A mask without an image is reported (``orphaned``); an
  image without a mask is an error naming the expected mask.
* Masks: ``0`` = background, ``255`` = parasite (single class). A 3-channel mask with equal
  channels is read as gray by the core; a coloured mask or another value is an error naming the
  file (UNCONFIRMED in the note whether the PNGs are 1- or 3-channel: both are accepted; the
  fake writes both).
* Pre-augmented copies: the release holds copies of a field whose names end in `` add_N`` or
  ``_N``. ``group_id`` is the name with that suffix removed, so every copy of a field lands in the
  same split (the core splits by group). The number of images that are such copies goes to
  ``report.info["augmented_copies"]``. UNCONFIRMED: whether a bare ``_N`` always marks a copy
  (third-party parser rule ``extract_base_image_name``); no original name seen ends that way.
* Trip and day (file-name tokens 1 and 3 per dataset-ninja) have no schema field; they stay
  readable in ``sample_id``.
* ``LifeStages.xlsx`` (stage per object by centre point) is NOT converted: assigning a stage needs
  per-object instances matched to centres, not implemented here; its presence is reported
  (``report.info["life_stages"]``). Rows carry the semantic parasite mask only.

Evidence: research note ``datasets-segmentation.md`` section 1 (no real sample: no public copy of
the native files was found).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw

from ..formats import disk
from . import _synthetic as syn
from .base import FakeSample, FakeTruth
from .families import FileRecord, ImageMaskPairAdapter

IMAGES_DIR = "Giemsa stained images"
MASKS_DIR = "Ground truth images"
COPY_RE = re.compile(r"^(?P<base>.+?)(?: add_\d+|_\d+)$")


def base_name(stem: str) -> str:
    """Field name without the pre-augmentation suffix (`` add_N`` or ``_N``)."""
    m = COPY_RE.match(stem)
    return m.group("base") if m else stem


class MD2019MalariaAdapter(ImageMaskPairAdapter):
    id = "md2019_malaria"
    version = "1"
    tasks = ("segmentation",)
    markers = (IMAGES_DIR, MASKS_DIR)
    mask_values = {0: "background", 255: "parasite"}
    image_suffixes = (".png", ".jpg", ".jpeg")
    mask_suffixes = (".png",)
    images_dir = IMAGES_DIR
    masks_dir = MASKS_DIR

    def mask_key(self, path: Path) -> str:
        return path.stem[:-3] if path.stem.endswith("_GT") else f"{path.stem} (not a _GT mask)"

    def expected_mask_name(self, image: Path) -> str:
        return f"{image.stem}_GT.png"

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        stages = root / "LifeStages.xlsx"
        self.report.info["life_stages"] = ("LifeStages.xlsx present, not converted (per-object stages need instances)"
                                           if disk.present(stages) else "LifeStages.xlsx absent")

    def records(self, root: Path) -> Iterator[FileRecord]:
        copies = 0
        for rec in super().records(root):
            copies += base_name(rec.path.stem) != rec.path.stem
            yield rec
        self.report.info["augmented_copies"] = str(copies)

    def group_id(self, rec: FileRecord) -> str:
        return base_name(rec.path.stem)

    def input_files(self, root: Path) -> Iterator[Path]:
        yield from super().input_files(root)
        if (root / "LifeStages.xlsx").is_file():
            yield root / "LifeStages.xlsx"

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/5bf2kmwvfn-1/`` with two fields and their pre-augmented copies
        (`` add_N`` and ``_N`` suffixes, flipped pixels and masks), ``.png`` and ``.jpg`` images,
        1-channel and 3-channel {0,255} masks, and one ``_GT`` mask without an image."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "5bf2kmwvfn-1"
        idir, mdir = root / IMAGES_DIR, root / MASKS_DIR
        idir.mkdir(parents=True, exist_ok=True)
        mdir.mkdir(parents=True, exist_ok=True)
        W, H = 80, 60
        truth: dict[str, FakeSample] = {}
        fields = ["Trip 053 Day 2 19-11-05 Image 10", "Trip 061 Day 4 20-01-14 Image 3"]
        for f, field in enumerate(fields):
            boxes = syn.random_boxes(rng, W, H, 4, lo=10, hi=18)
            base_im = syn.smear(W, H, [(b, "rbc") for b in boxes], seed * 10 + f)
            base_mask = _parasites(W, H, boxes, rng)
            variants = [("", 0), (" add_1", 1), (" add_2", 2)] if f == 0 else [("", 0), ("_1", 1)]
            for suffix, flip in variants:
                stem = field + suffix
                im, mask = base_im, base_mask
                if flip == 1:
                    im, mask = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), mask[:, ::-1]
                elif flip == 2:
                    im, mask = im.transpose(Image.Transpose.FLIP_TOP_BOTTOM), mask[::-1]
                ext = ".jpg" if (f == 1 and suffix) else ".png"
                if ext == ".jpg":
                    im.save(idir / f"{stem}{ext}", quality=92)
                else:
                    im.save(idir / f"{stem}{ext}")
                mask = np.ascontiguousarray(mask)
                if suffix == " add_2":  # a 3-channel copy of the binary mask
                    Image.fromarray(np.dstack([mask] * 3), "RGB").save(mdir / f"{stem}_GT.png")
                else:
                    Image.fromarray(mask, "L").save(mdir / f"{stem}_GT.png")
                rel = f"{IMAGES_DIR}/{stem}{ext}"
                truth[rel] = FakeSample(rel_path=rel, semantic_mask=mask, group_id=field)
        Image.fromarray(np.zeros((H, W), np.uint8), "L").save(mdir / "Trip 070 Day 1 20-02-02 Image 1_GT.png")  # no image
        return FakeTruth(root=root, samples=truth)


def _parasites(w: int, h: int, boxes, rng: np.random.Generator) -> np.ndarray:
    """Small parasite blobs (255) inside some of the cells."""
    im = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(im)
    for x, y, bw, bh in boxes[: 1 + int(rng.integers(1, len(boxes)))]:
        d.ellipse([x + bw * 0.3, y + bh * 0.3, x + bw * 0.6, y + bh * 0.6], fill=255)
    return np.asarray(im, dtype=np.uint8).copy()


ADAPTER = MD2019MalariaAdapter
