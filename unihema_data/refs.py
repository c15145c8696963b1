"""Lazy references: what an adapter hands over instead of decoded pixels.

Adapters list records in the main process and must keep them small (they are pickled to the
worker processes). Instead of arrays they give *references*, decoded in the worker that builds
the row, so memory stays flat whatever the source:

Images (``RawSample.image_path``):

* a :class:`~pathlib.Path` (or :class:`ImageFile`) - the native file; its bytes are stored
  untouched when the Hub can show them (JPEG/PNG/GIF/WebP), else re-encoded losslessly to PNG;
* :class:`ImageBytes` - native file bytes held inside another container (a zip member, a
  database blob); treated exactly like a file's bytes;
* :class:`ArrayImage` - an array inside an ``.npz`` (``key`` and optional leading ``index``) or
  an ``.npy`` file (loaded memory-mapped); stored as PNG, flagged ``reencoded_from:npz|npy``;
* :class:`TiffPage` - page ``page`` (0-based) of a multi-page TIFF; stored as PNG, flagged
  ``reencoded_from:tiff_page``.

For the last two, ``image_sha256`` is the sha256 of the *canonical pixels*
(``"<dtype>|<shape>|"`` followed by the C-order array bytes), so the same pixels held in an npz
and in a TIFF page hash alike.

Object masks (``RawObject.mask``), all in the image's pixel frame:

* an (H, W) array (allowed, but it travels through the pickle: avoid for large images);
* :class:`Polygon` - one or more rings ``[x0, y0, x1, y1, ...]`` in absolute pixel coordinates
  (COCO segmentation convention: pixel centres at ``+0.5``), rasterized by pycocotools;
* :class:`Rle` - COCO RLE, compressed string or uncompressed list of counts, with its
  ``(height, width)``;
* :class:`MaskValue` - ``(mask file, instance value)``: the object is every pixel of that
  (single-channel) file equal to ``value``;
* :class:`MaskColour` - ``(mask file, (r, g, b))``: the object is every pixel of that colour.

A mask file named by several objects of one record is decoded once per record (per worker);
instance values are located with :func:`scipy.ndimage.find_objects`, so a 4000x3000 file with
hundreds of instances costs one decode and one pass.

Semantic masks (``RawSample.semantic_mask``): a path or an (H, W) array of native values as
before; an RGB file is accepted when the adapter declares ``mask_palette`` (colour -> native
value), every colour must be in it.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from .errors import CorruptInputError
from .formats.disk import read_bytes, show


# ------------------------------------------------------------------------------------ images
@dataclass(frozen=True)
class ImageFile:
    path: Path

    def __str__(self) -> str:
        return show(self.path)


@dataclass(frozen=True)
class ImageBytes:
    data: bytes
    name: str  # where the bytes came from (for messages), e.g. "archive.zip:cells/001.png"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ArrayImage:
    path: Path
    key: str = ""                 # npz member; "" for an .npy file
    index: Optional[int] = None   # index along the first axis (a stack of images)

    def __str__(self) -> str:
        where = f"[{self.key}]" if self.key else ""
        return f"{show(self.path)}{where}" + (f"[{self.index}]" if self.index is not None else "")


@dataclass(frozen=True)
class ImageCrop:
    """The pixels ``box = (x0, y0, x1, y1)`` (integers, half-open, in the stored pixel frame) of
    an image file: a single-cell view of a field of view. The file is verified like any image,
    the crop is stored as lossless PNG (flagged ``reencoded_from:crop``)."""

    path: Path
    box: tuple[int, int, int, int]

    def __str__(self) -> str:
        return f"{show(self.path)}[{self.box[0]}:{self.box[2]}, {self.box[1]}:{self.box[3]}]"


@dataclass(frozen=True)
class TiffPage:
    path: Path
    page: int

    def __str__(self) -> str:
        return f"{show(self.path)} (page {self.page})"


ImageRef = Union[Path, ImageFile, ImageBytes, ArrayImage, ImageCrop, TiffPage]


def canonical_sha256(arr: np.ndarray) -> str:
    a = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{a.dtype.str}|{a.shape}|".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def load_array_image(ref: ArrayImage) -> np.ndarray:
    """The array a :class:`ArrayImage` names (H, W) or (H, W, C)."""
    name = str(ref)
    from .formats.disk import require_regular

    require_regular(ref.path, "array file")
    try:
        if ref.key and ref.index is not None:
            arr = _npz_item(ref, name)
        elif ref.key:
            with np.load(ref.path, allow_pickle=False) as z:
                if ref.key not in z.files:
                    raise CorruptInputError(f"{name}: npz has no array {ref.key!r} (has {', '.join(z.files)})")
                arr = z[ref.key] if ref.index is None else _index(z[ref.key], ref.index, name)
        else:
            mm = np.load(ref.path, mmap_mode="r", allow_pickle=False)
            arr = np.array(mm if ref.index is None else _index(mm, ref.index, name))
    except CorruptInputError:
        raise
    except (OSError, ValueError, EOFError) as e:
        raise CorruptInputError(f"{name}: not a readable numpy file ({type(e).__name__}: {e})") from None
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise CorruptInputError(f"{name}: array of shape {arr.shape} is not an image (H, W[, 1|3|4])")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return np.asarray(arr)


# ----------------------------------------------------------- npz members read item by item
def npz_members(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of every ``.npy`` member of an npz, from the member headers only
    (no array data is read: cheap for the main process whatever the file size). A file that is
    not a readable npz is a :class:`CorruptInputError` naming it."""
    import zipfile

    from .formats.disk import require_regular

    require_regular(path, "npz file")
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as f:
                    shape, _fortran, dtype = _npy_header(f)
                out[info.filename[:-4]] = (shape, dtype)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise CorruptInputError(f"{show(path)}: not a readable npz file ({type(e).__name__}: {e})") from None
    return out


def _npy_header(f):
    from numpy.lib import format as npformat

    version = npformat.read_magic(f)
    if version == (1, 0):
        return npformat.read_array_header_1_0(f)
    return npformat.read_array_header_2_0(f)


class _NpzStream:
    """One ``.npy`` member of an npz kept open in a worker, read forward item by item: items
    ``i, i+1, ...`` (the core hands each worker consecutive records) cost one pass over the
    member, stored or deflated, instead of one full load per item; a backwards jump reopens."""

    def __init__(self, path: Path, key: str, stamp: tuple):
        import zipfile

        self.stamp = stamp
        self.zf = zipfile.ZipFile(path)
        try:
            self.f = self.zf.open(key + ".npy")
        except KeyError:
            names = [n[:-4] for n in self.zf.namelist() if n.endswith(".npy")]
            self.zf.close()
            raise CorruptInputError(f"{show(path)}: npz has no array {key!r} (has {', '.join(names)})") from None
        self.shape, fortran, self.dtype = _npy_header(self.f)
        if fortran or self.dtype.hasobject or not self.shape:
            self.close()
            raise ValueError("not a C-order numeric stack")
        self.item = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self.next = 0

    def read(self, i: int, name: str) -> np.ndarray:
        if not -self.shape[0] <= i < self.shape[0]:
            raise CorruptInputError(f"{name}: index {i} is out of range (the array holds {self.shape[0]})")
        i %= self.shape[0]
        if i < self.next:
            raise _Rewind
        skip = (i - self.next) * self.item
        while skip:
            got = len(self.f.read(min(skip, 1 << 24)))
            if not got:
                raise EOFError("member ends early")
            skip -= got
        data = self.f.read(self.item)
        if len(data) != self.item:
            raise EOFError(f"member ends early (item {i})")
        self.next = i + 1
        return np.frombuffer(data, self.dtype).reshape(self.shape[1:]).copy()

    def close(self) -> None:
        try:
            self.f.close()
        finally:
            self.zf.close()


class _Rewind(Exception):
    pass


_NPZ_STREAMS: dict[tuple[str, str], _NpzStream] = {}


def _npz_item(ref: ArrayImage, name: str) -> np.ndarray:
    """Item ``ref.index`` of member ``ref.key`` through a per-process :class:`_NpzStream` (at most
    two members open; a changed file (size, mtime) is reopened). Members that cannot be streamed
    (Fortran order) fall back to a full load."""
    import zipfile
    import zlib

    st = ref.path.stat()
    stamp = (st.st_size, st.st_mtime_ns)
    k = (str(ref.path), ref.key)
    for attempt in (0, 1):
        s = _NPZ_STREAMS.get(k)
        if s is None or s.stamp != stamp:
            if s is not None:
                s.close()
            try:
                s = _NpzStream(ref.path, ref.key, stamp)
            except ValueError:
                with np.load(ref.path, allow_pickle=False) as z:
                    return _index(z[ref.key], ref.index, name)
            except (zipfile.BadZipFile, zlib.error, EOFError) as e:
                raise CorruptInputError(f"{name}: not a readable npz file ({type(e).__name__}: {e})") from None
            while len(_NPZ_STREAMS) >= 2:
                _NPZ_STREAMS.pop(next(iter(_NPZ_STREAMS))).close()
            _NPZ_STREAMS[k] = s
        try:
            return s.read(ref.index, name)
        except _Rewind:
            _NPZ_STREAMS.pop(k).close()
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as e:
            _NPZ_STREAMS.pop(k).close()
            raise CorruptInputError(f"{name}: not a readable npz file ({type(e).__name__}: {e})") from None
    raise AssertionError("unreachable")


def _index(a, i: int, name: str):
    if not -a.shape[0] <= i < a.shape[0]:
        raise CorruptInputError(f"{name}: index {i} is out of range (the array holds {a.shape[0]})")
    return a[i]


def array_to_png(arr: np.ndarray, name: str) -> bytes:
    """Lossless PNG of an image array (uint8 gray/RGB/RGBA, uint16 gray)."""
    from PIL import Image

    if arr.dtype == np.uint8 and arr.ndim == 2:
        im = Image.fromarray(arr, "L")
    elif arr.dtype == np.uint8 and arr.ndim == 3:
        im = Image.fromarray(arr, "RGB" if arr.shape[2] == 3 else "RGBA")
    elif arr.dtype == np.uint16 and arr.ndim == 2:
        im = Image.fromarray(arr.astype(np.uint16), "I;16")
    elif arr.dtype == bool and arr.ndim == 2:
        im = Image.fromarray(arr.astype(np.uint8) * 255, "L")
    else:
        raise CorruptInputError(f"{name}: {arr.dtype} array of shape {arr.shape} cannot be stored losslessly as PNG")
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def load_image_ref(ref: Any):
    """A :class:`~unihema_data.images.StoredImage` for any image reference (decoded here, in the worker)."""
    from .images import ImageDecodeError, StoredImage, image_from_bytes

    if isinstance(ref, ImageFile):
        ref = ref.path
    if isinstance(ref, (str, Path)):
        data = read_bytes(ref, "image file")
        return image_from_bytes(data, show(ref))
    if isinstance(ref, ImageBytes):
        return image_from_bytes(ref.data, ref.name)
    if isinstance(ref, ArrayImage):
        arr = load_array_image(ref)
        png = array_to_png(arr, str(ref))
        kind = "npz" if ref.key else "npy"
        return StoredImage(png, canonical_sha256(arr), arr.shape[1], arr.shape[0], kind.upper(), True)
    if isinstance(ref, ImageCrop):
        from PIL import Image

        data = read_bytes(ref.path, "image file")
        image_from_bytes(data, show(ref.path))  # the whole file is verified first
        with Image.open(io.BytesIO(data)) as im:
            x0, y0, x1, y1 = ref.box
            if not (0 <= x0 < x1 <= im.width and 0 <= y0 < y1 <= im.height):
                raise ImageDecodeError(f"{ref}: crop outside the {im.width}x{im.height} image")
            im = im.convert("RGBA" if im.mode in ("RGBA", "LA", "P") else "RGB")
            arr = np.asarray(im.crop((x0, y0, x1, y1))).copy()
        return StoredImage(array_to_png(arr, str(ref)), canonical_sha256(arr), arr.shape[1], arr.shape[0], "CROP", True)
    if isinstance(ref, TiffPage):
        arr = tiff_page_array(ref)
        png = array_to_png(arr, str(ref))
        return StoredImage(png, canonical_sha256(arr), arr.shape[1], arr.shape[0], "TIFF_PAGE", True)
    raise ImageDecodeError(f"unsupported image reference {ref!r}")


def tiff_page_array(ref: TiffPage) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    data = read_bytes(ref.path, "TIFF file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            n = getattr(im, "n_frames", 1)
            if not 0 <= ref.page < n:
                raise CorruptInputError(f"{ref}: the file has {n} page(s)")
            im.seek(ref.page)
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(im).astype(np.uint16)
            if im.mode not in ("L", "RGB", "RGBA"):
                im = im.convert("RGB")
            return np.asarray(im).copy()
    except CorruptInputError:
        raise
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, EOFError) as e:
        raise CorruptInputError(f"{ref}: not a readable TIFF ({type(e).__name__}: {e})") from None


# ------------------------------------------------------------------------------------ masks
@dataclass(frozen=True)
class Polygon:
    rings: tuple[tuple[float, ...], ...]

    @classmethod
    def of(cls, *rings: Sequence[float]) -> "Polygon":
        return cls(tuple(tuple(float(v) for v in r) for r in rings))


@dataclass(frozen=True)
class Rle:
    counts: Union[str, tuple[int, ...]]
    size: tuple[int, int]  # (height, width)


@dataclass(frozen=True)
class MaskValue:
    path: Path
    value: int


@dataclass(frozen=True)
class MaskColour:
    path: Path
    colour: tuple[int, int, int]


MaskRef = Union[np.ndarray, Polygon, Rle, MaskValue, MaskColour]


class MaskFileCache:
    """Decoded instance-mask files: ``path -> (labels, slices by value)``. The most recent file
    is also kept per process (``_LAST``), so a worker that listed a file's instance values in
    :meth:`Adapter.parse` does not decode it again when the core rasterizes the objects."""

    def __init__(self) -> None:
        self._files: dict[tuple[str, bool], tuple[np.ndarray, dict]] = {}

    def get(self, path: Path, colour: bool) -> tuple[np.ndarray, dict]:
        key = (str(path), colour)
        if key not in self._files:
            self._files[key] = instance_file(Path(path), colour)
        return self._files[key]


_LAST: dict[tuple[str, bool, int, int], tuple[np.ndarray, dict]] = {}


def instance_file(path: Path, colour: bool = False) -> tuple[np.ndarray, dict]:
    """``(labels, {value: ((row slice, col slice), label)})`` of an instance-mask file; the last
    file decoded in this process is cached (keyed by path, size and mtime)."""
    from .formats.disk import require_regular

    st = require_regular(path, "mask file")
    key = (str(path), colour, st.st_size, st.st_mtime_ns)
    if key not in _LAST:
        _LAST.clear()  # one file at a time: memory stays flat
        _LAST[key] = _load_instance_file(Path(path), colour)
    return _LAST[key]


def instance_values(path: Path, colour: bool = False) -> list:
    """Instance values (or ``(r, g, b)`` colours) present in a mask file, background 0 excluded."""
    _labels, index = instance_file(path, colour)
    if colour:
        return [((v >> 16) & 255, (v >> 8) & 255, v & 255) for v in sorted(index) if v != 0]
    return [v for v in sorted(index) if v != 0]


def crop_to_rle(crop: np.ndarray, y0: int, x0: int, height: int, width: int) -> str:
    """COCO compressed RLE counts of a full (height, width) mask that is ``crop`` (bool) at
    ``(y0, x0)`` and empty elsewhere, computed from the crop alone (no full-size array)."""
    from pycocotools import mask as mask_utils

    h, w = crop.shape
    padded = np.zeros((h + 2, w), dtype=bool)
    padded[1:-1] = crop
    flat = padded.ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # run starts inside the padded crop
    r, c = change % (h + 2), change // (h + 2)
    full = (x0 + c).astype(np.int64) * height + (y0 - 1 + r)
    bounds = np.concatenate(([0], full, [height * width]))
    counts = np.diff(bounds).tolist()
    rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    return rle["counts"].decode("ascii")


def _load_instance_file(path: Path, colour: bool):
    from PIL import Image, UnidentifiedImageError
    from scipy import ndimage

    from .images import check_pixel_file

    data = read_bytes(path, "mask file")
    try:
        check_pixel_file(data, show(path))  # a flipped bit never decodes to other instances
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if colour:
                a = np.asarray(im.convert("RGB"))
                arr = (a[..., 0].astype(np.uint32) << 16) | (a[..., 1].astype(np.uint32) << 8) | a[..., 2]
                del a
            else:
                if im.mode in ("RGB", "RGBA"):
                    raise CorruptInputError(f"{show(path)}: colour instance mask; name objects by colour (MaskColour)")
                arr = np.asarray(im)
                if arr.ndim != 2:
                    raise CorruptInputError(f"{show(path)}: instance mask must be single-channel, got shape {arr.shape}")
    except CorruptInputError:
        raise
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise CorruptInputError(f"{show(path)}: unreadable mask file ({type(e).__name__}: {e})") from None
    if colour:
        # colours -> dense labels 1..n (one sort of the image)
        values, inverse = np.unique(arr, return_inverse=True)
        labels = inverse.reshape(arr.shape).astype(np.int32) + 1
        del inverse
        keys = {int(v): i + 1 for i, v in enumerate(values.tolist())}
    else:
        if arr.dtype.kind not in "ui" or (arr.size and int(arr.min()) < 0):
            raise CorruptInputError(f"{show(path)}: instance mask must hold non-negative integers, got {arr.dtype}")
        # find_objects takes the native integer array as is (no int32 copy of a 4000x3000 mask)
        labels = arr if arr.dtype in (np.uint8, np.uint16, np.int32, np.int64) else arr.astype(np.int32)
        keys = None
    slices = ndimage.find_objects(labels)  # one pass: bounding slices of labels 1..max
    index: dict[int, tuple[tuple[slice, slice], int]] = {}
    if keys is None:
        for i, s in enumerate(slices):
            if s is not None:
                index[i + 1] = (s, i + 1)
        if (labels == 0).any():
            index[0] = ((slice(0, labels.shape[0]), slice(0, labels.shape[1])), 0)
    else:
        for v, lab in keys.items():
            index[v] = (slices[lab - 1], lab)
    return labels, index


def decode_object_mask(ref: Any, height: int, width: int, cache: Optional[MaskFileCache] = None,
                       name: str = "") -> Optional[str]:
    """COCO compressed RLE counts (the row's ``mask_rle``) of one object mask reference, or raise
    :class:`CorruptInputError`. ``None`` when ``ref`` is ``None``."""
    from pycocotools import mask as mask_utils

    from .masks import encode_rle

    if ref is None:
        return None
    if isinstance(ref, np.ndarray):
        if ref.shape != (height, width):
            raise CorruptInputError(f"{name}: mask is {ref.shape[1]}x{ref.shape[0]}, image is {width}x{height}")
        return encode_rle(ref)
    if isinstance(ref, Polygon):
        rings = [list(r) for r in ref.rings]
        if not rings or any(len(r) < 6 or len(r) % 2 for r in rings):
            raise CorruptInputError(f"{name}: polygon needs at least 3 (x, y) points per ring: {ref.rings!r}")
        if not all(np.isfinite(r).all() for r in rings):
            raise CorruptInputError(f"{name}: polygon has non-finite coordinates")
        far = 4 * max(height, width) + 1024  # pycocotools crashes (segfault / OOM) on huge coordinates
        if any(np.abs(np.asarray(r)).max() > far for r in rings):
            raise CorruptInputError(f"{name}: polygon coordinates lie far outside the {width}x{height} image "
                                    f"(|v| > {far}): not a contour of this image")
        rles = mask_utils.frPyObjects(rings, height, width)
        rle = mask_utils.merge(rles) if len(rles) > 1 else rles[0]
        return rle["counts"].decode("ascii")
    if isinstance(ref, Rle):
        if tuple(ref.size) != (height, width):
            raise CorruptInputError(f"{name}: RLE size {ref.size} (h, w) differs from the image {height}x{width} (h x w)")
        if isinstance(ref.counts, str):
            try:
                m = mask_utils.decode({"size": [height, width], "counts": ref.counts.encode("ascii")})
            except Exception as e:  # noqa: BLE001 - pycocotools raises bare errors on bad strings
                raise CorruptInputError(f"{name}: invalid compressed RLE ({e})") from None
            return encode_rle(m)
        counts = [int(c) for c in ref.counts]
        if any(c < 0 for c in counts) or sum(counts) != height * width:
            raise CorruptInputError(f"{name}: uncompressed RLE counts sum to {sum(counts)}, expected {height * width}")
        rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        return rle["counts"].decode("ascii")
    if isinstance(ref, (MaskValue, MaskColour)):
        cache = cache or MaskFileCache()
        colour = isinstance(ref, MaskColour)
        labels, index = cache.get(ref.path, colour)
        if labels.shape != (height, width):
            raise CorruptInputError(
                f"{show(ref.path)}: mask is {labels.shape[1]}x{labels.shape[0]} but image is {width}x{height}")
        key = ((ref.colour[0] << 16) | (ref.colour[1] << 8) | ref.colour[2]) if colour else int(ref.value)
        if key not in index:
            what = f"colour {tuple(ref.colour)}" if colour else f"value {ref.value}"
            raise CorruptInputError(f"{show(ref.path)}: no pixel has instance {what}")
        (sy, sx), lab = index[key]
        return crop_to_rle(labels[sy, sx] == lab, sy.start, sx.start, height, width)
    raise CorruptInputError(f"{name}: unsupported object mask reference {type(ref).__name__}")


def rgb_to_values(rgb: np.ndarray, palette: dict[tuple[int, int, int], int], name: str) -> np.ndarray:
    """Map an (H, W, 3) colour mask to native values through ``palette``; unknown colours are an error."""
    a = rgb.astype(np.int64)
    keys = (a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]
    colours, inverse = np.unique(keys, return_inverse=True)
    lut = {((r << 16) | (g << 8) | b): v for (r, g, b), v in palette.items()}
    unknown = [c for c in colours.tolist() if c not in lut]
    if unknown:
        shown = [((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in unknown[:5]]
        raise CorruptInputError(f"{name}: colour(s) {shown} are not in the declared mask palette {sorted(palette)}")
    vals = np.array([lut[c] for c in colours.tolist()], dtype=np.int64)
    return vals[inverse.reshape(keys.shape)]


__all__ = [
    "ArrayImage", "ImageBytes", "ImageFile", "ImageRef", "MaskColour", "MaskFileCache", "MaskRef", "MaskValue",
    "ImageCrop", "Polygon", "Rle", "TiffPage", "canonical_sha256", "decode_object_mask", "load_image_ref", "rgb_to_values",
]
