"""Image backbone: transformers ``ResNetBackbone`` (never timm/torchvision) with frozen batch norm, input
projections to ``num_feature_levels`` levels and sine position embeddings.

Levels: the backbone's ``out_features`` (ResNet-50: C3/C4/C5, strides 8/16/32) are projected with 1x1 conv +
GroupNorm(32); extra levels come from 3x3 stride-2 conv + GroupNorm on the last backbone map (DINO-4scale: one
extra level, stride 64). Pixel masks use True = real pixel, False = padding (transformers convention).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import AutoBackbone
from transformers.models.deformable_detr.modeling_deformable_detr import replace_batch_norm

from .position import SinePositionEmbedding
from .weight_init import tag


class FP32GroupNorm(nn.GroupNorm):
    """GroupNorm computed in float32 under autocast (bf16 statistics of small / 1x1 maps overflow the gradient;
    CUDA autocast already keeps group_norm in fp32, CPU autocast does not). Same parameters as ``nn.GroupNorm``."""

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = nn.functional.group_norm(x.float(), self.num_groups, self.weight.float(), self.bias.float(), self.eps)
        return out.to(x.dtype)


def _group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm(32) as in DINO when possible; small widths keep >= 2 channels per group (1x1 maps)."""
    return FP32GroupNorm(math.gcd(32, max(channels // 2, 1)), channels)


@dataclass
class BackboneFeatures:
    """Outputs of :class:`UniHemaBackbone` (lists are per level, highest resolution first)."""

    raw: list[Tensor]  # backbone maps (B, C_l, H_l, W_l) before projection
    sources: list[Tensor]  # projected maps (B, d_model, H_l, W_l) = E_B^I per level
    masks: list[Tensor]  # (B, H_l, W_l) bool, True = real pixel
    pos: list[Tensor]  # (B, d_model, H_l, W_l)


class UniHemaBackbone(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.body = AutoBackbone.from_config(config.backbone_config)
        with torch.no_grad():
            replace_batch_norm(self.body)
        if config.freeze_backbone_stem_and_stage1:
            # DINO: stem and layer1 frozen; transformers names layer1..4 'encoder.stages.0..3'
            for name, p in self.body.named_parameters():
                if not any(f"stages.{i}." in name for i in (1, 2, 3)):
                    p.requires_grad_(False)
        channels = list(self.body.channels)
        d = config.d_model
        n_levels = config.num_feature_levels
        if n_levels < len(channels):
            channels = channels[-n_levels:]
        self.num_backbone_levels = len(channels)
        projs = [nn.Sequential(nn.Conv2d(c, d, kernel_size=1), _group_norm(d)) for c in channels]
        in_c = channels[-1]
        for _ in range(n_levels - len(channels)):
            projs.append(nn.Sequential(nn.Conv2d(in_c, d, kernel_size=3, stride=2, padding=1), _group_norm(d)))
            in_c = d
        for proj in projs:  # DINO: xavier-uniform input projections, zero bias
            tag(proj[0], "xavier")
        self.input_proj = nn.ModuleList(projs)
        self.position = SinePositionEmbedding(d, config.position_embedding_temperature)

    def forward(self, pixel_values: Tensor, pixel_mask: Tensor) -> BackboneFeatures:
        maps = list(self.body(pixel_values).feature_maps)[-self.num_backbone_levels :]
        raw, sources, masks, pos = [], [], [], []
        for level, proj in enumerate(self.input_proj):
            if level < len(maps):
                x = proj(maps[level])
                raw.append(maps[level])
            else:
                x = proj(maps[-1] if level == len(maps) else sources[-1])
            m = nn.functional.interpolate(pixel_mask[:, None].float(), size=x.shape[-2:])[:, 0].bool()
            sources.append(x)
            masks.append(m)
            pos.append(self.position(m, x.dtype))
        return BackboneFeatures(raw=raw, sources=sources, masks=masks, pos=pos)
