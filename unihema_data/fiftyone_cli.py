"""CLI commands ``browse``, ``to-fiftyone``, ``from-fiftyone`` and ``undo-curation`` (registered
by :mod:`unihema_data.cli`). FiftyOne is imported only when a command runs."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()
err = Console(stderr=True)

_SOURCE = typer.Option(None, "--source", help="only this data folder (source or text-set id); repeatable")
_SPLIT = typer.Option(None, "--split", help="only this split (train, validation, test, excluded); repeatable")
_MAX = typer.Option(None, "--max-samples", min=1, help="only the first N rows (fixed reading order)")


def _load(out: Path, name: Optional[str], source, split, max_samples, media_dir=None, overwrite=False):
    from .curation import CurationError
    from .fiftyone_io import FiftyOneError, to_fiftyone

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as prog:
        task = prog.add_task(f"load {out} into FiftyOne", total=None)
        try:
            ds, rep = to_fiftyone(out, name, sources=source or None, splits=split or None, max_samples=max_samples,
                                  media_dir=media_dir, overwrite=overwrite,
                                  on_progress=lambda n, total: prog.update(task, completed=n, total=total))
        except (FiftyOneError, CurationError) as e:
            err.print(f"[red]{e}[/red]", soft_wrap=True)
            raise typer.Exit(1)
    console.print(rep.summary(), markup=False, soft_wrap=True)
    return ds, rep


def to_fiftyone_command(
    out: Path = typer.Argument(..., help="converted folder (as written by `unihema-data convert`)"),
    name: Optional[str] = typer.Option(None, "--name", help="FiftyOne dataset name (default: unihema-<folder>-<hash>)"),
    source: Optional[List[str]] = _SOURCE,
    split: Optional[List[str]] = _SPLIT,
    max_samples: Optional[int] = _MAX,
    media_dir: Optional[Path] = typer.Option(None, "--media-dir", help="content-addressed media folder "
                                             "(default: <fiftyone default_dataset_dir>/<name>/media)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete and rebuild the FiftyOne dataset"),
) -> None:
    """Load OUT into a persistent FiftyOne dataset (incremental: an unchanged corpus adds nothing)."""
    _load(out, name, source, split, max_samples, media_dir, overwrite)


def browse_command(
    out: Path = typer.Argument(..., help="converted folder"),
    source: Optional[List[str]] = _SOURCE,
    split: Optional[List[str]] = _SPLIT,
    max_samples: Optional[int] = _MAX,
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="App port (default: a free one)"),
    name: Optional[str] = typer.Option(None, "--name", help="FiftyOne dataset name"),
    open_browser: bool = typer.Option(True, "--open/--no-open", help="open a browser window"),
) -> None:
    """Load OUT into FiftyOne and serve the App on 127.0.0.1 until Ctrl-C."""
    from .fiftyone_io import FiftyOneError, launch_app

    ds, _ = _load(out, name, source, split, max_samples)
    try:
        session = launch_app(ds, port=port, open_browser=open_browser)
    except (FiftyOneError, OSError, RuntimeError) as e:
        err.print(f"[red]cannot start the FiftyOne App: {e}[/red]", soft_wrap=True)
        raise typer.Exit(1)
    p = session.server_port
    console.print(f"FiftyOne App serving {ds.name} at http://127.0.0.1:{p} (Ctrl-C to stop).\n"
                  f"From another machine: ssh -N -L {p}:127.0.0.1:{p} USER@THIS-HOST, then open http://127.0.0.1:{p}\n"
                  f"Write curation back with: unihema-data from-fiftyone {ds.name} --into {out}",
                  markup=False, soft_wrap=True)
    import signal

    def _stop(signum, frame):  # SIGTERM (e.g. from a process manager) stops like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    try:
        session.wait(-1)
    except KeyboardInterrupt:
        pass
    finally:
        session.close()
        console.print("App stopped.")


def from_fiftyone_command(
    name: str = typer.Argument(..., help="FiftyOne dataset name (as printed by to-fiftyone / browse)"),
    into: Path = typer.Option(..., "--into", help="converted folder to write the curation into"),
    reload: bool = typer.Option(True, "--reload/--no-reload", help="refresh the FiftyOne dataset afterwards"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list the changes, write nothing"),
) -> None:
    """Write labels edited and tags added in FiftyOne back into OUT (atomic, logged, undoable)."""
    from .curation import CurationError
    from .fiftyone_io import FiftyOneError, from_fiftyone

    try:
        rep = from_fiftyone(name, into, reload=reload, dry_run=dry_run)
    except (FiftyOneError, CurationError) as e:
        err.print(f"[red]write-back failed:[/red] {e}\n{into} was left unchanged.", soft_wrap=True)
        raise typer.Exit(1)
    if dry_run and rep.planned:
        from rich.table import Table

        t = Table(title=f"changes from {name} (dry run)")
        for col in ("sample_id", "field", "old", "new"):
            t.add_column(col, overflow="fold")
        for c in rep.planned[:200]:
            t.add_row(c["sample_id"], c["field"], str(c["old"] or "-"), str(c["new"] or "-"))
        console.print(t)
        if len(rep.planned) > 200:
            console.print(f"... and {len(rep.planned) - 200} more")
    console.print(rep.summary(dry_run=dry_run), markup=False, soft_wrap=True)
    if rep.changes and not dry_run:
        console.print(f"change log: {into / '.unihema' / 'changes.jsonl'}; undo with `unihema-data undo-curation {into}`",
                      markup=False, soft_wrap=True)


def undo_curation_command(out: Path = typer.Argument(..., help="converted folder")) -> None:
    """Restore OUT as it was before the newest curation write-back."""
    from .curation import CurationError, undo_curation

    try:
        batch = undo_curation(out, actor="cli")
    except CurationError as e:
        err.print(f"[red]{e}[/red]", soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"undid curation batch {batch} in {out}", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("browse")(browse_command)
    app.command("to-fiftyone")(to_fiftyone_command)
    app.command("from-fiftyone")(from_fiftyone_command)
    app.command("undo-curation")(undo_curation_command)
