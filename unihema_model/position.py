"""Position embeddings.

* :func:`build_sine_position_embedding` - 2-D sine embedding of feature maps (DETR style, ``normalize=True``,
  temperature 20 as in DINO-4scale), built on transformers' ``DeformableDetrSinePositionEmbedding``.
* :func:`anchor_sine_embedding` - DINO's ``gen_sineembed_for_position`` for 4-d anchors (transformers'
  GroundingDino ``encode_sinusoidal_position_embedding``): ``(B, Q, 4)`` normalised ``cxcywh`` ->
  ``(B, Q, 2 * d_model)`` ordered ``[y, x, w, h]``, temperature 10000.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from transformers.models.deformable_detr.modeling_deformable_detr import DeformableDetrSinePositionEmbedding
from transformers.models.grounding_dino.modeling_grounding_dino import encode_sinusoidal_position_embedding


class SinePositionEmbedding(nn.Module):
    """``(B, H, W)`` valid-pixel mask (True = real pixel) -> ``(B, d_model, H, W)`` embedding."""

    def __init__(self, d_model: int, temperature: int = 20):
        super().__init__()
        self.embed = DeformableDetrSinePositionEmbedding(
            num_position_features=d_model // 2, temperature=temperature, normalize=True
        )

    def forward(self, mask: Tensor, dtype: torch.dtype) -> Tensor:
        b, h, w = mask.shape
        return self.embed((b, 1, h, w), mask.device, dtype, mask=mask)


def anchor_sine_embedding(anchors: Tensor, d_model: int) -> Tensor:
    return encode_sinusoidal_position_embedding(anchors, num_pos_feats=d_model // 2, temperature=10000)
