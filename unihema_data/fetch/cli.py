"""``unihema-data fetch``: the typer command (registered by ``unihema_data.cli``).

Exit codes: 0 every requested source is complete; 1 a download, verification,
extraction or resolution failed (or an unknown id / bad catalog); 2 manual files are
still missing (the message lists them and where to put them). ``--status`` and
``--dry-run`` exit 0.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..catalog import CatalogError, load_catalog
from .core import Fetcher
from .errors import FetchError
from .settings import FetchSettings


def _echo(msg: str) -> None:
    typer.echo(msg)


def fetch_command(
    ids: Optional[List[str]] = typer.Argument(None, help="catalog ids of the sources to fetch"),
    root: Path = typer.Option(Path("unihema_work"), "--root", help="work folder; files go to ROOT/raw/<id>/"),
    manual_dir: Optional[Path] = typer.Option(None, "--manual-dir",
                                              help="where manual downloads are put, as <DIR>/<id>/ "
                                                   "(default ROOT/manual)"),
    catalog: List[Path] = typer.Option([], "--catalog", help="extra catalog file(s) with in-house sources"),
    status: bool = typer.Option(False, "--status", help="show complete/partial/missing/manual per source"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list what would be fetched, download nothing"),
    register_checksums: bool = typer.Option(False, "--register-checksums",
                                            help="write size+sha256 of files the catalog does not pin to "
                                                 "ROOT/registered-checksums.yaml"),
    all_: bool = typer.Option(False, "--all", help="every source of the catalog(s)"),
) -> None:
    """Download, verify and safely extract source datasets into ROOT/raw/<id>/."""
    try:
        cat = load_catalog(catalog)
    except CatalogError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1)
    ids = list(ids or [])
    if all_ or (status and not ids):
        ids = cat.ids()
    if not ids:
        typer.echo("name at least one source id (see 'unihema-data list'), or use --all / --status", err=True)
        raise typer.Exit(2)
    unknown = [i for i in ids if i not in set(cat.ids())]
    if unknown:
        typer.echo(f"unknown source id(s): {', '.join(unknown)} (see 'unihema-data list')", err=True)
        raise typer.Exit(1)
    fetcher = Fetcher(cat, root, manual_dir=manual_dir, settings=FetchSettings.from_env(), log=_echo,
                      register_checksums=register_checksums)
    if status:
        rows = fetcher.status(ids)
        w = max(len(r.id) for r in rows)
        typer.echo(f"{'source':<{w}}  {'state':<22} {'files':>7}  detail")
        for r in rows:
            files = f"{r.present}/{r.total if r.total is not None else '?'}"
            typer.echo(f"{r.id:<{w}}  {r.state:<22} {files:>7}  {r.detail}".rstrip())
        return
    try:
        results = fetcher.fetch(ids, dry_run=dry_run)
    except FetchError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted: run the same command again to resume the partial downloads", err=True)
        raise typer.Exit(130)
    if dry_run:
        return
    done = [r.id for r in results if r.state in ("complete", "up-to-date", "derived")]
    failed = [r.id for r in results if r.state == "failed"]
    manual = [r.id for r in results if r.state == "manual"]
    parts = [f"{len(done)} complete"]
    if manual:
        parts.append(f"{len(manual)} need a manual download ({', '.join(manual)})")
    if failed:
        parts.append(f"{len(failed)} failed ({', '.join(failed)})")
    typer.echo("summary: " + "; ".join(parts))
    if failed:
        raise typer.Exit(1)
    if manual:
        raise typer.Exit(2)
