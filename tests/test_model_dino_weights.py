"""DINO-4scale COCO checkpoint converter on a synthetic state dict with the checkpoint's key names and shapes."""
from __future__ import annotations

import argparse

import pytest
import torch
from transformers import ResNetConfig

from unihema_model import UniHemaConfig, UniHemaModel
from unihema_model.dino_weights import convert_state_dict, load_dino_checkpoint, read_checkpoint, to_dino_state_dict


def _config():
    # the DINO-4scale layout (bottleneck ResNet C3-C5 + 1 extra level, MSDA) at a small width
    return UniHemaConfig.tiny(
        backbone_config=ResNetConfig(embedding_size=8, hidden_sizes=[16, 32, 64, 128], depths=[1, 2, 1, 1],
                                     layer_type="bottleneck", out_features=["stage2", "stage3", "stage4"]),
        num_queries=10, freeze_backbone_stem_and_stage1=True)


def synthetic_dino(cfg) -> dict[str, torch.Tensor]:
    """Key names exactly as IDEA-Research/DINO's checkpoint0011_4scale.pth (torchvision ResNet, MSDeformAttn,
    nn.MultiheadAttention, 91 COCO classes), with shapes from ``cfg``."""
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    sd, d, ffn = {}, cfg.d_model, cfg.encoder_ffn_dim
    bc = cfg.backbone_config

    def bn(prefix, c):
        for name in ("weight", "bias", "running_mean", "running_var"):
            sd[f"{prefix}.{name}"] = r(c).abs() + 0.1 if name == "running_var" else r(c)

    sd["backbone.0.body.conv1.weight"] = r(bc.embedding_size, 3, 7, 7)
    bn("backbone.0.body.bn1", bc.embedding_size)
    in_c = bc.embedding_size
    for k, (width, depth) in enumerate(zip(bc.hidden_sizes, bc.depths), start=1):
        red = width // 4
        for j in range(depth):
            cin = in_c if j == 0 else width
            p = f"backbone.0.body.layer{k}.{j}"
            sd[f"{p}.conv1.weight"] = r(red, cin, 1, 1)
            bn(f"{p}.bn1", red)
            sd[f"{p}.conv2.weight"] = r(red, red, 3, 3)
            bn(f"{p}.bn2", red)
            sd[f"{p}.conv3.weight"] = r(width, red, 1, 1)
            bn(f"{p}.bn3", width)
            if j == 0:
                sd[f"{p}.downsample.0.weight"] = r(width, cin, 1, 1)
                bn(f"{p}.downsample.1", width)
        in_c = width
    for lvl, c in enumerate(bc.hidden_sizes[1:]):
        sd[f"input_proj.{lvl}.0.weight"], sd[f"input_proj.{lvl}.0.bias"] = r(d, c, 1, 1), r(d)
        sd[f"input_proj.{lvl}.1.weight"], sd[f"input_proj.{lvl}.1.bias"] = r(d), r(d)
    sd["input_proj.3.0.weight"], sd["input_proj.3.0.bias"] = r(d, bc.hidden_sizes[-1], 3, 3), r(d)
    sd["input_proj.3.1.weight"], sd["input_proj.3.1.bias"] = r(d), r(d)
    sd["transformer.level_embed"] = r(cfg.num_feature_levels, d)
    hlp = cfg.encoder_attention_heads * cfg.num_feature_levels * cfg.encoder_n_points

    def msda(p):
        sd[f"{p}.sampling_offsets.weight"], sd[f"{p}.sampling_offsets.bias"] = r(hlp * 2, d), r(hlp * 2)
        sd[f"{p}.attention_weights.weight"], sd[f"{p}.attention_weights.bias"] = r(hlp, d), r(hlp)
        for name in ("value_proj", "output_proj"):
            sd[f"{p}.{name}.weight"], sd[f"{p}.{name}.bias"] = r(d, d), r(d)

    def lin(p, o, i):
        sd[f"{p}.weight"], sd[f"{p}.bias"] = r(o, i), r(o)

    def ln(p):
        sd[f"{p}.weight"], sd[f"{p}.bias"] = r(d), r(d)

    for i in range(cfg.encoder_layers):
        p = f"transformer.encoder.layers.{i}"
        msda(f"{p}.self_attn")
        ln(f"{p}.norm1"), lin(f"{p}.linear1", ffn, d), lin(f"{p}.linear2", d, ffn), ln(f"{p}.norm2")
    for i in range(cfg.decoder_layers):
        p = f"transformer.decoder.layers.{i}"
        msda(f"{p}.cross_attn")
        ln(f"{p}.norm1")
        sd[f"{p}.self_attn.in_proj_weight"], sd[f"{p}.self_attn.in_proj_bias"] = r(3 * d, d), r(3 * d)
        lin(f"{p}.self_attn.out_proj", d, d)
        ln(f"{p}.norm2"), lin(f"{p}.linear1", ffn, d), lin(f"{p}.linear2", d, ffn), ln(f"{p}.norm3")
    ln("transformer.decoder.norm")
    lin("transformer.decoder.ref_point_head.layers.0", d, 2 * d)
    lin("transformer.decoder.ref_point_head.layers.1", d, d)
    lin("transformer.enc_output", d, d)
    ln("transformer.enc_output_norm")
    for j, o in enumerate((d, d, 4)):
        lin(f"transformer.enc_out_bbox_embed.layers.{j}", o, d)
    lin("transformer.enc_out_class_embed", 91, d)
    sd["transformer.tgt_embed.weight"] = r(cfg.num_queries, d)
    shared_box = {f"layers.{j}.{n}": (r(o, d) if n == "weight" else r(o)) for j, o in enumerate((d, d, 4))
                  for n in ("weight", "bias")}
    shared_cls = {"weight": r(91, d), "bias": r(91)}
    for i in range(cfg.decoder_layers):
        for k, v in shared_box.items():
            sd[f"bbox_embed.{i}.{k}"] = v
            sd[f"transformer.decoder.bbox_embed.{i}.{k}"] = v
        for k, v in shared_cls.items():
            sd[f"class_embed.{i}.{k}"] = v
            sd[f"transformer.decoder.class_embed.{i}.{k}"] = v
    sd["label_enc.weight"] = r(92, d)
    return sd


def test_dino_key_map_loads_every_visual_tensor_and_round_trips(tmp_path):
    cfg = _config()
    torch.manual_seed(0)
    model = UniHemaModel(cfg)
    dino = synthetic_dino(cfg)
    path = tmp_path / "checkpoint0011_4scale.pth"
    torch.save({"model": dino, "args": argparse.Namespace(lr=1e-4), "epoch": 11}, path)
    assert read_checkpoint(path).keys() == dino.keys()  # weights_only load of the real checkpoint layout
    before_cls = model.decoder.class_embed[0].bias.clone()
    report = load_dino_checkpoint(model, path)
    state = model.state_dict()
    # every backbone / encoder / decoder tensor came from the checkpoint except the class-specific ones
    assert set(report["not_in_checkpoint"]) == {k for k in state if k.startswith("decoder.") and any(
        s in k for s in ("class_embed", "label_enc", "morph_embed"))}
    assert {k.split(".")[0] for k in report["skipped"]} == {"class_embed", "transformer", "label_enc", "bbox_embed"}
    assert all(("class" in k or "label_enc" in k or "bbox_embed" in k) for k in report["skipped"])
    torch.testing.assert_close(model.decoder.class_embed[0].bias, before_cls)  # focal prior kept
    d = cfg.d_model
    w = dino["transformer.decoder.layers.1.self_attn.in_proj_weight"]
    torch.testing.assert_close(state["decoder.layers.1.self_attn.q_proj.weight"], w[:d])
    torch.testing.assert_close(state["decoder.layers.1.self_attn.v_proj.weight"], w[2 * d:])
    torch.testing.assert_close(state["backbone.body.encoder.stages.1.layers.1.layer.2.normalization.running_var"],
                               dino["backbone.0.body.layer2.1.bn3.running_var"])
    torch.testing.assert_close(state["decoder.layers.0.encoder_attn_layer_norm.weight"],
                               dino["transformer.decoder.layers.0.norm1.weight"])
    torch.testing.assert_close(state["decoder.layers.0.self_attn_layer_norm.weight"],
                               dino["transformer.decoder.layers.0.norm2.weight"])
    # round trip: Uni-Hema -> DINO names gives back every transferred checkpoint tensor
    back = to_dino_state_dict(state)
    transferable = {k for k in dino if not k.startswith(("class_embed", "transformer.enc_out_class_embed", "label_enc",
                                                         "transformer.decoder.bbox_embed", "transformer.decoder.class"))
                    and not (k.startswith("bbox_embed.") and not k.startswith("bbox_embed.0."))}
    assert set(back) == transferable
    assert all(torch.equal(back[k], dino[k]) for k in transferable)
    model.eval()
    with torch.no_grad():  # the converted model runs
        out = model(detection={"pixel_values": torch.randn(1, 3, 64, 64), "input_ids": torch.tensor([[5, 1]])})
    assert torch.isfinite(out.task_outputs["detection"]["pred_boxes"]).all()


def test_dino_shape_mismatch_and_unreadable_files_fail_clearly(tmp_path):
    cfg = _config()
    dino = synthetic_dino(cfg)
    dino["transformer.tgt_embed.weight"] = torch.zeros(3, cfg.d_model)
    with pytest.raises(ValueError, match="tgt_embed"):
        convert_state_dict(dino, UniHemaModel(cfg).state_dict())
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pth"):
        read_checkpoint(bad)
