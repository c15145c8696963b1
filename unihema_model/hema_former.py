"""Hema-Former (paper section 3.2.2): the four modules that bridge text and image.

Shapes: ``d`` = ``config.d_model`` (image side), ``d_t`` = T5 ``d_model`` (text side).

* :class:`CrossModalFusion` (CMF, eqs. 1-2): learnable queries ``Q1`` (``cmf_num_queries x d``) cross-attend to
  projected text embeddings ``P(E_E^T)`` then to projected visual features ``P(E_B^I)`` (residual + LayerNorm
  after each); the result is projected to ``d_t`` and fed to the T5 decoder as ``encoder_hidden_states``.
  Switches: ``cmf_order`` (code: image first), ``cmf_use_ffn`` (code: FFN block), ``cmf_num_layers``,
  ``cmf_text_residual`` (code: adds the T5 encoder states to the output; needs ``cmf_num_queries`` = text length).
* :class:`TextGuidedVisualRefinement` (TGVR, eq. 3): the top-K decoder content queries ``k`` attend to projected
  text tokens; ``P([k || attn])`` (``tgvr_fusion='concat'``) or the code's gate ``(1-a) k + a attn`` with
  the per-channel ``a = sigmoid(MLP([k || attn]))`` (``'gate'``).
* :class:`SingleCellFeatureExtractor` (SCFE): a learned query concatenated with the (mask-aware) mean of the
  encoder embeddings, projected to the image-level feature ``E_Z`` (``B x d``), then an MLP classifier.
  Text-independent by construction.
* :class:`QueryGuidedMaskFormer` (QGMF, eqs. 4-5): backbone feature ``F_1`` (finest projected level) and encoder
  embedding of the same level are summed then projected (``qgmf_fusion='sum_then_project'``; code: each branch
  projected then summed) into ``G_proj`` (``B x d x H/8 x W/8``); decoder outputs ``E_D^I`` go through an MLP;
  ``einsum('bqc,bchw->bqhw')`` gives per-query mask logits; query ``qgmf_mask_query_index`` (0) is the binary
  mask. An optional small learnable upsampler (:class:`MaskUpsampler`) refines it; logits are
  finally resized bilinearly to the requested output size (the GT mask size in training).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .dino_decoder import MLP


def _key_padding(mask: Tensor | None) -> Tensor | None:
    """(B, S) True = real token -> torch key_padding_mask (True = ignore)."""
    return None if mask is None else ~mask.bool()


class CMFBlock(nn.Module):
    def __init__(self, d: int, heads: int, order: str, use_ffn: bool):
        super().__init__()
        self.order = order
        self.text_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.text_norm = nn.LayerNorm(d)
        self.image_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.image_norm = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d)) if use_ffn else None
        self.ffn_norm = nn.LayerNorm(d) if use_ffn else None

    def _text(self, q, text, text_mask):
        return self.text_norm(q + self.text_attn(q, text, text, key_padding_mask=_key_padding(text_mask))[0])

    def _image(self, q, vis, vis_mask):
        return self.image_norm(q + self.image_attn(q, vis, vis, key_padding_mask=_key_padding(vis_mask))[0])

    def forward(self, q, text, text_mask, vis, vis_mask):
        if self.order == "text_first":
            q = self._image(self._text(q, text, text_mask), vis, vis_mask)
        else:
            q = self._text(self._image(q, vis, vis_mask), text, text_mask)
        if self.ffn is not None:
            q = self.ffn_norm(q + self.ffn(q))
        return q


class CrossModalFusion(nn.Module):
    def __init__(self, config):
        super().__init__()
        d, dt = config.d_model, config.text_config.d_model
        self.config = config
        self.queries = nn.Embedding(config.cmf_num_queries, d)
        self.text_proj = nn.Linear(dt, d)
        self.visual_proj = nn.Linear(d, d)
        self.blocks = nn.ModuleList(
            CMFBlock(d, config.cmf_num_heads, config.cmf_order, config.cmf_use_ffn) for _ in range(config.cmf_num_layers)
        )
        self.out_proj = nn.Linear(d, dt)

    def forward(self, text_states: Tensor, text_mask: Tensor, visual: Tensor, visual_mask: Tensor):
        """Returns ``(E_W^T (B, n_q, d_t), attention mask (B, n_q))`` for the T5 decoder."""
        b = text_states.shape[0]
        text = self.text_proj(text_states)
        vis = self.visual_proj(visual)
        q = self.queries.weight[None].expand(b, -1, -1)
        for block in self.blocks:
            q = block(q, text, text_mask, vis, visual_mask)
        fused = self.out_proj(q)
        mask = torch.ones(fused.shape[:2], dtype=torch.long, device=fused.device)
        if self.config.cmf_text_residual:
            if text_states.shape[1] != fused.shape[1]:
                raise ValueError(
                    "cmf_text_residual adds the T5 encoder states to the CMF output, so the prompt must be padded "
                    f"to cmf_num_queries={fused.shape[1]} tokens (got {text_states.shape[1]})"
                )
            fused = fused + text_states
            mask = text_mask.long()
        return fused, mask


class TextGuidedVisualRefinement(nn.Module):
    def __init__(self, config):
        super().__init__()
        d, dt = config.d_model, config.text_config.d_model
        self.config = config
        self.text_proj = nn.Linear(dt, d)
        self.cross_attn = nn.MultiheadAttention(d, config.tgvr_num_heads, batch_first=True)
        if config.tgvr_fusion == "concat":
            self.fuse = nn.Linear(2 * d, d)
        else:  # released code: per-channel gate MLP(2d -> d -> d)
            self.fuse = MLP(2 * d, d, d, 2)

    def forward(self, queries: Tensor, text_states: Tensor, text_mask: Tensor | None) -> Tensor:
        text = self.text_proj(text_states)
        kpm = _key_padding(text_mask) if self.config.tgvr_use_text_mask else None
        attended = self.cross_attn(queries, text, text, key_padding_mask=kpm)[0]
        joint = torch.cat([queries, attended], -1)
        if self.config.tgvr_fusion == "concat":
            return self.fuse(joint)
        alpha = torch.sigmoid(self.fuse(joint))
        return (1 - alpha) * queries + alpha * attended


class SingleCellFeatureExtractor(nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config.d_model
        self.query = nn.Parameter(torch.zeros(1, d))
        self.proj = nn.Linear(2 * d, d)
        layers, in_dim = [], d
        for h in config.scfe_classifier_hidden_dims:
            layers += [nn.Linear(in_dim, h), nn.LeakyReLU(), nn.Dropout(config.scfe_dropout)]
            in_dim = h
        layers.append(nn.Linear(in_dim, config.num_cls_classes))
        self.classifier = nn.Sequential(*layers)

    def forward(self, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """memory ``(B, S, d)``, mask ``(B, S)`` True = real -> ``(feature E_Z (B, d), logits (B, C))``."""
        w = mask.to(memory.dtype)[..., None]
        mean = (memory * w).sum(1) / w.sum(1).clamp(min=1.0)
        feature = self.proj(torch.cat([self.query.expand(memory.shape[0], -1), mean], -1))
        return feature, self.classifier(feature)


class MaskUpsampler(nn.Module):
    """Small learnable upsampler: ``[G_proj || mask logit]`` -> conv -> 2x(upsample x2 + conv) -> 1 channel,
    added to the bilinearly upsampled coarse logit (so it starts as plain upscaling)."""

    def __init__(self, d: int, hidden: int):
        super().__init__()
        groups = 8 if hidden % 8 == 0 else 1
        self.stem = nn.Sequential(nn.Conv2d(d + 1, hidden, 3, padding=1), nn.GroupNorm(groups, hidden), nn.ReLU())
        self.up1 = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1), nn.GroupNorm(groups, hidden), nn.ReLU())
        self.up2 = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(hidden, 1, 3, padding=1)

    def forward(self, features: Tensor, coarse: Tensor) -> Tensor:
        x = self.stem(torch.cat([features, coarse], 1))
        x = self.up1(nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        x = self.up2(nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        base = nn.functional.interpolate(coarse, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return base + self.head(x)


class QueryGuidedMaskFormer(nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config.d_model
        self.config = config
        if config.qgmf_fusion == "sum_then_project":
            self.proj = nn.Conv2d(d, d, 1)
        else:
            self.backbone_proj = nn.Conv2d(d, d, 1)
            self.encoder_proj = nn.Linear(d, d)
        self.query_norm = nn.LayerNorm(d)
        self.mask_embed = MLP(d, d, d, 3)
        self.upsampler = MaskUpsampler(d, config.upsampler_hidden_dim) if config.use_upsampler else None

    def forward(self, backbone_feature: Tensor, encoder_feature: Tensor, decoder_hidden: Tensor, out_size):
        """backbone_feature / encoder_feature ``(B, d, H, W)`` (finest level), decoder_hidden ``(B, Q, d)``.

        Returns ``(mask logits (B, 1, *out_size), all-query logits (B, Q, H, W))``.
        """
        if self.config.qgmf_fusion == "sum_then_project":
            g = self.proj(backbone_feature + encoder_feature)
        else:
            enc = torch.relu(self.encoder_proj(encoder_feature.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
            g = self.backbone_proj(backbone_feature) + enc
        q = self.mask_embed(self.query_norm(decoder_hidden))
        all_logits = torch.einsum("bqc,bchw->bqhw", q, g)
        idx = self.config.qgmf_mask_query_index
        coarse = all_logits[:, idx : idx + 1]
        if self.upsampler is not None:
            coarse = self.upsampler(g, coarse)
        logits = nn.functional.interpolate(coarse, size=tuple(out_size), mode="bilinear", align_corners=False)
        return logits, all_logits
