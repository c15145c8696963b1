"""The paper's progressive six-stage training (section 4.2) as freezing presets.

=====  =========================================  ==============================================================
stage  tasks                                      trainable modules (everything else frozen)
=====  =========================================  ==============================================================
1      classification                             backbone, encoder, SCFE
2      vqa, mlm (text only: T5 without the image) text_model (T5 encoder + decoder)
3      detection, segmentation, classification    visual modules: backbone, encoder, decoder, TGVR, SCFE, QGMF
4      detection, attributes                      decoder (image decoder D_I and its heads), TGVR
5      segmentation                               QGMF (incl. the upsampler)
6      vqa, mlm                                   CMF, T5 decoder (+ lm_head)
=====  =========================================  ==============================================================

The released code did this by hand-editing ``main.py``; its final state froze T5, CMF and backbone and trained
the upsampler ("step 7"), available here as stage ``"7"``. The backbone stem and first stage stay frozen whenever
``config.freeze_backbone_stem_and_stage1`` is set (DINO practice), whatever the stage says.

Tied weights: T5 ties ``lm_head`` and both embedding tables to ``text_model.shared.weight`` (flan-t5 unties only
``lm_head``), and ``named_parameters()`` lists a tied tensor once, under its first name. Freezing therefore works on
*every* name of a tensor: a tensor trains when any of its names is selected, so stage 6 (``text_model.decoder``,
``text_model.lm_head``) trains the decoder's input embedding / output head, i.e. the shared table that the frozen
T5 encoder also reads (its transformer blocks stay frozen).
"""
from __future__ import annotations

STAGES: dict[str, dict] = {
    "1": {"tasks": ["classification"], "trainable": ["backbone", "encoder", "scfe"]},
    "2": {"tasks": ["vqa", "mlm"], "trainable": ["text_model"], "text_only": True},
    "3": {
        "tasks": ["detection", "segmentation", "classification"],
        "trainable": ["backbone", "encoder", "decoder", "tgvr", "scfe", "qgmf"],
    },
    "4": {"tasks": ["detection", "attributes"], "trainable": ["decoder", "tgvr"]},
    "5": {"tasks": ["segmentation"], "trainable": ["qgmf"]},
    "6": {"tasks": ["vqa", "mlm"], "trainable": ["cmf", "text_model.decoder", "text_model.lm_head"]},
    "7": {"tasks": ["segmentation"], "trainable": ["qgmf.upsampler"]},
    "all": {"tasks": ["detection", "attributes", "segmentation", "classification", "vqa", "mlm"], "trainable": [""]},
}


def _always_frozen(model, name: str) -> bool:
    if not model.config.freeze_backbone_stem_and_stage1 or not name.startswith("backbone.body."):
        return False
    return not any(f"stages.{i}." in name for i in (1, 2, 3))


def _selected(name: str, prefixes: list[str]) -> bool:
    return any(p == "" or name == p or name.startswith(p + ".") for p in prefixes)


def parameter_names(model) -> dict[int, tuple]:
    """``id(param) -> (param, [every name of it])`` including the aliases of tied weights."""
    out: dict[int, tuple] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        out.setdefault(id(param), (param, []))[1].append(name)
    return out


def set_trainable(model, prefixes: list[str]) -> int:
    """Freeze every parameter except those with a name (any alias of a tied weight) that starts with one of
    ``prefixes`` ("" = all). Returns the number of trainable parameters."""
    count = 0
    for param, names in parameter_names(model).values():
        on = any(_selected(n, prefixes) for n in names) and not any(_always_frozen(model, n) for n in names)
        param.requires_grad_(on)
        count += param.numel() if on else 0
    return count


def apply_stage(model, stage: str | int) -> dict:
    """Set ``requires_grad`` for a stage; returns the stage spec (tasks, trainable, text_only)."""
    key = str(stage)
    if key not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {sorted(STAGES)}")
    spec = dict(STAGES[key])
    spec["num_trainable"] = set_trainable(model, spec["trainable"])
    return spec
