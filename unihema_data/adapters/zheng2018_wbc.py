"""WBC Image Dataset (Zheng et al. 2018, Micron 107:55-71; github zxaoyou/segmentation_WBC).

Single-cell WBC crops with a 3-level semantic mask (background / cytoplasm / nucleus) and a
5-class cell-type label per image.

Native layout (repository root; ``locate`` accepts up to two levels above, e.g. the GitHub
archive's ``segmentation_WBC-master/`` folder)::

    Dataset 1/001.bmp ... 300.bmp    RGB 120x120 (24-bit BMP)
    Dataset 1/001.png ... 300.png    8-bit grayscale ground truth, same size
    Dataset 2/001.bmp ... 100.bmp    RGB 300x300
    Dataset 2/001.png ... 100.png
    Class Labels of Dataset 1.csv    header ``image ID,class label`` (CRLF)
    Class Labels of Dataset 2.csv    header ``image ID,class``       (CRLF)

Conventions:
* Pairing: image ``NNN.bmp`` <-> mask ``NNN.png`` (same 3-digit stem) <-> CSV row whose
  ``image ID`` is the integer ``NNN`` without zero padding.
* Mask pixel values (native classes, mapped by ``taxonomy.yaml`` ``sources.zheng2018_wbc.mask_classes``):
  ``0`` = ``background`` (red cells included), ``128`` = ``cytoplasm``, ``255`` = ``nucleus``.
  Five masks of the full release (``Dataset 2/034.png``, ``035``, ``047``, ``050``, ``076``) also
  hold a few stray values (2, 3, 7, 9, 24, 25, 37, 42, 44, 45, 50: 1-179 pixels each, brush
  edges of the annotation tool; found by converting the full repository). They are snapped to
  the nearest declared level (all to background) and the row is flagged
  ``mask_stray_pixels:<n>`` (``mask_snap_stray_values``); any mask whose size differs from its
  image is an error naming the file.
* Label: the verbatim CSV class code ``"1"``..``"5"`` (1 neutrophil, 2 lymphocyte, 3 monocyte,
  4 eosinophil, 5 basophil per the README); the taxonomy's ``labels`` table maps the codes.
* ``subset`` = the folder name, ``"Dataset 1"`` or ``"Dataset 2"`` (two different acquisitions;
  per-subset microscope/stain from the README go into ``meta``).
* No published split and no patient/slide ids: ``group_id`` is left empty, so each image is its
  own group (UNCONFIRMED whether several crops come from one patient; the README does not say).
* BMP images are re-encoded losslessly to PNG by the core (``reencoded_from:bmp`` flag).

Quirks handled: folder and CSV names contain spaces; the two CSVs use different headers; CRLF
line endings; CSV rows without an image (a partial copy) are reported (``orphaned``), but an
image without a CSV row, a duplicate or non-integer ``image ID`` (``²`` passes ``isdigit()``: only
ASCII digits count) and a missing mask are errors. Images and masks are paired by the
image/mask-pair family (same folder, ``.bmp`` vs ``.png``). The repository
root also holds README preview images ``Dataset 1.png`` / ``Dataset 2.png`` (the README embeds
``.../master/Dataset%201.png``; not in the real sample); only ``Dataset N`` folders are subsets. The README warns
that some class labels were added by the authors without expert review (not detectable here).

Evidence: research note ``datasets-segmentation.md`` §8; real sample
``shared/real-samples/zheng2018_wbc`` (masks checked: {0,128,255}, sizes equal to the images).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw

from ..formats import disk
from ..formats.csvfmt import read_csv, write_csv
from . import _synthetic as syn
from .base import CorruptInputError, FakeSample, FakeTruth, MissingInputError, RawSample
from .families import FileRecord, ImageMaskPairAdapter


SUBSET_RE = re.compile(r"^Dataset ([0-9]+)$")
HEADERS = (("image ID", "class label"), ("image ID", "class"))
MASK_VALUES = {0: "background", 128: "cytoplasm", 255: "nucleus"}

#: per-subset acquisition notes from the repository README (``meta`` overrides of catalog defaults)
SUBSET_META = {
    "Dataset 1": {
        "microscope": "Motic Moticam Pro 252A camera on an N800-D motorized auto-focus microscope",
        "stain": "rapid WBC staining reagent (Jiangxi Tecom)",
    },
    "Dataset 2": {
        "microscope": "CellaVision (images collected from the CellaVision blog)",
    },
}


def labels_csv_name(subset: str) -> str:
    return f"Class Labels of {subset}.csv"


class Zheng2018WBCAdapter(ImageMaskPairAdapter):
    id = "zheng2018_wbc"
    tasks = ("segmentation", "classification")
    markers = ("Dataset */*.bmp", "Class Labels of Dataset *.csv")
    mask_values = dict(MASK_VALUES)
    mask_snap_stray_values = True
    version = "3"
    image_suffixes = (".bmp",)
    mask_suffixes = (".png",)

    # ---------------------------------------------------------------- layout
    def subsets(self, root: Path) -> list[str]:
        """``Dataset N`` folder names, sorted by N."""
        found = [p.name for p in disk.subdirs(root) if SUBSET_RE.match(p.name)]
        return sorted(found, key=lambda n: int(SUBSET_RE.match(n).group(1)))  # type: ignore[union-attr]

    def folders(self, root: Path) -> list[tuple[str, Path, Path]]:
        return [(s, root / s, root / s) for s in self.subsets(root)]

    def check(self, root: Path) -> None:
        super().check(root)
        missing = [labels_csv_name(s) for s in self.subsets(root)
                   if not ((root / labels_csv_name(s)).exists() or (root / labels_csv_name(s)).is_symlink())]
        if missing:
            raise MissingInputError(f"{self.id}: missing under {root}: {', '.join(missing)}")

    def input_files(self, root: Path) -> Iterator[Path]:
        for s in self.subsets(root):
            yield root / labels_csv_name(s)
            yield from disk.list_files(root / s)

    def read_labels(self, csv_path: Path) -> dict[int, str]:
        """``image ID`` (int) -> verbatim class code, from one ``Class Labels of Dataset N.csv``."""
        table = read_csv(csv_path, header_variants=HEADERS)
        id_col, cls_col = table.header
        out: dict[int, str] = {}
        for row in table:
            raw_id, cls = row[id_col], row[cls_col]
            if not (raw_id.isascii() and raw_id.isdigit()):
                raise CorruptInputError(f"{table.where(row)}: image ID {raw_id!r} is not a non-negative integer")
            if not cls:
                raise CorruptInputError(f"{table.where(row)}: empty class for image ID {raw_id}")
            key = int(raw_id)
            if key in out:
                raise CorruptInputError(f"{table.where(row)}: image ID {key} is listed twice")
            out[key] = cls
        return out

    # ---------------------------------------------------------------- parsing
    def prepare(self, root: Path) -> None:
        super().prepare(root)
        self.labels = {s: self.read_labels(root / labels_csv_name(s)) for s in self.subsets(root)}

    def records(self, root: Path) -> Iterator[FileRecord]:
        if not hasattr(self, "labels"):
            self.prepare(root)
        used: dict[str, set[int]] = {s: set() for s in self.labels}
        for rec in super().records(root):
            subset, img = rec.part("subset"), rec.path
            if not (img.stem.isascii() and img.stem.isdigit()):
                raise CorruptInputError(f"{disk.show(img)}: unexpected image name (expected NNN.bmp with a numeric id)")
            if int(img.stem) not in self.labels[subset]:
                raise CorruptInputError(f"{disk.show(root / labels_csv_name(subset))}: no row for image ID "
                                        f"{int(img.stem)} (image {subset}/{img.name}); cannot label it")
            used[subset].add(int(img.stem))
            yield rec
        for subset, labels in self.labels.items():
            for key in sorted(set(labels) - used[subset]):
                self.report.orphan(f"{labels_csv_name(subset)}:image ID {key}", f"CSV row without an image in {subset}/")

    def label(self, rec: FileRecord) -> str:
        return self.labels[rec.part("subset")][int(rec.path.stem)]

    def meta(self, rec: FileRecord) -> dict[str, str]:
        return dict(SUBSET_META.get(rec.part("subset"), {}))

    def parse(self, rec: FileRecord) -> RawSample:
        s = super().parse(rec)
        s.annotation_file = disk.show(rec.path.parent.parent / labels_csv_name(rec.part("subset")))
        return s

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/segmentation_WBC-master/`` with ``Dataset 1`` (4 cells, 30x30) and
        ``Dataset 2`` (3 cells, 48x48), BMP images, {0,128,255} PNG masks, both CSV header
        variants with CRLF line endings, all five class codes, and one extra CSV row without an
        image (as in a partial copy), plus the README preview files ``Dataset 1.png`` /
        ``Dataset 2.png`` that sit next to the folders in the real repository."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "segmentation_WBC-master"
        plan = {"Dataset 1": (30, [1, 2, 3, 4]), "Dataset 2": (48, [5, 2, 1])}
        header = {"Dataset 1": HEADERS[0], "Dataset 2": HEADERS[1]}
        truth: dict[str, FakeSample] = {}
        for subset, (size, codes) in plan.items():
            folder = root / subset
            folder.mkdir(parents=True, exist_ok=True)
            rows = []
            for i, code in enumerate(codes, start=1):
                stem = f"{i:03d}"
                im = syn.single_cell(size, "wbc", seed * 100 + i + size)
                (folder / f"{stem}.bmp").write_bytes(syn.encode(im, "BMP"))
                mask = _fake_mask(size, rng)
                native = mask.copy()
                if subset == "Dataset 2" and i == 1:  # the real quirk: stray brush-edge values
                    native[0, :3] = (2, 7, 25)
                    native[-1, -1] = 140  # snaps to cytoplasm (128)
                    mask[-1, -1] = 128
                Image.fromarray(native, mode="L").save(folder / f"{stem}.png")
                rows.append((i, code))
                rel = f"{subset}/{stem}.bmp"
                truth[rel] = FakeSample(rel_path=rel, label=str(code), semantic_mask=mask)
            rows.append((len(codes) + 1, 1))  # a labelled id whose image is absent
            write_csv(root / labels_csv_name(subset), header[subset], rows, newline="\r\n")
            # the repository root also holds README preview images named like the folders
            syn.single_cell(24, "wbc", seed).save(root / f"{subset}.png")
        return FakeTruth(root=root, samples=truth)

    def corrupt(self, truth: FakeTruth) -> str:
        """Garble a row of the Dataset 1 label CSV (a non-integer image ID)."""
        path = truth.root / labels_csv_name("Dataset 1")
        lines = path.read_bytes().split(b"\r\n")
        lines[1] = b"one,1"
        path.write_bytes(b"\r\n".join(lines))
        return path.name


def _fake_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """Cytoplasm disc (128) with a nucleus (255) inside, on background (0)."""
    im = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(im)
    r = size * float(rng.uniform(0.3, 0.42))
    c = size / 2
    d.ellipse([c - r, c - r, c + r, c + r], fill=128)
    rn = r * float(rng.uniform(0.4, 0.7))
    off = float(rng.uniform(-0.2, 0.2)) * r
    d.ellipse([c - rn + off, c - rn, c + rn + off, c + rn], fill=255)
    return np.asarray(im, dtype=np.uint8).copy()


ADAPTER = Zheng2018WBCAdapter
