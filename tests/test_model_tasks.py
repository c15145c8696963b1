"""End-to-end tests of the tiny Uni-Hema model: shapes, finite losses, overfitting, text generation, save/load."""
from __future__ import annotations

import math

import pytest
import torch

from unihema_model import UniHemaConfig, UniHemaModel, post_process_detection, to_coco_detections
from unihema_model.testing import synthetic_task_batches


ALL_TASKS = ("detection", "attributes", "segmentation", "classification", "vqa", "mlm")


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    config = UniHemaConfig.tiny()
    model = UniHemaModel(config)
    from transformers import ByT5Tokenizer

    model.set_default_prompts(ByT5Tokenizer())  # predict_* without a prompt uses these (as training does)
    return config, model


@pytest.mark.parametrize("task", ALL_TASKS)
def test_each_task_shapes_and_finite_loss(tiny, task):
    config, model = tiny
    model.train()
    batches = synthetic_task_batches(config, batch_size=2, tasks=(task,))
    out = model(batches)
    o = out.task_outputs[task]
    B = 2
    if task in ("detection", "attributes"):
        assert o["logits"].shape == (B, config.num_queries, config.num_det_classes)
        assert o["pred_boxes"].shape == (B, config.num_queries, 4)
        assert o["morph_logits"].shape == (B, config.num_queries, sum(config.morph_num_values))
        assert ((o["pred_boxes"] >= 0) & (o["pred_boxes"] <= 1)).all()
        assert f"{task}/loss_giou_interm" in out.loss_dict and f"{task}/loss_bbox_0" in out.loss_dict
        if task == "attributes":
            assert out.loss_dict[f"{task}/loss_morphology"] > 0
        else:
            assert f"{task}/loss_morphology" not in out.loss_dict
    elif task == "segmentation":
        assert o["mask_logits"].shape == (B, 1, 64, 64)
        assert {f"{task}/loss_dice", f"{task}/loss_mask_focal"} <= set(out.loss_dict)
    elif task == "classification":
        assert o["logits"].shape == (B, config.num_cls_classes)
        assert o["features"].shape == (B, config.d_model)
    else:
        labels = batches[task]["labels"]
        assert o["logits"].shape == (B, labels.shape[1], config.text_config.vocab_size)
        assert o["fused_states"].shape == (B, config.cmf_num_queries, config.text_config.d_model)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert all(math.isfinite(float(v)) for v in out.loss_dict.values())
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_all_tasks_in_one_call_sum_weighted_task_losses(tiny):
    config, model = tiny
    config.task_loss_weights["vqa"] = 0.5
    model.eval()  # deterministic (no denoising noise) so the two sums are comparable
    batches = synthetic_task_batches(config, batch_size=2)
    with torch.no_grad():
        out = model(batches)
    expected = sum(config.task_loss_weights[t] * out.loss_dict[f"{t}/loss"] for t in ALL_TASKS)
    assert torch.allclose(out.loss, expected, rtol=1e-5)
    assert set(out.task_outputs) == set(ALL_TASKS)


def test_loss_falls_when_overfitting_two_samples(tiny):
    config, model = tiny
    batches = synthetic_task_batches(config, batch_size=2, seed=1)

    def eval_losses():
        model.eval()
        with torch.no_grad():
            d = model(batches).loss_dict
        return {t: float(d[f"{t}/loss"]) for t in ALL_TASKS}

    before = eval_losses()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(15):
        loss = model(batches).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_losses()
    for task in ALL_TASKS:
        assert after[task] < 0.8 * before[task], (task, before[task], after[task])


def _train_text(model, images, ids, mask, labels, steps=80):
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(steps):
        loss = model(vqa={"pixel_values": images, "input_ids": ids, "attention_mask": mask, "labels": labels}).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def test_generated_text_changes_when_image_changes(tiny):
    config, model = tiny
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    ids = torch.tensor([[5, 6, 7, 1], [5, 6, 7, 1]])  # the same question for both images
    mask = torch.ones_like(ids)
    labels = torch.tensor([[10, 11, 12, 1], [20, 21, 22, 1]])  # different answers
    _train_text(model, images, ids, mask, labels)
    generated = model.generate(images, ids, mask)
    assert not torch.equal(generated[0], generated[1])
    assert generated[0, 1:4].tolist() == [10, 11, 12] and generated[1, 1:4].tolist() == [20, 21, 22]
    # swapping the images swaps the answers: the text is conditioned on the image, not only on the prompt
    swapped = model.generate(images.flip(0), ids, mask)
    assert torch.equal(swapped, generated.flip(0))


def test_released_code_generation_ignores_the_image():
    torch.manual_seed(0)
    config = UniHemaConfig.tiny(generate_from_fused=False)
    model = UniHemaModel(config).eval()
    ids = torch.tensor([[5, 6, 7, 1]])
    a = model.generate(torch.randn(1, 3, 32, 32), ids)
    b = model.generate(torch.randn(1, 3, 32, 32), ids)
    assert torch.equal(a, b)


def test_save_load_round_trip_gives_identical_outputs(tiny, tmp_path):
    config, model = tiny
    model.eval()
    batches = synthetic_task_batches(config, batch_size=1, seed=5)
    with torch.no_grad():
        ref = model(batches)
    model.save_pretrained(tmp_path)
    loaded = UniHemaModel.from_pretrained(tmp_path).eval()
    for field in ("d_model", "num_queries", "num_det_classes", "morph_num_values", "loss_weights", "tgvr_fusion"):
        assert getattr(loaded.config, field) == getattr(model.config, field)
    assert loaded.config.backbone_config.hidden_sizes == config.backbone_config.hidden_sizes
    assert loaded.config.text_config.d_model == config.text_config.d_model
    sd_a, sd_b = model.state_dict(), loaded.state_dict()
    assert sd_a.keys() == sd_b.keys()
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    with torch.no_grad():
        new = loaded(batches)
    # weights are bit-identical; memory-mapped safetensors buffers may change BLAS summation order (~1e-8)
    for task, outputs in ref.task_outputs.items():
        for key, value in outputs.items():
            if torch.is_tensor(value):
                torch.testing.assert_close(new.task_outputs[task][key], value, rtol=0, atol=1e-6)
    torch.testing.assert_close(new.loss, ref.loss, rtol=0, atol=1e-6)


def test_post_processing_outputs(tiny):
    config, model = tiny
    model.eval()
    images = torch.randn(2, 3, 64, 64)
    dets = model.predict_detection(images, target_sizes=[(64, 64), (128, 96)])
    assert len(dets) == 2
    for det, (h, w) in zip(dets, [(64, 64), (128, 96)]):
        k = config.num_select
        assert det["scores"].shape == (k,) and det["labels"].shape == (k,) and det["boxes"].shape == (k, 4)
        assert det["attributes"].shape == (k, len(config.morph_num_values))
        assert (det["scores"][:-1] >= det["scores"][1:]).all()
        assert (det["boxes"][:, 0::2] <= w + 1e-4).all() and (det["boxes"][:, 1::2] <= h + 1e-4).all()
    coco = to_coco_detections(dets, image_ids=[1, 2])
    assert len(coco) == 2 * config.num_select and len(coco[0]["bbox"]) == 4
    masks = model.predict_segmentation(images, target_sizes=[(30, 40), (64, 64)])
    assert masks[0].shape == (30, 40) and masks[0].dtype == torch.bool
    cls = model.predict_classification(torch.randn(3, 3, 32, 32))
    assert cls["probs"].shape == (3, config.num_cls_classes)
    torch.testing.assert_close(cls["probs"].sum(-1), torch.ones(3))


def test_post_process_detection_top_k_over_queries_and_classes():
    logits = torch.full((1, 3, 2), -10.0)
    logits[0, 2, 1] = 5.0  # best: query 2, class 1
    logits[0, 0, 0] = 2.0
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.2], [0.1, 0.1, 0.1, 0.1], [0.25, 0.5, 0.5, 1.0]]])
    morph = torch.tensor([[[0.0, 1.0], [0.0, 0.0], [3.0, -3.0]]])
    res = post_process_detection(logits, boxes, morph, [2], num_select=2, score_threshold=0.5, target_sizes=[(10, 20)])[0]
    assert res["labels"].tolist() == [1, 0]
    torch.testing.assert_close(res["boxes"][0], torch.tensor([0.0, 0.0, 10.0, 10.0]))
    assert res["attributes"][:, 0].tolist() == [0, 1]


def test_padded_images_and_images_without_boxes(tiny):
    config, model = tiny
    model.train()
    pixel_mask = torch.ones(2, 64, 64, dtype=torch.long)
    pixel_mask[1, :, 40:] = 0  # second image padded on the right
    labels = [
        {"class_labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.3]])},
        {"class_labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)},  # no object
    ]
    out = model(detection={"pixel_values": torch.randn(2, 3, 64, 64), "pixel_mask": pixel_mask, "labels": labels})
    assert torch.isfinite(out.loss) and out.loss_dict["detection/loss_bbox_dn"] > 0
    empty = [{"class_labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)}] * 2
    out = model(detection={"pixel_values": torch.randn(2, 3, 64, 64), "labels": empty})
    assert torch.isfinite(out.loss) and out.loss_dict["detection/loss_bbox"] == 0  # only "no object" focal terms
    assert out.loss_dict["detection/loss_ce"] > 0 and not any("_dn" in k for k in out.loss_dict)
    out.loss.backward()
