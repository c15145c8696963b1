"""Manual sources: tell the user exactly what to download, from where, and where to put it.

A manual file ``<name>`` of source ``<id>`` is expected at ``<manual-dir>/<id>/<name>``
(default manual dir: ``ROOT/manual``). Once there it is verified by size and sha256
like a download and then extracted into ``ROOT/raw/<id>/``. Fetch never automates
past a login, request form or licence click-through.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..catalog import DatasetEntry
from .resolvers import ResolvedFile


def manual_folder(manual_dir: Path, sid: str) -> Path:
    return Path(manual_dir) / sid


def instructions(entry: DatasetEntry, missing: Sequence[ResolvedFile], folder: Path) -> str:
    """Human-readable instructions listing every missing file with its expected size and sha256."""
    lines = [f"{entry.id} ({entry.name}) needs a manual download."]
    if entry.manual_instructions:
        lines.append("  How: " + " ".join(entry.manual_instructions.split()))
    lines.append(f"  From: {entry.homepage}")
    reasons = sorted({f.manual_reason for f in missing if f.manual_reason})
    for r in reasons:
        lines.append(f"  Why: {r}")
    lines.append(f"  Put these files in: {folder}/")
    for f in missing:
        size = f"{f.size:,} bytes" if f.size is not None else "size not pinned"
        sha = f"sha256 {f.sha256}" if f.sha256 else "sha256 not pinned (registered on first use)"
        opt = " (optional)" if f.optional else ""
        lines.append(f"    - {f.name}{opt}  [{size}; {sha}]")
    lines.append(f"  Then run again: unihema-data fetch {entry.id}")
    return "\n".join(lines)
