"""Uni-Hema reference model (arXiv 2511.13889): ResNet-50 + DINO deformable encoder/decoder + T5 + Hema-Former,
as a transformers ``PreTrainedModel``. See :mod:`unihema_model.modeling_unihema` for the task-batch interface."""
from ._require import require_model_extra as _require_model_extra

_require_model_extra()  # names the `model` extra when torch/transformers are missing
from .configuration_unihema import MORPHOLOGY_ATTRIBUTES, TASKS, UniHemaConfig
from .modeling_unihema import UniHemaModel, UniHemaOutput, UniHemaPreTrainedModel
from .postprocess import (
    post_process_classification,
    post_process_detection,
    post_process_segmentation,
    to_coco_detections,
)
from .pretrained import load_pretrained_parts
from .text import build_prompt, detection_prompt, generate_text, text_task_batch, tokenize_prompts, tokenize_targets

# make AutoConfig / AutoModel resolve model_type "unihema" (saved checkpoints load with the Auto classes)
from transformers import AutoConfig as _AutoConfig, AutoModel as _AutoModel  # noqa: E402

_AutoConfig.register("unihema", UniHemaConfig, exist_ok=True)
_AutoModel.register(UniHemaConfig, UniHemaModel, exist_ok=True)

__all__ = [
    "MORPHOLOGY_ATTRIBUTES",
    "TASKS",
    "UniHemaConfig",
    "UniHemaModel",
    "UniHemaOutput",
    "UniHemaPreTrainedModel",
    "build_prompt",
    "detection_prompt",
    "generate_text",
    "text_task_batch",
    "tokenize_prompts",
    "tokenize_targets",
    "load_pretrained_parts",
    "post_process_classification",
    "post_process_detection",
    "post_process_segmentation",
    "to_coco_detections",
]
