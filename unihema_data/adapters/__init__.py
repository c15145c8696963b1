"""Registry of source adapters, by catalog id.

Adding a source: write ``unihema_data/adapters/<id>.py`` defining an :class:`~.base.Adapter`
subclass and ``ADAPTER = ThatClass`` (modules are discovered automatically; names starting with
``_``, ``base`` and ``families`` are skipped; format-family bases live in :mod:`.families`), add its alias table to ``taxonomy.yaml`` and set
``adapter: implemented`` in ``catalog.yaml``. The generic harness in ``tests/test_adapters.py``
then covers it automatically.
"""
from __future__ import annotations

import importlib
import pkgutil

from .base import Adapter, AdapterError, CorruptInputError, FakeSample, FakeTruth, MissingInputError, RawObject, RawSample

REGISTRY: dict[str, type[Adapter]] = {}


_LOADED = False


def _adapter_modules() -> list[str]:
    """Names of the adapter modules (each is its adapter's id), without importing them."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__)
                  if not (info.name.startswith("_") or info.name in ("base", "families") or info.ispkg))


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    for name in _adapter_modules():
        m = importlib.import_module(f"{__name__}.{name}")
        cls = m.ADAPTER
        REGISTRY[cls.id] = cls
    _LOADED = True


def adapter_ids(load: bool = True) -> list[str]:
    """Ids of the registered adapters. ``load=False``: from the module names alone (every
    adapter's module is named after its id, ``tests/test_adapters.py`` checks it), without
    importing the 49 modules (~0.1-0.3 s)."""
    if not load and not _LOADED:
        return sorted(set(_adapter_modules()) | set(REGISTRY))
    _load()
    return sorted(REGISTRY)


def get_adapter(dataset_id: str) -> Adapter:
    """A new adapter of ``dataset_id``. Its module (``<id>.py``: every adapter's module is named
    after its id, ``tests/test_adapters.py`` checks it) is imported alone when the registry is not
    loaded yet: a conversion does not import the other 48 adapters (~0.4 s)."""
    if dataset_id not in REGISTRY and dataset_id in _adapter_modules():
        cls = importlib.import_module(f"{__name__}.{dataset_id}").ADAPTER
        if cls.id == dataset_id:
            REGISTRY.setdefault(cls.id, cls)
            return REGISTRY[dataset_id]()
    _load()
    try:
        return REGISTRY[dataset_id]()
    except KeyError:
        raise KeyError(
            f"no adapter for {dataset_id!r} yet; implemented: {', '.join(sorted(REGISTRY))}"
        ) from None


__all__ = [
    "Adapter", "AdapterError", "CorruptInputError", "FakeSample", "FakeTruth", "MissingInputError",
    "RawObject", "RawSample", "REGISTRY", "adapter_ids", "get_adapter",
]
