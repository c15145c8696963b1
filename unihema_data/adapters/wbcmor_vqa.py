"""WBCMor-VQA (Malik, Aftab, Rehman, Ali, Sultani; arXiv 2606.25246; Figshare article 32727159):
English-Urdu visual question answering on single white-cell images built from LeukemiaAttri and
WBCAtt.

Stored like the generated VQA text sets (``wbcatt_vqa``): **one row per question/answer pair**,
the cell image repeated in each row, ``question`` / ``answer`` / ``prompt = question`` /
``tasks = [vqa]``, so one reader serves both. No schema change: the columns exist; the adapter
contract's :class:`~unihema_data.adapters.base.RawSample` carries ``question`` / ``answer``.

Native layout (UNCONFIRMED: the Figshare package could not be inspected; the code repository
``intelligentMachines-ITU/WBC-Mor-VQA-dataset@2248acf`` ships empty ``data/train`` and
``data/test`` folders and the scripts ``training/qwen2vl/other/{convert,merge}.py`` and
``01_train.py`` / ``test.py`` that read the files). Every ``*.json`` in the root or in a folder
just below it (``train/``, ``test/``) is read and its form **detected per file** (reported in
``report.info["json_forms"]``); an entry that does not fit its form is an error naming the file:

* ``raw`` form: a JSON list (or an object whose values are the samples) of
  ``{"cell_image": "<file>", "q1": "...", "a1": "...", "q2": ..., "a2": ...}``
  (e.g. ``Test_cleaned_validated_dataset.json``; images in ``test/test_resize_images/``).
  Urdu keys ``q<n>_urdu`` / ``a<n>_urdu`` are read when present (naming UNCONFIRMED).
* ``coco`` form (written by ``convert.py`` / ``merge.py``): ``{"images": [{id, width, height,
  file_name}], "annotations": [{id, image_id, Question, Answer, [Question_urdu, Answer_urdu],
  category_id, task}], "categories": [...]}``; each image entry is repeated once per pair.

A JSON file that has neither shape (e.g. a model config in the package) is skipped and reported.

Conventions:
* Image paths (``cell_image`` / ``file_name``) are resolved relative to the JSON's folder, then to
  the root, then by a unique file name among the root's images (counted in
  ``report.info["image_resolution"]``); two images with that name, or none, is an error naming the
  JSON and the entry (``--allow-partial``: absent images are skipped and reported). The coco
  form's ``width``/``height`` must equal the image's size (error naming the JSON).
* ``sample_id`` = ``wbcmor_vqa/<image path relative to the root>#qa-<n>`` (English) and
  ``...#qa-<n>-ur`` (Urdu), ``n`` counting the image's pairs in file order (files sorted by
  name). ``subset`` = ``en`` | ``ur``. ``group_id`` = the image, so every pair of one image (both
  languages) lands in one split.
* ``source_split`` from the JSON file's name or folder: a ``train`` / ``test`` / ``val`` token
  (``Q_A_test_large.json``, ``test/...``); none -> "" (grouped fallback split, reported).
* Questions are stored with the schema's ``Q: `` prefix: a question without it gets it and the
  row is flagged ``question_prefixed``. Text is otherwise verbatim (stripped of outer spaces).
* One pair present in several files (``WBC_leukemia_ATT_VQA.json`` merges other files) is kept
  once, from the file with the strongest split (test > validation > train > none), flagged
  ``duplicate_qa_in:<other file>`` and reported (``skipped``).
* A question without its answer (or the reverse), an empty or non-string text, an annotation
  naming an unknown ``image_id``: errors naming the file and the entry.
* No cell-type label is published with the pairs (``label`` = -1); the images derive from
  LeukemiaAttri and WBCAtt/PBC (near-duplicates are found by the corpus integrity pass).

Evidence: research note ``datasets-classification.md`` section 17; the scripts above.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Optional

import numpy as np

from ..errors import CorruptInputError, MissingInputError
from ..formats import disk
from ..formats.disk import show
from . import _synthetic as syn
from .base import Adapter, FakeSample, FakeTruth, RawSample

QA_PREFIX = "Q: "
#: how much of a JSON file the layout signature scans for a WBCMor-VQA key
SIGNATURE_BYTES = 64 << 20
_KEYS = (b'"cell_image"', b'"Question"')
_SPLIT_TOKENS = (("test", "test"), ("val", "validation"), ("validation", "validation"), ("train", "train"))
_RANK = {"test": 3, "validation": 2, "train": 1, "": 0}
_QKEY = re.compile(r"^([qa])(\d+)(_urdu)?$")


@dataclass(frozen=True)
class QARecord:
    rel_path: str
    image: Path
    group: str
    question: str
    answer: str
    lang: str
    split: str
    json_name: str
    size: tuple[int, int]          # (width, height) the JSON states, (0, 0) when none
    flags: tuple[str, ...] = ()


def split_of(rel: str) -> str:
    """Published split from a JSON path's tokens (``Q_A_test_large.json`` -> ``test``)."""
    for part in reversed(PurePosixPath(rel.lower()).parts):
        tokens = re.split(r"[^a-z]+", PurePosixPath(part).stem if part.endswith(".json") else part)
        for tok, split in _SPLIT_TOKENS:
            if tok in tokens:
                return split
    return ""


def _has_qa_key(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(SIGNATURE_BYTES)
    except OSError:
        return False
    return any(k in head for k in _KEYS)


class WbcmorVqaAdapter(Adapter):
    id = "wbcmor_vqa"
    version = "1"
    tasks = ("vqa",)
    markers = ("*",)
    layout_hint = "WBCMor-VQA JSON files (cell_image/q1/a1 or COCO-like Question/Answer) with their images"

    # ---------------------------------------------------------------- discovery
    def _json_files(self, path: Path, depth: int = 1, strict: bool = False) -> Iterator[Path]:
        """``*.json`` of ``path`` and of its sub-folders (``depth`` levels). ``strict`` (listing for
        conversion): a FIFO or a dangling link is an error naming it, junk is reported."""
        if strict:
            dirs, files = disk.list_dir(path, self.report, self._root)
        else:
            try:
                dirs, files = disk.list_dir(path, strict=False)
            except (MissingInputError, CorruptInputError):
                return
        yield from (f for f in files if f.suffix.lower() == ".json")
        if depth > 0:
            for d in dirs:
                yield from self._json_files(d, depth - 1, strict)

    def signature(self, path: Path) -> bool:
        """A WBCMor-VQA JSON in the folder or in one of its sub-folders (``train/``, ``test/``)."""
        return any(_has_qa_key(f) for f in self._json_files(path))

    # ---------------------------------------------------------------- listing
    def prepare(self, root: Path) -> None:
        super().prepare(root)
        self._images: Optional[dict[str, list[Path]]] = None

    def _image_index(self, root: Path) -> dict[str, list[Path]]:
        """File name -> images below the root (names differing only in case are an error)."""
        if self._images is None:
            files, stack = [], [root]
            while stack:  # strict listing: a FIFO or a dangling link among the images is an error naming it
                dirs, found = disk.list_dir(stack.pop(), None, root)
                files += [f for f in found if f.suffix.lower() in disk.IMAGE_SUFFIXES]
                stack += [d for d in dirs if not d.is_symlink()]
            files.sort(key=lambda f: disk.rel(f, root))
            disk.refuse_case_collisions(files)
            idx: dict[str, list[Path]] = {}
            for f in files:
                idx.setdefault(f.name, []).append(f)
            self._images = idx
        return self._images

    def _resolve(self, root: Path, js: Path, name: Any, where: str, counts: dict[str, int]) -> Optional[Path]:
        """The image a JSON entry names (see the module doc); ``None`` when it is absent under
        ``--allow-partial`` (reported)."""
        if not isinstance(name, str) or not name.strip():
            raise CorruptInputError(f"{where}: image name {name!r} is not a file name")
        name = name.strip().replace("\\", "/")
        if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
            raise CorruptInputError(f"{where}: image path {name!r} leaves the dataset folder")
        for how, base in (("json_folder", js.parent), ("root", root)):
            p = base / name
            if p.is_file() or p.is_symlink():
                counts[how] = counts.get(how, 0) + 1
                return p
        hits = self._image_index(root).get(PurePosixPath(name).name, [])
        if len(hits) == 1:
            counts["by_name"] = counts.get("by_name", 0) + 1
            return hits[0]
        if len(hits) > 1:
            raise CorruptInputError(f"{where}: image {name!r} is ambiguous: "
                                    + ", ".join(disk.rel(h, root) for h in hits[:2]))
        if self.allow_partial:  # --allow-partial: the pairs of an absent image are skipped, reported
            self.report.orphan(f"{disk.rel(js, root)}:{name}", "image absent, its QA pairs skipped with --allow-partial")
            return None
        raise MissingInputError(f"{where}: image {name!r} is missing")

    def records(self, root: Path) -> Iterator[QARecord]:
        self._root = root
        jsons = sorted({*self._json_files(root, strict=True)}, key=lambda p: disk.rel(p, root))
        disk.refuse_case_collisions(jsons, "JSON")
        forms: dict[str, str] = {}
        counts: dict[str, int] = {}
        pairs: dict[tuple, list] = {}   # (image, lang, q, a) -> [split, json, size, {other jsons}]
        for js in jsons:
            rel = disk.rel(js, root)
            items = self._read(root, js, rel, counts)
            if items is None:
                continue
            forms[rel] = items[0]
            split = split_of(rel)
            for image, lang, q, a, size, _where in items[1]:
                key = (image, lang, q, a)
                prev = pairs.get(key)
                if prev is None:
                    pairs[key] = [split, rel, size, set()]
                    continue
                # one pair in several files: kept once, from the strongest split
                if _RANK[split] > _RANK[prev[0]]:
                    dropped, prev[0], prev[1], prev[2] = prev[1], split, rel, size
                else:
                    dropped = rel
                if dropped != prev[1]:
                    prev[3].add(dropped)
                self.report.skip(f"{dropped}:{disk.rel(image, root)}",
                                 f"{lang} QA pair also in {prev[1] if dropped != prev[1] else rel} (kept once, from there)")
        if not forms:
            raise MissingInputError(f"{self.id}: no WBCMor-VQA JSON file under {show(root)}")
        self.report.info["json_forms"] = ", ".join(f"{k}: {v}" for k, v in forms.items())
        self.report.info["image_resolution"] = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        unsplit = [k for k in forms if not split_of(k)]
        if unsplit:
            self.report.info["no_split_token"] = ", ".join(unsplit) + " (grouped fallback split)"
        n_by_image: dict[tuple[Path, str], int] = {}
        for (image, lang, q, a), (split, rel, size, also) in pairs.items():  # first-seen order
            n = n_by_image.get((image, lang), 0)
            n_by_image[(image, lang)] = n + 1
            img_rel = disk.rel(image, root)
            flags = tuple(f"duplicate_qa_in:{d}" for d in sorted(also))
            if not q.startswith(QA_PREFIX):
                q, flags = QA_PREFIX + q, flags + ("question_prefixed",)
            yield QARecord(f"{img_rel}#qa-{n}" + ("-ur" if lang == "ur" else ""), image, img_rel, q, a, lang, split,
                           rel, size, flags)

    def _read(self, root: Path, js: Path, rel: str, counts: dict[str, int]):
        """``(form, [(image, lang, question, answer, (w, h), where), ...])`` of one JSON file, or
        ``None`` (reported) when it is not a WBCMor-VQA file."""
        text = disk.read_text(js, "JSON file")
        try:
            data = json.loads(text, parse_constant=lambda c: _bad_constant(js, c))
        except json.JSONDecodeError as e:
            raise CorruptInputError(f"{show(js)}: not valid JSON ({e})") from None
        out = []
        if isinstance(data, dict) and "images" in data and "annotations" in data:
            imgs, anns = data["images"], data["annotations"]
            if not isinstance(imgs, list) or not isinstance(anns, list):
                raise CorruptInputError(f"{show(js)}: 'images' and 'annotations' must be lists")
            by_id: dict[Any, dict] = {}
            for k, im in enumerate(imgs):
                if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
                    raise CorruptInputError(f"{show(js)}: images[{k}] has no id or file_name")
                if im["id"] in by_id:
                    raise CorruptInputError(f"{show(js)}: images[{k}]: image id {im['id']!r} is repeated")
                by_id[im["id"]] = im
            for k, a in enumerate(anns):
                where = f"{show(js)}: annotations[{k}]"
                if not isinstance(a, dict):
                    raise CorruptInputError(f"{where} is not an object")
                im = by_id.get(a.get("image_id"))
                if im is None:
                    raise CorruptInputError(f"{where} names unknown image_id {a.get('image_id')!r}")
                size = _size(im, f"{show(js)}: image id {im['id']!r}")
                image = self._resolve(root, js, im["file_name"], where, counts)
                if image is None:
                    continue
                for lang, qk, ak in (("en", "Question", "Answer"), ("ur", "Question_urdu", "Answer_urdu")):
                    if qk in a or ak in a or lang == "en":
                        out.append((image, lang, _text(a, qk, where), _text(a, ak, where), size, where))
            return "coco", out
        samples = list(data.values()) if isinstance(data, dict) else data
        if isinstance(samples, list) and any(isinstance(s, dict) and "cell_image" in s for s in samples):
            unknown: set[str] = set()
            for k, s in enumerate(samples):
                if not isinstance(s, dict) or "cell_image" not in s:
                    raise CorruptInputError(f"{show(js)}: sample {k} has no 'cell_image'")
                where = f"{show(js)}: sample {k} ({s.get('cell_image')!r})"
                image = self._resolve(root, js, s["cell_image"], where, counts)
                if image is None:
                    continue
                found: dict[tuple[str, str], dict[str, Any]] = {}
                for key, val in s.items():
                    m = _QKEY.match(key)
                    if key == "cell_image":
                        continue
                    if m is None:
                        unknown.add(key)
                        continue
                    found.setdefault((m.group(2), "ur" if m.group(3) else "en"), {})[m.group(1)] = key
                for (num, lang), qa in sorted(found.items(), key=lambda t: (int(t[0][0]), t[0][1])):
                    if set(qa) != {"q", "a"}:
                        have = next(iter(qa.values()))
                        raise CorruptInputError(f"{where}: {have!r} has no matching "
                                                f"{'answer' if 'q' in qa else 'question'}")
                    out.append((image, lang, _text(s, qa["q"], where), _text(s, qa["a"], where), (0, 0), where))
            if unknown:
                self.report.flag(rel, f"keys other than cell_image/q<n>/a<n> ignored: {', '.join(sorted(unknown))}")
            return "raw", out
        self.report.skip(rel, "JSON file that is neither WBCMor-VQA form (no cell_image samples, no images/annotations)")
        return None

    def parse(self, rec: QARecord) -> RawSample:
        if rec.size != (0, 0):
            w, h = disk.image_size(rec.image)
            if (w, h) != rec.size:
                raise CorruptInputError(f"{rec.json_name}: image {disk.show(rec.image.name)} is {w}x{h} but the JSON "
                                        f"says {rec.size[0]}x{rec.size[1]}")
        return RawSample(rel_path=rec.rel_path, image_path=rec.image, source_split=rec.split, subset=rec.lang,
                         group_id=rec.group, annotation_file=rec.json_name, qc_flags=list(rec.flags),
                         question=rec.question, answer=rec.answer)

    # ---------------------------------------------------------------- synthetic data
    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/WBC-Mor-VQA/data/`` with a raw-form ``test/Test_cleaned_validated_dataset.json``
        (images in ``test/test_resize_images/``, one question without ``Q: ``, Urdu keys, a
        ``q<n>`` gap) and a coco-form ``train/Q_A_train.json`` (images repeated per pair, Urdu
        fields, one pair repeated in ``train/WBC_leukemia_ATT_VQA.json`` that merges it), plus a
        ``config.json`` that is not a VQA file (reported)."""
        rng = np.random.default_rng(seed)
        root = Path(out) / "WBC-Mor-VQA" / "data"
        truth: dict[str, FakeSample] = {}
        (root / "test" / "test_resize_images").mkdir(parents=True)
        (root / "train" / "train_images").mkdir(parents=True)

        def img(path: Path, k: int) -> None:
            path.write_bytes(syn.encode(syn.single_cell(224, "wbc", seed * 100 + k + int(rng.integers(0, 5))), "JPEG", quality=90))

        raw = []
        for k, name in enumerate(("LY_101.jpg", "MO_102.jpg")):
            img(root / "test" / "test_resize_images" / name, k)
            s: dict[str, Any] = {"cell_image": name}
            qas = [("Q: What is the shape of the nucleus?", "The nucleus is round."),
                   ("What is the colour of the cytoplasm?" if k == 0 else "Q: Is the cytoplasm vacuolated?",
                    "The cytoplasm is light blue." if k == 0 else "No, there are no vacuoles.")]
            for n, (q, a) in enumerate(qas, 1):
                num = n if k == 0 else n * 2  # sample 1 numbers its pairs q2, q4 (a gap)
                s[f"q{num}"], s[f"a{num}"] = q, a
                if k == 0:
                    s[f"q{num}_urdu"], s[f"a{num}_urdu"] = f"سوال {n}؟", f"جواب {n}۔"
            raw.append(s)
            rel = f"test/test_resize_images/{name}"
            for n, (q, a) in enumerate(qas):
                truth[f"{rel}#qa-{n}"] = FakeSample(f"{rel}#qa-{n}", source_split="test", group_id=rel)
                if k == 0:
                    truth[f"{rel}#qa-{n}-ur"] = FakeSample(f"{rel}#qa-{n}-ur", source_split="test", group_id=rel)
        (root / "test" / "Test_cleaned_validated_dataset.json").write_text(json.dumps(raw, ensure_ascii=False, indent=4),
                                                                           encoding="utf-8")
        images, anns = [], []
        for k, name in enumerate(("BNE_201.jpg", "EO_202.jpg", "Blast_203.png")):
            p = root / "train" / "train_images" / name
            if name.endswith(".png"):
                p.write_bytes(syn.encode(syn.single_cell(200, "wbc", seed + k), "PNG"))
                w = 200
            else:
                img(p, 10 + k)
                w = 224
            rel = f"train/train_images/{name}"
            for n in range(2):
                images.append({"id": len(images) + 1, "width": w, "height": w, "file_name": f"train_images/{name}"})
                a = {"id": len(anns) + 1, "image_id": len(images), "Question": f"Q: What is feature {'AB'[n]} of this cell?",
                     "Answer": f"Feature {'AB'[n]} is {'present' if (k + n) % 2 else 'absent'}.", "category_id": 1, "task": "QA"}
                if k != 2:
                    a["Question_urdu"], a["Answer_urdu"] = "یہ خلیہ کیا ہے؟", f"جواب {'AB'[n]}"
                anns.append(a)
                truth[f"{rel}#qa-{n}"] = FakeSample(f"{rel}#qa-{n}", source_split="train", group_id=rel)
                if k != 2:
                    truth[f"{rel}#qa-{n}-ur"] = FakeSample(f"{rel}#qa-{n}-ur", source_split="train", group_id=rel)
        coco = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "QA"}]}
        (root / "train" / "Q_A_train.json").write_text(json.dumps(coco, ensure_ascii=False, indent=4), encoding="utf-8")
        merged = {"images": images[:1], "annotations": anns[:1], "categories": coco["categories"]}
        (root / "train" / "WBC_leukemia_ATT_VQA.json").write_text(json.dumps(merged, ensure_ascii=False, indent=4),
                                                                   encoding="utf-8")
        (root / "config.json").write_text(json.dumps({"model_id": "Qwen/Qwen2-VL-2B-Instruct", "max_length": 512}))
        return FakeTruth(root=root, samples=truth)


    def corrupt(self, truth: FakeTruth) -> str:
        """Truncates the first image (sample ids carry ``#qa-<n>``: the file is the part before)."""
        path = truth.root / sorted(truth.samples)[0].rsplit("#", 1)[0]
        path.write_bytes(path.read_bytes()[:20])
        return path.name


def _bad_constant(js: Path, c: str):
    raise CorruptInputError(f"{show(js)}: {c} is not a valid JSON value")


def _text(obj: dict, key: str, where: str) -> str:
    v = obj.get(key)
    if not isinstance(v, str) or not v.strip():
        raise CorruptInputError(f"{where}: {key!r} is {'missing' if key not in obj else 'empty or not text'}")
    return v.strip()


def _size(im: dict, where: str) -> tuple[int, int]:
    w, h = im.get("width"), im.get("height")
    if w is None and h is None:
        return (0, 0)
    if not (isinstance(w, int) and isinstance(h, int)) or isinstance(w, bool) or isinstance(h, bool) or w <= 0 or h <= 0:
        raise CorruptInputError(f"{where}: width/height {w!r}x{h!r} are not positive integers")
    return (w, h)


ADAPTER = WbcmorVqaAdapter
