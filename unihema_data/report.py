"""The run report: every native input a conversion did not take as-is.

Four kinds, each entry ``(kind, path, reason)`` with ``path`` relative to the source's located
root (printable, see :func:`unihema_data.formats.disk.show`):

* ``skipped``  - an input left out on purpose (hidden/OS junk, a file that is not an image, a
  FIFO in the tree, a record the source itself marks as unusable);
* ``orphaned`` - an input without its partner (a mask without an image, an image without an
  annotation when the source allows that, a CSV row without an image);
* ``repaired`` - an input read after a documented repair (stray mask values snapped, a BOM
  stripped from a split list, a 1-pixel box widened);
* ``flagged``  - an input converted as-is that a user should know about (names differing only
  in case, a label that contradicts its folder).

Adapters record entries on ``self.report`` while listing (main process) and through
``RawSample.notes`` while parsing (worker processes); ``convert`` counts them in its summary,
lists them with ``--verbose`` and writes them to ``OUT``'s manifest (``sources.<id>.inputs``).
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger("unihema_data.report")

KINDS = ("skipped", "orphaned", "repaired", "flagged")
#: entries kept per kind in the manifest (counts are always complete)
MANIFEST_LIMIT = 1000


@dataclass
class RunReport:
    source: str = ""
    entries: list[tuple[str, str, str]] = field(default_factory=list)
    #: facts about the layout the adapter detected (``{"layout": "released", "variant": "7"}``)
    info: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, path: str, reason: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"run report kind must be one of {KINDS}, got {kind!r}")
        self.entries.append((kind, str(path), str(reason)))
        level = logging.WARNING if kind in ("skipped", "orphaned") else logging.INFO
        log.log(level, "%s: %s %s (%s)", self.source, kind, path, reason)

    def skip(self, path: str, reason: str) -> None:
        self.add("skipped", path, reason)

    def orphan(self, path: str, reason: str) -> None:
        self.add("orphaned", path, reason)

    def repair(self, path: str, reason: str) -> None:
        self.add("repaired", path, reason)

    def flag(self, path: str, reason: str) -> None:
        self.add("flagged", path, reason)

    def extend(self, entries) -> None:
        for kind, path, reason in entries:
            self.add(kind, path, reason)

    def counts(self) -> dict[str, int]:
        c = Counter(k for k, _, _ in self.entries)
        return {k: c[k] for k in KINDS if c[k]}

    def of(self, kind: str) -> list[tuple[str, str]]:
        return [(p, r) for k, p, r in self.entries if k == kind]

    def to_manifest(self) -> dict:
        out: dict = {"counts": self.counts()}
        for kind in KINDS:
            items = self.of(kind)
            if items:
                out[kind] = [{"path": p, "reason": r} for p, r in items[:MANIFEST_LIMIT]]
                if len(items) > MANIFEST_LIMIT:
                    out[f"{kind}_truncated"] = len(items) - MANIFEST_LIMIT
        return out

    def __bool__(self) -> bool:  # an empty report is falsy
        return bool(self.entries)


__all__ = ["KINDS", "RunReport"]
