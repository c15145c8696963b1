"""Uni-Hema reference model (arXiv 2511.13889): ResNet-50 + DINO deformable encoder/decoder + T5 + Hema-Former,
as a transformers ``PreTrainedModel``. See :mod:`unihema_model.modeling_unihema` for the task-batch interface.

Attributes are imported lazily (PEP 562), so ``import unihema_model.cli`` (``unihema-train --help``) does not load
torch or transformers. Importing :mod:`unihema_model.modeling_unihema` registers ``model_type="unihema"`` with
``AutoConfig`` / ``AutoModel``.
"""
from __future__ import annotations

import importlib

from ._require import require_model_extra as _require_model_extra

_require_model_extra()  # names the `model` extra when torch/transformers are missing (find_spec only, no import)

_EXPORTS = {
    "MORPHOLOGY_ATTRIBUTES": "configuration_unihema",
    "TASKS": "configuration_unihema",
    "UniHemaConfig": "configuration_unihema",
    "UniHemaModel": "modeling_unihema",
    "UniHemaOutput": "modeling_unihema",
    "UniHemaPreTrainedModel": "modeling_unihema",
    "post_process_classification": "postprocess",
    "post_process_detection": "postprocess",
    "post_process_segmentation": "postprocess",
    "to_coco_detections": "postprocess",
    "load_pretrained_parts": "pretrained",
    "build_prompt": "text",
    "detection_prompt": "text",
    "generate_text": "text",
    "text_task_batch": "text",
    "tokenize_prompts": "text",
    "tokenize_targets": "text",
    "UniHemaPipeline": "inference",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        if _EXPORTS[name] != "modeling_unihema":
            importlib.import_module(".modeling_unihema", __name__)  # Auto* registration
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
