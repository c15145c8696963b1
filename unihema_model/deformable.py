"""Multi-scale deformable transformer encoder built from transformers' Deformable-DETR layers.

The layers (``DeformableDetrEncoderLayer`` / ``DeformableDetrDecoderLayer``) are used as plain ``nn.Module`` s
with an internal ``DeformableDetrConfig`` derived from :class:`UniHemaConfig`; multi-scale deformable attention
runs through transformers' pure-PyTorch ``MultiScaleDeformableAttention`` (no custom kernels).

Flattened tensors: ``(B, S, d_model)`` with ``S = sum_l H_l * W_l`` (highest resolution level first);
``mask_flatten`` is True for real pixels; ``valid_ratios`` is ``(B, L, 2)`` ordered ``(w, h)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import DeformableDetrConfig
from transformers.models.deformable_detr.modeling_deformable_detr import (
    DeformableDetrEncoder,
    DeformableDetrEncoderLayer,
)

from .weight_init import tag_msda


def deformable_layer_config(config) -> DeformableDetrConfig:
    """The ``DeformableDetrConfig`` that the reused transformers layers read their sizes from."""
    cfg = DeformableDetrConfig(
        backbone_config=config.backbone_config,
        d_model=config.d_model,
        encoder_layers=config.encoder_layers,
        decoder_layers=config.decoder_layers,
        encoder_attention_heads=config.encoder_attention_heads,
        decoder_attention_heads=config.decoder_attention_heads,
        encoder_ffn_dim=config.encoder_ffn_dim,
        decoder_ffn_dim=config.decoder_ffn_dim,
        encoder_n_points=config.encoder_n_points,
        decoder_n_points=config.decoder_n_points,
        num_feature_levels=config.num_feature_levels,
        dropout=config.dropout,
        attention_dropout=0.0,
        activation_dropout=0.0,
        activation_function=config.activation_function,
        disable_custom_kernels=True,
    )
    cfg._attn_implementation = "eager"  # additive float self-attention masks (DN mask)
    return cfg


@dataclass
class FlatFeatures:
    """Multi-scale features flattened for the deformable transformer."""

    src: Tensor  # (B, S, d) projected backbone features E_B^I (+ nothing)
    pos: Tensor  # (B, S, d) sine position + level embedding
    mask: Tensor  # (B, S) bool, True = real pixel
    spatial_shapes: Tensor  # (L, 2) long (H, W)
    spatial_shapes_list: list[tuple[int, int]]
    level_start_index: Tensor  # (L,)
    valid_ratios: Tensor  # (B, L, 2) (w, h)


def get_valid_ratios(mask: Tensor) -> Tensor:
    _, h, w = mask.shape
    valid_h = mask[:, :, 0].sum(1).float() / h
    valid_w = mask[:, 0, :].sum(1).float() / w
    return torch.stack([valid_w, valid_h], -1)


def flatten_levels(sources, masks, pos, level_embed: Tensor) -> FlatFeatures:
    src_f, mask_f, pos_f, shapes = [], [], [], []
    for lvl, (s, m, p) in enumerate(zip(sources, masks, pos)):
        shapes.append((s.shape[2], s.shape[3]))
        src_f.append(s.flatten(2).transpose(1, 2))
        mask_f.append(m.flatten(1))
        pos_f.append(p.flatten(2).transpose(1, 2) + level_embed[lvl].view(1, 1, -1))
    device = sources[0].device
    spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=device)
    level_start_index = torch.cat((spatial_shapes.new_zeros((1,)), spatial_shapes.prod(1).cumsum(0)[:-1]))
    return FlatFeatures(
        src=torch.cat(src_f, 1),
        pos=torch.cat(pos_f, 1),
        mask=torch.cat(mask_f, 1),
        spatial_shapes=spatial_shapes,
        spatial_shapes_list=shapes,
        level_start_index=level_start_index,
        valid_ratios=torch.stack([get_valid_ratios(m) for m in masks], 1),
    )


class DeformableEncoder(nn.Module):
    """Stack of ``DeformableDetrEncoderLayer`` (MSDA self-attention + FFN, post-norm) = image encoder E_I."""

    def __init__(self, config):
        super().__init__()
        layer_cfg = deformable_layer_config(config)
        self.layers = nn.ModuleList([DeformableDetrEncoderLayer(layer_cfg) for _ in range(config.encoder_layers)])
        for layer in self.layers:
            tag_msda(layer.self_attn)
        self.level_embed = nn.Parameter(torch.zeros(config.num_feature_levels, config.d_model))

    def forward(self, flat: FlatFeatures) -> Tensor:
        # per-pixel reference points (B, S, L, 2), transformers' DeformableDetrEncoder.get_reference_points
        reference_points = DeformableDetrEncoder.get_reference_points(
            tuple(flat.spatial_shapes_list), flat.valid_ratios, device=flat.src.device
        )
        hidden = flat.src
        for layer in self.layers:
            hidden = layer(
                hidden,
                flat.mask,
                spatial_position_embeddings=flat.pos,
                reference_points=reference_points,
                spatial_shapes=flat.spatial_shapes,
                spatial_shapes_list=flat.spatial_shapes_list,
                level_start_index=flat.level_start_index,
            )
        return hidden
