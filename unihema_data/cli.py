"""``unihema-data``: the command-line interface (typer + rich).

Exit codes: 0 success; 1 conversion/validation failure (message names file and problem);
2 usage error or missing input.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .catalog import CatalogError, entry_as_json, load_catalog

app = typer.Typer(
    name="unihema-data",
    help="Fetch, convert, validate and inspect the UniHema unified hematology corpus.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=False)
err = Console(stderr=True)


def _catalog(extra: list[Path] | None = None):
    try:
        return load_catalog(extra or [])
    except CatalogError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2)


@app.command("list")
def list_cmd(
    task: Optional[str] = typer.Option(None, "--task", help="only sources with this task"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    catalog: List[Path] = typer.Option([], "--catalog", help="extra catalog file(s)"),
) -> None:
    """List the catalog's source datasets."""
    from .adapters import adapter_ids

    cat = _catalog(catalog)
    entries = cat.filter(task)
    if as_json:
        typer.echo(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
        return
    implemented = set(adapter_ids())
    t = Table(title=f"{len(entries)} source datasets" + (f" with task {task}" if task else ""))
    for col in ("id", "name", "tasks", "disease", "license", "access", "adapter"):
        t.add_column(col, overflow="fold")
    for e in entries:
        t.add_row(e.id, e.name, ",".join(e.tasks), ",".join(e.disease), e.license, e.access,
                  "yes" if e.id in implemented else e.adapter)
    console.print(t)


@app.command("info")
def info_cmd(dataset_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one catalog entry."""
    cat = _catalog()
    try:
        e = cat.get(dataset_id)
    except KeyError as ex:
        err.print(f"[red]{ex.args[0]}[/red]")
        raise typer.Exit(2)
    if as_json:
        typer.echo(entry_as_json(e))
        return
    t = Table(title=f"{e.name} ({e.id})", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    for k, v in e.model_dump(mode="json").items():
        if k == "files":
            v = "\n".join(f"{f['name']}  {f['url'] or '(manual)'}  size={f['size']}  sha256={f['sha256'] or 'unverified'}" for f in v) or "-"
        elif isinstance(v, (list, dict)):
            v = json.dumps(v) if v else "-"
        t.add_row(k, str(v) if v is not None else "-")
    console.print(t)


@app.command("convert")
def convert_cmd(
    ids: Optional[List[str]] = typer.Argument(None, help="source dataset ids (or --all)"),
    all_: bool = typer.Option(False, "--all", help="every implemented source whose native layout is under --raw-dir"),
    raw_dir: Path = typer.Option(Path("unihema_work") / "raw", "--raw-dir",
                                 help="folder holding the native layouts (<id>/ subfolders, as `fetch --root R` makes in R/raw, or the layout itself)"),
    out: Path = typer.Option(..., "--out", help="Hub-layout output folder"),
    num_proc: Optional[int] = typer.Option(None, "--num-proc", min=1, help="worker processes (default: cores - 1, at most 4)"),
    max_samples: Optional[int] = typer.Option(None, "--max-samples", min=1, help="convert only the first N images"),
    overwrite: bool = typer.Option(False, "--overwrite", help="reconvert even when up to date"),
    seed: int = typer.Option(0, "--seed", help="seed of the grouped split for sources without one"),
) -> None:
    """Convert sources into OUT (atomic per source; reruns are no-ops)."""
    from .convert import ConversionError, ConvertOptions, convert, sources_present

    if all_:
        ids = sources_present(raw_dir)
        if not ids:
            err.print(f"no native layout of any implemented source found under {raw_dir}")
            raise typer.Exit(2)
        console.print(f"found: {', '.join(ids)}")
    if not ids:
        err.print("name at least one source id (see `unihema-data list`), or use --all")
        raise typer.Exit(2)

    from .convert import default_num_proc

    opts = ConvertOptions(num_proc=num_proc or default_num_proc(), max_samples=max_samples, overwrite=overwrite, seed=seed)
    with _progress() as prog:
        tasks: dict[str, int] = {}

        def on_progress(sid: str, n: int) -> None:
            if sid not in tasks:
                tasks[sid] = prog.add_task(f"convert {sid}", total=None)
            prog.update(tasks[sid], completed=n)

        try:
            reports = convert(ids, raw_dir, out, opts, on_progress)
        except ConversionError as e:
            err.print(f"[red]conversion failed:[/red] {e}\n{out} was left unchanged for that source.")
            raise typer.Exit(1)
    _print_reports(reports, out)


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} rows"),
                    TimeElapsedColumn(), console=err, transient=True)


def _print_reports(reports, out: Path) -> None:
    t = Table(title="conversion")
    for col in ("source", "status", "train", "validation", "test", "duplicates", "qc flags", "seconds"):
        t.add_column(col)
    for r in reports:
        t.add_row(r.source, r.status, *(str(r.counts.get(s, 0)) for s in ("train", "validation", "test")),
                  str(r.duplicates), ", ".join(f"{k}={v}" for k, v in sorted(r.flags.items())) or "-", f"{r.seconds:.1f}")
    console.print(t)
    for r in reports:
        console.print(f"{r.source}: {r.status} ({r.total} images from {r.root})", markup=False, soft_wrap=True)
        for ts in r.stale_textsets:
            err.print(f"note: text set {ts} was built from the previous {r.source}; rebuild it with "
                      f"`unihema-data generate {ts.rsplit('_', 1)[-1]} --from {out}`", markup=False, soft_wrap=True)


@app.command("validate")
def validate_cmd(out: Path, num_proc: int = typer.Option(1, "--num-proc", min=1)) -> None:
    """Re-check every row of OUT; exits 1 with a report when anything is wrong."""
    from .validate import validate

    with _progress() as prog:
        task = prog.add_task(f"validate {out}", total=None)
        rep = validate(out, num_proc=num_proc, on_progress=lambda n, total: prog.update(task, completed=n, total=total))
    (console.print if rep.ok else err.print)(rep.summary(), markup=False)
    if not rep.ok:
        raise typer.Exit(1)


@app.command("stats")
def stats_cmd(out: Path, as_json: bool = typer.Option(False, "--json")) -> None:
    """Counts per source / split / task / label."""
    from .stats import compute_stats

    st = compute_stats(out).as_dict()
    if as_json:
        typer.echo(json.dumps(st, indent=2))
        return
    for key, title in (("images", "images per split"), ("tasks", "rows per task"), ("labels", "image labels"),
                       ("objects", "objects per category"), ("flags", "qc flags")):
        if not st[key]:
            continue
        t = Table(title=title)
        t.add_column("source")
        t.add_column(key[:-1] if key != "flags" else "flag")
        t.add_column("count", justify="right")
        for src, d in st[key].items():
            for k, n in d.items():
                t.add_row(src, k, str(n))
        console.print(t)


@app.command("fake")
def fake_cmd(
    dataset_id: str,
    out: Path = typer.Option(..., "--out", help="folder to write the synthetic native layout into"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Write a small synthetic copy of a source's native layout (quirks included)."""
    from .adapters import get_adapter

    try:
        adapter = get_adapter(dataset_id)
    except KeyError as e:
        err.print(f"[red]{e.args[0]}[/red]")
        raise typer.Exit(2)
    truth = adapter.fake(out, seed=seed)
    console.print(f"wrote {truth.num_images} images, {truth.num_objects} objects of {dataset_id} under {truth.root}")


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("demo_out"), "--out", help="demo working folder"),
    num_proc: int = typer.Option(2, "--num-proc", min=1),
) -> None:
    """Fake every implemented source, convert, build the text sets, validate and summarize (no network)."""
    from .demo import run_demo

    ok = run_demo(out, num_proc=num_proc, console=console)
    if not ok:
        raise typer.Exit(1)


def _register_optional() -> None:
    """Commands living in their own packages (fetch, generate) register here when present."""
    import importlib.util

    def present(module: str) -> bool:
        try:
            return importlib.util.find_spec(f"{__package__}.{module}") is not None
        except ModuleNotFoundError:  # the parent package is absent
            return False

    if present("fetch.cli"):
        from .fetch.cli import fetch_command

        app.command("fetch")(fetch_command)
    if present("textsets.cli"):
        from .textsets.cli import generate_app

        app.add_typer(generate_app, name="generate")
    if present("fiftyone_cli"):  # browse, to-fiftyone, from-fiftyone, undo-curation (FiftyOne imported lazily)
        from .fiftyone_cli import register

        register(app)


_register_optional()


def main() -> None:  # console script entry point
    app()


if __name__ == "__main__":
    main()
