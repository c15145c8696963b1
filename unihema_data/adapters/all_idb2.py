"""ALL-IDB2 (Donida Labati, Piuri, Scotti, ICIP 2011) with the third-party nucleus/cytoplasm masks
of Loddo & Putzu (github lputzu/ALL-IDB2_masks).

260 single-cell crops (about 257x257) from the ALL-IDB1 smears, 130 lymphoblasts (name suffix
``_1``) and 130 healthy cells (``_0``). The images are request-only (Univ. Milano); the masks are
an MIT-licensed GitHub repository. The adapter converts a manual download of the images placed
next to the masks repository.

Native layout (the located root holds both downloads, one level below it)::

    <root>/ALL_IDB2/img/Im001_1.tif ... Im260_0.tif     images (request-only archive)
    <root>/ALL-IDB2_masks-<commit>/gt/Im001_1.tif ...    masks (GitHub archive), README.md, LICENSE

The image folder is found by content, not by name: the one folder (up to three levels below the
root, never a ``gt`` folder) holding ``ImNNN_Y.<ext>`` files. Two such folders (two copies) or two
``gt`` mask folders are an error naming both; no image folder at all is an error that says how to
obtain the images (a masks-only download cannot be converted).

Conventions:
* Pairing: image ``ImNNN_Y.<ext>`` <-> mask ``gt/ImNNN_Y.tif`` (same stem). A mask without an
  image is reported (``orphaned``); an image without a mask is reported and converted without
  segmentation (its label is still known from the name).
* Label: the suffix ``Y`` of the name, verbatim ``"1"`` (blast) or ``"0"`` (healthy), mapped by
  ``taxonomy.yaml`` ``sources.all_idb2.labels``. Any other name is an error naming the file.
* Masks (checked on the real sample: 8 of the 260 masks, RGB TIFF, PackBits, 257x257, exactly
  these three colours): background ``(255,255,255)``, nucleus ``(0,255,255)``, cytoplasm
  ``(0,0,255)`` (``mask_palette``; native values 0 / 1 / 2). Any other colour is an error naming
  the file and the colour (core, :func:`unihema_data.refs.rgb_to_values`). A mask whose size differs
  from its image is an error naming both files. Some crops are not square: nothing assumes 257x257.
* No split and no patient ids are published: ``group_id`` is left empty (each crop its own group).
  UNCONFIRMED whether several crops come from one ALL-IDB1 smear (likely; not recoverable here).

UNCONFIRMED and detected at run time (``report.info``): the image format of the request-only
archive (``.tif`` per the catalog, ``.jpg`` in some copies): the suffix found is reported as
``image_suffixes``, the folders as ``layout``.

Evidence: research note ``datasets-segmentation.md`` section 4; real sample
``shared/real-samples/all_idb2`` (masks only; the conformance test pairs them with synthetic images).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
from PIL import Image, ImageDraw

from ..formats import disk
from . import _synthetic as syn
from .base import CorruptInputError, FakeSample, FakeTruth, MissingInputError
from .families import FileRecord, ImageMaskPairAdapter

NAME_RE = re.compile(r"^Im(\d+)_([01])$")
IMAGE_SUFFIXES = (".tif", ".tiff", ".jpg", ".jpeg", ".png", ".bmp")
#: native colour -> native value (index into ``MASK_VALUES``)
PALETTE = {(255, 255, 255): 0, (0, 255, 255): 1, (0, 0, 255): 2}
MASK_VALUES = {0: "background", 1: "nucleus", 2: "cytoplasm"}
SEARCH_DEPTH = 3


def _named_files(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and NAME_RE.match(p.stem)]
    except OSError:
        return []


class AllIdb2Adapter(ImageMaskPairAdapter):
    id = "all_idb2"
    version = "1"
    tasks = ("segmentation", "classification")
    markers = ("*/gt",)
    mask_values = dict(MASK_VALUES)
    mask_palette = dict(PALETTE)
    image_suffixes = IMAGE_SUFFIXES
    mask_suffixes = (".tif", ".tiff")
    allow_unmasked_images = True
    layout_hint = "<root>/<masks repo>/gt/ImNNN_Y.tif and <root>/<images>/ImNNN_Y.<ext>"

    # ---------------------------------------------------------------- layout
    def _mask_dirs(self, root: Path) -> list[Path]:
        return [d for d in disk.subdirs(root) for g in (d / "gt",) if g.is_dir() and _named_files(g)]

    def signature(self, path: Path) -> bool:
        return bool(self._mask_dirs(path))

    def _layout(self, root: Path) -> tuple[Path, Path]:
        masks = [d / "gt" for d in self._mask_dirs(root)]
        if not masks:
            raise MissingInputError(f"{self.id}: no gt/ImNNN_Y.tif masks one level below {disk.show(root)}")
        if len(masks) > 1:
            raise CorruptInputError(f"{self.id}: two mask folders under {disk.show(root)}: "
                                    f"{disk.show(masks[0])} and {disk.show(masks[1])}; keep one")
        images = [d for d in disk.walk_dirs(root, SEARCH_DEPTH) if d.name != "gt" and _named_files(d)]
        if not images:
            raise MissingInputError(
                f"{self.id}: masks found in {disk.show(masks[0])} but no ALL-IDB2 images (ImNNN_Y.tif) under "
                f"{disk.show(root)}. The images are request-only: see https://homes.di.unimi.it/scotti/all/, "
                f"then extract the image archive next to the masks folder.")
        if len(images) > 1:
            raise CorruptInputError(f"{self.id}: two image folders under {disk.show(root)}: "
                                    f"{disk.show(images[0])} and {disk.show(images[1])}; keep one copy")
        return images[0], masks[0]

    def folders(self, root: Path) -> list[tuple[str, Path, Path]]:
        cached = self.__dict__.get("_folders")
        if cached is None or cached[0] != root:
            cached = self.__dict__["_folders"] = (root, self._layout(root))
        img, gt = cached[1]
        return [("", img, gt)]

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        self.__dict__.pop("_folders", None)
        (_s, img, gt), = self.folders(root)
        suffixes = sorted({p.suffix for p in _named_files(img)})
        self.report.info["layout"] = f"images in {disk.rel(img, root)}/, masks in {disk.rel(gt, root)}/"
        self.report.info["image_suffixes"] = ",".join(suffixes)

    def records(self, root: Path) -> Iterator[FileRecord]:
        for rec in super().records(root):
            if not NAME_RE.match(rec.path.stem):
                raise CorruptInputError(f"{disk.show(rec.path)}: unexpected image name (expected ImNNN_0 or ImNNN_1)")
            yield rec

    # ---------------------------------------------------------------- hooks
    def label(self, rec: FileRecord) -> Optional[str]:
        return NAME_RE.match(rec.path.stem).group(2)  # type: ignore[union-attr]

    def meta(self, rec: FileRecord) -> dict[str, str]:
        return {"disease": "leukemia" if self.label(rec) == "1" else "normal"}

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/ALL_IDB2_download/`` with ``ALL_IDB2/img/`` (5 RGB TIFF crops, both
        labels, one not square: 257x250, one image without a mask) and
        ``ALL-IDB2_masks-52437ef/gt/`` (RGB PackBits TIFF masks in the three palette colours, one
        mask without an image), plus the masks repository's README.md and LICENSE."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "ALL_IDB2_download"
        img_dir = root / "ALL_IDB2" / "img"
        gt_dir = root / "ALL-IDB2_masks-52437ef" / "gt"
        img_dir.mkdir(parents=True, exist_ok=True)
        gt_dir.mkdir(parents=True, exist_ok=True)
        (gt_dir.parent / "README.md").write_text("# ALL-IDB2 masks\nbackground (255,255,255), nucleus (0,255,255), cytoplasm (0,0,255)\n")
        (gt_dir.parent / "LICENSE").write_text("MIT License\n")
        plan = [("Im001_1", 257, 257), ("Im002_1", 257, 250), ("Im131_0", 257, 257), ("Im132_0", 64, 64),
                ("Im133_0", 48, 48)]
        colours = {v: c for c, v in PALETTE.items()}
        truth: dict[str, FakeSample] = {}
        for k, (stem, w, h) in enumerate(plan):
            syn.single_cell(w, "wbc", seed * 10 + k, size_h=h).save(img_dir / f"{stem}.tif")
            rel = f"ALL_IDB2/img/{stem}.tif"
            if stem == "Im133_0":  # an image whose mask is absent: converted without segmentation
                truth[rel] = FakeSample(rel_path=rel, label="0")
                continue
            values = _fake_values(w, h, rng)
            rgb = np.zeros((h, w, 3), np.uint8)
            for v, c in colours.items():
                rgb[values == v] = c
            Image.fromarray(rgb, "RGB").save(gt_dir / f"{stem}.tif", compression="packbits")
            truth[rel] = FakeSample(rel_path=rel, label=stem[-1], semantic_mask=values)
        # a mask whose image is absent (partial image archive): reported as orphaned
        Image.fromarray(np.full((32, 32, 3), 255, np.uint8), "RGB").save(gt_dir / "Im200_0.tif", compression="packbits")
        return FakeTruth(root=root, samples=truth)


def _fake_values(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Cytoplasm disc (2) with a nucleus (1) inside, on background (0)."""
    im = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(im)
    cx, cy = w / 2, h / 2
    r = min(w, h) * float(rng.uniform(0.3, 0.42))
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=2)
    rn = r * float(rng.uniform(0.4, 0.7))
    off = float(rng.uniform(-0.2, 0.2)) * r
    d.ellipse([cx - rn + off, cy - rn, cx + rn + off, cy + rn], fill=1)
    return np.asarray(im, dtype=np.uint8).copy()


ADAPTER = AllIdb2Adapter
