"""BBBC041Seg (Depto et al., Tissue and Cell 73:101653, 2021; github Deponker/Blood-cell-segmentation-dataset):
binary blood-cell masks for 1,328 BBBC041 (P. vivax malaria) smear images.

Two layouts are recognised (the one found goes to ``report.info["layout"]``):

* ``released`` (the Google Drive zip, mirrored on Kaggle as "BCCD Dataset with mask", which is
  NOT BCCD; per dataset-ninja's converter, UNCONFIRMED beyond it)::

      <root>/{train,test}/original/<uuid>.png      RGB smear image (1600x1200, some larger)
      <root>/{train,test}/mask/<uuid>.png          RGB mask, same stem

* ``repository sample`` (the GitHub repository root: one illustrative pair)::

      <root>/Original.png  <root>/Mask.png

Conventions:
* Pairing: same stem in ``original/`` and ``mask/`` of one split folder. A mask without an image
  is reported (``orphaned``); an image without a mask is an error naming both (a partial copy).
* Masks (checked on the repository's ``Mask.png``: RGB, three equal channels, values {0, 255}):
  ``0`` = background, ``255`` = blood cell (RBC, WBC, parasite-infected: one class; infection
  state is ignored by the masks). Equal-channel RGB is read as gray by the core; a coloured mask
  or any other value is an error naming the file.
* No per-object output: the source does not define cells. Touching cells merge into one
  connected component (dataset-ninja derives instances that way and drops components <= 15 px),
  so objects would be wrong wherever cells touch; only the semantic mask is converted.
* Split: the published ``train`` / ``test`` folder (1,169 / 159). The sample pair has no split.
  ``group_id`` is empty: BBBC041 images have no patient ids in this release (UNCONFIRMED whether
  several images come from one slide).

Evidence: research note ``datasets-segmentation.md`` section 5; real sample
``shared/real-samples/bbbc041seg`` (the repository pair, 1600x1200).
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from ..formats import disk
from . import _synthetic as syn
from .base import FakeSample, FakeTruth
from .families import FileRecord, ImageMaskPairAdapter

SPLITS = ("train", "test")
SAMPLE_PAIR = ("Original.png", "Mask.png")


class BBBC041SegAdapter(ImageMaskPairAdapter):
    id = "bbbc041seg"
    version = "1"
    tasks = ("segmentation",)
    mask_values = {0: "background", 255: "cell"}
    image_suffixes = (".png", ".jpg", ".jpeg")
    mask_suffixes = (".png",)
    images_dir = "original"
    masks_dir = "mask"
    layout_hint = "{train,test}/original/<uuid>.png with {train,test}/mask/<uuid>.png, or Original.png + Mask.png"

    # ---------------------------------------------------------------- layout
    def _splits(self, root: Path) -> list[str]:
        return [s for s in SPLITS if (root / s / self.images_dir).is_dir() and (root / s / self.masks_dir).is_dir()]

    def _is_sample(self, root: Path) -> bool:
        return all((root / n).exists() or (root / n).is_symlink() for n in SAMPLE_PAIR)

    #: released layout; the repository-sample layout (no ``mask/`` folder) is accepted by :meth:`is_root`
    markers = ("*/mask",)

    def signature(self, path: Path) -> bool:
        return bool(self._splits(path)) or self._is_sample(path)

    def is_root(self, path: Path) -> bool:
        return path.is_dir() and self.signature(path)

    def check(self, root: Path) -> None:
        if not self._is_sample(root):
            super().check(root)

    def folders(self, root: Path) -> list[tuple[str, Path, Path]]:
        return [(s, root / s / self.images_dir, root / s / self.masks_dir) for s in self._splits(root)]

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        self.report.info["layout"] = ("released: " + ", ".join(f"{s}/" for s in self._splits(root))
                                      if self._splits(root) else "repository sample: Original.png + Mask.png")

    def records(self, root: Path) -> Iterator[FileRecord]:
        if not self._splits(root):
            img, mask = (root / n for n in SAMPLE_PAIR)
            yield FileRecord(SAMPLE_PAIR[0], img, (("split", ""),), (mask,))
            return
        for rec in super().records(root):  # the family's "subset" part is the split folder here
            yield FileRecord(rec.rel_path, rec.path, (("split", rec.part("subset")),), rec.extra)

    def split(self, rec: FileRecord) -> str:
        return rec.part("split")

    def input_files(self, root: Path) -> Iterator[Path]:
        if not self._splits(root):
            yield from (root / n for n in SAMPLE_PAIR)
        yield from super().input_files(root)

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/BCCD Dataset with mask/`` (the Kaggle folder name, spaces included) with
        ``train`` (4 pairs) and ``test`` (2 pairs), UUID file names, RGB {0,255} masks whose
        touching cells merge, and one mask without an image in ``train/mask``."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "BCCD Dataset with mask"
        W, H = 96, 72
        truth: dict[str, FakeSample] = {}
        for split, n in (("train", 4), ("test", 2)):
            idir, mdir = root / split / self.images_dir, root / split / self.masks_dir
            idir.mkdir(parents=True, exist_ok=True)
            mdir.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                stem = str(uuid.UUID(bytes=rng.bytes(16), version=4))
                boxes = syn.random_boxes(rng, W, H, 5, lo=10, hi=22)
                boxes.append([boxes[0][0] + boxes[0][2] - 2, boxes[0][1], 14, 14])  # touches cell 0
                syn.smear(W, H, [(b, "rbc") for b in boxes], seed * 100 + k).save(idir / f"{stem}.png")
                values = np.zeros((H, W), np.uint8)
                yy, xx = np.mgrid[0:H, 0:W]
                for x, y, w, h in boxes:
                    cx, cy = x + w / 2, y + h / 2
                    values[((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2 <= 1] = 255
                Image.fromarray(np.dstack([values] * 3), "RGB").save(mdir / f"{stem}.png")
                rel = f"{split}/{self.images_dir}/{stem}.png"
                truth[rel] = FakeSample(rel_path=rel, semantic_mask=values, source_split=split)
        Image.fromarray(np.zeros((H, W, 3), np.uint8), "RGB").save(
            root / "train" / self.masks_dir / "00000000-0000-4000-a000-000000000000.png")  # no image
        return FakeTruth(root=root, samples=truth)


ADAPTER = BBBC041SegAdapter
