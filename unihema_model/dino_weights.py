"""Load the DINO-4scale ResNet-50 COCO checkpoint (IDEA-Research/DINO ``checkpoint0011_4scale.pth``) into
Uni-Hema's backbone, input projections, deformable encoder and DINO decoder - the paper's starting point.

Key map (DINO name -> Uni-Hema name; ``{i}`` layer index, ``{k}`` ResNet stage 1..4, ``{j}`` block):

=================================================  ======================================================
DINO                                                Uni-Hema
=================================================  ======================================================
``backbone.0.body.conv1`` / ``bn1``                 ``backbone.body.embedder.embedder.convolution`` / ``normalization``
``backbone.0.body.layer{k}.{j}.conv{n}`` / ``bn{n}`` ``backbone.body.encoder.stages.{k-1}.layers.{j}.layer.{n-1}.convolution`` / ``normalization``
``backbone.0.body.layer{k}.{j}.downsample.0`` / ``.1`` ``...layers.{j}.shortcut.convolution`` / ``normalization``
``input_proj.{l}.{0,1}``                            ``backbone.input_proj.{l}.{0,1}``
``transformer.level_embed``                         ``encoder.level_embed``
``transformer.encoder.layers.{i}.self_attn.*``      ``encoder.layers.{i}.self_attn.*`` (MSDeformAttn, same layout)
``... .norm1`` / ``linear1`` / ``linear2`` / ``norm2`` ``self_attn_layer_norm`` / ``mlp.fc1`` / ``mlp.fc2`` / ``final_layer_norm``
``transformer.decoder.layers.{i}.cross_attn.*``     ``decoder.layers.{i}.encoder_attn.*``; ``norm1`` -> ``encoder_attn_layer_norm``
``... .self_attn.in_proj_weight`` / ``_bias``      split in three -> ``self_attn.{q,k,v}_proj``; ``out_proj`` -> ``o_proj``
``... .norm2`` / ``linear1`` / ``linear2`` / ``norm3`` ``self_attn_layer_norm`` / ``mlp.fc1`` / ``mlp.fc2`` / ``final_layer_norm``
``transformer.decoder.norm``, ``.ref_point_head``   ``decoder.norm``, ``decoder.ref_point_head``
``transformer.enc_output`` / ``enc_output_norm``    ``decoder.enc_output`` / ``enc_output_norm``
``transformer.enc_out_bbox_embed``                  ``decoder.enc_bbox_embed``
``transformer.tgt_embed``                           ``decoder.tgt_embed``
``bbox_embed.0`` (shared over layers)               ``decoder.bbox_embed.0``
=================================================  ======================================================

Not taken (COCO's 91 classes): ``class_embed.*``, ``transformer.enc_out_class_embed``, ``label_enc``; their
Uni-Hema counterparts keep the focal-prior initialisation. Duplicated aliases (``transformer.decoder.bbox_embed``,
``bbox_embed.{i>0}`` with decoder sharing) are the same tensors. Loading uses ``torch.load(weights_only=True)``
(never unpickles code); a checkpoint that needs more must be re-saved as a plain state dict.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

_RESNET_LEAF = {"conv": "convolution", "bn": "normalization"}
_ENC_LAYER = {"norm1": "self_attn_layer_norm", "linear1": "mlp.fc1", "linear2": "mlp.fc2", "norm2": "final_layer_norm"}
_DEC_LAYER = {"norm1": "encoder_attn_layer_norm", "norm2": "self_attn_layer_norm", "linear1": "mlp.fc1",
              "linear2": "mlp.fc2", "norm3": "final_layer_norm"}
_TOP = {"transformer.level_embed": "encoder.level_embed", "transformer.decoder.norm.": "decoder.norm.",
        "transformer.decoder.ref_point_head.": "decoder.ref_point_head.",
        "transformer.enc_output_norm.": "decoder.enc_output_norm.", "transformer.enc_output.": "decoder.enc_output.",
        "transformer.enc_out_bbox_embed.": "decoder.enc_bbox_embed.", "transformer.tgt_embed.": "decoder.tgt_embed.",
        "bbox_embed.0.": "decoder.bbox_embed.0.", "input_proj.": "backbone.input_proj."}
SKIPPED_PREFIXES = ("class_embed.", "transformer.enc_out_class_embed.", "label_enc.", "transformer.decoder.bbox_embed.",
                    "transformer.decoder.class_embed.")


def map_key(key: str) -> str | None:
    """Uni-Hema name of a DINO key (``None``: not transferred). ``in_proj`` keys map to a ``{qkv}`` placeholder."""
    m = re.fullmatch(r"backbone\.0\.body\.(conv|bn)1\.(.+)", key)
    if m:
        return f"backbone.body.embedder.embedder.{_RESNET_LEAF[m[1]]}.{m[2]}"
    m = re.fullmatch(r"backbone\.0\.body\.layer(\d)\.(\d+)\.(conv|bn)(\d)\.(.+)", key)
    if m:
        return (f"backbone.body.encoder.stages.{int(m[1]) - 1}.layers.{m[2]}.layer.{int(m[4]) - 1}."
                f"{_RESNET_LEAF[m[3]]}.{m[5]}")
    m = re.fullmatch(r"backbone\.0\.body\.layer(\d)\.(\d+)\.downsample\.([01])\.(.+)", key)
    if m:
        leaf = "convolution" if m[3] == "0" else "normalization"
        return f"backbone.body.encoder.stages.{int(m[1]) - 1}.layers.{m[2]}.shortcut.{leaf}.{m[4]}"
    m = re.fullmatch(r"transformer\.encoder\.layers\.(\d+)\.(\w+)\.(.+)", key)
    if m:
        if m[2] == "self_attn":
            return f"encoder.layers.{m[1]}.self_attn.{m[3]}"
        return f"encoder.layers.{m[1]}.{_ENC_LAYER[m[2]]}.{m[3]}" if m[2] in _ENC_LAYER else None
    m = re.fullmatch(r"transformer\.decoder\.layers\.(\d+)\.(\w+)\.(.+)", key)
    if m:
        i, mod, rest = m[1], m[2], m[3]
        if mod == "cross_attn":
            return f"decoder.layers.{i}.encoder_attn.{rest}"
        if mod == "self_attn":
            if rest in ("in_proj_weight", "in_proj_bias"):
                return f"decoder.layers.{i}.self_attn.{{qkv}}_proj.{rest.split('_')[-1]}"
            return f"decoder.layers.{i}.self_attn.o_proj.{rest.split('.', 1)[1]}" if rest.startswith("out_proj.") else None
        return f"decoder.layers.{i}.{_DEC_LAYER[mod]}.{rest}" if mod in _DEC_LAYER else None
    if key.startswith(SKIPPED_PREFIXES) or re.match(r"bbox_embed\.[1-9]", key):
        return None
    for src, dst in _TOP.items():
        if key == src or (src.endswith(".") and key.startswith(src)):
            return dst + key[len(src):] if src.endswith(".") else dst
    return None


def convert_state_dict(dino: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """DINO state dict -> ``(tensors for the Uni-Hema state dict, report)``. Shapes must match the target (the
    DINO-4scale layout: d_model 256, 4 levels, 8 heads, 4 points); a mismatch raises ``ValueError`` naming both keys."""
    out, skipped, mismatched = {}, [], []
    for key, value in dino.items():
        dst = map_key(key)
        if dst is None:
            skipped.append(key)
            continue
        pieces = {dst: value}
        if "{qkv}" in dst:
            q, k, v = value.chunk(3, dim=0)
            pieces = {dst.format(qkv="q"): q, dst.format(qkv="k"): k, dst.format(qkv="v"): v}
        for name, tensor in pieces.items():
            if name not in target:
                skipped.append(key)
            elif tuple(target[name].shape) != tuple(tensor.shape):
                mismatched.append(f"{key} {tuple(tensor.shape)} -> {name} {tuple(target[name].shape)}")
            else:
                out[name] = tensor.to(target[name].dtype)
    if mismatched:
        raise ValueError("DINO checkpoint does not fit the model: " + "; ".join(mismatched[:5]))
    visual = [k for k in target if k.startswith(("backbone.", "encoder.", "decoder."))]
    report = {"loaded": sorted(out), "skipped": sorted(set(skipped)),
              "not_in_checkpoint": sorted(k for k in visual if k not in out)}
    return out, report


def to_dino_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse map (Uni-Hema -> DINO names) for the transferred keys; ``q/k/v`` are concatenated back."""
    out, qkv = {}, {}
    probe = {}
    for key in state:  # build the inverse through map_key on candidate DINO names
        probe.update(_inverse_candidates(key))
    for key, value in state.items():
        m = re.fullmatch(r"decoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)", key)
        if m:
            qkv.setdefault((m[1], m[3]), {})[m[2]] = value
            continue
        if key in probe:
            out[probe[key]] = value
    for (i, kind), parts in qkv.items():
        if set(parts) == {"q", "k", "v"}:
            out[f"transformer.decoder.layers.{i}.self_attn.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def _inverse_candidates(key: str) -> dict[str, str]:
    cands = []
    m = re.fullmatch(r"backbone\.body\.embedder\.embedder\.(convolution|normalization)\.(.+)", key)
    if m:
        cands.append(f"backbone.0.body.{'conv' if m[1] == 'convolution' else 'bn'}1.{m[2]}")
    m = re.fullmatch(r"backbone\.body\.encoder\.stages\.(\d)\.layers\.(\d+)\.layer\.(\d)\.(convolution|normalization)\.(.+)", key)
    if m:
        cands.append(f"backbone.0.body.layer{int(m[1]) + 1}.{m[2]}.{'conv' if m[4] == 'convolution' else 'bn'}"
                     f"{int(m[3]) + 1}.{m[5]}")
    m = re.fullmatch(r"backbone\.body\.encoder\.stages\.(\d)\.layers\.(\d+)\.shortcut\.(convolution|normalization)\.(.+)", key)
    if m:
        cands.append(f"backbone.0.body.layer{int(m[1]) + 1}.{m[2]}.downsample.{0 if m[3] == 'convolution' else 1}.{m[4]}")
    m = re.fullmatch(r"encoder\.layers\.(\d+)\.(.+?)\.(weight|bias)", key)
    if m:
        inv = {v: k for k, v in _ENC_LAYER.items()}
        mod = m[2]
        cands.append(f"transformer.encoder.layers.{m[1]}.{inv.get(mod, mod)}.{m[3]}")
    m = re.fullmatch(r"decoder\.layers\.(\d+)\.(.+?)\.(weight|bias)", key)
    if m:
        inv = {v: k for k, v in _DEC_LAYER.items()}
        mod = m[2].replace("encoder_attn.", "cross_attn.").replace("self_attn.o_proj", "self_attn.out_proj")
        cands.append(f"transformer.decoder.layers.{m[1]}.{inv.get(mod, mod)}.{m[3]}")
    for src, dst in _TOP.items():
        if key == dst or (dst.endswith(".") and key.startswith(dst)):
            cands.append(src + key[len(dst):] if dst.endswith(".") else src)
    return {key: c for c in cands if map_key(c) == key}


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: DINO checkpoint not found")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refused or corrupt file
        raise ValueError(f"{path}: cannot read as a weights-only checkpoint ({type(err).__name__}: {err}); "
                         "re-save it as torch.save(ckpt['model'], 'dino_model.pth')") from None
    state = raw.get("model", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: no state dict (expected a dict with a 'model' entry of tensors)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_dino_checkpoint(model, path: str | Path) -> dict:
    """Copy the DINO checkpoint's visual weights into ``model`` (in place); returns the report."""
    tensors, report = convert_state_dict(read_checkpoint(path), model.state_dict())
    model.load_state_dict(tensors, strict=False)
    return report


def convert_dino_checkpoint(path: str | Path, output: str | Path, preset: str = "paper") -> dict:
    """Build a ``preset`` Uni-Hema model with the taxonomy vocabularies, load DINO into it, ``save_pretrained``."""
    from .configuration_unihema import UniHemaConfig
    from .labels import vocabulary_overrides
    from .modeling_unihema import UniHemaModel

    if preset not in ("paper", "released_code"):
        raise ValueError("preset must be paper or released_code (the DINO-4scale sizes)")
    model = UniHemaModel(getattr(UniHemaConfig, preset)(**vocabulary_overrides()))
    report = load_dino_checkpoint(model, path)
    model.save_pretrained(output)
    return report
