"""Hungarian matcher with the focal-loss class cost (Deformable-DETR / DINO).

``C = class_cost * C_cls + bbox_cost * L1(cxcywh) + giou_cost * (-GIoU)`` with
``C_cls = alpha (1-p)^gamma (-log p) - (1-alpha) p^gamma (-log(1-p))`` evaluated at the target class.
Solved per image with ``scipy.optimize.linear_sum_assignment``.
"""
from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from .box_ops import box_cxcywh_to_xyxy, generalized_box_iou


class HungarianMatcher(nn.Module):
    def __init__(self, class_cost=2.0, bbox_cost=5.0, giou_cost=2.0, alpha=0.25, gamma=2.0):
        super().__init__()
        self.class_cost, self.bbox_cost, self.giou_cost = class_cost, bbox_cost, giou_cost
        self.alpha, self.gamma = alpha, gamma

    @torch.no_grad()
    def forward(self, logits: Tensor, boxes: Tensor, targets: list[dict[str, Tensor]]) -> list[tuple[Tensor, Tensor]]:
        """logits ``(B, Q, C)``, boxes ``(B, Q, 4)`` normalised cxcywh; returns per image ``(query_idx, target_idx)``."""
        out = []
        for b, t in enumerate(targets):
            labels, tgt_boxes = t["class_labels"], t["boxes"]
            if labels.numel() == 0:
                empty = torch.empty(0, dtype=torch.long, device=logits.device)
                out.append((empty, empty))
                continue
            prob = logits[b].float().sigmoid()
            neg = (1 - self.alpha) * prob**self.gamma * (-(1 - prob + 1e-8).log())
            pos = self.alpha * (1 - prob) ** self.gamma * (-(prob + 1e-8).log())
            cost_class = pos[:, labels] - neg[:, labels]
            cost_bbox = torch.cdist(boxes[b].float(), tgt_boxes.float(), p=1)
            cost_giou = -generalized_box_iou(box_cxcywh_to_xyxy(boxes[b].float()), box_cxcywh_to_xyxy(tgt_boxes.float()))
            cost = self.bbox_cost * cost_bbox + self.class_cost * cost_class + self.giou_cost * cost_giou
            cost = torch.nan_to_num(cost, nan=1e6, posinf=1e6, neginf=-1e6)
            q, j = linear_sum_assignment(cost.cpu().numpy())
            out.append((torch.as_tensor(q, dtype=torch.long), torch.as_tensor(j, dtype=torch.long)))
        return out
