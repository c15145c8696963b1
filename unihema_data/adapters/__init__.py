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


def _load() -> None:
    if REGISTRY:
        return
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name in ("base", "families") or info.ispkg:
            continue
        m = importlib.import_module(f"{__name__}.{info.name}")
        cls = m.ADAPTER
        REGISTRY[cls.id] = cls


def adapter_ids() -> list[str]:
    _load()
    return sorted(REGISTRY)


def get_adapter(dataset_id: str) -> Adapter:
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
