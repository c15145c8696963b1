"""``unihema-data demo``: the whole pipeline on synthetic native copies, no network needed.

Writes ``OUT/raw/<id>/`` with each registered adapter's fake generator (VOC detection, YOLO with
attributes, mask segmentation, class folders, attribute CSVs...), converts them into
``OUT/dataset``, generates the verified text sets (WBCAtt-VQA, WBCAtt captions,
LeukemiaAttri-MLM), validates every row and prints per-source counts. Reruns are no-ops.
"""
from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich import box
from rich.table import Table

from .adapters import adapter_ids, get_adapter
from .convert import ConvertOptions, convert
from .stats import compute_stats
from .textsets.writer import TEXTSETS, generate
from .validate import validate


def run_demo(out: Path, num_proc: int = 2, console: Console | None = None) -> bool:
    console = console or Console()
    out = Path(out)
    raw = out / "raw"
    dataset = out / "dataset"
    ids = adapter_ids()
    t0 = time.perf_counter()
    for sid in ids:
        target = raw / sid
        if not (target / ".fake-complete").exists():
            truth = get_adapter(sid).fake(target, seed=0)
            (target / ".fake-complete").write_text(f"{truth.num_images}\n")
    console.print(f"[bold]1/4[/bold] synthetic native copies of {len(ids)} sources under {raw}")
    reports = convert(ids, raw, dataset, ConvertOptions(num_proc=num_proc, progress=False))
    console.print(f"[bold]2/4[/bold] converted into {dataset} "
                  f"({sum(r.total for r in reports)} images, {sum(r.status == 'up_to_date' for r in reports)} already up to date)")
    texts = [generate(ts, dataset) for ts, spec in TEXTSETS.items() if spec.parent in ids]
    console.print("[bold]3/4[/bold] text sets: " + ", ".join(
        f"{r.textset} {r.total} rows ({sum(r.rejections.values())} rejected by the verifier)" for r in texts))
    ids = ids + [r.textset for r in texts]
    rep = validate(dataset, num_proc=num_proc)
    console.print("[bold]4/4[/bold] validate: ", end="")
    console.print(rep.summary(), markup=False)
    st = compute_stats(dataset).as_dict()
    # ids and numbers never break (80 columns when piped); the task list wraps between tasks
    t = Table(title=f"UniHema demo corpus ({time.perf_counter() - t0:.1f} s)", box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("source", no_wrap=True, min_width=max(len(i) for i in ids))
    t.add_column("tasks", min_width=len("classification"))
    for col in ("train", "val", "test", "objs", "classes"):
        t.add_column(col, justify="right", no_wrap=True)
    for sid in ids:
        imgs = st["images"].get(sid, {})
        t.add_row(sid, " ".join(sorted(st["tasks"].get(sid, {}))),
                  *(str(imgs.get(s, 0)) for s in ("train", "validation", "test")),
                  str(sum(st["objects"].get(sid, {}).values())),
                  # distinct canonical classes: image labels (classification) and object categories
                  str(len(set(st["labels"].get(sid, {})) | set(st["objects"].get(sid, {})))))
    console.print(t)
    console.print(f"Load it with: datasets.load_dataset({str(dataset)!r}, 'all')")
    return rep.ok
