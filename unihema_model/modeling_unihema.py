"""Uni-Hema multi-task model (arXiv 2511.13889) as a transformers ``PreTrainedModel``.

Data flow (paper Fig. 2)::

    image -> ResNet (UniHemaBackbone) -> E_B^I (4 projected levels) -> deformable encoder E_I -> E_E^I
    prompt -> T5 encoder E_T -> E_E^T
    detection / attributes / segmentation: E_E^I -> top-K queries -> TGVR(E_E^T) -> DINO decoder D_I -> E_D^I
        -> class / box / morphology heads;  segmentation: QGMF(F_1, E_E^I, E_D^I) -> binary mask
    classification: SCFE(E_E^I) -> E_Z -> classifier (text independent)
    vqa / mlm: CMF(E_E^T, E_B^I) -> E_W^T -> T5 decoder D_T (teacher forcing / generate)

One :meth:`UniHemaModel.forward` call takes ``task_batches: dict[task, batch]``; each batch is a dict:

=================  ===========================================================================================
key                meaning
=================  ===========================================================================================
``pixel_values``   ``(B, 3, H, W)`` float, normalised (ImageNet mean/std)                 (all tasks)
``pixel_mask``     ``(B, H, W)`` 1 = real pixel, 0 = padding; default all ones             (optional)
``input_ids``      ``(B, L)`` T5 prompt tokens; ``attention_mask`` ``(B, L)``             (required for vqa/mlm,
                   optional for detection/attributes/segmentation: used by TGVR; ignored by classification)
``labels``         detection/attributes: list of ``{"class_labels" (N,) long, "boxes" (N, 4) normalised cxcywh,
                   optional "attributes" (N, A) long}``; vqa/mlm: ``(B, T)`` target ids, pads = -100
``masks``          segmentation: ``(B, h, w)`` in {0, 1} (any size; logits are resized to it)
``class_labels``   classification: ``(B,)`` long
``text_only``      vqa/mlm: True = T5 on the prompt alone (stage-2 text pre-training; no image needed)
=================  ===========================================================================================

Losses are returned raw per task in ``loss_dict["<task>/<name>"]`` and combined as
``loss = sum_task task_weight * sum_name loss_weight[name] * loss``; ``loss_dict["<task>/loss"]`` holds each
task's weighted total.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel, T5ForConditionalGeneration
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import ModelOutput

from .backbone import UniHemaBackbone
from .configuration_unihema import TASKS, UniHemaConfig
from .deformable import DeformableEncoder, FlatFeatures, flatten_levels
from .dino_decoder import DinoDecoder, DinoOutput
from .hema_former import CrossModalFusion, QueryGuidedMaskFormer, SingleCellFeatureExtractor, TextGuidedVisualRefinement
from .losses import detection_losses, segmentation_losses, weighted_sum
from .matcher import HungarianMatcher
from .weight_init import apply_init_tag, torch_default_init
from .postprocess import post_process_classification, post_process_detection, post_process_segmentation

@dataclass
class UniHemaOutput(ModelOutput):
    """``loss`` (scalar, None without labels), ``loss_dict`` (str -> scalar tensor), ``task_outputs``
    (task -> dict of tensors, see :meth:`UniHemaModel.forward`)."""

    loss: Tensor | None = None
    loss_dict: dict[str, Tensor] | None = None
    task_outputs: dict[str, dict[str, Any]] | None = None


@dataclass
class VisionState:
    flat: FlatFeatures
    sources: list[Tensor]
    memory: Tensor | None


class UniHemaPreTrainedModel(PreTrainedModel):
    config: UniHemaConfig
    config_class = UniHemaConfig
    base_model_prefix = "unihema"
    main_input_name = "pixel_values"
    input_modalities = ("image", "text")
    _no_split_modules = ["DeformableDetrEncoderLayer", "DeformableDetrDecoderLayer", "T5Block"]

    @torch.no_grad()
    def _init_weights(self, module):
        # own Linear / Conv layers: PyTorch default init (see weight_init.py); T5 and ResNet are sub-models with
        # their own _init_weights (transformers dispatches to them)
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            torch_default_init(module)
        else:
            super()._init_weights(module)
        apply_init_tag(module)  # DINO / Deformable-DETR specific inits, see weight_init.py
        if isinstance(module, DeformableEncoder):
            init.normal_(module.level_embed)
        elif isinstance(module, SingleCellFeatureExtractor):
            init.normal_(module.query, std=self.config.init_std)


class UniHemaModel(UniHemaPreTrainedModel):
    def __init__(self, config: UniHemaConfig):
        super().__init__(config)
        self.backbone = UniHemaBackbone(config)
        self.encoder = DeformableEncoder(config)
        self.decoder = DinoDecoder(config)
        self.text_model = T5ForConditionalGeneration(config.text_config)
        self.cmf = CrossModalFusion(config)
        self.tgvr = TextGuidedVisualRefinement(config)
        self.scfe = SingleCellFeatureExtractor(config)
        self.qgmf = QueryGuidedMaskFormer(config)
        self.matcher = HungarianMatcher(
            config.matcher_class_cost, config.matcher_bbox_cost, config.matcher_giou_cost,
            config.focal_alpha, config.focal_gamma,
        )
        self.post_init()

    # ------------------------------------------------------------------ encoders
    def encode_image(self, pixel_values: Tensor, pixel_mask: Tensor | None = None, run_encoder: bool = True) -> VisionState:
        if pixel_mask is None:
            pixel_mask = torch.ones(pixel_values.shape[0], *pixel_values.shape[2:], dtype=torch.bool, device=pixel_values.device)
        feats = self.backbone(pixel_values, pixel_mask.bool())
        flat = flatten_levels(feats.sources, feats.masks, feats.pos, self.encoder.level_embed)
        memory = self.encoder(flat) if run_encoder else None
        return VisionState(flat=flat, sources=feats.sources, memory=memory)

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """T5 encoder states ``E_E^T (B, L, d_t)`` and the mask."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        states = self.text_model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return states, attention_mask

    def _refiner(self, batch: dict):
        if batch.get("input_ids") is None:
            return None
        text, mask = self.encode_text(batch["input_ids"], batch.get("attention_mask"))
        return lambda queries: self.tgvr(queries, text, mask)

    # ------------------------------------------------------------------ task heads
    def _detect(self, batch: dict, vision: VisionState, with_targets: bool) -> DinoOutput:
        targets = batch.get("labels") if with_targets else None
        return self.decoder(vision.memory, vision.flat, targets=targets, query_refiner=self._refiner(batch))

    def _forward_detection(self, batch: dict):
        vision = self.encode_image(batch["pixel_values"], batch.get("pixel_mask"))
        dino = self._detect(batch, vision, with_targets=True)
        out = {
            "logits": dino.logits,
            "pred_boxes": dino.pred_boxes,
            "morph_logits": dino.morph_logits,
            "decoder_output": dino,
        }
        losses = detection_losses(dino, batch["labels"], self.matcher, self.config) if "labels" in batch else None
        return out, losses

    def _level0_map(self, vision: VisionState) -> Tensor:
        h, w = vision.flat.spatial_shapes_list[0]
        return vision.memory[:, : h * w].transpose(1, 2).reshape(vision.memory.shape[0], -1, h, w)

    def _forward_segmentation(self, batch: dict):
        vision = self.encode_image(batch["pixel_values"], batch.get("pixel_mask"))
        dino = self._detect(batch, vision, with_targets=False)
        size = batch["masks"].shape[-2:] if "masks" in batch else batch["pixel_values"].shape[-2:]
        mask_logits, all_logits = self.qgmf(vision.sources[0], self._level0_map(vision), dino.hidden_layers[-1], size)
        out = {"mask_logits": mask_logits, "query_mask_logits": all_logits}
        losses = segmentation_losses(mask_logits, batch["masks"], self.config) if "masks" in batch else None
        return out, losses

    def _forward_classification(self, batch: dict):
        vision = self.encode_image(batch["pixel_values"], batch.get("pixel_mask"))
        feature, logits = self.scfe(vision.memory, vision.flat.mask)
        out = {"logits": logits, "features": feature}
        losses = None
        if "class_labels" in batch:
            losses = {"loss_cls": nn.functional.cross_entropy(logits, batch["class_labels"].long())}
        return out, losses

    def fuse_text_image(self, pixel_values, input_ids, attention_mask=None, pixel_mask=None) -> tuple[Tensor, Tensor]:
        """CMF: fused states ``E_W^T (B, n, d_t)`` and their attention mask for the T5 decoder."""
        use_encoder = self.config.cmf_visual_source == "encoder"
        vision = self.encode_image(pixel_values, pixel_mask, run_encoder=use_encoder)
        visual = vision.memory if use_encoder else vision.flat.src
        text, text_mask = self.encode_text(input_ids, attention_mask)
        return self.cmf(text, text_mask, visual, vision.flat.mask)

    def _forward_text(self, batch: dict):
        if batch.get("text_only"):  # stage-2 text pre-training: T5 on the prompt alone, no image
            t5 = self.text_model(
                input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"), labels=batch.get("labels")
            )
            losses = {"loss_text": t5.loss} if batch.get("labels") is not None else None
            return {"logits": t5.logits}, losses
        fused, fused_mask = self.fuse_text_image(
            batch["pixel_values"], batch["input_ids"], batch.get("attention_mask"), batch.get("pixel_mask")
        )
        t5 = self.text_model(
            encoder_outputs=BaseModelOutput(last_hidden_state=fused),
            attention_mask=fused_mask,
            labels=batch.get("labels"),
            decoder_input_ids=batch.get("decoder_input_ids"),
        )
        out = {"logits": t5.logits, "fused_states": fused}
        losses = {"loss_text": t5.loss} if batch.get("labels") is not None else None
        return out, losses

    # ------------------------------------------------------------------ forward
    def forward(self, task_batches: dict[str, dict] | None = None, **kwargs) -> UniHemaOutput:
        """Run every task batch in ``task_batches`` (keys from ``TASKS``) and combine the losses.

        Per-task outputs: detection/attributes ``logits (B, Q, C)``, ``pred_boxes (B, Q, 4)`` normalised cxcywh,
        ``morph_logits (B, Q, sum n_a)``, ``decoder_output`` (:class:`DinoOutput`); segmentation
        ``mask_logits (B, 1, h, w)``; classification ``logits (B, C)``, ``features (B, d)``;
        vqa/mlm ``logits (B, T, vocab)``, ``fused_states``.
        """
        task_batches = dict(task_batches or {}, **kwargs)
        handlers = {
            "detection": self._forward_detection,
            "attributes": self._forward_detection,
            "segmentation": self._forward_segmentation,
            "classification": self._forward_classification,
            "vqa": self._forward_text,
            "mlm": self._forward_text,
            "caption": self._forward_text,  # image -> morphology caption (wbcatt_caption), same path as VQA
        }
        task_outputs, loss_dict, total = {}, {}, None
        for task, batch in task_batches.items():
            if task not in handlers:
                raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
            out, losses = handlers[task](batch)
            task_outputs[task] = out
            if losses:
                task_loss = weighted_sum(losses, self.config.loss_weights)
                for name, value in losses.items():
                    loss_dict[f"{task}/{name}"] = value.detach()
                loss_dict[f"{task}/loss"] = task_loss.detach()
                term = task_loss * self.config.task_loss_weights.get(task, 1.0)
                total = term if total is None else total + term
        return UniHemaOutput(loss=total, loss_dict=loss_dict, task_outputs=task_outputs)

    # ------------------------------------------------------------------ inference helpers
    @torch.no_grad()
    def generate(self, pixel_values, input_ids, attention_mask=None, pixel_mask=None, **generate_kwargs) -> Tensor:
        """Answer / complete text conditioned on the image: T5 ``generate`` with ``encoder_outputs`` = CMF states.

        With ``generate_from_fused=False`` (released-code behaviour) the image is ignored and T5 generates from the
        prompt alone. Returns token ids ``(B, T)``; decode with the T5 tokenizer.
        """
        kwargs = {"num_beams": self.config.num_beams, "max_new_tokens": self.config.max_new_tokens}
        kwargs.update(generate_kwargs)
        if not self.config.generate_from_fused:
            mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
            return self.text_model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
        fused, fused_mask = self.fuse_text_image(pixel_values, input_ids, attention_mask, pixel_mask)
        return self.text_model.generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=fused), attention_mask=fused_mask, **kwargs
        )

    # ------------------------------------------------------------------ default prompts
    def set_default_prompts(self, tokenizer) -> dict:
        """Tokenise each visual task's default prompt (``text.build_prompt(task, "")``, the prompt training uses for
        rows without one) and store it in ``config.default_prompt_ids``, so ``predict_*`` without a prompt runs TGVR
        exactly as in training. ``unihema-train`` calls this; it is saved with the config."""
        from .text import build_prompt, tokenize_prompts

        stored = {}
        for task in ("detection", "attributes", "segmentation"):
            enc = tokenize_prompts(tokenizer, [build_prompt(task, "", self.config)], self.config)
            stored[task] = {"input_ids": enc["input_ids"][0].tolist(), "attention_mask": enc["attention_mask"][0].tolist()}
        self.config.default_prompt_ids = stored
        return stored

    def _prompt_or_default(self, task: str, batch_size: int, input_ids, attention_mask):
        if input_ids is not None:
            return input_ids, attention_mask
        stored = (self.config.default_prompt_ids or {}).get(task)
        if stored is None:
            raise ValueError(
                f"predict ({task}) needs a prompt: pass input_ids, or store the task's default prompt with "
                "model.set_default_prompts(tokenizer) (unihema-train does this); without one TGVR would be skipped"
            )
        device = self.device
        ids = torch.tensor(stored["input_ids"], dtype=torch.long, device=device)[None].expand(batch_size, -1)
        mask = torch.tensor(stored["attention_mask"], dtype=torch.long, device=device)[None].expand(batch_size, -1)
        return ids, mask

    @torch.no_grad()
    def predict_detection(self, pixel_values, input_ids=None, attention_mask=None, pixel_mask=None, target_sizes=None,
                          task: str = "detection"):
        """Boxes (``xyxy``; absolute when ``target_sizes`` (B, 2) = (h, w) is given), labels, scores, attributes.

        Without ``input_ids`` the task's default prompt (``config.default_prompt_ids``) is used, as in training."""
        input_ids, attention_mask = self._prompt_or_default(task, pixel_values.shape[0], input_ids, attention_mask)
        out = self(**{task: {"pixel_values": pixel_values, "pixel_mask": pixel_mask, "input_ids": input_ids,
                             "attention_mask": attention_mask}}).task_outputs[task]
        return post_process_detection(
            out["logits"], out["pred_boxes"], out["morph_logits"], self.config.morph_num_values,
            self.config.num_select, self.config.score_threshold, target_sizes,
        )

    @torch.no_grad()
    def predict_segmentation(self, pixel_values, input_ids=None, attention_mask=None, pixel_mask=None,
                             target_sizes=None, threshold: float = 0.5):
        """Binary masks; without ``input_ids`` the default segmentation prompt is used (as in training)."""
        input_ids, attention_mask = self._prompt_or_default("segmentation", pixel_values.shape[0], input_ids,
                                                            attention_mask)
        out = self(segmentation={"pixel_values": pixel_values, "pixel_mask": pixel_mask, "input_ids": input_ids,
                                 "attention_mask": attention_mask}).task_outputs["segmentation"]
        return post_process_segmentation(out["mask_logits"], target_sizes, threshold)

    @torch.no_grad()
    def predict_classification(self, pixel_values, pixel_mask=None):
        out = self(classification={"pixel_values": pixel_values, "pixel_mask": pixel_mask})
        return post_process_classification(out.task_outputs["classification"]["logits"])


__all__ = ["UniHemaModel", "UniHemaPreTrainedModel", "UniHemaOutput"]

# make AutoConfig / AutoModel resolve model_type "unihema" (saved checkpoints load with the Auto classes)
from transformers import AutoConfig as _AutoConfig, AutoModel as _AutoModel  # noqa: E402

_AutoConfig.register("unihema", UniHemaConfig, exist_ok=True)
_AutoModel.register(UniHemaConfig, UniHemaModel, exist_ok=True)
