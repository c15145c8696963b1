"""Text helpers with an offline tokenizer, Auto-class loading, and local-only pretrained weight loading."""
from __future__ import annotations

import torch
from transformers import AutoModel, ByT5Tokenizer, ResNetBackbone, T5ForConditionalGeneration

from unihema_model import (
    UniHemaConfig,
    UniHemaModel,
    build_prompt,
    detection_prompt,
    generate_text,
    load_pretrained_parts,
    text_task_batch,
)


def test_prompts_follow_the_paper_prefixes():
    cfg = UniHemaConfig.tiny()
    assert build_prompt("vqa", "What is the nucleus shape?", cfg) == "Q: What is the nucleus shape?"
    assert build_prompt("vqa", "Q: already prefixed", cfg) == "Q: already prefixed"
    assert build_prompt("mlm", "The cell has <extra_id_0> chromatin.", cfg).startswith("mask: The cell")
    assert detection_prompt(["leukemia", "leukemia", "sickle_cell"], cfg) == (
        "This image is for the detection of leukemia, sickle cell cells."
    )
    released = UniHemaConfig.released_code()
    assert build_prompt("vqa", "What?", released) == "What?"


def test_text_batch_trains_and_generates_strings():
    torch.manual_seed(0)
    cfg = UniHemaConfig.tiny()
    tok = ByT5Tokenizer()  # needs no files; vocab 384 = tiny T5 vocab
    model = UniHemaModel(cfg)
    images = torch.randn(2, 3, 32, 32)
    batch = text_task_batch(tok, images, "vqa", ["shape?", "shape?"], ["round", "oval"], cfg)
    assert (batch["labels"] == -100).any()  # "oval"/"round" differ in length: pads ignored
    out = model(vqa=batch)
    assert torch.isfinite(out.loss)
    model.eval()
    texts = generate_text(model, tok, images, "vqa", ["shape?", "shape?"], max_new_tokens=4)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_auto_model_loads_saved_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = UniHemaModel(UniHemaConfig.tiny())
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, UniHemaModel)


def test_load_pretrained_parts_from_local_directories(tmp_path):
    torch.manual_seed(0)
    cfg = UniHemaConfig.tiny()
    resnet = ResNetBackbone(cfg.backbone_config)
    with torch.no_grad():
        for module in resnet.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_var.uniform_(0.5, 2.0)
    t5 = T5ForConditionalGeneration(cfg.text_config)
    resnet.save_pretrained(tmp_path / "resnet")
    t5.save_pretrained(tmp_path / "t5")
    model = UniHemaModel(cfg)
    report = load_pretrained_parts(model, resnet_path=tmp_path / "resnet", t5_path=tmp_path / "t5")
    assert report["backbone"]["loaded"] > 0 and report["text_model"]["loaded"] > 0
    torch.testing.assert_close(model.text_model.shared.weight, t5.shared.weight)
    conv = "embedder.embedder.convolution.weight"
    torch.testing.assert_close(model.backbone.body.state_dict()[conv], resnet.state_dict()[conv])
    # BatchNorm statistics land in the frozen batch norm buffers
    key = "embedder.embedder.normalization.running_var"
    torch.testing.assert_close(model.backbone.body.state_dict()[key], resnet.state_dict()[key])
    # a missing local checkpoint is reported, never downloaded
    missing = load_pretrained_parts(model, t5_path=tmp_path / "does-not-exist")
    assert "error" in missing["text_model"]
