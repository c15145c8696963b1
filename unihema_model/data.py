"""Turn rows of a converted UniHema corpus into model task batches.

Input: a corpus folder ``OUT/data/<source>/<split>-*.parquet`` (schema in ``unihema_data.schema``): ``image``
``{bytes, path}``, ``width``, ``height``, ``tasks``, ``objects{bbox (COCO xywh absolute), category, attributes}``,
``label``, ``attributes``, ``semantic_mask``, ``prompt``, ``question``/``answer``, ``masked_text``/``target_text``.

Per task a row becomes (all images resized to a fixed square per task, ImageNet-normalised):

* detection / attributes: normalised ``cxcywh`` boxes from the COCO boxes and the *original* width/height (a
  plain resize keeps normalised coordinates) or, with ``augment``, DETR flip/multi-scale resize/crop
  (:mod:`unihema_model.transforms`) with padding and ``pixel_mask``; class ids are the taxonomy's stable ids
  (:mod:`unihema_model.labels`: a row may carry the canonical name or the ``ClassLabel`` int); per-object morphology values,
  ``morph_ignore_index`` when not annotated. An ``attributes`` row without objects (single-cell images with
  image-level attributes) becomes one whole-image box of its ``label``.
* segmentation: ``semantic_mask`` pixel > 0 -> foreground (binary, as the paper's QGMF), nearest resize.
* classification: ``label`` -> class id. vqa: ``question`` -> ``answer``; mlm: ``masked_text`` -> ``target_text``.

Not implemented (stated): the released code's flip / colour jitter for the non-detection tasks.
"""
from __future__ import annotations

import io
import json
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from PIL import Image

from .labels import class_names, has_label, label_id, not_annotated
from .text import build_prompt, tokenize_prompts, tokenize_targets
from .transforms import DetrAugment, pad_images

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
COLUMNS = ("image", "width", "height", "tasks", "objects", "label", "attributes", "semantic_mask", "prompt",
           "question", "answer", "masked_text", "target_text", "source", "sample_id")
DETECTION_TASKS = ("detection", "attributes")


def corpus_files(data_dir: str | Path, split: str = "train", sources: list[str] | None = None) -> list[Path]:
    root = Path(data_dir)
    root = root / "data" if (root / "data").is_dir() else root
    files = sorted(root.glob(f"*/{split}-*.parquet"))
    if sources:
        files = [f for f in files if f.parent.name in set(sources)]
    return files


@dataclass
class LabelMaps:
    """Model-space vocabularies: ``detection`` / ``classification`` = class names indexed by stable id (the
    taxonomy's ``class_names()``, the config's ``id2label``), ``attributes`` = values per morphology attribute.
    Built from a model config (:meth:`from_config`), never from the corpus, so ids do not depend on the data."""

    detection: list[str] = field(default_factory=list)
    classification: list[str] = field(default_factory=list)
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"detection": self.detection, "classification": self.classification,
                           "attributes": self.attributes}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "LabelMaps":
        return cls(**json.loads(text))

    @classmethod
    def from_config(cls, config) -> "LabelMaps":
        if config.id2label and len(config.id2label) == config.num_det_classes:
            names = [config.id2label[i] for i in range(len(config.id2label))]
        else:
            names = list(class_names())
        values = config.morph_value_names or {}
        return cls(list(names), list(names), {a: list(values.get(a, [])) for a in config.morph_attributes})

    def class_id(self, value, where: str = "") -> int:
        return label_id(value, self.detection, where)

    def attribute_value(self, name: str, value, where: str = "") -> int | None:
        """Index of ``value`` of attribute ``name``; ``None`` for not-annotated or an attribute the model lacks.
        ``ValueError`` for a value outside the vocabulary."""
        if name not in self.attributes or value is None or value == not_annotated():
            return None
        vocab = self.attributes[name]
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value < len(vocab):
                return value
        elif value in vocab:
            return vocab.index(value)
        raise ValueError(f"unknown value {value!r} of attribute {name!r} (known: {', '.join(vocab)})"
                         + (f" ({where})" if where else ""))


def _image_bytes(cell) -> bytes | None:
    if cell is None:
        return None
    if isinstance(cell, dict):
        if cell.get("bytes"):
            return cell["bytes"]
        if cell.get("path") and Path(cell["path"]).is_file():
            return Path(cell["path"]).read_bytes()
        return None
    return cell


class CorpusIndex:
    """Which (file, row) carries which task; rows are read lazily with a small file cache. ``label_counts``
    counts the class ids seen (information only: ids come from the taxonomy, see :mod:`unihema_model.labels`)."""

    def __init__(self, files: list[Path], tasks: list[str], cache_files: int = 4):
        self.files = files
        self.by_task: dict[str, list[tuple[int, int]]] = {t: [] for t in tasks}
        self.label_counts: dict[int, int] = {}
        for fi, path in enumerate(files):
            names = pq.read_schema(path).names
            table = pq.read_table(path, columns=[c for c in ("tasks", "objects", "label") if c in names])
            for ri, row in enumerate(table.to_pylist()):
                row_tasks = set(row.get("tasks") or [])
                for t in tasks:
                    if t in row_tasks:
                        self.by_task[t].append((fi, ri))
                labels = list((row.get("objects") or {}).get("category") or [])
                if has_label(row.get("label")):
                    labels.append(row["label"])
                for value in labels:
                    cid = label_id(value, where=f"{path} row {ri}")
                    self.label_counts[cid] = self.label_counts.get(cid, 0) + 1
        self._cache: OrderedDict[int, list[dict]] = OrderedDict()
        self._cache_files = cache_files

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_task.values())

    def row(self, file_index: int, row_index: int) -> dict:
        if file_index not in self._cache:
            path = self.files[file_index]
            names = [c for c in COLUMNS if c in pq.read_schema(path).names]
            self._cache[file_index] = pq.read_table(path, columns=names).to_pylist()
            if len(self._cache) > self._cache_files:
                self._cache.popitem(last=False)
        self._cache.move_to_end(file_index)
        return self._cache[file_index][row_index]


def image_to_tensor(image: Image.Image, size: int | tuple[int, int]) -> torch.Tensor:
    """PIL image -> ``(3, H, W)`` float tensor, resized (bilinear, aspect ratio not kept) and ImageNet-normalised."""
    h, w = (size, size) if isinstance(size, int) else size
    img = image.convert("RGB").resize((w, h), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (x - IMAGENET_MEAN) / IMAGENET_STD


def load_image(row: dict, size: int) -> torch.Tensor:
    return image_to_tensor(Image.open(io.BytesIO(_image_bytes(row["image"]))), size)


def _where(row: dict) -> str:
    return f"sample {row.get('sample_id') or '?'}"


def _objects(row: dict, task: str, maps: LabelMaps, config) -> dict:
    """Known objects of a row: ``boxes`` absolute ``xyxy`` (N, 4), ``class_labels`` (N,) stable ids, optional
    ``attributes`` (N, A). Boxes with no area are dropped; an unknown class raises ``ValueError``."""
    objects = row.get("objects") or {}
    bboxes = list(objects.get("bbox") or [])
    cats = list(objects.get("category") or [])
    per_obj_attrs = list(objects.get("attributes") or [[] for _ in bboxes])
    if task == "attributes" and not bboxes and has_label(row.get("label")):
        bboxes = [[0.0, 0.0, float(row["width"]), float(row["height"])]]
        cats, per_obj_attrs = [row["label"]], [row.get("attributes") or []]
    ids = [maps.class_id(c, _where(row)) for c in cats]
    keep = [i for i in range(len(cats)) if bboxes[i][2] > 0 and bboxes[i][3] > 0]
    xywh = torch.tensor([bboxes[i] for i in keep], dtype=torch.float32).reshape(-1, 4)
    out = {"boxes": torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], -1),
           "class_labels": torch.tensor([ids[i] for i in keep], dtype=torch.long)}
    if task == "attributes":
        names = list(config.morph_attributes)
        values = torch.full((len(keep), len(names)), config.morph_ignore_index, dtype=torch.long)
        for k, i in enumerate(keep):
            for a in per_obj_attrs[i] or []:
                v = maps.attribute_value(a["name"], a["value"], _where(row))
                if v is not None and a["name"] in names:
                    values[k, names.index(a["name"])] = v
        out["attributes"] = values
    return out


def _normalised_target(objects: dict, width: float, height: float, keep: torch.Tensor | None = None) -> dict:
    """Absolute ``xyxy`` -> normalised ``cxcywh`` of a ``width x height`` image (optionally subset by ``keep``)."""
    target = {k: (v[keep] if keep is not None else v) for k, v in objects.items()}
    x0, y0, x1, y1 = target["boxes"].unbind(-1)
    target["boxes"] = torch.stack(
        [(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height], -1
    ).clamp(0.0, 1.0)
    return target


def _box_targets(row: dict, task: str, maps: LabelMaps, config) -> dict:
    """Targets for a plain resize: normalised coordinates of the original image are unchanged."""
    return _normalised_target(_objects(row, task, maps, config), float(row["width"]), float(row["height"]))


def _augmented_detection(rows, task, maps, config, augment: DetrAugment, rng: random.Random) -> dict:
    images, targets = [], []
    for row in rows:
        objects = _objects(row, task, maps, config)
        image = Image.open(io.BytesIO(_image_bytes(row["image"]))).convert("RGB")
        image, boxes, keep = augment(image, objects["boxes"], rng)
        objects["boxes"] = boxes
        targets.append(_normalised_target(objects, image.width, image.height, keep))
        images.append(image_to_tensor(image, (image.height, image.width)))
    pixel_values, pixel_mask = pad_images(images)
    return {"pixel_values": pixel_values, "pixel_mask": pixel_mask, "labels": targets}


def _binary_mask(row: dict, size: int) -> torch.Tensor:
    data = _image_bytes(row.get("semantic_mask"))
    if data is None:
        return torch.zeros(size, size)
    mask = Image.open(io.BytesIO(data)).convert("L").resize((size, size), Image.NEAREST)
    return torch.from_numpy((np.asarray(mask) > 0).astype(np.float32))


def build_task_batch(rows: list[dict], task: str, maps: LabelMaps, config, tokenizer, image_size: int,
                     text_only: bool = False, augment: DetrAugment | None = None,
                     rng: random.Random | None = None) -> dict:
    """Model batch for one task. ``augment`` (detection/attributes only): DETR augmentation with padding and
    ``pixel_mask`` instead of the fixed square resize to ``image_size``."""
    if task in DETECTION_TASKS and augment is not None:
        batch: dict = _augmented_detection(rows, task, maps, config, augment, rng or random.Random(0))
    else:
        batch = {"pixel_values": torch.stack([load_image(r, image_size) for r in rows])}
    if task in DETECTION_TASKS and "labels" not in batch:
        batch["labels"] = [_box_targets(r, task, maps, config) for r in rows]
    elif task == "segmentation":
        batch["masks"] = torch.stack([_binary_mask(r, image_size) for r in rows])
    elif task == "classification":
        batch["class_labels"] = torch.tensor([label_id(r["label"], maps.classification, _where(r)) for r in rows])
    if task in ("vqa", "mlm", "caption"):
        source, target = {"vqa": ("question", "answer"), "mlm": ("masked_text", "target_text"),
                          "caption": ("prompt", "target_text")}[task]
        prompts = [build_prompt(task, r.get(source) or "", config) for r in rows]
        batch.update(tokenize_prompts(tokenizer, prompts, config))
        batch["labels"] = tokenize_targets(tokenizer, [r.get(target) or "" for r in rows], config)
        batch["text_only"] = text_only
    elif task != "classification" and tokenizer is not None:
        prompts = [r.get("prompt") or build_prompt(task, "", config) for r in rows]
        batch.update(tokenize_prompts(tokenizer, prompts, config))
    return batch


class MultiTaskSampler:
    """Every step yields ``{task: rows}`` with ``k`` random rows per active task ("k images per task per step",
    the paper's stage 3 uses 2), seeded."""

    def __init__(self, index: CorpusIndex, tasks: list[str], per_task: int, seed: int = 0):
        self.index, self.per_task = index, per_task
        self.tasks = [t for t in tasks if index.by_task.get(t)]
        self.rng = random.Random(seed)

    def sample(self) -> dict[str, list[dict]]:
        out = {}
        for t in self.tasks:
            picks = [self.rng.choice(self.index.by_task[t]) for _ in range(self.per_task)]
            out[t] = [self.index.row(fi, ri) for fi, ri in picks]
        return out
