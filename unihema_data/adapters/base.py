"""The adapter contract: an adapter only *parses* a source's native layout.

An adapter, given a raw folder, finds its native layout (:meth:`Adapter.locate`), checks what
is present (:meth:`Adapter.check`) and streams :class:`RawSample` records
(:meth:`Adapter.iter_samples`) with everything in the source's *native* conventions: image path,
boxes in the adapter's declared :class:`~unihema_data.boxes.BoxFormat`, masks with native pixel
values, verbatim native labels and attributes, group ids and published splits.

The shared core (:mod:`unihema_data.convert`) does everything else: box conventions, mask
encoding, taxonomy mapping, prompts, splits, deduplication, validation and writing.

Each adapter also ships a generator, :meth:`Adapter.fake`, that writes a small synthetic copy of
its native layout (quirks included) and returns the ground truth it wrote as a
:class:`FakeTruth`, so the generic test harness can check the whole conversion end to end.

Records must be cheap and picklable (paths, small arrays): they travel to worker processes.
"""
from __future__ import annotations

import abc
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Optional, Sequence

import numpy as np

from ..boxes import BoxFormat


class AdapterError(Exception):
    """Bad or missing native input. The message names the file and what is wrong."""


class MissingInputError(AdapterError):
    """The native layout was not found or required files are missing."""


class CorruptInputError(AdapterError):
    """A native file exists but cannot be parsed."""


@dataclass
class RawObject:
    """One annotated object, in the adapter's native conventions.

    ``bbox`` uses the adapter's :attr:`Adapter.box_format`; ``None`` when the object has only a
    mask or a point (the core then derives the box and records ``bbox_source``).
    ``mask`` is a boolean/0-1 array of the image's size (H, W), or ``None``.
    ``point`` is ``(x, y)`` in absolute pixels, or ``None``.
    ``attributes`` maps native attribute names to native values (verbatim, ints allowed).
    """

    category: str
    bbox: Optional[Sequence[float]] = None
    mask: Optional[np.ndarray] = None
    point: Optional[Sequence[float]] = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class RawSample:
    """One native image and its annotations, as found on disk.

    ``rel_path``       native path of the image relative to the located root (POSIX); it forms
                       the stable ``sample_id``.
    ``image_path``     absolute path of the image file.
    ``label``          verbatim native class string (classification) or ``None``.
    ``label_table``    which alias table of ``taxonomy.yaml`` maps ``label`` (``labels`` normally).
    ``semantic_mask``  path of a native mask image, or an (H, W) integer array of native values.
    ``mask_values``    native pixel value -> native mask-class name (mapped through the taxonomy).
    ``annotation_file`` the file the annotations came from (for error messages).
    ``meta``           per-sample overrides of catalog defaults: disease, magnification,
                       microscope, stain, granularity.
    """

    rel_path: str
    image_path: Path
    source_split: str = ""
    subset: str = ""
    group_id: str = ""
    label: Optional[str] = None
    label_table: str = "labels"
    attributes: dict[str, Any] = field(default_factory=dict)
    objects: list[RawObject] = field(default_factory=list)
    semantic_mask: Any = None
    mask_values: dict[int, str] = field(default_factory=dict)
    annotation_file: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    qc_flags: list[str] = field(default_factory=list)


@dataclass
class FakeSample:
    """Ground truth of one synthetic sample, in *unified* conventions (COCO absolute boxes)."""

    rel_path: str
    label: Optional[str] = None                       # native label
    label_table: str = "labels"                       # taxonomy alias table of ``label``
    boxes: list[list[float]] = field(default_factory=list)  # COCO xywh, absolute
    categories: list[str] = field(default_factory=list)      # native categories, parallel to boxes
    attributes: dict[str, Any] = field(default_factory=dict)  # native image-level attributes
    object_attributes: list[dict[str, Any]] = field(default_factory=list)
    semantic_mask: Optional[np.ndarray] = None        # native pixel values
    object_masks: list[np.ndarray] = field(default_factory=list)
    source_split: str = ""
    group_id: str = ""


@dataclass
class FakeTruth:
    """What :meth:`Adapter.fake` wrote: the root to convert from and per-sample ground truth."""

    root: Path
    samples: dict[str, FakeSample]  # by rel_path

    @property
    def num_images(self) -> int:
        return len(self.samples)

    @property
    def num_objects(self) -> int:
        return sum(len(s.boxes) for s in self.samples.values())


class Adapter(abc.ABC):
    """Base class of every source adapter. Subclasses set the class attributes and implement
    :meth:`iter_samples` and :meth:`fake`."""

    #: catalog id of the source
    id: ClassVar[str]
    #: bumped whenever parsing changes (part of the conversion fingerprint)
    version: ClassVar[str] = "1"
    #: native box convention, ``None`` when the source has no boxes
    box_format: ClassVar[Optional[BoxFormat]] = None
    #: tasks the converted rows carry
    tasks: ClassVar[tuple[str, ...]] = ()
    #: glob patterns (relative to the native root) that must all match for a folder to be the root
    markers: ClassVar[tuple[str, ...]] = ()
    #: extra relative glob patterns that must exist (checked by :meth:`check`)
    required: ClassVar[tuple[str, ...]] = ()
    #: semantic masks: native pixel value -> native class name (mapped through the taxonomy's
    #: ``sources.<id>.mask_classes``); the order of first appearance fixes ``mask_classes``
    mask_values: ClassVar[dict[int, str]] = {}
    #: semantic masks whose annotation tool left stray pixel values (anti-aliasing, brush edges):
    #: when True the core snaps a value outside ``mask_values`` to the nearest declared value and
    #: flags the row ``mask_stray_pixels:<n>``; when False (default) such a value is an error
    mask_snap_stray_values: ClassVar[bool] = False
    #: set by the core for ``convert --allow-partial``: an adapter that checks up front that every
    #: image its annotations reference exists (e.g. WBCAtt -> PBC) must then yield the records of
    #: absent images instead of raising; the core skips them and reports each one
    allow_partial: bool = False

    # ---------------------------------------------------------------- layout discovery
    def is_root(self, path: Path) -> bool:
        return path.is_dir() and all(_glob_any(path, m) for m in self.markers)

    def locate(self, raw_dir: Path | str) -> Path:
        """Find the native root: ``raw_dir`` itself, ``raw_dir/<id>`` or ``raw_dir/raw/<id>``, or a
        folder up to two levels below any of those (i.e. ``raw_dir`` may be up to two levels
        above the extracted layout)."""
        raw_dir = Path(raw_dir)
        if not raw_dir.exists():
            raise MissingInputError(f"{self.id}: raw folder {raw_dir} does not exist")
        starts = [raw_dir]
        for extra in (raw_dir / self.id, raw_dir / "raw" / self.id):
            if extra.is_dir():
                starts.insert(0, extra)
        for start in starts:
            frontier = [start]
            for _depth in range(3):
                hits = sorted(p for p in frontier if self.is_root(p))
                if hits:
                    return hits[0]
                frontier = sorted(c for p in frontier for c in _subdirs(p))
        raise MissingInputError(
            f"{self.id}: native layout not found under {raw_dir} (looked for a folder containing "
            f"{', '.join(self.markers)} up to two levels down). "
            f"Run `unihema-data fetch {self.id}` or `unihema-data fake {self.id} --out DIR`."
        )

    def check(self, root: Path) -> None:
        """Raise :class:`MissingInputError` listing every required path that is absent."""
        missing = [p for p in (*self.markers, *self.required) if not _glob_any(root, p)]
        if missing:
            raise MissingInputError(f"{self.id}: missing under {root}: {', '.join(missing)}")

    # ---------------------------------------------------------------- parsing
    @abc.abstractmethod
    def iter_samples(self, root: Path) -> Iterator[RawSample]:
        """Stream native records, in a deterministic order."""

    def input_files(self, root: Path) -> Iterator[Path]:
        """Files whose (path, size, mtime) define the conversion fingerprint (default: all)."""
        for p in sorted(root.rglob("*")):
            if p.is_file():
                yield p

    # ---------------------------------------------------------------- synthetic data
    @abc.abstractmethod
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Write a small synthetic copy of the native layout (quirks included) under ``out``."""

    def corrupt(self, truth: FakeTruth) -> str:
        """Damage one native file of a fake copy so conversion must fail; returns the file's name
        (which the error message must contain). Default: truncate the first image."""
        first = sorted(truth.samples)[0]
        path = truth.root / first
        path.write_bytes(path.read_bytes()[:20])
        return path.name


def _subdirs(p: Path) -> list[Path]:
    try:
        return [c for c in p.iterdir() if c.is_dir() and not c.name.startswith(".")]
    except OSError:
        return []


def _glob_any(root: Path, pattern: str) -> bool:
    if not any(ch in pattern for ch in "*?["):
        return (root / pattern).exists()
    parts = pattern.split("/")
    if len(parts) == 1:
        try:
            return any(fnmatch.fnmatch(c.name, pattern) for c in root.iterdir())
        except OSError:
            return False
    return next(iter(root.glob(pattern)), None) is not None
