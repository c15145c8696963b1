"""Losses of all Uni-Hema tasks. Every function returns *unweighted* losses; weights come from
``config.loss_weights`` (keyed by the base name, e.g. ``loss_bbox`` also weights ``loss_bbox_0``,
``loss_bbox_interm``, ``loss_bbox_dn``) and ``config.task_loss_weights``.

Detection (DINO ``SetCriterion``): for the final layer, every auxiliary layer (suffix ``_{i}``) and the encoder
proposals (``_interm``): Hungarian matching, sigmoid focal classification (normalised by the number of GT boxes),
L1 and GIoU on matched boxes, morphology on matched boxes (not for ``_interm``: the encoder has no morphology
head). Denoising (suffix ``_dn`` / ``_dn_{i}``): no matching; positive DN queries reconstruct their GT box,
label and attributes, negative and padding DN queries are "no object" in the focal loss.

Morphology: ``targets["attributes"]`` is ``(N, A)`` long with values ``0..n_a-1`` or ``morph_ignore_index``
("not annotated", ignored). ``ce`` = cross-entropy per attribute averaged over annotated entries; ``asl`` = the
released code's asymmetric loss (gamma- 4, gamma+ 1, clip 0.08) on one-hot values, summed / num_boxes.

Segmentation: sigmoid focal (alpha 0.25, gamma 2, mean over pixels) + soft Dice (smooth 1) either per image
(``seg_dice_per_image=True``) or over the whole batch (released code).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .box_ops import box_cxcywh_to_xyxy, generalized_box_iou
from .matcher import HungarianMatcher


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Element-wise focal loss (Lin et al. 2017), same shape as ``logits``."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


def dice_loss(logits: Tensor, targets: Tensor, per_image: bool = True, smooth: float = 1.0) -> Tensor:
    """Soft Dice loss; ``logits``/``targets`` ``(B, ...)``."""
    prob = logits.sigmoid().flatten(1)
    targets = targets.flatten(1).to(prob.dtype)
    if not per_image:
        prob, targets = prob.reshape(1, -1), targets.reshape(1, -1)
    inter = (prob * targets).sum(1)
    dice = (2 * inter + smooth) / (prob.sum(1) + targets.sum(1) + smooth)
    return (1 - dice).mean()


def morphology_loss(logits: Tensor, attributes: Tensor, config, num_boxes: float) -> Tensor:
    """``logits (M, sum(n_a))`` of matched queries, ``attributes (M, A)``."""
    if logits.numel() == 0:
        return logits.sum() * 0.0
    ignore = config.morph_ignore_index
    total, count, start = logits.sum() * 0.0, 0, 0
    for a, n in enumerate(config.morph_num_values):
        part = logits[:, start : start + n]
        start += n
        tgt = attributes[:, a].long()
        valid = (tgt != ignore) & (tgt >= 0) & (tgt < n)
        if not valid.any():
            continue
        if config.morph_loss_type == "ce":
            total = total + F.cross_entropy(part[valid], tgt[valid], reduction="sum")
            count += int(valid.sum())
        else:
            total = total + asymmetric_loss(part[valid], F.one_hot(tgt[valid], n).to(part.dtype)).sum()
    if config.morph_loss_type == "ce":
        return total / max(count, 1)
    return total / num_boxes


def asymmetric_loss(logits: Tensor, targets: Tensor, gamma_neg=4.0, gamma_pos=1.0, clip=0.08, eps=1e-8) -> Tensor:
    """Asymmetric loss (Ridnik et al. 2021) as used by the released code; element-wise."""
    p = logits.sigmoid()
    p_neg = (p - clip).clamp(min=0) if clip > 0 else p
    loss_pos = targets * torch.log(p.clamp(min=eps)) * (1 - p) ** gamma_pos
    loss_neg = (1 - targets) * torch.log((1 - p_neg).clamp(min=eps)) * p_neg**gamma_neg
    return -(loss_pos + loss_neg)


def _detection_layer_losses(logits, boxes, morph, targets, indices, num_boxes, config, with_morph=True):
    batch_idx = torch.cat([torch.full_like(q, b) for b, (q, _) in enumerate(indices)]).to(logits.device)
    query_idx = torch.cat([q for q, _ in indices]).to(logits.device)
    onehot = torch.zeros_like(logits)
    if query_idx.numel():
        labels = torch.cat([t["class_labels"][j.to(t["class_labels"].device)] for t, (_, j) in zip(targets, indices)])
        onehot[batch_idx, query_idx, labels.to(logits.device)] = 1.0
    loss_ce = sigmoid_focal_loss(logits, onehot, config.focal_alpha, config.focal_gamma).sum() / num_boxes
    src = boxes[batch_idx, query_idx]
    tgt = torch.cat([t["boxes"][j.to(t["boxes"].device)] for t, (_, j) in zip(targets, indices)]).to(src)
    losses = {"loss_ce": loss_ce}
    if src.numel():
        losses["loss_bbox"] = F.l1_loss(src, tgt, reduction="sum") / num_boxes
        giou = torch.diag(generalized_box_iou(box_cxcywh_to_xyxy(src), box_cxcywh_to_xyxy(tgt)))
        losses["loss_giou"] = (1 - giou).sum() / num_boxes
    else:
        losses["loss_bbox"] = boxes.sum() * 0.0
        losses["loss_giou"] = boxes.sum() * 0.0
    if with_morph and morph is not None and all("attributes" in t for t in targets):
        attrs = torch.cat([t["attributes"][j.to(t["attributes"].device)] for t, (_, j) in zip(targets, indices)])
        losses["loss_morphology"] = morphology_loss(morph[batch_idx, query_idx], attrs.to(logits.device), config, num_boxes)
    return losses


def _global_num_boxes(local: int, device) -> float:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        count = torch.tensor([float(local)], device=device)
        dist.all_reduce(count)
        return float(max(count.item() / dist.get_world_size(), 1.0))
    return float(max(local, 1))


def detection_losses(out, targets: list[dict[str, Tensor]], matcher: HungarianMatcher, config) -> dict[str, Tensor]:
    """All DINO losses for one detection batch (``out`` is a :class:`~unihema_model.dino_decoder.DinoOutput`).

    Losses are normalised by the number of GT boxes averaged over data-parallel processes (DETR: all-reduce, then
    divide by the world size), so every process uses the same normaliser and DDP's gradient mean equals the
    single-process gradient of the global batch."""
    num_boxes = _global_num_boxes(sum(int(t["class_labels"].numel()) for t in targets), out.logits_layers.device)
    losses: dict[str, Tensor] = {}
    n_layers = out.logits_layers.shape[0]
    layers = range(n_layers) if config.aux_loss else [n_layers - 1]
    for i in layers:
        suffix = "" if i == n_layers - 1 else f"_{i}"
        logits, boxes, morph = out.logits_layers[i], out.boxes_layers[i], out.morph_layers[i]
        indices = matcher(logits, boxes, targets)
        for k, v in _detection_layer_losses(logits, boxes, morph, targets, indices, num_boxes, config).items():
            losses[k + suffix] = v
    if config.interm_loss:
        indices = matcher(out.interm_logits, out.interm_boxes, targets)
        layer = _detection_layer_losses(
            out.interm_logits, out.interm_boxes, None, targets, indices, num_boxes, config, with_morph=False
        )
        losses.update({k + "_interm": v for k, v in layer.items()})
    if out.dn_meta is not None:
        meta = out.dn_meta
        indices = list(zip(meta.query_index, meta.target_index))
        dn_boxes_count = num_boxes * meta.num_groups
        for i in layers:
            suffix = "_dn" if i == n_layers - 1 else f"_dn_{i}"
            layer = _detection_layer_losses(
                out.dn_logits_layers[i], out.dn_boxes_layers[i], out.dn_morph_layers[i],
                targets, indices, dn_boxes_count, config,
            )
            losses.update({k + suffix: v for k, v in layer.items()})
    return losses


def segmentation_losses(mask_logits: Tensor, masks: Tensor, config) -> dict[str, Tensor]:
    """``mask_logits (B, 1, H, W)`` at the GT resolution, ``masks (B, H, W)`` in {0, 1}."""
    logits = mask_logits[:, 0]
    target = masks.to(logits.dtype)
    focal = sigmoid_focal_loss(logits, target, config.focal_alpha, config.focal_gamma).flatten(1).mean(1).mean()
    return {"loss_dice": dice_loss(logits, target, per_image=config.seg_dice_per_image), "loss_mask_focal": focal}


def weighted_sum(losses: dict[str, Tensor], weights: dict[str, float]) -> Tensor:
    """Sum of losses, each scaled by the weight of its base name (suffixes ``_0``, ``_interm``, ``_dn`` stripped)."""
    total = None
    for name, value in losses.items():
        base = name
        for key in sorted(weights, key=len, reverse=True):
            if name == key or name.startswith(key + "_"):
                base = key
                break
        term = value * weights.get(base, 1.0)
        total = term if total is None else total + term
    return total
