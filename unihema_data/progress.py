"""Progress bars of the CLI (rich): a bar with count, total, rate, elapsed time and ETA.

Convert streams records, so the exact number of rows is known only at the end; the bar's total is
estimated from the image files of the located native layout (:func:`estimate_images`). When the
estimate is short the bar drops its total (no wrong ETA); when it is long the bar simply ends early.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp"})


def progress_bar(console: Console, disable: bool = False) -> Progress:
    """``description  [bar]  n/total  pct  elapsed  ETA`` on ``console`` (stderr in the CLI), removed when
    done. Without a total the bar pulses and shows the count and elapsed time."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TaskProgressColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=console, transient=True, disable=disable)


def estimate_images(sid: str, raw_dir: Path | str) -> Optional[int]:
    """Number of image files among the adapter's input files of ``sid`` under ``raw_dir`` (an upper
    estimate of the rows convert will write), or ``None`` when the layout cannot be located."""
    from .adapters import get_adapter

    try:
        adapter = get_adapter(sid)
        root = adapter.locate(Path(raw_dir))
        n = sum(1 for p in adapter.input_files(root) if p.suffix.lower() in IMAGE_SUFFIXES)
    except Exception:  # noqa: BLE001 - an estimate only; convert itself reports real problems
        return None
    return n or None
