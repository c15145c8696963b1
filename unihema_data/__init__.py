"""UniHema data toolkit: catalog, taxonomy, adapters, conversion, validation and CLI.

The Python API mirrors the command line (``unihema-data``); every name below is imported on first
use, so ``import unihema_data`` stays fast (no ``datasets``/``pyarrow`` import)::

    from unihema_data import convert, validate, stats, load_catalog, fake

    fake("bccd", "work/raw/bccd")                                  # synthetic native copy
    reports = convert(["bccd"], raw_dir="work/raw", out="corpus")  # list[SourceReport]
    report = validate("corpus")                                    # ValidationReport (.ok, .problems)
    counts = stats("corpus")                                       # nested dict, as `stats --json`

See ``unihema_data.api`` for the signatures and conventions.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> (module, attribute); resolved lazily by ``__getattr__``
_LAZY = {
    # the CLI's verbs (unihema_data.api). convert, validate and stats are also submodule names:
    # the submodules are callable and forward to the api functions (see unihema_data.api)
    "convert": ("convert", None),
    "validate": ("validate", None),
    "stats": ("stats", None),
    "fake": ("api", "fake"),
    "generate": ("api", "generate"),
    "fetch_sources": ("api", "fetch_sources"),
    "list_sources": ("api", "list_sources"),
    "info": ("api", "info"),
    # results and options
    "ConvertOptions": ("convert", "ConvertOptions"),
    "SourceReport": ("convert", "SourceReport"),
    "ConversionError": ("convert", "ConversionError"),
    "ValidationReport": ("validate", "ValidationReport"),
    # catalog, taxonomy, adapters, schema
    "load_catalog": ("catalog", "load_catalog"),
    "load_taxonomy": ("taxonomy", "load_taxonomy"),
    "get_adapter": ("adapters", "get_adapter"),
    "adapter_ids": ("adapters", "adapter_ids"),
    "FEATURES": ("schema", "FEATURES"),
    "ARROW_SCHEMA": ("schema", "ARROW_SCHEMA"),
    "SCHEMA_VERSION": ("schema", "SCHEMA_VERSION"),
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    mod = importlib.import_module(f".{module}", __name__)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
