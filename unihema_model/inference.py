"""Inference helper in the spirit of a transformers ``pipeline``: images in, named predictions out.

    from unihema_model.inference import UniHemaPipeline
    pipe = UniHemaPipeline("runs/stage6")                 # a run directory (or a UniHemaModel)
    pipe("smear.png", task="detection")                   # [{"boxes": [[x0, y0, x1, y1], ...], "labels": [...], ...}]
    pipe(["cell.png"], task="classification")             # [{"label": "neutrophil", "score": .97, "top": {...}}]
    pipe("cell.png", task="vqa", prompt="What is the nucleus shape?")   # [{"answer": "..."}]

Preprocessing per task, matching training: detection / attributes keep the aspect ratio (short side =
``image_size[task]``, long side <= ``size * 1333 / 800`` as DETR, padding + ``pixel_mask``); segmentation,
classification and the text tasks use the square resize they were trained with (released code). Outputs are in
*original* image pixels: boxes ``xyxy``, masks ``(H, W)`` bool. Class names come from ``config.id2label`` (the
taxonomy's stable ids), attribute value names from ``config.morph_value_names``. Without ``prompt`` the visual
tasks use the default prompt stored in the config (as in training); text tasks need one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from .data import image_to_tensor
from .text import build_prompt, tokenize_prompts
from .transforms import pad_images, size_with_aspect_ratio

DETECTION_TASKS = ("detection", "attributes")
TEXT_TASKS = ("vqa", "mlm", "caption")


def _open(image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    path = Path(image)
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from None


def preprocess(images: Sequence[Image.Image], task: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``pixel_values (B, 3, H, W)`` and ``pixel_mask (B, H, W)`` for ``task`` (see the module docstring)."""
    tensors = []
    for img in images:
        if task in DETECTION_TASKS:
            h, w = size_with_aspect_ratio(img.width, img.height, size, int(round(size * 1333 / 800)))
        else:
            h, w = size, size
        tensors.append(image_to_tensor(img, (h, w)))
    return pad_images(tensors)


def _recipe_value(run_dir: Path, *keys, default=None):
    path = run_dir / "recipe.yaml"
    if not path.is_file():
        return default
    import yaml

    value: Any = yaml.safe_load(path.read_text()) or {}
    for k in keys:
        value = value.get(k) if isinstance(value, dict) else None
    return default if value is None else value


class UniHemaPipeline:
    def __init__(self, model, tokenizer=None, device: str | None = None, image_size: dict | None = None):
        from .train import DEFAULT_SIZES, load_model_weights, load_tokenizer

        run_dir = Path(model) if isinstance(model, (str, Path)) else None
        self.model = load_model_weights(run_dir) if run_dir is not None else model
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device).eval()
        if tokenizer is None:
            tokenizer = _recipe_value(run_dir, "tokenizer", default="byt5") if run_dir else "byt5"
        self.tokenizer = load_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
        sizes = dict(DEFAULT_SIZES)
        if run_dir is not None:
            sizes.update(_recipe_value(run_dir, "data", "image_size", default={}) or {})
        sizes.update(image_size or {})
        self.image_size = sizes
        config = self.model.config
        self.id2label = {int(k): v for k, v in (config.id2label or {}).items()}
        self.value_names = config.morph_value_names or {}

    def label_name(self, idx: int) -> str:
        return self.id2label.get(int(idx), str(int(idx)))

    def _prompt(self, task: str, prompt: str | None, n: int) -> dict:
        if prompt is None:
            return {}
        enc = tokenize_prompts(self.tokenizer, [build_prompt(task, prompt, self.model.config)] * n, self.model.config)
        return {k: v.to(self.device) for k, v in enc.items()}

    @torch.no_grad()
    def __call__(self, images, task: str = "detection", prompt: str | None = None, threshold: float | None = None,
                 **generate_kwargs) -> list[dict]:
        if isinstance(images, (str, Path, Image.Image)):
            images = [images]
        pil = [_open(i) for i in images]
        if not pil:
            return []
        size = int(self.image_size.get(task, 64))
        pixel_values, pixel_mask = preprocess(pil, task, size)
        pixel_values, pixel_mask = pixel_values.to(self.device), pixel_mask.to(self.device)
        sizes = [(img.height, img.width) for img in pil]
        model, cfg = self.model, self.model.config
        if task in DETECTION_TASKS:
            enc = self._prompt(task, prompt, len(pil))
            preds = model.predict_detection(pixel_values, enc.get("input_ids"), enc.get("attention_mask"), pixel_mask,
                                            target_sizes=sizes, task=task)
            out = []
            for p in preds:
                keep = p["scores"] >= (threshold if threshold is not None else cfg.score_threshold)
                item = {"boxes": p["boxes"][keep].cpu().tolist(), "scores": p["scores"][keep].cpu().tolist(),
                        "label_ids": p["labels"][keep].cpu().tolist()}
                item["labels"] = [self.label_name(i) for i in item["label_ids"]]
                if "attributes" in p:
                    vals, confs = p["attributes"][keep].cpu().tolist(), p["attribute_scores"][keep].cpu().tolist()
                    item["attributes"] = [
                        {a: {"value": (self.value_names.get(a) or [None] * (v + 1))[v] or v, "score": round(c, 4)}
                         for a, v, c in zip(cfg.morph_attributes, vs, cs)} for vs, cs in zip(vals, confs)]
                out.append(item)
            return out
        if task == "segmentation":
            enc = self._prompt(task, prompt, len(pil))
            masks = model.predict_segmentation(pixel_values, enc.get("input_ids"), enc.get("attention_mask"),
                                               pixel_mask, target_sizes=sizes,
                                               threshold=threshold if threshold is not None else 0.5)
            return [{"mask": m.cpu().numpy()} for m in masks]
        if task == "classification":
            res = model.predict_classification(pixel_values, pixel_mask)
            out = []
            for probs in res["probs"].cpu():
                top = probs.topk(min(5, len(probs)))
                out.append({"label": self.label_name(int(top.indices[0])), "label_id": int(top.indices[0]),
                            "score": float(top.values[0]),
                            "top": {self.label_name(int(i)): float(v) for v, i in zip(top.values, top.indices)}})
            return out
        if task in TEXT_TASKS:
            if prompt is None:
                raise ValueError(f"task {task} needs a prompt (the question, masked text or caption request)")
            enc = self._prompt(task, prompt, len(pil))
            ids = model.generate(pixel_values, enc["input_ids"], enc["attention_mask"], pixel_mask, **generate_kwargs)
            return [{"answer": a} for a in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        raise ValueError(f"unknown task {task!r}")


def save_mask_png(mask: np.ndarray, path: str | Path) -> None:
    Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255).save(path)
