"""Box utilities.

Conventions: inside the model boxes are **normalised** ``(cx, cy, w, h)`` in [0, 1] of the un-padded image;
``xyxy`` means ``(x0, y0, x1, y1)``; COCO boxes are ``(x, y, w, h)`` in absolute pixels with (x, y) the top-left
corner (the data boundary, see ``unihema_data.schema``).
"""
from __future__ import annotations

import torch
from torch import Tensor


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def box_xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack(((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0), dim=-1)


def coco_xywh_to_normalized_cxcywh(boxes: Tensor, width: float, height: float) -> Tensor:
    """COCO absolute ``xywh`` -> normalised ``cxcywh`` (clamped to [0, 1])."""
    x, y, w, h = boxes.unbind(-1)
    out = torch.stack(((x + w / 2) / width, (y + h / 2) / height, w / width, h / height), dim=-1)
    return out.clamp(0.0, 1.0)


def normalized_cxcywh_to_coco_xywh(boxes: Tensor, width: float, height: float) -> Tensor:
    """Normalised ``cxcywh`` -> COCO absolute ``xywh``."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack(((cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height), dim=-1)


def box_area(boxes: Tensor) -> Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Pairwise IoU of ``xyxy`` boxes: ``(N, M)`` IoU and union."""
    area1, area2 = box_area(boxes1), box_area(boxes2)
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    return inter / union.clamp(min=1e-7), union


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise generalised IoU (Rezatofighi et al. 2019) of ``xyxy`` boxes, shape ``(N, M)``."""
    iou, union = box_iou(boxes1, boxes2)
    lt = torch.min(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.max(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    area = wh[..., 0] * wh[..., 1]
    return iou - (area - union) / area.clamp(min=1e-7)


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))
