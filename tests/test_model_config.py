"""Configuration presets: paper defaults, released-code switches, tiny test config (no full-size model built)."""
from __future__ import annotations

import pytest
import torch

from unihema_model import UniHemaConfig, UniHemaModel


RELEASED_SWITCHES = {
    "use_dn": (True, False),
    "cmf_order": ("text_first", "image_first"),
    "cmf_use_ffn": (False, True),
    "cmf_text_residual": (False, True),
    "tgvr_fusion": ("concat", "gate"),
    "tgvr_use_text_mask": (True, False),
    "tgvr_include_dn": (False, True),
    "qgmf_fusion": ("sum_then_project", "project_then_sum"),
    "generate_from_fused": (True, False),
    "morph_loss_type": ("ce", "asl"),
    "morph_ignore_index": (-100, 4),
    "seg_dice_per_image": (True, False),
    "score_threshold": (0.0, 0.1),
    "vqa_prompt_prefix": ("Q: ", ""),
    "text_model_name": ("google-t5/t5-base", "google/flan-t5-base"),
}


def test_default_equals_paper_and_released_code_flips_every_switch():
    default, paper, released = UniHemaConfig(), UniHemaConfig.paper(), UniHemaConfig.released_code()
    for name, (paper_value, code_value) in RELEASED_SWITCHES.items():
        assert getattr(default, name) == paper_value, name
        assert getattr(paper, name) == paper_value, name
        assert getattr(released, name) == code_value, name


def test_full_size_presets_have_dino_4scale_resnet50_and_t5_base_shapes():
    for cfg in (UniHemaConfig.paper(), UniHemaConfig.released_code()):
        assert cfg.backbone_config.depths == [3, 4, 6, 3] and cfg.backbone_config.layer_type == "bottleneck"
        assert cfg.backbone_config.hidden_sizes == [256, 512, 1024, 2048]
        assert cfg.backbone_config.out_features == ["stage2", "stage3", "stage4"]
        assert (cfg.d_model, cfg.encoder_layers, cfg.decoder_layers, cfg.num_feature_levels) == (256, 6, 6, 4)
        assert (cfg.num_queries, cfg.dn_number, cfg.dn_box_noise_scale, cfg.dn_label_noise_ratio) == (900, 100, 0.4, 0.5)
        assert cfg.position_embedding_temperature == 20 and cfg.encoder_ffn_dim == 2048
        assert (cfg.text_config.d_model, cfg.text_config.num_layers, cfg.text_config.num_heads) == (768, 12, 12)
        assert cfg.num_det_classes == 30 and cfg.num_cls_classes == 45 and cfg.morph_num_values == [2] * 6
        assert cfg.loss_weights["loss_bbox"] == 5.0 and cfg.loss_weights["loss_giou"] == 2.0
    assert UniHemaConfig.released_code().text_config.feed_forward_proj == "gated-gelu"  # flan-t5
    assert UniHemaConfig.released_code().cmf_num_queries == UniHemaConfig.released_code().text_max_length


def test_config_round_trip_and_validation(tmp_path):
    cfg = UniHemaConfig.tiny(cmf_order="image_first", loss_weights={"loss_bbox": 3.0})
    cfg.save_pretrained(tmp_path)
    loaded = UniHemaConfig.from_pretrained(tmp_path)
    assert loaded.cmf_order == "image_first" and loaded.loss_weights["loss_bbox"] == 3.0
    assert loaded.loss_weights["loss_giou"] == 2.0  # defaults merged
    assert loaded.text_config.d_model == 32 and loaded.backbone_config.hidden_sizes == [8, 16, 32, 64]
    with pytest.raises(ValueError):
        UniHemaConfig.tiny(tgvr_fusion="sum")
    with pytest.raises(ValueError):
        UniHemaConfig.tiny(morph_num_values=[2, 2])


def test_released_code_switches_build_and_run_tiny():

    from unihema_model.testing import synthetic_task_batches

    torch.manual_seed(0)
    released = {k: code for k, (_, code) in RELEASED_SWITCHES.items() if k != "text_model_name"}
    cfg = UniHemaConfig.tiny(**released, cmf_num_layers=2)
    model = UniHemaModel(cfg).train()
    # synthetic prompts have 8 tokens = tiny cmf_num_queries, as the released CMF residual requires
    batches = synthetic_task_batches(cfg, tasks=("attributes", "segmentation", "vqa"))
    out = model(batches)
    assert torch.isfinite(out.loss)
    assert "attributes/loss_morphology" in out.loss_dict and not any("_dn" in k for k in out.loss_dict)
    with pytest.raises(ValueError, match="cmf_num_queries"):
        model(vqa={**batches["vqa"], "input_ids": batches["vqa"]["input_ids"][:, :5],
                   "attention_mask": batches["vqa"]["attention_mask"][:, :5]})


@pytest.mark.parametrize(
    "overrides",
    [
        {"tgvr_include_dn": True},
        {"mixed_query_selection": False},
        {"cmf_visual_source": "encoder"},
        {"use_upsampler": False},
        {"decoder_heads_shared": False, "aux_loss": False, "interm_loss": False},
    ],
)
def test_architecture_switches_train_end_to_end(overrides):

    from unihema_model.testing import synthetic_task_batches

    torch.manual_seed(0)
    cfg = UniHemaConfig.tiny(**overrides)
    model = UniHemaModel(cfg).train()
    out = model(synthetic_task_batches(cfg, tasks=("detection", "segmentation", "vqa")))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    if not overrides.get("aux_loss", True):
        assert "detection/loss_ce_0" not in out.loss_dict and "detection/loss_ce_interm" not in out.loss_dict
