"""Bio-Net (usmanalishams/DeepBioNet_dataset_BCCD_WBC_Classifition): detection part, Pascal VOC.

Native layout (GitHub repository, commit ``0b67463``; ``locate`` accepts up to two levels above)::

    Blood Cell Detection & Counting Dataset/
        Training/Images/<n>.jpg, <n>(1).jpg       2002 JPEG 640x480
        Training/XML Files/<n>.xml, <n>(1).xml    2005 VOC files (3 without an image)
        Testing/<n>.jpg                           100 images, no annotations
        validation/<n>.jpg                        80 images, no annotations
    WBC Classification Dataset/<CLASS>/...        single-cell part (not read by this adapter)

Conventions and quirks handled (evidence: issue 20, research note datasets-detection.md §13, and a
full reading of the repository at ``0b67463``):

* VOC integer ``xmin ymin xmax ymax``, taken as 1-based inclusive like BCCD (the images include
  BCCD-style 640x480 fields; UNCONFIRMED for Bio-Net's own annotations; a 0 coordinate is clipped
  and flagged by the core). ``<size>`` matches every image at ``0b67463`` and is checked.
* Junk and typo labels (``dog`` 90 boxes, ``Platlets`` 15, ``platelets`` 10, ``W`` 1, ``P`` 1 next
  to ``RBC``/``WBC``/``Platelets``): mapped in the alias table (``dog`` boxes are RBC-sized
  LabelImg leftovers -> ``rbc``), and every such row carries ``label_variant:<i>:<native>`` per
  object and a ``flagged`` run-report entry: never silent.
* 3 XMLs without an image (``1431(1)``, ``1432(1)``, ``1435(1)``: the last one's image was deleted
  upstream): reported (``orphaned``), not converted. Any other XML without its image is an error
  (a damaged or partial copy), naming the XML.
* ``<filename>`` naming another image in 236 XMLs: reported (``flagged``) and the row carries
  ``voc_filename_mismatch`` (whether those boxes belong to the named image is UNCONFIRMED).
* Byte-identical images (409 groups per issue 20, 213 with different boxes): left to the corpus
  split policy (one split per group, ``duplicate_of`` / ``label_conflict`` flags).
* ``Testing/`` and ``validation/`` hold images without annotations (copies of Training images per
  issue 20): not converted, each reported (``skipped``); how many are byte-identical to a Training
  image is measured and reported (``report.info["unannotated_copies"]``).
* No published split for the annotated images: grouped split by image.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..formats import disk
from ..formats.voc import VocObject, write_voc
from . import _synthetic as syn
from .base import FakeSample, FakeTruth, _glob_any
from .families import VocAdapter, VocRecord

#: native labels other than RBC / WBC / Platelets (mapped, always flagged)
VARIANTS = ("dog", "Platlets", "platelets", "W", "P")
UNANNOTATED = ("Testing", "validation")
#: XMLs of the release (0b67463) whose image does not exist (1435(1).jpg was deleted upstream)
KNOWN_ORPHAN_XMLS = frozenset({"1431(1)", "1432(1)", "1435(1)"})


class BioNetAdapter(VocAdapter):
    id = "bionet"
    version = "1"
    markers = ("Training/Images", "Training/XML Files")
    images_dir = "Training/Images"
    annotations_dir = "Training/XML Files"
    image_suffixes = (".jpg", ".jpeg", ".png")
    filename_mismatch = "flag"

    def tolerate_missing_image(self, xml: Path) -> bool:
        """Only the release's own three XMLs without an image; any other is a damaged copy."""
        return xml.stem in KNOWN_ORPHAN_XMLS

    def signature(self, path: Path) -> bool:
        return _glob_any(path, "Training/XML Files/*.xml")

    def read_splits(self, root: Path) -> dict[str, str]:
        return {}

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        train = {_sha(p) for p in disk.list_files(root / self.images_dir, self.image_suffixes)}
        parts = []
        for sub in UNANNOTATED:
            if not (root / sub).is_dir():
                continue
            files = disk.list_files(root / sub, None, self.report, root)
            same = 0
            for f in files:
                copy = _sha(f) in train
                same += copy
                self.report.skip(disk.rel(f, root), "image without annotations (not converted)"
                                 + ("; byte-identical to a Training image" if copy else ""))
            parts.append(f"{sub}: {same} of {len(files)} byte-identical to a Training image")
        self.report.info["unannotated_copies"] = "; ".join(parts) or "no Testing/validation folders"

    def parse(self, rec: VocRecord):
        s = super().parse(rec)
        for i, o in enumerate(s.objects):
            if o.category in VARIANTS:
                s.qc_flags.append(f"label_variant:{i}:{o.category}")
        bad = sorted({o.category for o in s.objects if o.category in VARIANTS})
        if bad:
            s.notes.append(("flagged", rec.rel_path, "junk/typo labels mapped by the alias table: " + ", ".join(bad)))
        return s

    def input_files(self, root: Path):
        yield from super().input_files(root)
        for sub in UNANNOTATED:
            if (root / sub).is_dir():
                yield from disk.list_files(root / sub)

    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/DeepBioNet-main/Blood Cell Detection & Counting Dataset/`` with ``<n>(1)``
        duplicates (one byte-identical with other boxes), junk/typo labels, an XML without image,
        a stale ``<filename>``, and unannotated ``Testing/`` / ``validation/`` copies."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "DeepBioNet-main" / "Blood Cell Detection & Counting Dataset"
        idir, adir = root / self.images_dir, root / self.annotations_dir
        for d in (idir, adir, root / "Testing", root / "validation"):
            d.mkdir(parents=True, exist_ok=True)
        W, H = 640, 480
        truth: dict[str, FakeSample] = {}
        pics: dict[str, bytes] = {}
        for k, stem in enumerate(["1", "2", "3", "761", "1151", "1151(1)", "1200"]):
            names = ["WBC"] + ["RBC"] * int(rng.integers(2, 5)) + ["Platelets"]
            if stem == "761":
                names += ["dog", "Platlets"]
            if stem == "2":
                names += ["W", "P", "platelets"]
            boxes = syn.random_boxes(rng, W, H, len(names), lo=12, hi=90)
            if stem == "1151(1)":  # byte-identical to 1151.jpg, boxes differ
                data = pics["1151"]
            else:
                data = syn.encode(syn.smear(W, H, [(b, "rbc") for b in boxes], seed * 100 + k), "JPEG", quality=90)
            pics[stem] = data
            (idir / f"{stem}.jpg").write_bytes(data)
            fname = "1199.jpg" if stem == "1200" else f"{stem}.jpg"  # stale <filename>
            write_voc(adir / f"{stem}.xml", fname, W, H,
                      [VocObject(n, (x + 1, y + 1, x + w, y + h)) for n, (x, y, w, h) in zip(names, boxes)])
            rel = f"{self.images_dir}/{stem}.jpg"
            truth[rel] = FakeSample(rel_path=rel, boxes=[[float(v) for v in b] for b in boxes], categories=names,
                                    group_id=stem)
        write_voc(adir / "1431(1).xml", "1431(1).jpg", W, H, [VocObject("RBC", (5, 5, 40, 40))])  # no image
        (root / "Testing" / "1.jpg").write_bytes(pics["1"])
        (root / "validation" / "3.jpg").write_bytes(pics["3"])
        (root / "validation" / "9000.jpg").write_bytes(syn.encode(syn.smear(W, H, [], seed + 5), "JPEG"))
        return FakeTruth(root=root, samples=truth)


def _sha(path: Path) -> str:
    return hashlib.sha1(disk.read_bytes(path, "image")).hexdigest()


ADAPTER = BioNetAdapter
