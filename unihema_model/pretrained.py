"""Load pretrained ResNet-50 / T5 weights into a :class:`UniHemaModel` - only from local files unless asked.

Nothing here is called by the model constructor or by the tests: a fresh model is randomly initialised, and
weights are fetched only when the user calls :func:`load_pretrained_parts`. With ``local_files_only=True`` (the
default) a Hub name resolves only if it is already in the local Hugging Face cache.
"""
from __future__ import annotations

import logging
from pathlib import Path

from transformers import ResNetBackbone, T5ForConditionalGeneration

logger = logging.getLogger(__name__)


def _load_into(target, source_state: dict, what: str) -> dict:
    own = target.state_dict()
    compatible = {k: v for k, v in source_state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(source_state) - set(compatible))
    missing = sorted(set(own) - set(compatible))
    target.load_state_dict(compatible, strict=False)
    logger.info("%s: loaded %d tensors, %d skipped, %d left as initialised", what, len(compatible), len(skipped), len(missing))
    return {"loaded": len(compatible), "skipped": skipped, "missing": missing}


def load_pretrained_parts(
    model,
    resnet_path: str | Path | None = None,
    t5_path: str | Path | None = None,
    use_config_names: bool = False,
    local_files_only: bool = True,
) -> dict[str, dict]:
    """Copy pretrained weights into ``model.backbone.body`` (ResNet) and ``model.text_model`` (T5).

    Args:
        resnet_path / t5_path: local directories (or Hub names) of ``microsoft/resnet-50``-style and
            ``google-t5/t5-base`` / ``google/flan-t5-base``-style checkpoints.
        use_config_names: when a path is ``None``, try ``config.backbone_pretrained_name`` /
            ``config.text_model_name`` (from the local cache only, unless ``local_files_only=False``).
        local_files_only: never touch the network when True.

    Returns a report per part (``loaded`` count, ``skipped`` and ``missing`` keys); parts that could not be
    resolved are reported as ``{"error": ...}`` and left randomly initialised.
    """
    cfg = model.config
    report: dict[str, dict] = {}
    resnet_src = resnet_path or (cfg.backbone_pretrained_name if use_config_names else None)
    if resnet_src is not None:
        try:
            src = ResNetBackbone.from_pretrained(
                str(resnet_src), out_features=list(cfg.backbone_config.out_features), local_files_only=local_files_only
            )
            report["backbone"] = _load_into(model.backbone.body, src.state_dict(), "backbone")
        except OSError as err:
            logger.warning("backbone weights not loaded: %s", err)
            report["backbone"] = {"error": str(err)}
    t5_src = t5_path or (cfg.text_model_name if use_config_names else None)
    if t5_src is not None:
        try:
            src = T5ForConditionalGeneration.from_pretrained(str(t5_src), local_files_only=local_files_only)
        except OSError as err:
            logger.warning("T5 weights not loaded: %s", err)
            report["text_model"] = {"error": str(err)}
        else:
            report["text_model"] = _replace_text_model(model, src)
    return report


def _replace_text_model(model, src) -> dict:
    """Install a pretrained T5 *with its config* (feed-forward type, tied head, special ids, vocabulary size...):
    copying tensors into a differently configured T5 would silently run the wrong architecture. The Hema-Former
    layers (CMF, TGVR) are sized by the text width, so ``d_model`` must match."""
    expected = model.config.text_config.d_model
    if src.config.d_model != expected:
        raise ValueError(f"pretrained T5 has d_model={src.config.d_model}, the model was built for {expected}; "
                         "build the UniHemaConfig with this T5's config (text_config=...)")
    if getattr(src.config, "decoder_start_token_id", None) is None:
        src.config.decoder_start_token_id = src.config.pad_token_id if src.config.pad_token_id is not None else 0
    param = next(model.parameters())
    src = src.to(device=param.device, dtype=param.dtype)
    own_names = set(model.text_model.state_dict())
    src_names = set(src.state_dict())
    src.train(model.training)
    model.text_model = src
    model.config.text_config = src.config
    logger.info("text_model: replaced by the pretrained T5 (%d tensors) and its config", len(src_names))
    return {"loaded": len(src_names), "skipped": [], "missing": sorted(own_names - src_names), "config_copied": True}
