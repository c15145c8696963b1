"""Training of Uni-Hema on Hugging Face ``accelerate``: recipes, the paper's multi-task sampler, checkpoints.

Run through the CLI (:mod:`unihema_model.cli`)::

    unihema-train train --recipe stage3 --data OUT --init-from runs/stage2 [--output DIR]
    accelerate launch --multi_gpu --num_processes 8 -m unihema_model.cli train --recipe ... # same code, DDP

The same loop runs on CPU, one GPU, several GPUs and several nodes (``accelerate launch`` sets the process group;
nothing here changes). Mixed precision (``bf16`` / ``fp16``) comes from the recipe or ``--mixed-precision``.

Recipe (YAML, validated by pydantic; unknown keys are errors)::

    model:
      preset: tiny            # paper | released_code | tiny
      overrides: {}           # UniHemaConfig fields, e.g. {num_queries: 20}
      resnet_path: null       # local pretrained weights (unihema_model.pretrained); skipped with --random-init
      t5_path: null
      dino_checkpoint: null   # DINO-4scale COCO checkpoint0011_4scale.pth (unihema_model.dino_weights)
      text_lora: null         # HemBLIP-style LoRA on T5: {r: 16, alpha: 32, dropout: 0.05, target_modules: [q, v]}
    tokenizer: byt5           # "byt5" (no files) or a local T5 tokenizer dir / cached name
    data:
      split: train
      sources: null           # corpus source ids, null = all
      image_size: {detection: 64, ...}
      detection_augment: null # DETR augmentation (unihema_model.transforms)
    train:
      stage: all              # 1..6 (paper stages, unihema_model.stages), 7 (upsampler) or all
      tasks: null             # default: the stage's tasks
      epochs: 1               # paper epochs; an epoch = one pass over the largest task (see MultiTaskEpochSampler)
      max_steps: null         # stop after this many optimizer steps (overrides epochs)
      per_task_batch: 2       # images per task per step and per process (paper stage 3: 2)
      grad_accum: 1           # gradient accumulation steps
      lr: 1.0e-4              # AdamW (released DINO config)
      lr_backbone: 1.0e-5
      weight_decay: 0.01
      clip_max_norm: 0.1
      lr_drop_epochs: null    # StepLR(gamma 0.1) every N epochs (released code: 10)
      mixed_precision: "no"   # no | bf16 | fp16 (GPU)
      save_every_steps: null  # checkpoint every N optimizer steps (always at each epoch end; not with --overfit-batch)
      keep_checkpoints: 2     # older checkpoints are deleted
      num_workers: 0          # DataLoader worker processes building batches ahead of the GPU (0 = main process);
                              # batches are a pure function of (seed, epoch, step, rank), so workers change nothing
      seed: 42
      log_every: 1
      output_dir: runs/unihema

Outputs in the run directory: ``config.json`` + ``model.safetensors`` (``save_pretrained``; ``id2label``,
``morph_value_names`` and default prompts live in the config), ``label_maps.json``, ``recipe.yaml``, ``log.jsonl``
(one JSON line per optimizer step: epoch, step, lr, total and per-task losses of process 0) and
``checkpoints/step-XXXXXXXX/`` (model, optimizer, scheduler, RNG states via ``Accelerator.save_state``, plus
``trainer_state.json`` with the sampler position). ``--resume CKPT`` continues bit-identically; ``--init-from RUN``
starts a new stage from a previous stage's weights (fresh optimizer).
"""
from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from .stages import STAGES

DEFAULT_SIZES = {"detection": 64, "attributes": 64, "segmentation": 64, "classification": 32, "vqa": 32, "mlm": 32,
                 "caption": 32}
PRESETS = ("paper", "released_code", "tiny")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoraRecipe(_Strict):
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = Field(default_factory=lambda: ["q", "v"])


class ModelRecipe(_Strict):
    preset: str = "tiny"
    overrides: dict[str, Any] = Field(default_factory=dict)
    resnet_path: str | None = None
    t5_path: str | None = None
    dino_checkpoint: str | None = None
    text_lora: LoraRecipe | None = None


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
    epochs: int = 1
    max_steps: int | None = None
    per_task_batch: int = 2
    grad_accum: int = 1
    lr: float = 1e-4
    lr_backbone: float = 1e-5
    weight_decay: float = 0.01
    clip_max_norm: float | None = 0.1
    lr_drop_epochs: int | None = None
    mixed_precision: str = "no"
    save_every_steps: int | None = None
    keep_checkpoints: int = 2
    num_workers: int = 0
    seed: int = 42
    log_every: int = 1
    output_dir: str = "runs/unihema"


class Recipe(_Strict):
    model: ModelRecipe = Field(default_factory=ModelRecipe)
    tokenizer: str = "byt5"
    data: DataRecipe = Field(default_factory=DataRecipe)
    train: TrainRecipe = Field(default_factory=TrainRecipe)


def load_recipe(path: str | Path) -> Recipe:
    """Parse and validate a recipe, named by a path or by a packaged recipe name (``tiny``,
    ``stage3``: :mod:`unihema_model.recipe_files`); ``ValueError`` naming the file on any problem."""
    from .recipe_files import resolve_recipe

    try:
        path = resolve_recipe(path)
    except FileNotFoundError as err:
        raise ValueError(str(err)) from None
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise ValueError(f"{path}: cannot read recipe ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from None
    try:
        recipe = Recipe.model_validate(raw)
    except Exception as err:  # pydantic.ValidationError
        raise ValueError(f"{path}: invalid recipe: {err}") from None
    if recipe.train.stage not in STAGES:
        raise ValueError(f"{path}: train.stage must be one of {sorted(STAGES)}")
    if recipe.model.preset not in PRESETS:
        raise ValueError(f"{path}: model.preset must be one of {PRESETS}")
    if recipe.train.mixed_precision not in ("no", "bf16", "fp16"):
        raise ValueError(f"{path}: train.mixed_precision must be no, bf16 or fp16")
    return recipe


def load_tokenizer(name: str):
    from transformers import AutoTokenizer, ByT5Tokenizer

    if name == "byt5":
        return ByT5Tokenizer()
    return AutoTokenizer.from_pretrained(name, local_files_only=True)


def build_config(recipe: Recipe):
    """Preset + taxonomy vocabularies (stable class ids, morphology) + recipe overrides."""
    from .configuration_unihema import UniHemaConfig
    from .labels import vocabulary_overrides

    overrides = {**vocabulary_overrides(), **recipe.model.overrides}
    return getattr(UniHemaConfig, recipe.model.preset)(**overrides)


def param_groups(model, lr: float, lr_backbone: float, weight_decay: float):
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    backbone = [p for n, p in named if ".backbone.body." in f".{n}"]
    rest = [p for n, p in named if ".backbone.body." not in f".{n}"]
    groups = [{"params": rest, "lr": lr}, {"params": backbone, "lr": lr_backbone}]
    return [dict(g, weight_decay=weight_decay) for g in groups if g["params"]]


class MultiTaskEpochSampler:
    """The paper's multi-task batches: every step takes ``per_task`` rows of *every* active task ("two images per
    task per batch", stage 3), per process.

    Stateless and order-independent: the rows of (epoch, step, process) are a pure function of the seed. Each task's
    rows are visited in a seeded permutation per (epoch, cycle); smaller tasks cycle within an epoch. One epoch =
    ``ceil(largest task / (per_task * world_size))`` steps, i.e. one pass over the largest task, so all processes
    together see every row of it once per epoch. The global batch of a step is split across processes by rank.
    """

    def __init__(self, by_task: dict[str, list], tasks: list[str], per_task: int, seed: int = 0,
                 world_size: int = 1, rank: int = 0):
        self.by_task = {t: list(by_task[t]) for t in tasks if by_task.get(t)}
        self.tasks = list(self.by_task)
        self.per_task, self.seed, self.world_size, self.rank = per_task, seed, world_size, rank
        largest = max((len(v) for v in self.by_task.values()), default=0)
        self.steps_per_epoch = max(1, math.ceil(largest / (per_task * world_size)))
        self._perms: dict[tuple, list[int]] = {}

    def _perm(self, task: str, epoch: int, cycle: int) -> list[int]:
        key = (task, epoch, cycle)
        if key not in self._perms:
            order = list(range(len(self.by_task[task])))
            random.Random(f"{self.seed}:{task}:{epoch}:{cycle}").shuffle(order)
            if len(self._perms) > 64:
                self._perms.clear()
            self._perms[key] = order
        return self._perms[key]

    def picks(self, epoch: int, step: int) -> dict[str, list]:
        out = {}
        for task, entries in self.by_task.items():
            n = len(entries)
            start = (step * self.world_size + self.rank) * self.per_task
            rows = []
            for p in range(start, start + self.per_task):
                rows.append(entries[self._perm(task, epoch, p // n)[p % n]])
            out[task] = rows
        return out


def _to_device(obj, device):
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_device(v, device) for v in obj]
    return obj


def _checkpoint_dirs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "checkpoints").glob("step-*")) if (run_dir / "checkpoints").is_dir() else []


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory, or a run directory (its latest checkpoint)."""
    path = Path(path)
    if (path / "trainer_state.json").is_file():
        return path
    found = _checkpoint_dirs(path)
    if not found:
        raise FileNotFoundError(f"{path}: no checkpoint (trainer_state.json) found")
    return found[-1]


def load_model_weights(path: str | Path):
    """A :class:`UniHemaModel` from a run directory (``save_pretrained`` files) or a checkpoint directory."""
    from .modeling_unihema import UniHemaModel

    path = Path(path)
    for candidate in (path, *(reversed(_checkpoint_dirs(path)))):
        if (candidate / "config.json").is_file() and any(candidate.glob("*.safetensors")):
            return UniHemaModel.from_pretrained(candidate)
    raise FileNotFoundError(f"{path}: no saved Uni-Hema model (config.json + *.safetensors)")


class _StepDataset:
    """Map-style dataset over (epoch, step) positions for DataLoader workers."""

    def __init__(self, trainer, positions):
        self.trainer, self.positions = trainer, positions

    def __len__(self):
        return len(self.positions)

    def __getitem__(self, i):
        return self.trainer.batch_for(*self.positions[i])


class Trainer:
    """One training run; see the module docstring. ``log`` receives human-readable lines (process 0 only)."""

    def __init__(self, recipe: Recipe, data_dir: str | Path, output_dir: str | Path | None = None, *,
                 init_from: str | Path | None = None, resume: str | Path | None = None, random_init: bool = False,
                 overfit_batch: bool = False, max_steps: int | None = None, epochs: int | None = None,
                 mixed_precision: str | None = None, cpu: bool = False, log=print, progress: bool = True):
        import torch
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs, set_seed

        from .data import CorpusIndex, LabelMaps, corpus_files
        from .stages import apply_stage
        from .transforms import DetrAugment

        self.recipe, t = recipe, recipe.train
        self.overfit_batch, self.log, self.progress = overfit_batch, log, progress
        self.max_steps = max_steps if max_steps is not None else t.max_steps
        self.epochs = epochs if epochs is not None else t.epochs
        self.accelerator = Accelerator(
            mixed_precision=mixed_precision or t.mixed_precision, gradient_accumulation_steps=t.grad_accum, cpu=cpu,
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        )
        acc = self.accelerator
        set_seed(t.seed, device_specific=True)
        self.stage = STAGES[t.stage]
        tasks = t.tasks or self.stage["tasks"]
        files = corpus_files(data_dir, recipe.data.split, recipe.data.sources)
        if not files:
            raise FileNotFoundError(f"no parquet files under {data_dir} for split {recipe.data.split!r}")
        self.index = CorpusIndex(files, tasks)
        self.sampler = MultiTaskEpochSampler(self.index.by_task, tasks, t.per_task_batch, t.seed,
                                             acc.num_processes, acc.process_index)
        if not self.sampler.tasks:
            raise ValueError(f"the corpus has no rows for the tasks {tasks}")
        self.resume_dir = resolve_checkpoint(resume) if resume else None
        model = self._build_model(init_from, random_init)
        self.config = model.config
        self.spec = apply_stage(model, t.stage)
        if recipe.model.text_lora is not None:
            from .lora import apply_text_lora

            self.spec["num_trainable"] = apply_text_lora(model, recipe.model.text_lora)
        self.tokenizer = load_tokenizer(recipe.tokenizer)
        if model.config.default_prompt_ids is None:
            model.set_default_prompts(self.tokenizer)
        self.maps = LabelMaps.from_config(model.config)
        aug = recipe.data.detection_augment
        self.augment = DetrAugment(tuple(aug.scales), aug.max_size, tuple(aug.crop_resize_scales), aug.crop_min,
                                   aug.crop_max, aug.hflip_prob) if aug is not None else None
        optimizer = torch.optim.AdamW(param_groups(model, t.lr, t.lr_backbone, t.weight_decay))
        steps_per_epoch = self.sampler.steps_per_epoch // max(t.grad_accum, 1) or 1
        drop = (t.lr_drop_epochs or 0) * steps_per_epoch
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, drop if drop else 10**12, 0.1)
        self.model, self.optimizer, self.scheduler = acc.prepare(model, optimizer, scheduler)
        self.out_dir = Path(output_dir or t.output_dir)
        self.global_step, self.epoch, self.step_in_epoch = 0, 0, 0
        if self.resume_dir is not None:
            acc.load_state(str(self.resume_dir))
            state = json.loads((self.resume_dir / "trainer_state.json").read_text())
            self.global_step, self.epoch, self.step_in_epoch = state["global_step"], state["epoch"], state["step_in_epoch"]

    # ------------------------------------------------------------------ setup
    def _build_model(self, init_from, random_init):
        from .modeling_unihema import UniHemaModel
        from .pretrained import load_pretrained_parts

        r = self.recipe.model
        if self.resume_dir is not None:
            return UniHemaModel(UniHemaModel.config_class.from_pretrained(self.resume_dir))
        if init_from:
            model = load_model_weights(init_from)
            self.log(f"initialised from {init_from}")
            return model
        model = UniHemaModel(build_config(self.recipe))
        if random_init:
            return model
        if r.dino_checkpoint:
            from .dino_weights import load_dino_checkpoint

            report = load_dino_checkpoint(model, r.dino_checkpoint)
            self.log(f"DINO checkpoint: {len(report['loaded'])} tensors loaded, {len(report['skipped'])} skipped")
        if r.resnet_path or r.t5_path:
            report = load_pretrained_parts(model, r.resnet_path, r.t5_path)
            errors = {k: v["error"] for k, v in report.items() if "error" in v}
            if errors:
                raise FileNotFoundError(f"pretrained weights not found: {errors} (use --random-init to skip)")
        return model

    # ------------------------------------------------------------------ data
    def batch_for(self, epoch: int, step: int) -> dict:
        from .data import build_task_batch

        t = self.recipe.train
        rng = random.Random(f"{t.seed}:aug:{epoch}:{step}:{self.accelerator.process_index}")
        picks = self.sampler.picks(epoch, step)
        return {
            task: build_task_batch([self.index.row(fi, ri) for fi, ri in entries], task, self.maps, self.config,
                                   self.tokenizer, self.recipe.data.image_size.get(task, DEFAULT_SIZES[task]),
                                   text_only=bool(self.stage.get("text_only")), augment=self.augment, rng=rng)
            for task, entries in picks.items()
        }

    def _batch_stream(self, total: int):
        """Batches from the current (epoch, step) on, built by ``train.num_workers`` DataLoader workers (in order)."""
        import torch

        t = self.recipe.train
        per_epoch = self.sampler.steps_per_epoch
        start = self.epoch * per_epoch + self.step_in_epoch
        count = (total - self.global_step) * max(t.grad_accum, 1)
        positions = [divmod(start + i, per_epoch) for i in range(count)]
        if t.num_workers <= 0:
            return (self.batch_for(e, s) for e, s in positions)
        loader = torch.utils.data.DataLoader(
            _StepDataset(self, positions), batch_size=None, shuffle=False, num_workers=t.num_workers,
            pin_memory=self.accelerator.device.type == "cuda", prefetch_factor=2, persistent_workers=False)
        return iter(loader)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        acc = self.accelerator
        final = self.out_dir / "checkpoints" / f"step-{self.global_step:08d}"
        tmp = final.with_name(final.name + ".tmp")
        if acc.is_main_process and tmp.exists():
            shutil.rmtree(tmp)
        acc.wait_for_everyone()
        acc.save_state(str(tmp))
        if acc.is_main_process:
            acc.unwrap_model(self.model).config.save_pretrained(tmp)
            (tmp / "trainer_state.json").write_text(json.dumps(
                {"global_step": self.global_step, "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                 "steps_per_epoch": self.sampler.steps_per_epoch, "world_size": acc.num_processes}))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            for old in _checkpoint_dirs(self.out_dir)[: -max(self.recipe.train.keep_checkpoints, 1)]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()
        return final

    # ------------------------------------------------------------------ loop
    def total_steps(self) -> int:
        """``max_steps`` when set (it overrides epochs, as in HF ``Trainer``), else epochs x steps per epoch."""
        if self.max_steps is not None:
            return self.max_steps
        return max(self.sampler.steps_per_epoch // max(self.recipe.train.grad_accum, 1), 1) * self.epochs

    def train(self) -> dict:
        import torch

        acc, t = self.accelerator, self.recipe.train
        total = self.total_steps()
        if acc.is_main_process:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.log(f"tasks {self.sampler.tasks} | stage {t.stage} | {self.spec['num_trainable']:,} trainable "
                     f"parameters | {acc.num_processes} process(es) on {acc.device} | {self.sampler.steps_per_epoch} "
                     f"batches/epoch | {total} optimizer steps")
        first = last = None
        fixed = self.batch_for(0, 0) if self.overfit_batch else None
        bar = None
        if self.progress and acc.is_local_main_process:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=self.global_step, desc="train", dynamic_ncols=True)
        log_file = open(self.out_dir / "log.jsonl", "a") if acc.is_main_process else None
        batches = None if fixed is not None else self._batch_stream(total)
        self.model.train()
        try:
            while self.global_step < total:
                start = time.time()
                skipped = 0
                task_losses: dict[str, float] = {}
                for _ in range(max(t.grad_accum, 1)):
                    batch = fixed if fixed is not None else next(batches)
                    if fixed is not None:
                        torch.manual_seed(t.seed)  # the same denoising noise / dropout every step
                    with acc.accumulate(self.model):
                        out = self.model(_to_device(batch, acc.device))
                        acc.backward(out.loss)
                        finite = True
                        if acc.sync_gradients:
                            norm = acc.clip_grad_norm_(self.model.parameters(), t.clip_max_norm or float("inf"))
                            finite = bool(torch.isfinite(torch.as_tensor(norm)))
                        if finite:
                            self.optimizer.step()
                            self.scheduler.step()
                        else:  # as fp16 loss scaling does: never apply inf/nan gradients
                            skipped += 1
                            self.log(f"step {self.global_step}: non-finite gradient norm, update skipped")
                        self.optimizer.zero_grad()
                    for k, v in out.loss_dict.items():
                        if k.endswith("/loss"):
                            task_losses[k] = task_losses.get(k, 0.0) + float(v) / max(t.grad_accum, 1)
                    self.step_in_epoch += 1
                    if self.step_in_epoch >= self.sampler.steps_per_epoch:
                        self.epoch, self.step_in_epoch = self.epoch + 1, 0
                loss = sum(self.config.task_loss_weights.get(k.split("/")[0], 1.0) * v for k, v in task_losses.items())
                if not math.isfinite(loss):
                    raise FloatingPointError(f"non-finite loss at step {self.global_step}: {task_losses}")
                first = loss if first is None else first
                last = loss
                record = {"step": self.global_step, "epoch": self.epoch, "loss": loss,
                          "lr": self.optimizer.param_groups[0]["lr"], "seconds": round(time.time() - start, 3),
                          **({"skipped_updates": skipped} if skipped else {}),
                          **{k: round(v, 6) for k, v in task_losses.items()}}
                self.global_step += 1
                if log_file is not None:
                    log_file.write(json.dumps(record) + "\n")
                    log_file.flush()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}")
                elif acc.is_main_process and (record["step"] % max(t.log_every, 1) == 0 or self.global_step == total):
                    self.log(json.dumps(record))
                epoch_end = self.step_in_epoch == 0 and fixed is None
                if (fixed is None and t.save_every_steps and self.global_step % t.save_every_steps == 0) or epoch_end:
                    self.save_checkpoint()
        finally:
            if log_file is not None:
                log_file.close()
            if bar is not None:
                bar.close()
        self.save_final()
        return {"output_dir": str(self.out_dir), "steps": self.global_step, "epoch": self.epoch,
                "first_loss": first, "last_loss": last}

    def save_final(self) -> None:
        acc = self.accelerator
        acc.wait_for_everyone()
        if not acc.is_main_process:
            return
        model = acc.unwrap_model(self.model)
        if self.recipe.model.text_lora is not None:
            from .lora import merge_text_lora

            model = merge_text_lora(model)
        model.save_pretrained(self.out_dir)
        (self.out_dir / "label_maps.json").write_text(self.maps.to_json())
        (self.out_dir / "recipe.yaml").write_text(yaml.safe_dump(self.recipe.model_dump(), sort_keys=False))


def train(recipe: Recipe, data_dir: str | Path, steps: int | None = None, output_dir: str | Path | None = None,
          log=print, **kwargs) -> dict:
    """Programmatic entry point: ``steps`` = maximum optimizer steps (``None``: the recipe's epochs)."""
    return Trainer(recipe, data_dir, output_dir, max_steps=steps, log=log, **kwargs).train()


def main(argv: list[str] | None = None) -> int:
    """``unihema-train`` (kept for ``python -m unihema_model.train``): see :mod:`unihema_model.cli`."""
    from .cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
