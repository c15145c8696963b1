"""DINO contrastive denoising (CDN) queries and their self-attention mask.

For a batch with at most ``G`` ground-truth boxes per image, ``num_groups = max(1, dn_number // G)`` groups are
built; each group holds ``2G`` queries: ``G`` *positive* queries (GT boxes with small noise, |noise| < lambda) and
``G`` *negative* queries (noise between lambda and 2 lambda, to be classified as "no object"). Labels are flipped to
a random class with probability ``label_noise_ratio / 2``. Images with fewer than ``G`` boxes leave padding slots
(zero content, anchor at the image centre) that receive no loss.

Query layout of the decoder input: ``[dn group 0 | dn group 1 | ... | matching queries (num_queries)]``.
Attention mask (True = blocked, shape ``(T, T)`` with ``T = pad_size + num_queries``):
matching queries cannot see any DN query; a DN group cannot see other DN groups; DN queries see the matching
queries (DINO). Boxes are normalised ``cxcywh``; DN anchors are returned in inverse-sigmoid space.

Deviation from the DINO code, stated: DINO doubles ``dn_number`` and divides only when it is >= 100; here the
number of groups is always ``dn_number // G`` (identical for the released value 100).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .box_ops import box_cxcywh_to_xyxy, box_xyxy_to_cxcywh, inverse_sigmoid


@dataclass
class DenoisingMeta:
    pad_size: int  # total DN queries
    num_groups: int
    single_pad: int  # G = max GT boxes per image
    query_index: list[Tensor]  # per image: indices (into the DN part) of the positive queries
    target_index: list[Tensor]  # per image: indices of the GT box each positive query reconstructs


def build_dn_attention_mask(pad_size: int, num_queries: int, num_groups: int, device=None) -> Tensor:
    """Boolean ``(T, T)`` mask, True = query (row) may NOT attend to key (column)."""
    total = pad_size + num_queries
    mask = torch.zeros(total, total, dtype=torch.bool, device=device)
    mask[pad_size:, :pad_size] = True  # matching queries cannot see DN queries
    group = pad_size // num_groups
    for g in range(num_groups):
        start, end = g * group, (g + 1) * group
        mask[start:end, :start] = True
        mask[start:end, end:pad_size] = True
    return mask


def prepare_contrastive_denoising(
    targets: list[dict[str, Tensor]],
    label_embedding: nn.Embedding,
    num_classes: int,
    num_queries: int,
    dn_number: int,
    label_noise_ratio: float,
    box_noise_scale: float,
) -> tuple[Tensor, Tensor, Tensor, DenoisingMeta] | None:
    """Noised GT queries for one batch.

    Args:
        targets: per image ``{"class_labels": (N,) long, "boxes": (N, 4) normalised cxcywh}``.
        label_embedding: ``Embedding(num_classes + 1, d)`` (DINO ``label_enc``; index ``num_classes`` unused).

    Returns ``(content (B, P, d), anchors_unsigmoid (B, P, 4), attn_mask (P+Q, P+Q) bool, meta)`` or ``None``
    when the batch has no box (nothing to denoise).
    """
    counts = [int(t["class_labels"].numel()) for t in targets]
    single_pad = max(counts) if counts else 0
    if dn_number <= 0 or single_pad == 0:
        return None
    device = label_embedding.weight.device
    num_groups = max(1, dn_number // single_pad)
    pad_size = 2 * single_pad * num_groups
    batch = len(targets)

    labels = torch.full((batch, pad_size), num_classes, dtype=torch.long, device=device)
    boxes = torch.zeros(batch, pad_size, 4, device=device)
    boxes[..., :2] = 0.5
    boxes[..., 2:] = 0.1
    valid = torch.zeros(batch, pad_size, dtype=torch.bool, device=device)
    negative = torch.zeros(batch, pad_size, dtype=torch.bool, device=device)
    query_index, target_index = [], []
    for b, t in enumerate(targets):
        n = counts[b]
        ar = torch.arange(n, device=device)
        pos_idx = []
        for g in range(num_groups):
            pos = g * 2 * single_pad + ar
            neg = pos + single_pad
            for idx, is_neg in ((pos, False), (neg, True)):
                labels[b, idx] = t["class_labels"].to(device)
                boxes[b, idx] = t["boxes"].to(device=device, dtype=boxes.dtype)
                valid[b, idx] = True
                negative[b, idx] = is_neg
            pos_idx.append(pos)
        query_index.append(torch.cat(pos_idx) if pos_idx else ar)
        target_index.append(ar.repeat(num_groups))

    if label_noise_ratio > 0:
        flip = (torch.rand(batch, pad_size, device=device) < label_noise_ratio * 0.5) & valid
        labels = torch.where(flip, torch.randint_like(labels, 0, num_classes), labels)
    if box_noise_scale > 0:
        xyxy = box_cxcywh_to_xyxy(boxes)
        diff = torch.cat([boxes[..., 2:] / 2, boxes[..., 2:] / 2], -1)
        sign = torch.randint(0, 2, boxes.shape, device=device).float() * 2.0 - 1.0
        part = torch.rand(boxes.shape, device=device) + negative[..., None].float()
        noised = xyxy + sign * part * diff * box_noise_scale
        noised = torch.where(valid[..., None], noised.clamp(0.0, 1.0), xyxy)
        boxes = box_xyxy_to_cxcywh(noised)

    content = label_embedding(labels)
    content = content * valid[..., None].to(content.dtype)
    anchors = inverse_sigmoid(boxes)
    mask = build_dn_attention_mask(pad_size, num_queries, num_groups, device=device)
    meta = DenoisingMeta(pad_size, num_groups, single_pad, query_index, target_index)
    return content, anchors, mask, meta
