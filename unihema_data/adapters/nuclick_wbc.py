"""NuClick WBC ("Hemato") data (Alemi Koohbanani et al., NuClick, Medical Image Analysis 65:101771,
2020; Warwick TIA ``hemato_data.zip``): white blood cells in blood-smear patches with instance masks.

Native layout (the zip, extracted; ``locate`` accepts up to two levels above)::

    <root>/Train/images/<stem>.png          <root>/Train/masks/<stem>_mask.png
    <root>/Validation/images/<stem>.png     <root>/Validation/masks/<stem>_mask.png

(``<root>`` is ``Hemato_Data`` in the third-party converter the research note cites; the layout is
otherwise UNCONFIRMED.) Not to be confused with ``ihc_nuclick.zip`` (IHC lymphocytes, ``.npy``
masks): that layout has no ``Train/images`` folder and is not accepted.

Conventions:
* Pairing: mask name = image stem + ``_mask`` (``mask_key`` strips it). A mask without an image is
  reported (``orphaned``); an image without a mask is an error naming the expected mask.
* Masks: single-channel label images, ``0`` = background and every other value one WBC (the
  converter calls them instance masks; value ranges UNCONFIRMED). Each instance becomes an object
  of category ``wbc`` with a lazy :class:`~unihema_data.refs.MaskValue` (decoded once per worker, no
  full-size array per cell); boxes derive from the masks (``bbox_source = from_mask``). A colour
  mask is an error naming the file. If a release turns out to be binary (one value for every
  cell), touching cells would merge into one object: each row carries ``instances:<n>`` so the
  count per file is visible and checkable.
* Split: the published ``Train`` / ``Validation`` folder. No patient ids (``group_id`` empty).

Evidence: research note ``datasets-segmentation.md`` section 6 (no real sample: Warwick-hosted only).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from . import _synthetic as syn
from .base import FakeSample, FakeTruth, RawSample
from .families import FileRecord, InstanceMaskPairAdapter

SPLITS = ("Train", "Validation")


class NuClickWBCAdapter(InstanceMaskPairAdapter):
    id = "nuclick_wbc"
    version = "1"
    markers = ("*/images", "*/masks")
    image_suffixes = (".png",)
    mask_suffixes = (".png",)

    def signature(self, path: Path) -> bool:
        return any((path / s / "images").is_dir() and (path / s / "masks").is_dir() for s in SPLITS)

    def folders(self, root: Path) -> list[tuple[str, Path, Path]]:
        return [(s, root / s / "images", root / s / "masks") for s in SPLITS if (root / s / "images").is_dir()]

    def mask_key(self, path: Path) -> str:
        return path.stem[: -len("_mask")] if path.stem.endswith("_mask") else f"{path.stem} (no _mask suffix)"

    def expected_mask_name(self, image: Path) -> str:
        return f"{image.stem}_mask.png"

    def split(self, rec: FileRecord) -> str:
        return rec.part("subset")

    def instance_category(self, rec: FileRecord, value) -> str:
        return "wbc"

    def parse(self, rec: FileRecord) -> RawSample:
        s = super().parse(rec)
        s.subset = ""
        s.qc_flags.append(f"instances:{len(s.objects)}")
        return s

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/Hemato_Data/`` with Train (3 patches) and Validation (2 patches): PNG
        images, 8-bit instance masks (values 1..n, non-contiguous in one file, two touching cells
        kept apart by their values, one patch without any cell), one mask without an image."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "Hemato_Data"
        S = 64
        truth: dict[str, FakeSample] = {}
        for split, n in (("Train", 3), ("Validation", 2)):
            idir, mdir = root / split / "images", root / split / "masks"
            idir.mkdir(parents=True, exist_ok=True)
            mdir.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                stem = f"{split[0]}{k:03d}_{int(rng.integers(1000, 9999))}"
                count = 0 if (split, k) == ("Validation", 1) else 2
                x0, y0, r = int(rng.integers(2, 12)), int(rng.integers(2, 30)), int(rng.integers(16, 22))
                boxes = [[x0, y0, r, r], [x0 + r - 1, min(y0 + 4, S - r - 1), r, r]][:count]  # the two cells touch
                syn.smear(S, S, [(b, "wbc") for b in boxes], seed * 10 + k + (5 if split == "Validation" else 0)).save(idir / f"{stem}.png")
                lab = Image.new("L", (S, S), 0)
                d = ImageDraw.Draw(lab)
                values = [1, 7][:count] if k == 0 else [1, 2][:count]
                for v, (x, y, w, h) in zip(values, boxes):
                    d.ellipse([x, y, x + w - 1, y + h - 1], fill=v)
                lab.save(mdir / f"{stem}_mask.png")
                arr = np.asarray(lab)
                masks = [arr == v for v in values]
                fb = []
                for m in masks:
                    ys, xs = np.nonzero(m)
                    fb.append([float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)])
                rel = f"{split}/images/{stem}.png"
                truth[rel] = FakeSample(rel_path=rel, boxes=fb, categories=["wbc"] * len(fb), object_masks=masks,
                                        source_split=split)
        Image.new("L", (S, S), 0).save(root / "Train" / "masks" / "orphan_mask.png")
        return FakeTruth(root=root, samples=truth)


ADAPTER = NuClickWBCAdapter
