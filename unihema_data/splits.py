"""Split policy.

* Official (published) splits are kept; native names are normalized with :func:`normalize_split`.
* Otherwise a deterministic grouped split: the ``group_id`` (patient/slide/smear, or the sample
  itself) is hashed with the seed, so every member of a group lands in the same split and the
  assignment does not depend on processing order or on other samples (streaming-friendly).
* Duplicate groups (exact and near) across every source of an output folder take one split, the
  strongest of their members (published test > validation > train > generated), independent of
  conversion order; see :mod:`unihema_data.integrity`.
"""
from __future__ import annotations

import hashlib

DEFAULT_RATIOS = (0.8, 0.1, 0.1)
DEFAULT_SEED = 0

_ALIASES = {
    "train": "train", "training": "train", "trn": "train",
    "val": "validation", "valid": "validation", "validation": "validation", "dev": "validation",
    "test": "test", "testing": "test", "tst": "test",
}


def normalize_split(native: str) -> str:
    """Map a published split name to ``train``/``validation``/``test``; "" when unknown."""
    return _ALIASES.get(native.strip().lower(), "") if native else ""


def grouped_split(source: str, group: str, seed: int = DEFAULT_SEED, ratios=DEFAULT_RATIOS) -> str:
    """Deterministic split of a group: a stable hash of (seed, source, group) in [0, 1)."""
    h = hashlib.sha256(f"{seed}\x00{source}\x00{group}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    train, val, _ = ratios
    if u < train:
        return "train"
    if u < train + val:
        return "validation"
    return "test"
