"""Post-processing of model outputs into user-facing predictions.

Detection follows DINO's ``PostProcess``: the top ``num_select`` (query, class) pairs over ``sigmoid(logits)`` of
all queries and classes, then an optional ``score_threshold`` floor. Boxes are returned as ``xyxy``; in absolute
pixels when ``target_sizes`` ``(B, 2)`` = ``(height, width)`` is given, else normalised. Use
:func:`to_coco_detections` for COCO ``xywh`` result dicts (pycocotools ``loadRes`` format).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .box_ops import box_cxcywh_to_xyxy


@torch.no_grad()
def post_process_detection(
    logits: Tensor,
    boxes: Tensor,
    morph_logits: Tensor | None,
    morph_num_values: list[int],
    num_select: int = 300,
    score_threshold: float = 0.0,
    target_sizes: Tensor | list | None = None,
) -> list[dict[str, Tensor]]:
    """Returns per image ``{"scores" (K,), "labels" (K,), "boxes" (K, 4) xyxy, "attributes" (K, A),
    "attribute_scores" (K, A)}`` sorted by score."""
    batch, num_queries, num_classes = logits.shape
    prob = logits.sigmoid().flatten(1)
    k = min(num_select, prob.shape[1])
    scores, index = prob.topk(k, dim=1)
    query = torch.div(index, num_classes, rounding_mode="floor")
    labels = index % num_classes
    xyxy = box_cxcywh_to_xyxy(boxes)
    xyxy = torch.gather(xyxy, 1, query[..., None].expand(-1, -1, 4))
    if target_sizes is not None:
        sizes = torch.as_tensor(target_sizes, dtype=xyxy.dtype, device=xyxy.device)
        h, w = sizes.unbind(-1)
        xyxy = xyxy * torch.stack([w, h, w, h], -1)[:, None]
    results = []
    for b in range(batch):
        keep = scores[b] > score_threshold
        res = {"scores": scores[b][keep], "labels": labels[b][keep], "boxes": xyxy[b][keep]}
        if morph_logits is not None:
            q = query[b][keep]
            values, confs, start = [], [], 0
            for n in morph_num_values:
                p = morph_logits[b, q, start : start + n].softmax(-1)
                start += n
                conf, val = p.max(-1)
                values.append(val)
                confs.append(conf)
            res["attributes"] = torch.stack(values, -1) if values else q.new_zeros((len(q), 0))
            res["attribute_scores"] = torch.stack(confs, -1) if confs else q.new_zeros((len(q), 0)).float()
        results.append(res)
    return results


def to_coco_detections(results: list[dict[str, Tensor]], image_ids: list[int], label_to_category_id=None) -> list[dict]:
    """Absolute ``xyxy`` results -> COCO result dicts ``{image_id, category_id, bbox [x, y, w, h], score}``."""
    out = []
    for image_id, res in zip(image_ids, results):
        for box, label, score in zip(res["boxes"].tolist(), res["labels"].tolist(), res["scores"].tolist()):
            x0, y0, x1, y1 = box
            cat = label_to_category_id[label] if label_to_category_id is not None else int(label)
            out.append({"image_id": image_id, "category_id": cat, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": score})
    return out


@torch.no_grad()
def post_process_segmentation(mask_logits: Tensor, target_sizes=None, threshold: float = 0.5) -> list[Tensor]:
    """``(B, 1, H, W)`` logits -> per image bool mask ``(h, w)`` (resized bilinearly to ``target_sizes``)."""
    masks = []
    for b in range(mask_logits.shape[0]):
        logit = mask_logits[b : b + 1]
        if target_sizes is not None:
            size = tuple(int(s) for s in target_sizes[b])
            logit = torch.nn.functional.interpolate(logit, size=size, mode="bilinear", align_corners=False)
        masks.append(logit[0, 0].sigmoid() > threshold)
    return masks


@torch.no_grad()
def post_process_classification(logits: Tensor) -> dict[str, Tensor]:
    probs = logits.softmax(-1)
    scores, labels = probs.max(-1)
    return {"probs": probs, "labels": labels, "scores": scores}
