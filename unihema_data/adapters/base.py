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
from ..errors import AdapterError, CorruptInputError, MissingInputError
from ..formats import disk
from ..report import RunReport

#: how far below a start folder ``locate`` looks for the native root (0 = the start itself)
LOCATE_DEPTH = 2


class AmbiguousLayoutError(MissingInputError):
    """Two folders both look like the source's root; the message names both."""


@dataclass
class RawObject:
    """One annotated object, in the adapter's native conventions.

    ``bbox`` uses the adapter's :attr:`Adapter.box_format`; ``None`` when the object has only a
    mask or a point (the core then derives the box and records ``bbox_source``).
    ``mask`` is a lazy reference (:mod:`unihema_data.refs`: :class:`~unihema_data.refs.Polygon`,
    :class:`~unihema_data.refs.Rle`, :class:`~unihema_data.refs.MaskValue`,
    :class:`~unihema_data.refs.MaskColour`) decoded in the worker, a boolean/0-1 (H, W) array
    (small images only: it is pickled), or ``None``.
    ``point`` is ``(x, y)`` in absolute pixels, or ``None``.
    ``circle`` is ``(cx, cy, r)`` or ``(cx, cy, x, y)`` (centre and a point on the circumference, as
    natively given) in absolute pixels for a source that annotates circles (NLM thick smears), or
    ``None``: the core stores the centre in ``point`` (unless ``point`` is given) and the circumscribed
    square ``[cx - r, cy - r, 2r, 2r]`` as the box with ``bbox_source = from_circle``; a clipped box is
    flagged ``clipped_box:<i>:circle:<the native values>``.
    ``attributes`` maps native attribute names to native values (verbatim, ints allowed).
    """

    category: str
    bbox: Optional[Sequence[float]] = None
    mask: Any = None
    point: Optional[Sequence[float]] = None
    attributes: dict[str, Any] = field(default_factory=dict)
    circle: Optional[Sequence[float]] = None


@dataclass
class RawSample:
    """One native image and its annotations, as found on disk.

    ``rel_path``       native path of the image relative to the located root (POSIX); it forms
                       the stable ``sample_id``.
    ``image_path``     absolute path of the image file, or a lazy image reference
                       (:mod:`unihema_data.refs`: bytes, an npz/npy array, a TIFF page).
    ``label``          verbatim native class string (classification) or ``None``.
    ``label_table``    which alias table of ``taxonomy.yaml`` maps ``label`` (``labels`` normally).
    ``semantic_mask``  path of a native mask image, or an (H, W) integer array of native values.
    ``mask_values``    native pixel value -> native mask-class name (mapped through the taxonomy).
    ``annotation_file`` the file the annotations came from (for error messages).
    ``meta``           per-sample overrides of catalog defaults: disease, magnification,
                       microscope, stain, granularity.
    ``notes``          run-report entries ``(kind, path, reason)`` found while parsing this
                       record in a worker (see :mod:`unihema_data.report`).
    ``question``/``answer``  a published visual-question-answering pair about the image (sources
                       whose rows *are* QA pairs, e.g. WBCMor-VQA): both non-empty, the question
                       already prefixed ``Q: ``; the row gets ``tasks = [vqa]`` and
                       ``prompt = question``, like the generated text sets. ``rel_path`` then
                       ends in ``#qa-<n>`` (one row per pair; the image name is the part before
                       the last ``#``).
    """

    rel_path: str
    image_path: Any
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
    notes: list[tuple[str, str, str]] = field(default_factory=list)
    question: str = ""
    answer: str = ""
    #: ``(width, height, what)``: the image size the annotation declares (e.g. VOC ``<size>``);
    #: checked against the decoded image in the worker, a mismatch is an error naming
    #: ``annotation_file`` (the image header is then not opened a second time just for this)
    declared_size: Optional[tuple[int, int, str]] = None


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
    """Base class of every source adapter.

    Contract v2 (see ``docs/adding-an-adapter.md``):

    * **Discovery** (:meth:`locate`): a folder is the root only if :meth:`is_root` says so: the
      ``markers`` exist *and* :meth:`signature` recognises the content. ``raw/<id>`` is searched
      alone when present; two candidate roots are an :class:`AmbiguousLayoutError` naming both.
    * **Listing** (main process, cheap): :meth:`prepare` (read small source-wide files: class
      names, split lists) then :meth:`records` yields small picklable records (paths, refs).
    * **Parsing** (worker processes): :meth:`parse` turns one record into a :class:`RawSample`
      (read the XML / label file here, never pixels: images and masks are lazy references
      decoded by the core in the same worker).
    * **Run report**: anything skipped, orphaned, repaired or flagged goes to :attr:`report`
      (listing) or ``RawSample.notes`` (parsing); detected layout facts go to ``report.info``.
    * **Linked sources** (catalog ``images_from``): :attr:`linked` maps a source id to its
      located root, set by the core before :meth:`check`.

    A v1 adapter that only implements :meth:`iter_samples` still works (parsed in the main
    process). Family bases in :mod:`unihema_data.adapters.families` implement the v2 split for
    class folders, Pascal VOC, YOLO, image/mask pairs, COCO JSON and CVAT XML.
    """

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
    #: RGB semantic masks: colour ``(r, g, b)`` -> native value (a key of ``mask_values``); every
    #: colour of a mask must be listed
    mask_palette: ClassVar[dict[tuple[int, int, int], int]] = {}
    #: semantic masks whose annotation tool left stray pixel values (anti-aliasing, brush edges):
    #: when True the core snaps a value outside ``mask_values`` to the nearest declared value and
    #: flags the row ``mask_stray_pixels:<n>``; when False (default) such a value is an error
    mask_snap_stray_values: ClassVar[bool] = False
    #: set by the core for ``convert --allow-partial``: an adapter that checks up front that every
    #: image its annotations reference exists (e.g. WBCAtt -> PBC) must then yield the records of
    #: absent images instead of raising; the core skips them and reports each one
    allow_partial: bool = False

    # ---------------------------------------------------------------- state
    @property
    def report(self) -> RunReport:
        """The run report of the current conversion (reset by :meth:`prepare`)."""
        if "_report" not in self.__dict__:
            self.__dict__["_report"] = RunReport(self.id)
        return self.__dict__["_report"]

    @property
    def linked(self) -> dict[str, Path]:
        """Located roots of the sources this one takes images from (catalog ``images_from``)."""
        return self.__dict__.setdefault("_linked", {})

    def link(self, source: str, root: Path) -> None:
        self.linked[source] = Path(root)

    # ---------------------------------------------------------------- layout discovery
    def signature(self, path: Path) -> bool:
        """Content check of a folder whose markers matched (default: none needed). Override to
        look inside a file or two (column counts, a header, a class-name file), so that another
        source with the same folder names is never taken for this one."""
        return True

    def is_root(self, path: Path) -> bool:
        return path.is_dir() and all(_glob_any(path, m) for m in self.markers) and self.signature(path)

    def is_linked_root(self, path: Path) -> bool:
        """Root test when another source takes its images from this one (catalog ``images_from``):
        a partial copy may be enough (default: :meth:`is_root`)."""
        return self.is_root(path)

    #: what a linked source looks for, in words (error messages)
    layout_hint: ClassVar[str] = ""

    def find_roots(self, start: Path, depth: int = LOCATE_DEPTH, skip: frozenset[str] = frozenset(),
                   linked: bool = False) -> list[Path]:
        """Every folder at most ``depth`` levels below ``start`` that :meth:`is_root` accepts (the
        search does not descend into a found root; children of ``start`` named in ``skip`` and
        junk folders are not entered)."""
        found: list[Path] = []
        frontier = [start]
        for level in range(depth + 1):
            nxt: list[Path] = []
            for p in frontier:
                if (self.is_linked_root(p) if linked else self.is_root(p)):
                    found.append(p)
                    continue
                if level < depth:
                    nxt += [c for c in disk.subdirs(p) if not (p == start and c.name in skip)]
            frontier = nxt
        return found

    def locate(self, raw_dir: Path | str) -> Path:
        """Find the native root.

        ``raw_dir/<id>`` (or ``raw_dir/raw/<id>``) is preferred: when it exists, only it is
        searched (itself and up to two levels below). Otherwise ``raw_dir`` itself and up to two
        levels below, without entering ``raw_dir/<other source id>`` folders. Exactly one folder
        must pass :meth:`is_root`; two are an :class:`AmbiguousLayoutError` naming both."""
        raw_dir = Path(raw_dir)
        if not raw_dir.exists():
            raise MissingInputError(f"{self.id}: raw folder {disk.show(raw_dir)} does not exist")
        own = [d for d in (raw_dir / self.id, raw_dir / "raw" / self.id) if d.is_dir()]
        start = own[0] if own else raw_dir
        skip = frozenset() if own else _other_source_ids(self.id)
        found = self.find_roots(start, skip=skip)
        if len(found) > 1:
            names = " and ".join(disk.show(p) for p in found[:2])
            more = f" (and {len(found) - 2} more)" if len(found) > 2 else ""
            raise AmbiguousLayoutError(
                f"{self.id}: two folders under {disk.show(start)} look like its native root: {names}{more}. "
                f"Keep one copy, or point --raw-dir at the one to convert."
            )
        if found:
            return found[0]
        raise MissingInputError(
            f"{self.id}: native layout not found under {disk.show(start)} (looked for a folder containing "
            f"{', '.join(self.markers) or 'its files'} up to {LOCATE_DEPTH} levels down"
            + (f", outside other sources' folders" if not own else "") + "). "
            f"Run `unihema-data fetch {self.id}` or `unihema-data fake {self.id} --out DIR`."
        )

    def check(self, root: Path) -> None:
        """Raise :class:`MissingInputError` listing every required path that is absent."""
        missing = [p for p in (*self.markers, *self.required) if not _glob_any(root, p)]
        if missing:
            raise MissingInputError(f"{self.id}: missing under {disk.show(root)}: {', '.join(missing)}")

    # ---------------------------------------------------------------- parsing
    def prepare(self, root: Path) -> None:
        """Main process, before :meth:`records`: reset the run report; read source-wide files
        (class names, split lists) into attributes that :meth:`parse` uses in the workers."""
        self.__dict__["_report"] = RunReport(self.id)

    def records(self, root: Path) -> Iterator[Any]:
        """Main process: stream small picklable records, in a deterministic order. Default (v1
        adapters): the fully parsed samples of :meth:`iter_samples`."""
        if type(self).iter_samples is Adapter.iter_samples:
            raise NotImplementedError(f"{type(self).__name__}: implement records() + parse() or iter_samples()")
        yield from self.iter_samples(root)

    def parse(self, record: Any) -> RawSample:
        """Worker process: one record -> one :class:`RawSample` (default: the record itself)."""
        return record

    def iter_samples(self, root: Path) -> Iterator[RawSample]:
        """Every sample, parsed in this process (tests, tools): :meth:`prepare`, then
        :meth:`parse` of each of :meth:`records`."""
        self.prepare(root)
        for rec in self.records(root):
            yield self.parse(rec)

    def input_files(self, root: Path) -> Iterator[Path]:
        """Files whose (path, size, mtime) define the conversion fingerprint (default: every
        regular file under the root and under each linked root)."""
        yield from disk.walk_files(root)
        for other in sorted(self.linked):
            yield from disk.walk_files(self.linked[other])

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


def _other_source_ids(own: str) -> frozenset[str]:
    """Catalog and registry ids other than ``own`` (their ``raw/<id>`` folders are theirs)."""
    ids: set[str] = set()
    try:
        from ..catalog import load_catalog

        ids |= set(load_catalog().ids())
    except Exception:  # noqa: BLE001 - a broken catalog must not break discovery
        pass
    try:
        from . import adapter_ids

        ids |= set(adapter_ids(load=False))
    except Exception:  # noqa: BLE001
        pass
    ids.discard(own)
    return frozenset(ids)


def _subdirs(p: Path) -> list[Path]:
    return disk.subdirs(p)


def _glob_any(root: Path, pattern: str) -> bool:
    if not any(ch in pattern for ch in "*?["):
        return (root / pattern).exists()
    parts = pattern.split("/")
    if len(parts) == 1:
        try:
            return any(fnmatch.fnmatch(c.name, pattern) for c in root.iterdir())
        except OSError:
            return False
    try:
        return next(iter(root.glob(pattern)), None) is not None
    except OSError:
        return False


__all__ = [
    "Adapter", "AdapterError", "AmbiguousLayoutError", "CorruptInputError", "FakeSample", "FakeTruth",
    "MissingInputError", "RawObject", "RawSample", "RunReport",
]
