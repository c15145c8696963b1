"""Fail early, and say which extra to install, when the model's dependencies are missing.

The data toolkit installs without torch/transformers; ``import unihema_model`` then raises
:class:`ModuleNotFoundError` naming ``pip install 'unihema[model]'`` instead of a bare "No module named
'torch'". The check uses ``importlib.util.find_spec`` (nothing is imported, so start-up stays fast).
"""
from __future__ import annotations

import importlib.util


def require_model_extra() -> None:
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        raise ModuleNotFoundError(
            f"unihema_model needs the 'model' extra: {', '.join(missing)} not installed. Install it with: "
            "pip install torch==2.13.0 'unihema[model]' (torch first for the CPU build; GPU users install "
            "their CUDA build of torch first)",
            name=missing[0],
        )
