"""``unihema-train``: train the Uni-Hema model for a few steps on a converted corpus folder.

    unihema-train --recipe recipes/tiny.yaml --data OUT_DIR --steps N [--output DIR] [--seed S]

Recipe (YAML; every key optional, defaults shown)::

    model:
      preset: tiny            # paper | released_code | tiny
      overrides: {}           # UniHemaConfig fields, e.g. {num_queries: 20}
      resnet_path: null       # local pretrained weights (see unihema_model.pretrained)
      t5_path: null
    tokenizer: byt5           # "byt5" (no files needed; vocab 384 = tiny T5) or a local tokenizer dir / cached name
    data:
      split: train
      sources: null           # list of corpus source ids, null = all
      image_size: {detection: 64, attributes: 64, segmentation: 64, classification: 32, vqa: 32, mlm: 32}
      detection_augment: null # or DETR augmentation for detection/attributes (paper-size defaults):
                              # {scales: [480, ..., 800], max_size: 1333, crop_resize_scales: [400, 500, 600],
                              #  crop_min: 384, crop_max: 600, hflip_prob: 0.5}
    train:
      stage: all              # 1..6 (paper stages, see unihema_model.stages), 7 (upsampler) or all
      tasks: null             # default: the stage's tasks
      steps: 10
      per_task_batch: 2       # images per task per step
      lr: 1.0e-4              # AdamW, released values
      lr_backbone: 1.0e-5
      weight_decay: 0.01
      clip_max_norm: 0.1      # applied (the released code configured but never applied it)
      lr_drop_steps: null     # StepLR(step_size, gamma 0.1)
      seed: 42
      log_every: 1
      output_dir: runs/unihema

Class and attribute vocabularies come from the taxonomy's stable ids (:mod:`unihema_model.labels`) and are stored
in the saved config (``id2label``, ``morph_value_names``; ``label_maps.json`` repeats them).
Outputs: ``save_pretrained`` files, ``label_maps.json``, ``recipe.yaml`` and ``log.jsonl`` (one line per logged
step with the loss dict).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field

from .configuration_unihema import UniHemaConfig
from .labels import vocabulary_overrides
from .data import LabelMaps, CorpusIndex, MultiTaskSampler, build_task_batch, corpus_files
from .modeling_unihema import UniHemaModel
from .pretrained import load_pretrained_parts
from .stages import STAGES, apply_stage
from .transforms import DetrAugment

DEFAULT_SIZES = {"detection": 64, "attributes": 64, "segmentation": 64, "classification": 32, "vqa": 32, "mlm": 32}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelRecipe(_Strict):
    preset: str = "tiny"
    overrides: dict[str, Any] = Field(default_factory=dict)
    resnet_path: str | None = None
    t5_path: str | None = None


class AugmentRecipe(_Strict):
    scales: list[int] = Field(default_factory=lambda: [480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800])
    max_size: int = 1333
    crop_resize_scales: list[int] = Field(default_factory=lambda: [400, 500, 600])
    crop_min: int = 384
    crop_max: int = 600
    hflip_prob: float = 0.5


class DataRecipe(_Strict):
    split: str = "train"
    sources: list[str] | None = None
    image_size: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_SIZES))
    detection_augment: AugmentRecipe | None = None


class TrainRecipe(_Strict):
    stage: str = "all"
    tasks: list[str] | None = None
    steps: int = 10
    per_task_batch: int = 2
    lr: float = 1e-4
    lr_backbone: float = 1e-5
    weight_decay: float = 0.01
    clip_max_norm: float | None = 0.1
    lr_drop_steps: int | None = None
    seed: int = 42
    log_every: int = 1
    output_dir: str = "runs/unihema"


class Recipe(_Strict):
    model: ModelRecipe = Field(default_factory=ModelRecipe)
    tokenizer: str = "byt5"
    data: DataRecipe = Field(default_factory=DataRecipe)
    train: TrainRecipe = Field(default_factory=TrainRecipe)


def load_recipe(path: str | Path) -> Recipe:
    raw = yaml.safe_load(Path(path).read_text()) or {}
    recipe = Recipe.model_validate(raw)
    if recipe.train.stage not in STAGES:
        raise ValueError(f"train.stage must be one of {sorted(STAGES)}")
    if recipe.model.preset not in ("paper", "released_code", "tiny"):
        raise ValueError("model.preset must be paper, released_code or tiny")
    return recipe


def load_tokenizer(name: str):
    from transformers import AutoTokenizer, ByT5Tokenizer

    if name == "byt5":
        return ByT5Tokenizer()
    return AutoTokenizer.from_pretrained(name, local_files_only=True)


def build_config(recipe: Recipe, index: CorpusIndex) -> UniHemaConfig:
    overrides = {**vocabulary_overrides(), **recipe.model.overrides}
    return getattr(UniHemaConfig, recipe.model.preset)(**overrides)


def param_groups(model, lr: float, lr_backbone: float, weight_decay: float):
    backbone = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("backbone.body.")]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.body.")]
    groups = [{"params": rest, "lr": lr}]
    if backbone:
        groups.append({"params": backbone, "lr": lr_backbone})
    return [dict(g, weight_decay=weight_decay) for g in groups if g["params"]]


def train(recipe: Recipe, data_dir: str | Path, steps: int | None = None, output_dir: str | Path | None = None,
          log=print, overfit_batch: bool = False) -> dict:
    """Run a training loop; returns ``{"output_dir", "steps", "first_loss", "last_loss"}``."""
    t = recipe.train
    torch.manual_seed(t.seed)
    stage = STAGES[t.stage]
    tasks = t.tasks or stage["tasks"]
    files = corpus_files(data_dir, recipe.data.split, recipe.data.sources)
    if not files:
        raise FileNotFoundError(f"no parquet files under {data_dir} for split {recipe.data.split!r}")
    index = CorpusIndex(files, tasks)
    sampler = MultiTaskSampler(index, tasks, t.per_task_batch, seed=t.seed)
    if not sampler.tasks:
        raise ValueError(f"the corpus has no rows for the tasks {tasks}")
    config = build_config(recipe, index)
    model = UniHemaModel(config)
    if recipe.model.resnet_path or recipe.model.t5_path:
        log(json.dumps({"pretrained": load_pretrained_parts(model, recipe.model.resnet_path, recipe.model.t5_path)},
                       default=str)[:500])
    spec = apply_stage(model, t.stage)
    tokenizer = load_tokenizer(recipe.tokenizer)
    model.set_default_prompts(tokenizer)
    maps = LabelMaps.from_config(config)
    aug = recipe.data.detection_augment
    augment = DetrAugment(tuple(aug.scales), aug.max_size, tuple(aug.crop_resize_scales), aug.crop_min,
                          aug.crop_max, aug.hflip_prob) if aug is not None else None
    aug_rng = random.Random(t.seed)
    model.train()
    optimizer = torch.optim.AdamW(param_groups(model, t.lr, t.lr_backbone, t.weight_decay))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, t.lr_drop_steps, 0.1) if t.lr_drop_steps else None
    out_dir = Path(output_dir or t.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_steps = steps if steps is not None else t.steps
    log(f"tasks {sampler.tasks} | stage {t.stage} | {spec['num_trainable']:,} trainable parameters | {n_steps} steps")
    first = last = None
    fixed = None
    with open(out_dir / "log.jsonl", "w") as log_file:
        for step in range(n_steps):
            start = time.time()
            if fixed is None:
                batches = {
                    task: build_task_batch(rows, task, maps, config, tokenizer,
                                           recipe.data.image_size.get(task, DEFAULT_SIZES[task]),
                                           text_only=bool(stage.get("text_only")), augment=augment, rng=aug_rng)
                    for task, rows in sampler.sample().items()
                }
                fixed = batches if overfit_batch else None
            if overfit_batch:  # one fixed batch, incl. its denoising noise: the same input every step
                torch.manual_seed(t.seed)
            out = model(batches)
            optimizer.zero_grad()
            out.loss.backward()
            if t.clip_max_norm:
                torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], t.clip_max_norm)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            loss = float(out.loss.detach())
            if not math.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at step {step}")
            first = loss if first is None else first
            last = loss
            record = {"step": step, "loss": loss, "seconds": round(time.time() - start, 3),
                      **{k: round(float(v), 5) for k, v in out.loss_dict.items() if k.endswith("/loss")}}
            log_file.write(json.dumps(record) + "\n")
            if step % max(t.log_every, 1) == 0 or step == n_steps - 1:
                log(json.dumps(record))
    model.save_pretrained(out_dir)
    (out_dir / "label_maps.json").write_text(maps.to_json())
    (out_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe.model_dump(), sort_keys=False))
    return {"output_dir": str(out_dir), "steps": n_steps, "first_loss": first, "last_loss": last}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="unihema-train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", required=True, help="recipe YAML (see unihema_model/train.py)")
    parser.add_argument("--data", required=True, help="converted corpus folder (data/<source>/<split>-*.parquet)")
    parser.add_argument("--steps", type=int, default=None, help="override train.steps")
    parser.add_argument("--output", default=None, help="override train.output_dir")
    parser.add_argument("--seed", type=int, default=None, help="override train.seed")
    parser.add_argument("--overfit-batch", action="store_true",
                        help="train on one fixed multi-task batch (sanity check: every task loss must fall)")
    args = parser.parse_args(argv)
    try:
        recipe = load_recipe(args.recipe)
        if args.seed is not None:
            recipe.train.seed = args.seed
        result = train(recipe, args.data, steps=args.steps, output_dir=args.output, overfit_batch=args.overfit_batch)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
