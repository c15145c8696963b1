"""DINO image decoder (Zhang et al. 2022) on transformers' ``DeformableDetrDecoderLayer``.

Pieces, in forward order:

1. **Encoder proposals** (``two_stage_type='standard'``): every encoder token proposes an anchor centred on its
   pixel with size ``0.05 * 2**level``; ``enc_output`` (Linear + LayerNorm) transforms the memory, encoder
   class/box heads score and refine the proposals (not shared with the decoder heads, as in DINO-4scale).
2. **Top-K query selection by objectness**: the ``num_queries`` proposals with the highest max class logit give
   the initial anchors (detached). Their undetached boxes/logits are the *intermediate* (``interm``) outputs.
3. **Mixed query selection**: content queries are a learned ``tgt_embed`` (``mixed_query_selection=True``) or
   the detached top-K encoder features. A ``query_refiner`` callback (Hema-Former TGVR) may then refine them.
4. **Contrastive denoising** (training only): DN queries are prepended with their attention mask.
5. **Decoder loop with look-forward-twice**: per layer, anchors -> sine embedding -> ``ref_point_head`` gives the
   query position; the layer runs self-attention (with the DN mask), MSDA cross-attention and FFN. Box refinement
   ``new_ref = sigmoid(bbox_embed(out) + inverse_sigmoid(ref.detach()))``; the box used for the *loss* of layer
   ``l`` is ``sigmoid(bbox_embed(norm(out_l)) + inverse_sigmoid(new_ref_{l-1}))`` with ``new_ref_{l-1}`` kept
   undetached, so layer ``l``'s loss also trains layer ``l-1``'s box prediction; the anchor passed on is detached.
   With ``look_forward_twice=False`` both use the detached anchor (Deformable-DETR "look forward once").
6. Shared (``decoder_heads_shared``) class / box / morphology heads on every layer's normalised output.

All boxes are normalised ``cxcywh``. Query layout along dim 1: ``[DN queries (pad_size) | matching queries]``;
outputs are split so that every returned tensor of the matching part has ``num_queries`` entries.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn
from transformers.models.deformable_detr.modeling_deformable_detr import DeformableDetrDecoderLayer

from .box_ops import inverse_sigmoid
from .deformable import FlatFeatures, deformable_layer_config
from .denoising import DenoisingMeta, prepare_contrastive_denoising
from .position import anchor_sine_embedding
from .weight_init import tag, tag_msda


class MLP(nn.Module):
    """DETR feed-forward network: ``num_layers`` Linear layers with ReLU in between."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims, dims[1:] + [output_dim]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


def gen_encoder_output_proposals(memory: Tensor, flat: FlatFeatures) -> tuple[Tensor, Tensor, Tensor]:
    """DINO/Deformable-DETR proposals. Returns ``(output_memory, proposals_unsigmoid, valid)``;
    invalid proposals (padding or near the border) have zeroed memory and ``valid=False``."""
    batch = memory.shape[0]
    proposals, cur = [], 0
    for lvl, (h, w) in enumerate(flat.spatial_shapes_list):
        mask_l = flat.mask[:, cur : cur + h * w].view(batch, h, w)
        valid_h = mask_l[:, :, 0].sum(1).to(memory.dtype)
        valid_w = mask_l[:, 0, :].sum(1).to(memory.dtype)
        gy, gx = torch.meshgrid(
            torch.linspace(0, h - 1, h, dtype=memory.dtype, device=memory.device),
            torch.linspace(0, w - 1, w, dtype=memory.dtype, device=memory.device),
            indexing="ij",
        )
        grid = torch.stack([gx, gy], -1)[None].expand(batch, -1, -1, -1)
        scale = torch.stack([valid_w, valid_h], -1).view(batch, 1, 1, 2)
        grid = (grid + 0.5) / scale
        wh = torch.full_like(grid, 0.05 * (2.0**lvl))
        proposals.append(torch.cat([grid, wh], -1).view(batch, -1, 4))
        cur += h * w
    proposals = torch.cat(proposals, 1)
    valid = ((proposals > 0.01) & (proposals < 0.99)).all(-1) & flat.mask
    proposals = inverse_sigmoid(proposals.clamp(0.0, 1.0))
    output_memory = memory.masked_fill(~valid[..., None], 0.0)
    return output_memory, proposals, valid


@dataclass
class DinoOutput:
    """Decoder outputs. ``*_layers`` tensors are stacked over decoder layers: ``(L, B, Q, ...)``."""

    logits_layers: Tensor
    boxes_layers: Tensor
    morph_layers: Tensor
    hidden_layers: Tensor  # normalised decoder outputs E_D^I, matching part
    interm_logits: Tensor  # (B, Q, C) encoder proposals after top-K
    interm_boxes: Tensor  # (B, Q, 4)
    init_reference: Tensor  # (B, Q, 4) initial (detached) anchors, sigmoid space
    new_references: list[Tensor] = field(default_factory=list)  # per layer, undetached, all queries incl. DN
    dn_logits_layers: Tensor | None = None
    dn_boxes_layers: Tensor | None = None
    dn_morph_layers: Tensor | None = None
    dn_meta: DenoisingMeta | None = None
    topk_index: Tensor | None = None  # (B, Q) indices of selected encoder tokens

    @property
    def logits(self) -> Tensor:
        return self.logits_layers[-1]

    @property
    def pred_boxes(self) -> Tensor:
        return self.boxes_layers[-1]

    @property
    def morph_logits(self) -> Tensor:
        return self.morph_layers[-1]


class DinoDecoder(nn.Module):
    """Query selection + CDN + deformable decoder with look-forward-twice + detection/morphology heads."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        d, n_cls = config.d_model, config.num_det_classes
        layer_cfg = deformable_layer_config(config)
        self.layers = nn.ModuleList([DeformableDetrDecoderLayer(layer_cfg) for _ in range(config.decoder_layers)])
        for layer in self.layers:
            tag_msda(layer.encoder_attn)
        self.ref_point_head = MLP(2 * d, d, d, 2)
        self.norm = nn.LayerNorm(d)
        # encoder proposal heads (two_stage_{class,bbox}_embed_share=False)
        self.enc_output = nn.Linear(d, d)
        self.enc_output_norm = nn.LayerNorm(d)
        self.enc_class_embed = nn.Linear(d, n_cls)
        self.enc_bbox_embed = MLP(d, d, 4, 3)
        self.tgt_embed = nn.Embedding(config.num_queries, d) if config.mixed_query_selection else None
        self.label_enc = nn.Embedding(n_cls + 1, d)  # DINO dn label book (+1 = "unknown")
        n_heads = 1 if config.decoder_heads_shared else config.decoder_layers
        self.class_embed = nn.ModuleList([nn.Linear(d, n_cls) for _ in range(n_heads)])
        self.bbox_embed = nn.ModuleList([MLP(d, d, 4, 3) for _ in range(n_heads)])
        self.morph_embed = nn.ModuleList([nn.Linear(d, config.morph_total_values) for _ in range(n_heads)])
        # DINO init: focal prior 0.01 on class biases, zero last box layer, N(0, 1) content queries
        for lin in [self.enc_class_embed, *self.class_embed]:
            tag(lin, "prior_bias", 0.01)
        for mlp in [self.enc_bbox_embed, *self.bbox_embed]:
            tag(mlp.layers[-1], "zeros")
        if self.tgt_embed is not None:
            tag(self.tgt_embed, "normal", 1.0)

    def _head(self, heads: nn.ModuleList, layer: int) -> nn.Module:
        return heads[0] if len(heads) == 1 else heads[layer]

    def select_queries(self, memory: Tensor, flat: FlatFeatures):
        output_memory, proposals, valid = gen_encoder_output_proposals(memory, flat)
        output_memory = self.enc_output_norm(self.enc_output(output_memory))
        enc_logits = self.enc_class_embed(output_memory)
        enc_coord_unsig = self.enc_bbox_embed(output_memory) + proposals
        objectness = enc_logits.max(-1).values.masked_fill(~valid, float("-inf"))
        k = min(self.config.num_queries, objectness.shape[1])
        topk = objectness.topk(k, dim=1).indices  # (B, K)
        gather = lambda t: torch.gather(t, 1, topk[..., None].expand(-1, -1, t.shape[-1]))  # noqa: E731
        ref_unsig_undetached = gather(enc_coord_unsig)
        tgt_undetached = gather(output_memory)
        interm_logits = self.enc_class_embed(tgt_undetached)
        interm_boxes = ref_unsig_undetached.sigmoid()
        if self.tgt_embed is not None:
            tgt = self.tgt_embed.weight[None, :k].expand(memory.shape[0], -1, -1)
        else:
            tgt = tgt_undetached.detach()
        return tgt, ref_unsig_undetached.detach(), interm_logits, interm_boxes, topk

    def forward(
        self,
        memory: Tensor,
        flat: FlatFeatures,
        targets: list[dict[str, Tensor]] | None = None,
        query_refiner: Callable[[Tensor], Tensor] | None = None,
    ) -> DinoOutput:
        """Args:
        memory: encoder output ``(B, S, d)``; flat: flattened multi-scale metadata.
        targets: GT per image (training with ``use_dn``): ``class_labels`` and normalised ``boxes``.
        query_refiner: maps content queries ``(B, T, d)`` to refined queries (TGVR), or ``None``.
        """
        cfg = self.config
        tgt, ref_unsig, interm_logits, interm_boxes, topk = self.select_queries(memory, flat)
        num_match = tgt.shape[1]
        dn = None
        if self.training and cfg.use_dn and targets is not None:
            dn = prepare_contrastive_denoising(
                targets, self.label_enc, cfg.num_det_classes, num_match,
                cfg.dn_number, cfg.dn_label_noise_ratio, cfg.dn_box_noise_scale,
            )
        if query_refiner is not None and not cfg.tgvr_include_dn:
            tgt = query_refiner(tgt)
        self_attn_mask = None
        pad = 0
        if dn is not None:
            dn_content, dn_anchor, bool_mask, dn_meta = dn
            pad = dn_meta.pad_size
            tgt = torch.cat([dn_content.to(tgt.dtype), tgt], 1)
            ref_unsig = torch.cat([dn_anchor.to(ref_unsig.dtype), ref_unsig], 1)
            self_attn_mask = torch.zeros(bool_mask.shape, dtype=tgt.dtype, device=tgt.device)
            self_attn_mask = self_attn_mask.masked_fill(bool_mask, torch.finfo(tgt.dtype).min)[None, None]
        if query_refiner is not None and cfg.tgvr_include_dn:
            tgt = query_refiner(tgt)

        valid_ratios = torch.cat([flat.valid_ratios, flat.valid_ratios], -1)  # (B, L, 4)
        reference = ref_unsig.sigmoid()  # detached anchors fed to the layers
        init_reference = reference
        prev_for_loss = reference  # undetached previous prediction (look-forward-twice)
        output = tgt
        logits_l, boxes_l, morph_l, hidden_l, new_refs = [], [], [], [], []
        for lid, layer in enumerate(self.layers):
            ref_input = reference[:, :, None] * valid_ratios[:, None]
            query_pos = self.ref_point_head(anchor_sine_embedding(ref_input[:, :, 0, :], cfg.d_model))
            output = layer(
                output,
                object_queries_position_embeddings=query_pos,
                reference_points=ref_input,
                spatial_shapes=flat.spatial_shapes,
                spatial_shapes_list=flat.spatial_shapes_list,
                level_start_index=flat.level_start_index,
                encoder_hidden_states=memory,
                encoder_attention_mask=flat.mask,
                attention_mask=self_attn_mask,
            )
            bbox_head = self._head(self.bbox_embed, lid)
            hs = self.norm(output)
            new_ref = (bbox_head(output) + inverse_sigmoid(reference)).sigmoid()
            base = prev_for_loss if cfg.look_forward_twice else reference
            boxes = (bbox_head(hs) + inverse_sigmoid(base)).sigmoid()
            logits_l.append(self._head(self.class_embed, lid)(hs))
            morph_l.append(self._head(self.morph_embed, lid)(hs))
            boxes_l.append(boxes)
            hidden_l.append(hs)
            new_refs.append(new_ref)
            prev_for_loss = new_ref
            reference = new_ref.detach()

        stack = lambda xs, part: torch.stack([x[:, part] for x in xs])  # noqa: E731
        match, dn_part = slice(pad, None), slice(0, pad)
        out = DinoOutput(
            logits_layers=stack(logits_l, match),
            boxes_layers=stack(boxes_l, match),
            morph_layers=stack(morph_l, match),
            hidden_layers=stack(hidden_l, match),
            interm_logits=interm_logits,
            interm_boxes=interm_boxes,
            init_reference=init_reference[:, match],
            new_references=new_refs,
            topk_index=topk,
        )
        if dn is not None:
            out.dn_logits_layers = stack(logits_l, dn_part)
            out.dn_boxes_layers = stack(boxes_l, dn_part)
            out.dn_morph_layers = stack(morph_l, dn_part)
            out.dn_meta = dn[3]
        return out
