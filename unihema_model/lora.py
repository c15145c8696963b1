"""HemBLIP-style LoRA on the text model (T5) through ``peft``.

HemBLIP (van Logtestijn & Manescu) found LoRA adaptation of the language side matches or beats full fine-tuning at
a fraction of the cost. With ``model.text_lora`` in a recipe, the T5 weights stay frozen and low-rank adapters on
``target_modules`` (T5 attention ``q``/``v`` by default) train; every non-text module keeps the stage's freezing.
At the end of training the adapters are merged (``merge_and_unload``) so the saved model is a plain
:class:`UniHemaModel` that loads without peft.
"""
from __future__ import annotations


def apply_text_lora(model, spec) -> int:
    """Wrap ``model.text_model`` with LoRA adapters; returns the number of trainable parameters of the model."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                        target_modules=list(spec.target_modules), bias="none")
    model.text_model = get_peft_model(model.text_model, config)
    for name, param in model.text_model.named_parameters():
        param.requires_grad_("lora_" in name)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def merge_text_lora(model):
    """Merge the adapters into the T5 weights (in place) and return the model."""
    text = model.text_model
    if hasattr(text, "merge_and_unload"):
        model.text_model = text.merge_and_unload()
    return model
