"""CLI commands ``publish``, ``export`` and ``preview`` (registered in :mod:`unihema_data.cli`).

Exit codes as in the rest of the CLI: 0 success, 1 failure (message names the file and problem),
2 usage error or missing input.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()
err = Console(stderr=True)


def publish_command(
    out: Path = typer.Argument(..., help="converted corpus (the folder given to `convert --out`)"),
    repo_id: str = typer.Option(..., "--repo-id", help="Hub dataset repository, ORG/NAME"),
    private: bool = typer.Option(False, "--private", help="create the repository as private"),
    dry_run: bool = typer.Option(False, "--dry-run", help="stage and verify only; nothing is uploaded"),
    staging: Optional[Path] = typer.Option(None, "--staging", help="staging folder (default OUT/.unihema/publish/ORG--NAME)"),
    include: List[str] = typer.Option([], "--include", help="publish this source although its terms do not clearly "
                                      "allow redistribution: you state that you hold the rights (repeatable)"),
) -> None:
    """Stage OUT for the Hugging Face Hub (license gate, card, Croissant) and upload it."""
    from .corpus import CorpusError
    from .publish import PublishError, default_staging, plan_publication, stage, upload, verify_staged

    try:
        plan = plan_publication(out, repo_id, include)
    except PublishError as e:
        err.print(f"[red]{e}[/red]", soft_wrap=True)
        raise typer.Exit(2)
    t = Table(title=f"publish {out} -> {repo_id}" + (" (dry run)" if dry_run else ""))
    t.add_column("source")
    t.add_column("decision")
    for s in plan.included:
        t.add_row(s, "included (rights stated with --include)" if s in plan.rights_asserted else "included")
    for s, why in plan.excluded.items():
        t.add_row(s, f"excluded: {why}")
    console.print(t)
    folder = staging or default_staging(out, repo_id)
    if not dry_run:
        from .publish import resolve_token

        try:
            resolve_token()  # fail before staging, not after (the token is not kept here)
        except PublishError as e:
            err.print(f"[red]{e}[/red]", soft_wrap=True)
            raise typer.Exit(1)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                  transient=True) as prog:
        task = prog.add_task("stage", total=None)
        try:
            rep = stage(plan, folder, on_progress=lambda m: prog.update(task, description=m))
            # checked before every upload too: nothing that does not load is sent
            rep.loaded = verify_staged(folder, plan, on_progress=lambda m: prog.update(task, description=m))
        except (PublishError, CorpusError) as e:
            err.print(f"[red]{e}[/red]", soft_wrap=True)
            raise typer.Exit(1)
    console.print(f"staged {len(rep.files)} files ({rep.bytes / 2**20:.1f} MiB) in {rep.folder}", markup=False,
                  soft_wrap=True)
    for c, splits in rep.loaded.items():
        console.print(f"  datasets.load_dataset(DIR, {c!r}): " + ", ".join(f"{s} {n}" for s, n in splits.items()),
                      markup=False)
    if dry_run:
        console.print("dry run: nothing uploaded", markup=False)
        return
    try:
        url = upload(folder, plan, private)
    except PublishError as e:
        err.print(f"[red]{e}[/red]", soft_wrap=True)
        raise typer.Exit(1)
    if staging is None:  # the default staging only serves resuming; a finished upload needs it no more
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    console.print(f"uploaded to {url}; load it with datasets.load_dataset({repo_id!r}, 'all')", markup=False,
                  soft_wrap=True)


def export_command(
    out: Path = typer.Argument(..., help="converted corpus"),
    fmt: str = typer.Option(..., "--format", help="coco | yolo | imagefolder"),
    dest: Path = typer.Option(..., "--out", help="export folder (replaced atomically)"),
    source: List[str] = typer.Option([], "--source", help="only this source (repeatable)"),
    split: Optional[str] = typer.Option(None, "--split", help="only this split: train | validation | test"),
) -> None:
    """Export OUT as COCO (detectron2, MMDetection), YOLO (Ultralytics) or class folders (timm)."""
    from .export import FORMATS, ExportError, export

    if fmt not in FORMATS:
        err.print(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        raise typer.Exit(2)
    with Progress(SpinnerColumn(), TextColumn(f"export {fmt}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as prog:
        task = prog.add_task("export", total=None)
        try:
            rep = export(out, fmt, dest, source or None, split,
                         on_progress=lambda n, total: prog.update(task, completed=n, total=total))
        except ExportError as e:
            err.print(f"[red]export failed:[/red] {e}\n{dest} was left unchanged.", soft_wrap=True)
            raise typer.Exit(1)
    t = Table(title=f"{fmt} export in {dest}")
    for col in ("split", "images", "annotations"):
        t.add_column(col)
    for s, n in rep.images.items():
        t.add_row(s, str(n), str(rep.annotations.get(s, 0)))
    console.print(t)
    console.print(f"{rep.files_written} image files written (stored bytes, not re-encoded); "
                  f"{rep.skipped} rows had nothing to export in this format", markup=False)


def preview_command(
    out: Path = typer.Argument(..., help="converted corpus"),
    source: List[str] = typer.Option([], "--source", help="only this source (repeatable)"),
    dest: Optional[Path] = typer.Option(None, "--out", help="PNG to write (default: OUT/previews/<source>.png, "
                                        "the pictures of the dataset card, kept fresh by later conversions)"),
    n: int = typer.Option(8, "--n", min=1, max=64, help="samples per source"),
) -> None:
    """Render a sample grid per source with boxes, masks and labels drawn."""
    from .corpus import CorpusError
    from .preview import refresh_previews, render_grid, save_png

    try:
        if dest is None:
            from .card import write_card

            paths = refresh_previews(out, sources=source or None)
            write_card(out, previews=False)  # the card now shows them
            console.print("wrote " + ", ".join(str(p) for p in paths), markup=False, soft_wrap=True)
            return
        img, cells = render_grid(out, source or None, n=n)
    except CorpusError as e:
        err.print(f"[red]{e}[/red]", soft_wrap=True)
        raise typer.Exit(2)
    if dest.suffix.lower() != ".png":
        err.print(f"--out must be a .png file, got {dest}")
        raise typer.Exit(2)
    save_png(img, dest)
    console.print(f"wrote {dest} ({img.width}x{img.height}, {len(cells)} samples)", markup=False, soft_wrap=True)
