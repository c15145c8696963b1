"""LISC, Leukocyte Images for Segmentation and Classification (Rezatofighi et al.; PubMed
21300521; http://users.cecs.anu.edu.au/~hrezatofighi/Data/Leukocyte%20Data.htm): 720x576 BMP
images of peripheral blood of 8 normal subjects (Gismo-Right stain, Axioskope 40, 100x), classified
by a haematologist into five leukocyte types, with the nucleus and cytoplasm of each leukocyte
segmented by an expert.

Native layout (``locate`` accepts up to two levels above the root)::

    LISC Database/Main Dataset/<folder>/<n>.bmp
    LISC Database/Ground Truth Segmentation/<folder>/areaforexpert1/<n>_expert.bmp
    <folder>: Baso eosi lymp mixt mono neut      (``Baso`` is capitalized, the others are not)

Two ground-truth layouts are accepted, detected per folder and reported
(``report.info["ground_truth"]``): ``<folder>/areaforexpert1/<n>_expert.bmp`` (the path two
independent public codes read) and ``<folder>/<n>_expert.bmp`` (flat). A class folder holding
both is an error naming it. Other ``areaforexpert<k>`` folders (a second expert, UNCONFIRMED) are
reported as skipped, not converted.

Classification:
* Label = the folder name, verbatim (``sources.lisc.labels``). ``mixt`` holds images showing
  several cell types (no single cell label): they map to ``unlabeled`` and are flagged
  ``mixed_cells`` (UNCONFIRMED reading of the folder name; kept so the image count matches).
* Image numbers restart in every folder (``Baso/1.bmp``, ``mixt/1.bmp``): the folder is part of
  ``sample_id``. No official split; the subjects are not identified, so each image is its own group.
* BMP is re-encoded losslessly to PNG by the core.

Ground-truth masks (checked on 12 real ``<n>_expert.bmp`` files of a public copy, see
``tests/test_adapter_lisc.py``):
* 8-bit gray BMP, background ``0``. Every leukocyte is drawn with a *cell-type-specific pair of
  gray levels*, the lower one for the cytoplasm, the higher one for the nucleus (the higher
  region lies inside the lower one and over the darkest stained pixels): :data:`LEVELS`.
  Checked: ``eosi`` 75 / 100, ``mono`` 175 / 200, ``neut`` 225 / 255, ``Baso`` a single level
  50 covering the whole cell (nucleus hidden by the granules; class ``wbc``). ``lymp`` 125 / 150
  is INFERRED from the pattern (levels step by 25 in folder order), not seen: rows decoded through
  it are flagged ``mask_levels_inferred`` and the run report says so. Any other gray level is an
  error naming the file and the value; so is a cell mixing the levels of two types.
* The real masks are **8 pixels smaller than their image** (712x568 for 720x576): they cover the
  image without its 4-pixel border (checked: the nucleus contrast peaks at offset (4, 4) on 11 of
  12 real pairs, and an overlay matches the cell outline). Such a mask is placed at (4, 4) and the
  border is background; the row is flagged ``mask_border_padded:4`` (the native mask is the
  converted one without that border: lossless). A mask of the image's own size is taken as is.
  Any other size is an error naming both files.
* ``semantic_mask``: ``background`` / ``cytoplasm`` / ``nucleus`` / ``wbc`` (whole cell).
* Objects: every 8-connected group of non-zero pixels is one leukocyte: ``mask_rle`` (computed in
  the worker), ``bbox`` from the mask, category = the cell type its levels encode, written as
  the native folder name (``mono``...; mapped through ``sources.lisc.labels``). A cell whose type
  differs from its (non-``mixt``) folder is flagged ``mask_cell_type:<i>:<type>`` and reported.
  Round trip: the native gray value of a pixel is ``LEVELS[object category][semantic class]``.
* Pairing: ``<n>.bmp`` <-> ``<n>_expert.bmp`` in the same class folder. An image without a mask is
  reported (``orphaned``) and converted without segmentation; a mask without an image is reported.
  Names differing only in case are an error naming both (images and masks).

Evidence: research note ``datasets-segmentation.md`` section 12 (LISC); the ground-truth paths
``Ground Truth Segmentation/<folder>/areaforexpert1/<n>_expert.bmp`` from two public codes
(a C++ and a Python reader); the encoding from real masks of github Goblin80/Leukocyte-Classify
(``phase1/samples/*_expert.bmp``, paired here with that repository's copies of the LISC images).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
from PIL import Image, ImageDraw

from ..errors import CorruptInputError
from ..formats import disk
from ..refs import Rle
from . import _synthetic as syn
from .base import FakeSample, FakeTruth, RawObject, RawSample
from .families import ClassFolderAdapter, FileRecord, refuse_unreadable_names

MAIN = "Main Dataset"
GROUND_TRUTH = "Ground Truth Segmentation"
EXPERT_DIR = "areaforexpert1"
CLASSES = ("Baso", "eosi", "lymp", "mixt", "mono", "neut")
MIXED = "mixt"
#: cell type -> {mask class: native gray level}
LEVELS: dict[str, dict[str, int]] = {
    "Baso": {"wbc": 50},
    "eosi": {"cytoplasm": 75, "nucleus": 100},
    "lymp": {"cytoplasm": 125, "nucleus": 150},   # INFERRED (not seen in a real mask)
    "mono": {"cytoplasm": 175, "nucleus": 200},
    "neut": {"cytoplasm": 225, "nucleus": 255},
}
INFERRED = frozenset({"lymp"})
#: gray level -> (cell type, mask class)
LEVEL_OF = {v: (t, c) for t, parts in LEVELS.items() for c, v in parts.items()}
#: converted semantic values (class-level; the cell type is on the objects)
SEMANTIC = {0: "background", 1: "cytoplasm", 2: "nucleus", 3: "wbc"}
SEM_VALUE = {c: v for v, c in SEMANTIC.items()}
BORDER = 4
MASK_RE = re.compile(r"^(?P<n>.+)_expert$")


def decode_mask(path: Path) -> np.ndarray:
    """The gray levels of one ``<n>_expert.bmp`` (8-bit gray, or colour with equal channels)."""
    import io

    from ..images import read_pixel_file

    try:  # read through the shared mask reader: integrity-checked (PNG CRCs and stream length, TIFF tags)
        with Image.open(io.BytesIO(read_pixel_file(path))) as im:
            im.load()
            if im.mode == "L":
                return np.asarray(im).copy()
            if im.mode in ("P", "RGB", "RGBA"):
                a = np.asarray(im.convert("RGB"))
                if not (np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2])):
                    raise CorruptInputError(f"{disk.show(path)}: colour mask; LISC masks are gray levels")
                return a[..., 0].copy()
            raise CorruptInputError(f"{disk.show(path)}: unexpected mask mode {im.mode} (expected 8-bit gray)")
    except CorruptInputError:
        raise
    except (OSError, ValueError, SyntaxError) as e:
        raise CorruptInputError(f"{disk.show(path)}: unreadable mask ({type(e).__name__}: {e})") from None


def mask_to_sample(levels: np.ndarray, mask: Path) -> tuple[np.ndarray, list[tuple[str, np.ndarray]], bool]:
    """``(semantic values, [(cell type, cell mask)], inferred)`` of a (padded) gray-level mask."""
    from scipy import ndimage

    present = [int(v) for v in np.unique(levels).tolist() if v]
    unknown = [v for v in present if v not in LEVEL_OF]
    if unknown:
        raise CorruptInputError(
            f"{disk.show(mask)}: unknown gray level(s) {unknown} (known: "
            + ", ".join(f"{t} {'/'.join(str(v) for v in p.values())}" for t, p in LEVELS.items()) + ")")
    lut = np.zeros(256, np.uint8)
    for v in present:
        lut[v] = SEM_VALUE[LEVEL_OF[v][1]]
    semantic = lut[levels]
    labels, n = ndimage.label(levels > 0, structure=np.ones((3, 3), bool))
    cells: list[tuple[str, np.ndarray]] = []
    inferred = False
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        comp = labels == k
        types = sorted({LEVEL_OF[int(v)][0] for v in np.unique(levels[comp]).tolist()})
        if len(types) != 1:
            y, x = int(sl[0].start), int(sl[1].start)
            raise CorruptInputError(f"{disk.show(mask)}: one cell (near x={x}, y={y}) mixes the gray levels of "
                                    f"{' and '.join(types)}")
        inferred |= types[0] in INFERRED
        cells.append((types[0], comp))
    return semantic, cells, inferred


class LiscAdapter(ClassFolderAdapter):
    id = "lisc"
    version = "2"
    tasks = ("classification", "segmentation", "detection")
    markers = (MAIN,)
    classes = CLASSES
    mask_values = dict(SEMANTIC)
    layout_hint = f"a folder holding '{MAIN}/' with Baso/eosi/lymp/mixt/mono/neut"

    def signature(self, path: Path) -> bool:
        return any((path / MAIN / c).is_dir() for c in CLASSES)

    def image_root(self, root: Path) -> Path:
        return root / MAIN

    # ---------------------------------------------------------------- ground truth
    def mask_folder(self, root: Path, folder: str) -> Optional[Path]:
        """The folder holding ``<n>_expert.bmp`` of one class folder (layout detected), or ``None``."""
        gt = root / GROUND_TRUTH / folder
        if not gt.is_dir():
            return None
        dirs, files = disk.list_dir(gt, self.report, root)
        flat = [f for f in files if f.suffix.lower() == ".bmp"]
        nested = [d for d in dirs if d.name == EXPERT_DIR]
        if flat and nested:
            raise CorruptInputError(f"{disk.show(gt)}: holds both <n>_expert.bmp files and an {EXPERT_DIR}/ folder; "
                                    "keep one ground-truth layout")
        for d in dirs:
            if d.name != EXPERT_DIR:
                self.report.skip(disk.rel(d, root) + "/", "another expert's or unknown ground-truth folder: not converted")
        for f in files:
            if f.suffix.lower() != ".bmp":
                self.report.skip(disk.rel(f, root), "not a ground-truth BMP")
        if nested:
            self._layouts.add(f"{GROUND_TRUTH}/<folder>/{EXPERT_DIR}/<n>_expert.bmp")
            return nested[0]
        if flat:
            self._layouts.add(f"{GROUND_TRUTH}/<folder>/<n>_expert.bmp")
            return gt
        return None

    def masks_of(self, root: Path, folder: str) -> dict[str, Path]:
        mdir = self.mask_folder(root, folder)
        if mdir is None:
            return {}
        files = disk.list_files(mdir, (".bmp",), self.report, root, "a ground-truth BMP")
        disk.refuse_case_collisions(files, "ground-truth")
        refuse_unreadable_names(files)  # a mask renamed to a non-UTF-8 name would silently pair with nothing
        out: dict[str, Path] = {}
        for f in files:
            m = MASK_RE.match(f.stem)
            if not m:
                self.report.skip(disk.rel(f, root), "BMP not named <n>_expert.bmp")
                continue
            out[m.group("n")] = f
        return out

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        self._layouts: set[str] = set()

    def records(self, root: Path) -> Iterator[FileRecord]:
        if not hasattr(self, "_layouts"):
            self._layouts = set()
        masks = {c: self.masks_of(root, c) for c in CLASSES if (root / MAIN / c).is_dir() or (root / GROUND_TRUTH / c).is_dir()}
        gt = root / GROUND_TRUTH
        if gt.is_dir():
            for d in disk.subdirs(gt):
                if d.name not in CLASSES:
                    raise CorruptInputError(f"{disk.show(d)}: unknown ground-truth folder {disk.show(d.name)!r} "
                                            f"(expected one of {', '.join(CLASSES)})")
        used: set[tuple[str, str]] = set()
        n_masks = n_lonely = 0
        for rec in super().records(root):
            folder = rec.part("class")
            mask = masks.get(folder, {}).get(rec.path.stem)
            if mask is None:
                n_lonely += 1
                self.report.orphan(rec.rel_path, "image without a <n>_expert.bmp mask (converted without segmentation)")
            else:
                n_masks += 1
                used.add((folder, rec.path.stem))
            yield FileRecord(rec.rel_path, rec.path, rec.parts, (mask,))
        for folder, by_n in masks.items():
            for n, m in sorted(by_n.items()):
                if (folder, n) not in used:
                    self.report.orphan(disk.rel(m, root), "mask without an image (not converted)")
        self.report.info["ground_truth"] = (f"{', '.join(sorted(self._layouts))}: {n_masks} image(s) with a mask, "
                                            f"{n_lonely} without" if self._layouts else f"{GROUND_TRUTH}/ absent")
        self.report.info["mask_levels"] = ("; ".join(f"{t} {'/'.join(str(v) for v in p.values())}" for t, p in LEVELS.items())
                                           + " (lymp inferred, flagged mask_levels_inferred)")

    def flags(self, rec: FileRecord) -> list[str]:
        return ["mixed_cells"] if rec.part("class") == MIXED else []

    def parse(self, rec: FileRecord) -> RawSample:
        s = super().parse(rec)
        mask = rec.extra[0] if rec.extra else None
        if mask is None:
            return s
        levels = decode_mask(mask)
        W, H = disk.image_size(rec.path)
        h, w = levels.shape
        if (w, h) == (W - 2 * BORDER, H - 2 * BORDER):
            full = np.zeros((H, W), np.uint8)
            full[BORDER:H - BORDER, BORDER:W - BORDER] = levels
            levels = full
            s.qc_flags.append(f"mask_border_padded:{BORDER}")
        elif (w, h) != (W, H):
            raise CorruptInputError(
                f"{disk.show(mask)}: mask is {w}x{h} but image {disk.show(rec.path)} is {W}x{H} "
                f"(expected {W}x{H} or {W - 2 * BORDER}x{H - 2 * BORDER}, the image without its {BORDER}-pixel border)")
        semantic, cells, inferred = mask_to_sample(levels, mask)
        from ..masks import encode_rle

        folder = rec.part("class")
        for i, (ctype, comp) in enumerate(cells):
            s.objects.append(RawObject(ctype, None, mask=Rle(encode_rle(comp), (H, W))))
            if folder != MIXED and ctype != folder:
                s.qc_flags.append(f"mask_cell_type:{i}:{ctype}")
                s.notes.append(("flagged", rec.rel_path, f"cell {i} of the mask has the gray levels of {ctype}, "
                                                         f"the image is in {folder}/"))
        if inferred:
            s.qc_flags.append("mask_levels_inferred")
        s.semantic_mask = semantic
        s.mask_values = dict(SEMANTIC)
        s.annotation_file = disk.show(mask)
        return s

    def input_files(self, root: Path) -> Iterator[Path]:
        yield from super().input_files(root)
        gt = root / GROUND_TRUTH
        if gt.is_dir():
            yield from disk.walk_files(gt)

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/LISC Database/`` with ``Main Dataset/<6 folders>/<n>.bmp`` (720x576 scaled
        down to 90x72, numbers restarting per folder, ``1.bmp`` in two folders) and
        ``Ground Truth Segmentation/<folder>/areaforexpert1/<n>_expert.bmp`` gray-level masks:
        8 px smaller than their image (the real quirk) except one of full size, the baso single
        level, a ``mixt`` image with two cells of different types, a lymp mask (inferred levels),
        one image without a mask, one mask without an image and a ``Thumbs.db``."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "LISC Database"
        W, H = 90, 72
        # (folder, n, cell types drawn in the mask or None (no mask), full-size mask)
        plan = [("Baso", 1, ["Baso"], False), ("eosi", 3, ["eosi"], False), ("lymp", 1, ["lymp"], False),
                ("mixt", 2, ["neut", "mono"], False), ("mono", 7, ["mono"], True), ("neut", 38, ["neut"], False),
                ("neut", 4, None, False)]
        truth: dict[str, FakeSample] = {}
        for k, (folder, n, types, full) in enumerate(plan):
            rel = f"{MAIN}/{folder}/{n}.bmp"
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(syn.encode(syn.single_cell(W, "wbc", seed * 100 + k + int(rng.integers(0, 9)) * 1000, size_h=H), "BMP"))
            t = FakeSample(rel_path=rel, label=folder)
            if types is not None:
                levels = np.zeros((H, W), np.uint8)
                centres = [(26, 36), (64, 36)] if len(types) == 2 else [(45 + int(rng.integers(-6, 7)), 36)]
                for ctype, (cx, cy) in zip(types, centres):
                    r = int(rng.integers(11, 16)) if len(types) == 2 else int(rng.integers(16, 24))
                    im = Image.fromarray(levels)
                    d = ImageDraw.Draw(im)
                    parts = LEVELS[ctype]
                    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=parts.get("cytoplasm", parts.get("wbc")))
                    if "nucleus" in parts:
                        rn = r * float(rng.uniform(0.4, 0.7))
                        d.ellipse([cx - rn + 2, cy - rn, cx + rn + 2, cy + rn * 0.8], fill=parts["nucleus"])
                    levels = np.asarray(im).copy()
                    comp = np.zeros((H, W), bool)
                    ImageDraw.Draw(cimg := Image.fromarray(np.zeros((H, W), np.uint8))).ellipse(
                        [cx - r, cy - r, cx + r, cy + r], fill=1)
                    comp = np.asarray(cimg).astype(bool)
                    t.object_masks.append(comp)
                    ys, xs = np.nonzero(comp)
                    t.boxes.append([float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)])
                    t.categories.append(ctype)
                # objects in the adapter's order: connected components in raster order of their first pixel
                order = sorted(range(len(t.boxes)), key=lambda i: int(np.flatnonzero(t.object_masks[i])[0]))
                t.object_masks = [t.object_masks[i] for i in order]
                t.boxes = [t.boxes[i] for i in order]
                t.categories = [t.categories[i] for i in order]
                # the converted semantic values (class level), the border stays background
                sem = np.zeros((H, W), np.uint8)
                for v in np.unique(levels).tolist():
                    if v:
                        sem[levels == v] = SEM_VALUE[LEVEL_OF[int(v)][1]]
                native = levels if full else levels[BORDER:H - BORDER, BORDER:W - BORDER]
                if not full:  # the real masks leave the 4-pixel border out: keep the fake's cells inside it
                    assert not levels[:BORDER].any() and not levels[-BORDER:].any()
                    assert not levels[:, :BORDER].any() and not levels[:, -BORDER:].any()
                t.semantic_mask = sem
                mdir = root / GROUND_TRUTH / folder / EXPERT_DIR
                mdir.mkdir(parents=True, exist_ok=True)
                (mdir / f"{n}_expert.bmp").write_bytes(syn.encode(Image.fromarray(native, "L"), "BMP"))
            truth[rel] = t
        orphan = root / GROUND_TRUTH / "eosi" / EXPERT_DIR / "9_expert.bmp"  # a mask whose image is absent
        orphan.write_bytes(syn.encode(Image.fromarray(np.zeros((H - 8, W - 8), np.uint8), "L"), "BMP"))
        (root / MAIN / "neut" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
        return FakeTruth(root=root, samples=truth)


ADAPTER = LiscAdapter
