"""Unit tests of the DINO pieces (denoising, look-forward-twice, matcher) and the losses."""
from __future__ import annotations

import math

import torch
from torch import nn

from unihema_model import UniHemaConfig, UniHemaModel
from unihema_model.box_ops import (
    box_cxcywh_to_xyxy,
    coco_xywh_to_normalized_cxcywh,
    generalized_box_iou,
    normalized_cxcywh_to_coco_xywh,
)
from unihema_model.denoising import build_dn_attention_mask, prepare_contrastive_denoising
from unihema_model.losses import dice_loss, morphology_loss, sigmoid_focal_loss, weighted_sum
from unihema_model.matcher import HungarianMatcher
from unihema_model.testing import synthetic_task_batches


def test_dn_attention_mask_isolates_groups_and_matching_queries():
    pad, num_queries, groups = 12, 5, 3  # 3 groups of 2 * 2 queries
    mask = build_dn_attention_mask(pad, num_queries, groups)
    assert mask.shape == (pad + num_queries, pad + num_queries)
    # matching queries see every matching query and no DN query
    assert mask[pad:, :pad].all()
    assert not mask[pad:, pad:].any()
    size = pad // groups
    for g in range(groups):
        rows = slice(g * size, (g + 1) * size)
        assert not mask[rows, rows].any()  # a group sees itself (positives and negatives)
        assert not mask[rows, pad:].any()  # and the matching queries
        others = [c for c in range(pad) if not (g * size <= c < (g + 1) * size)]
        assert mask[rows][:, others].all()  # but no other DN group


def test_contrastive_denoising_queries():
    torch.manual_seed(0)
    targets = [
        {"class_labels": torch.tensor([1, 2]), "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.6, 0.3, 0.2]])},
        {"class_labels": torch.tensor([3]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]])},
    ]
    emb = nn.Embedding(6, 8)
    content, anchors, mask, meta = prepare_contrastive_denoising(
        targets, emb, num_classes=5, num_queries=4, dn_number=6, label_noise_ratio=0.0, box_noise_scale=0.4
    )
    assert meta.single_pad == 2 and meta.num_groups == 3 and meta.pad_size == 12
    assert content.shape == (2, 12, 8) and anchors.shape == (2, 12, 4) and mask.shape == (16, 16)
    boxes = anchors.sigmoid()
    for b, t in enumerate(targets):
        gt = box_cxcywh_to_xyxy(t["boxes"])
        half_wh = torch.cat([t["boxes"][:, 2:], t["boxes"][:, 2:]], -1) / 2
        for g in range(meta.num_groups):
            n = len(t["class_labels"])
            pos = box_cxcywh_to_xyxy(boxes[b, g * 4 : g * 4 + n])
            neg = box_cxcywh_to_xyxy(boxes[b, g * 4 + 2 : g * 4 + 2 + n])
            # positive corners move less than lambda * wh/2; negatives between lambda and 2 lambda (unless clamped)
            assert ((pos - gt).abs() <= 0.4 * half_wh + 1e-5).all()
            assert ((neg - gt).abs() <= 0.8 * half_wh + 1e-5).all()
            assert (((neg - gt).abs() >= 0.4 * half_wh - 1e-5) | (neg <= 1e-6) | (neg >= 1 - 1e-6)).all()
        # with label noise off, the content of real slots is the GT label embedding
        torch.testing.assert_close(content[b, meta.query_index[b]], emb(t["class_labels"][meta.target_index[b]]))
    # the padding slot of image 1 (only one GT) carries no content
    assert content[1, 1].abs().sum() == 0


def _tiny_model(**overrides):
    torch.manual_seed(0)
    config = UniHemaConfig.tiny(**overrides)
    return config, UniHemaModel(config)


def test_denoising_is_active_in_training_and_not_in_eval():
    config, model = _tiny_model()
    batches = synthetic_task_batches(config, tasks=("detection",))
    model.train()
    out = model(batches)
    for name in ("loss_ce_dn", "loss_bbox_dn", "loss_giou_dn", "loss_bbox_dn_0"):
        assert out.loss_dict[f"detection/{name}"] > 0
    assert out.task_outputs["detection"]["decoder_output"].dn_meta is not None
    model.eval()
    with torch.no_grad():
        out = model(batches)
    assert not any("_dn" in k for k in out.loss_dict)
    # released-code preset: denoising never runs
    _, released = _tiny_model(use_dn=False)
    released.train()
    assert not any("_dn" in k for k in released(batches).loss_dict)


def test_dn_queries_do_not_change_matching_outputs():
    config, model = _tiny_model()
    model.train()  # dropout is 0, so training mode is deterministic apart from the DN noise
    batch = synthetic_task_batches(config, tasks=("detection",))["detection"]
    vision = model.encode_image(batch["pixel_values"])
    with_dn = model.decoder(vision.memory, vision.flat, targets=batch["labels"])
    without = model.decoder(vision.memory, vision.flat, targets=None)
    assert with_dn.dn_meta is not None and without.dn_meta is None
    torch.testing.assert_close(with_dn.logits_layers, without.logits_layers, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(with_dn.boxes_layers, without.boxes_layers, rtol=1e-5, atol=1e-5)


def _box_head_grads(look_forward_twice: bool):
    config, model = _tiny_model(decoder_heads_shared=False, look_forward_twice=look_forward_twice, use_dn=False)
    model.train()
    batch = synthetic_task_batches(config, tasks=("detection",))["detection"]
    vision = model.encode_image(batch["pixel_values"])
    out = model.decoder(vision.memory, vision.flat)
    layer0_pred = out.new_references[0]
    layer0_pred.retain_grad()
    out.boxes_layers[1].sum().backward()  # a loss on the SECOND layer's boxes only
    head0 = model.decoder.bbox_embed[0]
    grad = sum(p.grad.abs().sum() for p in head0.parameters() if p.grad is not None)
    return layer0_pred.grad, float(grad) if torch.is_tensor(grad) else 0.0


def test_look_forward_twice_gradient_reaches_previous_layer_box_prediction():
    pred_grad, head_grad = _box_head_grads(look_forward_twice=True)
    assert pred_grad is not None and pred_grad.abs().sum() > 0
    assert head_grad > 0
    # look-forward-once (detached reference): layer 0's box head gets nothing from layer 1's loss
    pred_grad, head_grad = _box_head_grads(look_forward_twice=False)
    assert pred_grad is None or pred_grad.abs().sum() == 0
    assert head_grad == 0


def test_hungarian_matcher_recovers_permutation():
    gt = torch.tensor([[0.2, 0.2, 0.1, 0.1], [0.7, 0.7, 0.2, 0.3], [0.5, 0.2, 0.2, 0.1]])
    labels = torch.tensor([0, 2, 1])
    perm = torch.tensor([2, 0, 1])  # query q predicts gt perm[q]
    boxes = torch.cat([gt[perm], torch.tensor([[0.9, 0.9, 0.05, 0.05]])])[None]
    logits = torch.full((1, 4, 3), -5.0)
    logits[0, torch.arange(3), labels[perm]] = 5.0
    (q, j), = HungarianMatcher()(logits, boxes, [{"class_labels": labels, "boxes": gt}])
    assert dict(zip(q.tolist(), j.tolist())) == {0: 2, 1: 0, 2: 1}


def test_focal_and_dice_losses_against_hand_values():
    logits, target = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0])
    p = torch.sigmoid(torch.tensor(2.0))
    expected0 = 0.25 * math.log(2) * 0.5**2
    expected1 = 0.75 * -math.log(1 - p) * p**2
    torch.testing.assert_close(sigmoid_focal_loss(logits, target), torch.tensor([expected0, float(expected1)]))
    big = torch.tensor([[10.0, 10.0, -10.0, -10.0], [-10.0, -10.0, -10.0, -10.0]])
    masks = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert dice_loss(big, masks, per_image=True) < 1e-3  # empty/empty counts as perfect with smoothing
    half = torch.zeros(1, 4)  # p = 0.5 everywhere, target 2 of 4 pixels
    torch.testing.assert_close(dice_loss(half, masks[:1]), torch.tensor(1 - (2 * 1.0 + 1) / (2.0 + 2.0 + 1)))


def test_morphology_loss_ignores_not_annotated():
    config = UniHemaConfig.tiny(morph_attributes=["a", "b"], morph_num_values=[2, 3])
    logits = torch.randn(2, 5)
    ign = config.morph_ignore_index
    attrs = torch.tensor([[1, ign], [ign, 2]])
    expected = (nn.functional.cross_entropy(logits[0:1, :2], torch.tensor([1]), reduction="sum")
                + nn.functional.cross_entropy(logits[1:2, 2:], torch.tensor([2]), reduction="sum")) / 2
    torch.testing.assert_close(morphology_loss(logits, attrs, config, num_boxes=2.0), expected)
    changed = logits.clone()
    changed[1, :2] += 100.0  # logits of a not-annotated entry do not matter
    changed[0, 2:] -= 100.0
    torch.testing.assert_close(morphology_loss(changed, attrs, config, 2.0), expected)
    all_ignored = torch.full((2, 2), ign)
    assert morphology_loss(logits, all_ignored, config, 2.0) == 0
    asl = UniHemaConfig.tiny(morph_attributes=["a", "b"], morph_num_values=[2, 3], morph_loss_type="asl",
                             morph_ignore_index=4)
    attrs_asl = torch.tensor([[1, 4], [4, 2]])
    assert morphology_loss(logits, attrs_asl, asl, 2.0) > 0


def test_weighted_sum_uses_base_names():
    losses = {"loss_bbox": torch.tensor(1.0), "loss_bbox_0": torch.tensor(1.0), "loss_bbox_dn_1": torch.tensor(1.0),
              "loss_ce_interm": torch.tensor(2.0)}
    total = weighted_sum(losses, {"loss_bbox": 5.0, "loss_ce": 1.0})
    torch.testing.assert_close(total, torch.tensor(17.0))


def test_box_conversions_and_giou():
    coco = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    norm = coco_xywh_to_normalized_cxcywh(coco, width=100, height=200)
    torch.testing.assert_close(norm, torch.tensor([[0.25, 0.2, 0.3, 0.2]]))
    torch.testing.assert_close(normalized_cxcywh_to_coco_xywh(norm, 100, 200), coco)
    a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[2.0, 0.0, 3.0, 1.0]])
    torch.testing.assert_close(generalized_box_iou(a, a), torch.tensor([[1.0]]))
    torch.testing.assert_close(generalized_box_iou(a, b), torch.tensor([[-1.0 / 3.0]]))


def test_dino_specific_initialisation_is_applied():
    _, model = _tiny_model()
    prior = -math.log((1 - 0.01) / 0.01)
    torch.testing.assert_close(model.decoder.class_embed[0].bias, torch.full_like(model.decoder.class_embed[0].bias, prior))
    torch.testing.assert_close(model.decoder.enc_class_embed.bias[0], torch.tensor(prior))
    assert model.decoder.bbox_embed[0].layers[-1].weight.abs().sum() == 0
    msda = model.encoder.layers[0].self_attn
    assert msda.attention_weights.weight.abs().sum() == 0
    offsets = msda.sampling_offsets.bias.view(msda.n_heads, msda.n_levels, msda.n_points, 2)
    torch.testing.assert_close(offsets[0, 0, :, 0], torch.arange(1, msda.n_points + 1, dtype=torch.float32))
