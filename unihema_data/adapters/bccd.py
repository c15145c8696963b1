"""BCCD (Shenggan/BCCD_Dataset): Pascal VOC detection of WBC / RBC / Platelets.

Native layout (as extracted from the GitHub archive; ``locate`` accepts up to two levels above)::

    BCCD/Annotations/BloodImage_XXXXX.xml      VOC, integer 1-based inclusive xmin ymin xmax ymax
    BCCD/JPEGImages/BloodImage_XXXXX.jpg       640x480 JPEG
    BCCD/ImageSets/Main/{train,val,trainval,test}.txt

Conventions and quirks handled:
* Box convention: VOC 1-based inclusive (min coordinate 1, max = 640/480 in the real data), so a
  box with ``xmin == xmax`` (two real files, e.g. BloodImage_00338) is a 1-pixel box, not empty.
* Published split: ``train`` / ``val`` / ``test`` lists (``trainval`` = train + val); images in no
  list get the grouped fallback split.
* Image ids are non-contiguous (00000..00410, 364 images).
* Many RBCs are not annotated (known issue; nothing to fix).
* ``<filename>`` is checked against the XML's own name and ``<size>`` against the image (Pascal
  VOC family); ``<path>`` holds the author's absolute path and is ignored.
"""
from __future__ import annotations

from pathlib import Path
import numpy as np

from ..formats.voc import VocObject, write_voc
from . import _synthetic as syn
from .base import FakeSample, FakeTruth, _glob_any
from .families import VocAdapter

SPLIT_FILES = ("train", "val", "test")


class BCCDAdapter(VocAdapter):
    id = "bccd"
    version = "2"
    markers = ("Annotations", "JPEGImages")
    required = ("ImageSets/Main",)
    image_suffixes = (".jpg", ".jpeg", ".png")

    def signature(self, path: Path) -> bool:
        """At least one ``BloodImage_*.xml`` (tells BCCD from other VOC trees)."""
        return _glob_any(path, "Annotations/BloodImage_*.xml")

    layout_hint = "a folder with JPEGImages/BloodImage_NNNNN.jpg"

    def is_linked_root(self, path: Path) -> bool:
        """Sources that take BCCD's images (catalog ``images_from: [bccd]``, e.g. the Mohamed & Far
        nucleus masks) need only ``JPEGImages/BloodImage_*.jpg``: a partial copy without the
        annotations is enough."""
        return _glob_any(path, "JPEGImages/BloodImage_*.jpg")

    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/BCCD_Dataset-master/BCCD/...`` (the archive's top folder included) with
        non-contiguous ids, a 1-pixel (xmin == xmax) box, an image without RBCs, and split lists."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "BCCD_Dataset-master" / "BCCD"
        for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
            (root / d).mkdir(parents=True, exist_ok=True)
        W, H = 640, 480
        ids = [0, 1, 3, 7, 11, 14, 20, 338]
        names = {"wbc": "WBC", "rbc": "RBC", "platelet": "Platelets"}
        truth: dict[str, FakeSample] = {}
        split_of = {}
        for k, i in enumerate(ids):
            stem = f"BloodImage_{i:05d}"
            kinds = ["wbc"] + (["rbc"] * int(rng.integers(2, 6)) if k != 2 else []) + ["platelet"]
            boxes = syn.random_boxes(rng, W, H, len(kinds), lo=10, hi=120)
            if k == 0:
                boxes[0] = [0, 0, 90, 80]          # touches the top-left corner: VOC xmin=1, ymin=1
                boxes[-1] = [W - 30, H - 25, 30, 25]  # touches the bottom-right: xmax=640, ymax=480
            if i == 338:
                boxes[-1] = [503, 336, 1, 1]       # the real quirk: xmin == xmax, ymin == ymax
            im = syn.smear(W, H, list(zip(boxes, kinds)), seed + i)
            (root / "JPEGImages" / f"{stem}.jpg").write_bytes(syn.encode(im, "JPEG", quality=90))
            objs = [VocObject(names[kd], (x + 1, y + 1, x + w, y + h)) for (x, y, w, h), kd in zip(boxes, kinds)]
            write_voc(root / "Annotations" / f"{stem}.xml", f"{stem}.jpg", W, H, objs)
            split = "test" if k in (3, 6) else ("val" if k in (1, 5) else "train")
            split_of[stem] = split
            truth[f"JPEGImages/{stem}.jpg"] = FakeSample(
                rel_path=f"JPEGImages/{stem}.jpg",
                boxes=[[float(v) for v in b] for b in boxes],
                categories=[names[kd] for kd in kinds],
                source_split=split,
                group_id=stem,
            )
        main = root / "ImageSets" / "Main"
        for split in ("train", "val", "test"):
            (main / f"{split}.txt").write_text("".join(f"{s}\n" for s, v in split_of.items() if v == split))
        (main / "trainval.txt").write_text("".join(f"{s}\n" for s, v in split_of.items() if v in ("train", "val")))
        return FakeTruth(root=root, samples=truth)


ADAPTER = BCCDAdapter
