"""Special weight initialisations, expressed as tags on leaf modules.

transformers 5 initialises custom-code models module by module and only calls ``_init_weights`` on modules that
own parameters directly, so a parent cannot re-initialise its children. Modules therefore carry an
``_unihema_init`` tag that :meth:`UniHemaPreTrainedModel._init_weights` applies after the generic init, using
``transformers.initialization`` functions (which leave weights loaded by ``from_pretrained`` untouched).

Default for the model's own ``nn.Linear`` / ``nn.Conv2d`` layers (everything outside the nested T5 and ResNet,
which keep their own transformers init): PyTorch's default ``reset_parameters`` init (:func:`torch_default_init`,
kaiming-uniform ``a=sqrt(5)``, bias ``U(+-1/sqrt(fan_in))``), as in the DINO / Deformable-DETR and Uni-Hema
reference code, which never re-initialise their heads, CMF, TGVR, SCFE or QGMF layers. transformers' generic
``N(0, 0.02)`` init would scale the SCFE classifier's logits by ~1e-4 of the input signal (the classifier then only
learns the label prior) and starve the box MLPs.

Tags: ``("prior_bias", p)`` bias = -log((1-p)/p) (focal-loss prior, DINO class heads); ``("zeros",)`` weight and
bias 0 (last layer of box heads, MSDA attention weights); ``("xavier",)`` xavier-uniform weight, zero bias;
``("normal", std)`` weight ~ N(0, std); ``("msda_offsets", heads, levels, points)`` Deformable-DETR sampling grid.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from transformers import initialization as init


def tag(module: nn.Module, *spec) -> nn.Module:
    module._unihema_init = tuple(spec)
    return module


def tag_msda(msda: nn.Module) -> None:
    """Deformable-DETR initialisation of a ``DeformableDetrMultiscaleDeformableAttention``."""
    tag(msda.sampling_offsets, "msda_offsets", msda.n_heads, msda.n_levels, msda.n_points)
    tag(msda.attention_weights, "zeros")
    tag(msda.value_proj, "xavier")
    tag(msda.output_proj, "xavier")


@torch.no_grad()
def torch_default_init(module: nn.Module) -> None:
    """PyTorch's ``nn.Linear`` / ``nn.ConvNd`` ``reset_parameters`` through ``transformers.initialization`` (so
    weights already loaded by ``from_pretrained`` are left alone)."""
    weight, bias = module.weight, getattr(module, "bias", None)
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in = weight.shape[1] * (weight[0][0].numel() if weight.dim() > 2 else 1)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)


@torch.no_grad()
def apply_init_tag(module: nn.Module) -> None:
    spec = getattr(module, "_unihema_init", None)
    if spec is None:
        return
    kind = spec[0]
    weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
    if kind == "prior_bias":
        init.constant_(bias, -math.log((1 - spec[1]) / spec[1]))
    elif kind == "zeros":
        init.constant_(weight, 0.0)
        if bias is not None:
            init.constant_(bias, 0.0)
    elif kind == "xavier":
        init.xavier_uniform_(weight)
        if bias is not None:
            init.constant_(bias, 0.0)
    elif kind == "normal":
        init.normal_(weight, std=spec[1])
    elif kind == "msda_offsets":
        heads, levels, points = spec[1:]
        init.constant_(weight, 0.0)
        thetas = torch.arange(heads, dtype=torch.float32) * (2.0 * math.pi / heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(heads, 1, 1, 2).repeat(1, levels, points, 1)
        for i in range(points):
            grid[:, :, i, :] *= i + 1
        init.copy_(bias, grid.view(-1).to(bias.dtype))
    else:
        raise ValueError(f"unknown init tag {spec!r}")
