"""Training recipes shipped inside the package (``unihema_model/recipes/*.yaml``).

A recipe is named either by a path to a YAML file or by the name of a packaged recipe
(``tiny`` or ``tiny.yaml``), so ``unihema-train --recipe tiny`` works from any folder, also after
a wheel install. An existing file path always wins over a packaged name. No torch import here.
"""
from __future__ import annotations

from pathlib import Path

RECIPES_DIR = Path(__file__).resolve().with_name("recipes")


def recipe_names() -> list[str]:
    """Names of the packaged recipes (file stems), sorted."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def resolve_recipe(name_or_path: str | Path) -> Path:
    """The recipe file for a path or a packaged recipe name; ``FileNotFoundError`` naming both the
    path tried and the packaged names otherwise."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    s = str(name_or_path)
    if "/" not in s and "\\" not in s:
        packaged = RECIPES_DIR / (s if s.endswith((".yaml", ".yml")) else f"{s}.yaml")
        if packaged.is_file():
            return packaged
    raise FileNotFoundError(
        f"recipe {s!r}: no such file, and not a packaged recipe name (packaged: {', '.join(recipe_names()) or 'none'})"
    )
