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
* Objects: every 8-connected group of parasite pixels is one parasite (dataset-ninja derives the
  instances the same way): ``mask_rle`` computed in the worker, ``bbox`` from the mask.
* ``LifeStages.xlsx`` (read with openpyxl; optional): one row per annotated object with the image
  name, the stage and the centre point. The columns are found by header name (``imageName`` /
  ``image`` / ``filename``, ``stage`` / ``lifestage`` / ``class``, ``center_x`` / ``x``,
  ``center_y`` / ``y``, case and ``_`` ignored; UNCONFIRMED which spelling the release uses) on the
  first sheet that has them; the sheet and columns found go to ``report.info["life_stages"]``;
  no such sheet is an error naming the file and the header seen. A row's image name matches an
  image by stem (with or without extension). Centres are 0-based pixel coordinates (UNCONFIRMED):
  the centre's pixel ``(floor(x), floor(y))`` lying in a parasite component gives that component
  the row's stage (category = the stage verbatim, ``sources.md2019_malaria.labels``). A component
  without a centre is category ``parasite`` (P. falciparum, stage unknown); one holding centres of
  two stages is ``parasite`` flagged ``stage_ambiguous:<i>:<stage>/<stage>``. A centre outside every
  component (``DEBRIS`` and ``WBC`` rows, whose objects are not in the parasite mask) is kept as a
  point object of its stage (``bbox_source = from_point``) after the mask objects, and counted in
  the row flag ``stage_points_outside_mask:<n>``. Rows naming no image are reported (``orphaned``);
  an image with no row (pre-augmented copies may have none, UNCONFIRMED) is flagged
  ``no_life_stages`` when the file is present. A non-numeric or non-finite centre, an empty stage
  or image name is an error naming the file, sheet and row.

Evidence: research note ``datasets-segmentation.md`` section 1 (no real sample: no public copy of
the native files was found).
"""
from __future__ import annotations

import math
import re
from pathlib import Path, PurePosixPath
from typing import Iterator, Optional

import numpy as np
from PIL import Image, ImageDraw

from ..errors import CorruptInputError
from ..formats import disk
from ..refs import Rle
from . import _synthetic as syn
from .base import FakeSample, FakeTruth, RawObject, RawSample
from .families import FileRecord, ImageMaskPairAdapter, refuse_unreadable_names

IMAGES_DIR = "Giemsa stained images"
MASKS_DIR = "Ground truth images"
COPY_RE = re.compile(r"^(?P<base>.+?)(?: add_\d+|_\d+)$")
STAGES_FILE = "LifeStages.xlsx"
#: normalized header (lower case, no ``_``/space) -> column role
HEADER_NAMES = {
    "image": ("imagename", "image", "filename", "imagefile", "name"),
    "stage": ("stage", "lifestage", "class", "label"),
    "x": ("centerx", "centrex", "x", "cx", "xcenter"),
    "y": ("centery", "centrey", "y", "cy", "ycenter"),
}
#: category of a parasite component that no centre names
UNSTAGED = "parasite"


def _norm(h) -> str:
    return re.sub(r"[\s_\-]", "", str(h or "")).lower()


def image_key(name: str) -> str:
    """The image stem a LifeStages row names (``"X add_1.png"`` and ``"X add_1"`` -> ``"X add_1"``)."""
    p = PurePosixPath(name.strip().replace("\\", "/"))
    return p.stem if p.suffix.lower() in disk.IMAGE_SUFFIXES else p.name


def read_life_stages(path: Path) -> tuple[dict[str, list[tuple[str, float, float, int]]], str]:
    """``({image stem: [(stage, x, y, row)]}, layout description)`` of ``LifeStages.xlsx``."""
    import zipfile

    try:
        import openpyxl
    except ImportError:  # pragma: no cover - a base dependency
        raise CorruptInputError(f"{disk.show(path)}: reading it needs openpyxl (pip install openpyxl)") from None
    disk.require_regular(path, "spreadsheet")
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError, EOFError) as e:
        raise CorruptInputError(f"{disk.show(path)}: not a readable .xlsx workbook ({type(e).__name__}: {e})") from None
    except Exception as e:  # noqa: BLE001 - openpyxl raises many kinds on damaged files
        raise CorruptInputError(f"{disk.show(path)}: not a readable .xlsx workbook ({type(e).__name__}: {e})") from None
    try:
        seen = []
        for ws in wb.worksheets:
            rows = ws.iter_rows(values_only=True)
            header = None
            for row in rows:
                if any(v not in (None, "") for v in row):
                    header = row
                    break
            if header is None:
                continue
            names = [_norm(h) for h in header]
            cols = {}
            for role, options in HEADER_NAMES.items():
                hit = [i for i, n in enumerate(names) if n in options]
                if len(hit) > 1:
                    raise CorruptInputError(f"{disk.show(path)}: sheet {ws.title!r}: two {role} columns "
                                            f"({', '.join(str(header[i]) for i in hit)})")
                if hit:
                    cols[role] = hit[0]
            if len(cols) < 4:
                seen.append(f"{ws.title!r}: {[h for h in header if h not in (None, '')]}")
                continue
            out: dict[str, list[tuple[str, float, float, int]]] = {}
            for lineno, row in enumerate(rows, start=2):
                if not any(v not in (None, "") for v in row):
                    continue
                where = f"{disk.show(path)}: sheet {ws.title!r} row {lineno}"
                get = lambda role: row[cols[role]] if cols[role] < len(row) else None  # noqa: E731
                name, stage = get("image"), get("stage")
                if name in (None, "") or stage in (None, ""):
                    raise CorruptInputError(f"{where}: empty image name or stage")
                xy = []
                for role in ("x", "y"):
                    v = get(role)
                    try:
                        f = float(v) if not isinstance(v, bool) else math.nan
                    except (TypeError, ValueError):
                        f = math.nan
                    if not math.isfinite(f) or f < 0:
                        raise CorruptInputError(f"{where}: {header[cols[role]]} {v!r} is not a pixel coordinate")
                    xy.append(f)
                out.setdefault(image_key(str(name)), []).append((str(stage).strip(), xy[0], xy[1], lineno))
            layout = (f"sheet {ws.title!r}, columns " + ", ".join(f"{role}={header[i]!r}" for role, i in sorted(cols.items())))
            return out, layout
        raise CorruptInputError(f"{disk.show(path)}: no sheet has image, stage, center_x and center_y columns "
                                f"(headers seen: {'; '.join(seen) or 'none'})")
    except CorruptInputError:
        raise
    except Exception as e:  # noqa: BLE001 - damaged sheet XML surfaces while iterating
        raise CorruptInputError(f"{disk.show(path)}: not a readable .xlsx workbook ({type(e).__name__}: {e})") from None
    finally:
        wb.close()


def stage_objects(mask: np.ndarray, centres, rel: str, H: int, W: int):
    """``(objects, flags, points outside)`` of one image: parasite components with their stages,
    then the centres outside every component as point objects."""
    from scipy import ndimage

    from ..masks import encode_rle

    labels, n = ndimage.label(mask == 255, structure=np.ones((3, 3), bool))
    stages: dict[int, list[str]] = {}
    outside = []
    for stage, x, y, lineno in centres:
        c, r = int(math.floor(x)), int(math.floor(y))
        k = int(labels[r, c]) if 0 <= r < labels.shape[0] and 0 <= c < labels.shape[1] else 0
        if k:
            stages.setdefault(k, []).append(stage)
        else:
            outside.append((stage, x, y))
    objects, flags = [], []
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        names = sorted(set(stages.get(k, [])))
        i = len(objects)
        if len(names) > 1:
            flags.append(f"stage_ambiguous:{i}:{'/'.join(names)}")
        cat = names[0] if len(names) == 1 else UNSTAGED
        objects.append(RawObject(cat, None, mask=Rle(encode_rle(labels == k), (H, W))))
    for stage, x, y in outside:
        objects.append(RawObject(stage, None, point=(x, y)))
    return objects, flags, len(outside)


def base_name(stem: str) -> str:
    """Field name without the pre-augmentation suffix (`` add_N`` or ``_N``)."""
    m = COPY_RE.match(stem)
    return m.group("base") if m else stem


class MD2019MalariaAdapter(ImageMaskPairAdapter):
    id = "md2019_malaria"
    version = "1"
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

    tasks = ("segmentation", "detection")

    def stages_file(self, root: Path) -> Optional[Path]:
        """``LifeStages.xlsx`` at the root (any case); two names differing only in case are an error."""
        _dirs, files = disk.list_dir(root, None, root)
        # a spreadsheet renamed to a non-UTF-8 name would silently count as absent
        refuse_unreadable_names([f for f in files if f.suffix.lower() == ".xlsx"])
        found = [f for f in files if f.name.lower() == STAGES_FILE.lower()]
        disk.refuse_case_collisions(found, "life-stage")
        return found[0] if found else None

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        path = self.stages_file(root)
        if path is None:
            self.stages, self.report.info["life_stages"] = None, f"{STAGES_FILE} absent"
            return
        self.stages, layout = read_life_stages(path)
        self.report.info["life_stages"] = f"{disk.show(path.name)}: {layout}"
        self._stages_name = disk.show(path.name)

    def records(self, root: Path) -> Iterator[FileRecord]:
        if not hasattr(self, "stages"):
            self.prepare(root)
        copies = 0
        used: set[str] = set()
        for rec in super().records(root):
            copies += base_name(rec.path.stem) != rec.path.stem
            centres = tuple((self.stages or {}).get(rec.path.stem, ()))
            if centres:
                used.add(rec.path.stem)
            yield FileRecord(rec.rel_path, rec.path, rec.parts, (*rec.extra, centres, self.stages is not None))
        self.report.info["augmented_copies"] = str(copies)
        for key in sorted(set(self.stages or {}) - used):
            rows = self.stages[key]
            self.report.orphan(f"{self._stages_name}:{key}", f"{len(rows)} row(s) (first: row {rows[0][3]}) name no image")

    def parse(self, rec: FileRecord) -> RawSample:
        from ..masks import read_native_mask

        s = super().parse(rec)
        mask, centres, have_stages = rec.extra[0], rec.extra[1], rec.extra[2]
        if mask is None:
            return s
        try:
            values = read_native_mask(mask, disk.show(mask))
        except (OSError, ValueError, SyntaxError) as e:
            raise CorruptInputError(f"{disk.show(mask)}: unreadable mask ({type(e).__name__}: {e})") from None
        W, H = disk.image_size(rec.path)
        s.semantic_mask = values  # decoded once; the core checks its values and size (naming the mask)
        if values.shape != (H, W):
            return s
        s.objects, flags, outside = stage_objects(values, centres, rec.rel_path, H, W)
        s.qc_flags += flags
        if outside:
            s.qc_flags.append(f"stage_points_outside_mask:{outside}")
        if have_stages and not centres:
            s.qc_flags.append("no_life_stages")
        return s

    def group_id(self, rec: FileRecord) -> str:
        return base_name(rec.path.stem)

    def input_files(self, root: Path) -> Iterator[Path]:
        yield from super().input_files(root)
        path = self.stages_file(root)
        if path is not None:
            yield path

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/5bf2kmwvfn-1/`` with two fields and their pre-augmented copies
        (`` add_N`` and ``_N`` suffixes, flipped pixels and masks), ``.png`` and ``.jpg`` images,
        1-channel and 3-channel {0,255} masks, one ``_GT`` mask without an image, and
        ``LifeStages.xlsx`` (stages of the original fields by centre point: a staged parasite per
        stage, one parasite without a centre, a DEBRIS centre outside the mask, rows naming an
        absent image; the copies have no rows)."""
        import openpyxl

        rng = np.random.default_rng(seed)
        root = Path(out) / "5bf2kmwvfn-1"
        idir, mdir = root / IMAGES_DIR, root / MASKS_DIR
        idir.mkdir(parents=True, exist_ok=True)
        mdir.mkdir(parents=True, exist_ok=True)
        W, H = 80, 60
        truth: dict[str, FakeSample] = {}
        rows: list[tuple] = []
        fields = ["Trip 053 Day 2 19-11-05 Image 10", "Trip 061 Day 4 20-01-14 Image 3"]
        stage_sets = [["R", "LT", "Gam"], ["Esch", "LR-ET"]]
        for f, field in enumerate(fields):
            # parasites on a 3x2 grid of 26x30 cells: never touching, one blob per cell used
            slots = rng.permutation(6)[: len(stage_sets[f]) + 1]
            blobs = []
            for k, slot in enumerate(slots):
                gx, gy = int(slot % 3) * 26, int(slot // 3) * 30
                x0, y0 = gx + int(rng.integers(3, 8)), gy + int(rng.integers(3, 8))
                bw, bh = int(rng.integers(7, 14)), int(rng.integers(7, 14))
                blobs.append((x0, y0, bw, bh))
            cells = [((x - 4, y - 4, w + 8, h + 8), "rbc") for x, y, w, h in blobs]
            base_im = syn.smear(W, H, cells, seed * 10 + f)
            masks = []
            for x, y, w, h in blobs:
                m = Image.new("L", (W, H), 0)
                ImageDraw.Draw(m).ellipse([x, y, x + w - 1, y + h - 1], fill=255)
                masks.append(np.asarray(m) > 0)
            base_mask = np.where(np.any(masks, axis=0), 255, 0).astype(np.uint8)
            # stages: blob k < n staged by its centre; the last blob has no centre; one DEBRIS point off the mask
            staged = stage_sets[f]
            for k, stage in enumerate(staged):
                ys, xs = np.nonzero(masks[k])
                j = int(rng.integers(0, len(xs)))
                rows.append((f"{field}.png", stage, float(xs[j]) + 0.25, float(ys[j]) + 0.5))
            debris = (float(W - 2), float(H - 3))
            assert base_mask[int(debris[1]), int(debris[0])] == 0
            rows.append((f"{field}.png", "DEBRIS", *debris))
            variants = [("", 0), (" add_1", 1), (" add_2", 2)] if f == 0 else [("", 0), ("_1", 1)]
            for suffix, flip in variants:
                stem = field + suffix
                im, mask, obj = base_im, base_mask, masks
                if flip == 1:
                    im, mask, obj = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), mask[:, ::-1], [m[:, ::-1] for m in masks]
                elif flip == 2:
                    im, mask, obj = im.transpose(Image.Transpose.FLIP_TOP_BOTTOM), mask[::-1], [m[::-1] for m in masks]
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
                cats = [staged[k] if (k < len(staged) and not suffix) else UNSTAGED for k in range(len(obj))]
                boxes = [_box(m) for m in obj]
                # the adapter's order: components in raster order of their first pixel, then the points
                order = sorted(range(len(obj)), key=lambda k: int(np.flatnonzero(np.ascontiguousarray(obj[k]))[0]))
                t = FakeSample(rel_path=rel, semantic_mask=mask, group_id=field,
                               object_masks=[np.ascontiguousarray(obj[k]) for k in order],
                               boxes=[boxes[k] for k in order], categories=[cats[k] for k in order])
                if not suffix:
                    t.boxes.append([debris[0], debris[1], 0.0, 0.0])
                    t.categories.append("DEBRIS")
                truth[rel] = t
        rows.append(("Trip 099 Day 9 20-03-03 Image 9.png", "R", 5.0, 5.0))  # an image that is not in the release
        Image.fromarray(np.zeros((H, W), np.uint8), "L").save(mdir / "Trip 070 Day 1 20-02-02 Image 1_GT.png")  # no image
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = "Sheet1"
        ws.append(["imageName", "stage", "center_x", "center_y"])
        for r in rows:
            ws.append(list(r))
        wb.save(root / STAGES_FILE)
        return FakeTruth(root=root, samples=truth)


def _box(m: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(m)
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


ADAPTER = MD2019MalariaAdapter
