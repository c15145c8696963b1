"""Optional dependencies ("extras") and the error raised when one is missing.

The data toolkit installs without torch, transformers, accelerate and FiftyOne. Code that needs
one of them calls :func:`require` first, so the user reads which extra to install instead of a bare
``ModuleNotFoundError``::

    from unihema_data.extras import require
    require("fiftyone", "fiftyone")            # raises MissingExtraError naming `unihema[fiftyone]`

Extras (``pyproject.toml``): ``model`` (torch, transformers, accelerate, sentencepiece, scipy; install
``torch==2.13.0`` first for the CPU build), ``fiftyone``, ``all`` (both) and ``test``.
"""
from __future__ import annotations

import importlib.util

#: extra -> the modules it provides (checked without importing them)
EXTRAS = {
    "model": ("torch", "transformers", "accelerate", "scipy"),
    "fiftyone": ("fiftyone",),
}


class MissingExtraError(ModuleNotFoundError):
    """A feature needs an optional dependency that is not installed; the message names the extra."""


def missing_modules(*modules: str) -> list[str]:
    """The modules of ``modules`` that cannot be imported (found by ``importlib.util.find_spec``, no import)."""
    out = []
    for m in modules:
        try:
            if importlib.util.find_spec(m) is None:
                out.append(m)
        except (ImportError, ValueError):
            out.append(m)
    return out


def require(extra: str, *modules: str, feature: str = "") -> None:
    """Raise :class:`MissingExtraError` unless every module (default: all of ``extra``'s) is importable."""
    mods = modules or EXTRAS[extra]
    missing = missing_modules(*mods)
    if missing:
        what = feature or f"this feature"
        hint = " (install torch==2.13.0 first for the CPU build)" if extra == "model" else ""
        raise MissingExtraError(
            f"{what} needs the '{extra}' extra: {', '.join(missing)} not installed. "
            f"Install it with: pip install 'unihema[{extra}]'{hint}",
            name=missing[0],
        )
