"""Text side helpers: prompts, tokenisation into model batches, decoding of generated answers.

Prompts (paper section 3.2.1; ``unihema_data.prompts`` builds the same strings):

* VQA: ``config.vqa_prompt_prefix + question`` (``"Q: ..."``; questions that already start with it are kept);
* MLM: ``config.mlm_prompt_prefix + masked_text`` (``"mask: ..."``, T5 sentinels such as ``<extra_id_0>``);
* detection / segmentation / attributes: a disease prompt, by default
  ``config.detection_prompt_template.format(...)`` = "This image is for the detection of {...} cells.".

Targets are tokenised to ``text_max_length`` with pads replaced by -100 (ignored by the T5 loss). The real model
uses the T5 sentencepiece tokenizer (``AutoTokenizer.from_pretrained(config.text_model_name)``, cached locally);
tests use ``ByT5Tokenizer()``, which needs no files.
"""
from __future__ import annotations

import torch


def build_prompt(task: str, text: str, config) -> str:
    if task == "vqa":
        prefix = config.vqa_prompt_prefix
    elif task == "mlm":
        prefix = config.mlm_prompt_prefix
    else:
        return text if text else config.detection_prompt_template.format("blood")
    return text if (prefix and text.startswith(prefix)) else prefix + text


def detection_prompt(names: list[str], config) -> str:
    """The released code's template over de-duplicated object/disease names."""
    unique = list(dict.fromkeys(n.replace("_", " ") for n in names if n))
    return config.detection_prompt_template.format(", ".join(unique) if unique else "blood")


def tokenize_prompts(tokenizer, prompts: list[str], config, pad_to_max_length: bool | None = None) -> dict:
    """``input_ids`` / ``attention_mask`` ``(B, L)``. Pads to ``text_max_length`` when the CMF text residual is on
    (released code) or when asked; otherwise to the longest prompt."""
    if pad_to_max_length is None:
        pad_to_max_length = config.cmf_text_residual
    enc = tokenizer(
        prompts,
        padding="max_length" if pad_to_max_length else "longest",
        max_length=config.text_max_length,
        truncation=True,
        return_tensors="pt",
    )
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def tokenize_targets(tokenizer, targets: list[str], config) -> torch.Tensor:
    """Target ids ``(B, T)`` with padding set to -100."""
    enc = tokenizer(targets, padding="longest", max_length=config.text_max_length, truncation=True, return_tensors="pt")
    labels = enc["input_ids"].clone()
    labels[enc["attention_mask"] == 0] = -100
    return labels


def text_task_batch(tokenizer, pixel_values, task: str, texts: list[str], targets: list[str] | None, config) -> dict:
    """A ``vqa`` / ``mlm`` batch for :meth:`UniHemaModel.forward`."""
    batch = {"pixel_values": pixel_values}
    batch.update(tokenize_prompts(tokenizer, [build_prompt(task, t, config) for t in texts], config))
    if targets is not None:
        batch["labels"] = tokenize_targets(tokenizer, targets, config)
    return batch


def generate_text(model, tokenizer, pixel_values, task: str, texts: list[str], **generate_kwargs) -> list[str]:
    """Generated answers / completions as strings (conditioned on the fused image + text states)."""
    batch = text_task_batch(tokenizer, pixel_values, task, texts, None, model.config)
    ids = model.generate(pixel_values, batch["input_ids"], batch["attention_mask"], **generate_kwargs)
    return tokenizer.batch_decode(ids, skip_special_tokens=True)
