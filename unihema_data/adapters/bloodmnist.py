"""BloodMNIST, MedMNIST v2 (Yang et al. 2023, Scientific Data 10:41; doi:10.1038/s41597-022-01721-8;
Zenodo 10519652, CC BY 4.0): the 17,092 PBC images centre-cropped to 200x200 and resized to
28/64/128/224 px, 8 classes, official train/val/test split.

Native layout (``locate`` accepts up to two levels above the root)::

    <root>/bloodmnist.npz              28 px
    <root>/bloodmnist_<size>.npz       64 / 128 / 224 px
    keys: train_images (N, S, S, 3) uint8, train_labels (N, 1) int, val_*, test_*

Conventions:
* One file is converted: the largest resolution present (Uni-Hema used 224 px); the others hold
  the same images and are reported as skipped. ``subset = "<size>px"``.
* Images are lazy :class:`~unihema_data.refs.ArrayImage` references ``(npz, "<split>_images",
  index)``, read item by item in the workers (a forward stream over the member, so the 224 px
  file is never loaded whole), stored as lossless PNG and flagged ``reencoded_from:npz``.
  ``sample_id = bloodmnist/<file>/<split>/<index:05d>``.
* Label = the integer class id as a string (``"0"`` .. ``"7"``; ``sources.bloodmnist.labels``;
  ``3`` = immature granulocytes, PBC's PMY/MY/MMY and band/segmented detail is lost).
  ``source_split`` = ``train`` / ``val`` / ``test`` (the published split).
* No patient ids (PBC has none): each image is its own group.
* Derived from PBC: the same cells as ``pbc`` (and ``wbcatt``) rows. The core's near-duplicate
  detection (perceptual hash + pixel check) compares every image of an output folder and puts
  linked rows in one split with ``near_duplicate_of:``; the centre crop and down-scaling may keep
  some pairs from being recognised (UNCONFIRMED how many), so never train on ``pbc`` while
  testing on BloodMNIST without checking those flags.

Checked at listing time from the npz headers only (no pixels read; errors name the file):
every split has ``<split>_images`` and ``<split>_labels`` with the same length, images are
``uint8`` ``(N, H, W[, 3])``, labels ``(N,)`` or ``(N, 1)`` integers in 0..7.
Detected and reported: the files present and the one converted (``report.info["file"]``).

Evidence: research note ``datasets-classification.md`` §12 (keys, shapes, label strings from
MedMNIST ``info.py``; split sizes 11,959 / 1,712 / 3,421). Whether the Zenodo files are
compressed is UNCONFIRMED: both stored and deflated members are read. No real sample.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import CorruptInputError, MissingInputError
from ..formats import disk
from ..refs import ArrayImage, npz_members
from . import _synthetic as syn
from .base import Adapter, FakeSample, FakeTruth, RawSample

FILE = re.compile(r"^bloodmnist(?:_(\d+))?\.npz$")
SPLITS = ("train", "val", "test")
NUM_CLASSES = 8


@dataclass(frozen=True)
class Record:
    rel_path: str
    npz: Path
    key: str
    index: int
    label: int
    split: str
    subset: str


def _size(name: str) -> int:
    m = FILE.match(name)
    return int(m.group(1) or 28) if m else 0


class BloodMnistAdapter(Adapter):
    id = "bloodmnist"
    version = "1"
    tasks = ("classification",)
    markers = ("bloodmnist*.npz",)
    layout_hint = "bloodmnist[_<size>].npz"

    def signature(self, path: Path) -> bool:
        return any(FILE.match(f.name) for f in disk.list_files(path, (".npz",)))

    def prepare(self, root: Path) -> None:
        super().prepare(root)
        files = sorted((f for f in disk.list_files(root, (".npz",)) if FILE.match(f.name)), key=lambda f: _size(f.name))
        if not files:
            raise MissingInputError(f"{self.id}: no bloodmnist[_<size>].npz under {disk.show(root)}")
        self.npz = files[-1]
        for f in files[:-1]:
            self.report.skip(disk.rel(f, root), f"the same images at {_size(f.name)} px; {self.npz.name} is converted")
        self.report.info["file"] = f"{self.npz.name} ({_size(self.npz.name)} px) of {', '.join(f.name for f in files)}"
        self.labels = self._check(self.npz)

    def _check(self, path: Path) -> dict[str, np.ndarray]:
        members = npz_members(path)
        where = disk.show(path)
        labels = {}
        for split in SPLITS:
            ik, lk = f"{split}_images", f"{split}_labels"
            missing = [k for k in (ik, lk) if k not in members]
            if missing:
                raise CorruptInputError(f"{where}: npz lacks {', '.join(missing)} (has {', '.join(sorted(members))})")
            (ishape, idtype), (lshape, ldtype) = members[ik], members[lk]
            if idtype != np.uint8 or len(ishape) not in (3, 4) or (len(ishape) == 4 and ishape[3] not in (1, 3)):
                raise CorruptInputError(f"{where}: {ik} is {idtype} {ishape}, expected uint8 (N, H, W[, 3])")
            if ldtype.kind not in "iu" or len(lshape) not in (1, 2) or (len(lshape) == 2 and lshape[1] != 1):
                raise CorruptInputError(f"{where}: {lk} is {ldtype} {lshape}, expected integers (N,) or (N, 1)")
            if ishape[0] != lshape[0]:
                raise CorruptInputError(f"{where}: {ik} holds {ishape[0]} images but {lk} holds {lshape[0]} labels")
            try:
                with np.load(path, allow_pickle=False) as z:
                    lab = np.asarray(z[lk]).reshape(-1)
            except (OSError, ValueError, EOFError) as e:
                raise CorruptInputError(f"{where}: {lk} is not readable ({type(e).__name__}: {e})") from None
            bad = np.flatnonzero((lab < 0) | (lab >= NUM_CLASSES))
            if bad.size:
                raise CorruptInputError(f"{where}: {lk}[{bad[0]}] = {lab[bad[0]]} is not a class id 0..{NUM_CLASSES - 1}")
            labels[split] = lab
        return labels

    def records(self, root: Path) -> Iterator[Record]:
        if not hasattr(self, "labels"):
            self.prepare(root)
        subset = f"{_size(self.npz.name)}px"
        for split in SPLITS:
            for i, lab in enumerate(self.labels[split].tolist()):
                yield Record(f"{self.npz.name}/{split}/{i:05d}", self.npz, f"{split}_images", i, int(lab), split, subset)

    def parse(self, rec: Record) -> RawSample:
        return RawSample(rel_path=rec.rel_path, image_path=ArrayImage(rec.npz, rec.key, rec.index), label=str(rec.label),
                         source_split=rec.split, subset=rec.subset,
                         annotation_file=f"{disk.show(rec.npz)}[{rec.key}][{rec.index}]")

    def input_files(self, root: Path) -> Iterator[Path]:
        yield from (f for f in disk.list_files(root, (".npz",)) if FILE.match(f.name))

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/medmnist/bloodmnist.npz`` (28 px, skipped) and ``bloodmnist_64.npz`` (64 px,
        converted; deflated like ``np.savez_compressed``) with 6 / 2 / 3 images and (N, 1) labels,
        plus a ``README.txt``."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "medmnist"
        root.mkdir(parents=True)
        counts = {"train": 6, "val": 2, "test": 3}
        truth: dict[str, FakeSample] = {}
        arrays, small = {}, {}
        k = 0
        for split, n in counts.items():
            imgs, labs = [], []
            for i in range(n):
                lab = int(rng.integers(0, NUM_CLASSES))
                kind = {2: "rbc", 7: "platelet"}.get(lab, "wbc")
                imgs.append(np.asarray(syn.single_cell(64, kind, seed * 100 + k)))
                labs.append([lab])
                rel = f"bloodmnist_64.npz/{split}/{i:05d}"
                truth[rel] = FakeSample(rel_path=rel, label=str(lab), source_split=split)
                k += 1
            arrays[f"{split}_images"] = np.stack(imgs).astype(np.uint8)
            arrays[f"{split}_labels"] = np.asarray(labs, dtype=np.uint8)
            small[f"{split}_images"] = arrays[f"{split}_images"][:, ::2, ::2][:, :28, :28]
            small[f"{split}_labels"] = arrays[f"{split}_labels"]
        np.savez_compressed(root / "bloodmnist_64.npz", **arrays)
        np.savez_compressed(root / "bloodmnist.npz", **small)
        (root / "README.txt").write_text("MedMNIST v2 BloodMNIST\n")
        return FakeTruth(root=root, samples=truth)

    def corrupt(self, truth: FakeTruth) -> str:
        """``val_labels`` one entry short of ``val_images`` (mismatched arrays)."""
        path = truth.root / "bloodmnist_64.npz"
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["val_labels"] = arrays["val_labels"][:-1]
        np.savez_compressed(path, **arrays)
        return path.name


ADAPTER = BloodMnistAdapter
