"""``unihema-data``: the command-line interface (typer + rich).

Exit codes: 0 success; 1 conversion/validation failure (message names file and problem);
2 usage error or missing input.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import click
import typer
import typer.main
from rich import box
from rich.console import Console
from rich.table import Table

from typer.core import TyperGroup

from . import __version__

# Start-up: everything heavy (pydantic catalog, pyarrow, datasets, adapters) is imported inside the
# commands, so `unihema-data --help` stays well under 0.3 s (benchmarks/RESULTS.md, start-up).

# Commands living in their own packages load only when invoked: importing them pulls the fetch
# stack (requests, pydantic catalog) and the text-set code, which `--help` and the other commands
# do not need. name -> (module, attribute, kind, one-line help shown by `--help`)
_LAZY_COMMANDS = {
    "fetch": ("fetch.cli", "fetch_command", "command",
              "Download, verify and safely extract source datasets into ROOT/raw/<id>/."),
    "generate": ("textsets.cli", "generate_app", "typer",
                 "Generate the semi-synthetic text sets (VQA, MLM, captions) from converted attribute annotations."),
    "publish": ("publish_cli", "publish_command", "command",
                "Upload a converted corpus to the Hugging Face Hub (license gate, card, Croissant; --dry-run stages it)."),
    "export": ("publish_cli", "export_command", "command",
               "Export a converted corpus to COCO, YOLO (Ultralytics) or class folders (imagefolder)."),
    "preview": ("publish_cli", "preview_command", "command",
                "Render a sample grid per source with boxes, masks and labels drawn (PNG)."),
    "browse": ("fiftyone_cli", "browse_command", "command",
               "Load OUT into FiftyOne and serve the App on 127.0.0.1 until Ctrl-C."),
    "to-fiftyone": ("fiftyone_cli", "to_fiftyone_command", "command",
                    "Load OUT into a persistent FiftyOne dataset (incremental)."),
    "from-fiftyone": ("fiftyone_cli", "from_fiftyone_command", "command",
                      "Write labels edited and tags added in FiftyOne back into OUT."),
    "undo-curation": ("fiftyone_cli", "undo_curation_command", "command",
                      "Restore OUT as it was before the newest curation write-back."),
}


def _lazy_present(name: str) -> bool:
    module = _LAZY_COMMANDS[name][0]
    return (Path(__file__).resolve().parent / (module.replace(".", "/") + ".py")).is_file()


def _load_lazy(name: str) -> click.Command:
    import importlib

    module, attr, kind, _help = _LAZY_COMMANDS[name]
    obj = getattr(importlib.import_module(f".{module}", __package__), attr)
    if kind == "typer":
        cmd = typer.main.get_group(obj)
    else:
        single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        single.command(name)(obj)
        cmd = typer.main.get_command(single)
    cmd.name = name
    return cmd


class _LazyGroup(TyperGroup):
    """The top-level group: lists the lazy commands with their static help and imports one only
    when it is run (``resolve_command``) or its own ``--help`` is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in _LAZY_COMMANDS if _lazy_present(n))]

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        if cmd_name in _LAZY_COMMANDS and _lazy_present(cmd_name):
            help_ = _LAZY_COMMANDS[cmd_name][3]
            return click.Command(cmd_name, help=help_, short_help=help_)  # listing only
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, cmd, rest = super().resolve_command(ctx, args)
        if name in _LAZY_COMMANDS and _lazy_present(name):
            cmd = _load_lazy(name)
        return name, cmd, rest


app = typer.Typer(
    cls=_LazyGroup,
    rich_markup_mode=None,  # plain click help: typer.rich_utils (rich.markdown, markdown_it) costs ~90 ms
    name="unihema-data",
    help="Fetch, convert, validate and inspect the UniHema unified hematology corpus.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=False)
err = Console(stderr=True)

#: short task names used in narrow tables
TASK_ABBREV = {"detection": "det", "segmentation": "seg", "classification": "cls", "attributes": "attr",
               "vqa": "vqa", "mlm": "mlm", "caption": "cap"}

ADAPTER_SHORT = {"implemented": "yes", "planned": "planned", "not_possible": "no"}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"unihema-data {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="print the version and exit"),
) -> None:
    """Fetch, convert, validate and inspect the UniHema unified hematology corpus."""


def _catalog(extra: list[Path] | None = None):
    from .catalog import CatalogError, load_catalog

    try:
        return load_catalog(extra or [])
    except CatalogError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2)


def _resolve_id(dataset_id: str) -> str:
    """Catalog ids are matched case-insensitively (``BCCD`` = ``bccd``)."""
    from .api import resolve_id

    return resolve_id(dataset_id, _catalog().ids())


def _out_folder(out: Path) -> None:
    """Exit 2 with a clear message unless ``out`` is a converted folder (has Parquet shards)."""
    from .outdir import all_parquet_files

    if not out.exists():
        err.print(f"{out}: no such folder (expected a converted UniHema output folder, see `unihema-data convert`)",
                  markup=False, soft_wrap=True)
        raise typer.Exit(2)
    if not out.is_dir() or not all_parquet_files(out):
        err.print(f"{out}: not a converted UniHema folder (no Parquet shards under {out / 'data'})",
                  markup=False, soft_wrap=True)
        raise typer.Exit(2)


@app.command("list")
def list_cmd(
    task: Optional[str] = typer.Option(None, "--task", help="only sources with this task"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    catalog: List[Path] = typer.Option([], "--catalog", help="extra catalog file(s)"),
) -> None:
    """List the catalog's source datasets."""
    from .catalog import TASKS

    if task is not None and task not in TASKS:
        err.print(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}", markup=False)
        raise typer.Exit(2)
    cat = _catalog(catalog)
    entries = cat.filter(task)
    if as_json:
        typer.echo(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
        return
    # ids never wrap (they are copied into commands). Below 120 columns (80 is also the width of
    # piped output) the table keeps one line per source: id, tasks, adapter and the name cut to fit;
    # `info ID` or `--json` show everything.
    wide = console.width >= 120
    t = Table(title=f"{len(entries)} source datasets" + (f" with task {task}" if task else ""),
              box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    rows_tasks = [",".join(TASK_ABBREV.get(x, x) for x in e.tasks) for e in entries]
    id_w = max([len(e.id) for e in entries] + [2])
    tasks_w = max([len(x) for x in rows_tasks] + [5])
    t.add_column("id", no_wrap=True, min_width=id_w)
    t.add_column("tasks", no_wrap=True, min_width=tasks_w)
    used = id_w + tasks_w + 7 + 3 * 2  # + adapter + the gaps between columns
    if wide:
        t.add_column("disease", no_wrap=True, max_width=24, overflow="ellipsis")
        t.add_column("license", no_wrap=True, max_width=14, overflow="ellipsis")
        t.add_column("access", no_wrap=True)
        used += 24 + 14 + 8 + 3 * 2
    t.add_column("adapter", no_wrap=True, min_width=7)
    # rich shrinks (even hides) other columns rather than an over-long unwrappable one: cap the name
    t.add_column("name", no_wrap=not wide, overflow="ellipsis", max_width=max(8, console.width - used - 1))
    for e, tasks in zip(entries, rows_tasks):
        extra = (",".join(e.disease), e.license, e.access) if wide else ()
        t.add_row(e.id, tasks, *extra, ADAPTER_SHORT.get(e.adapter, e.adapter), e.name)
    console.print(t)
    console.print("tasks: " + ", ".join(f"{v}={k}" for k, v in TASK_ABBREV.items()) + ";  `info ID` shows an entry",
                  style="dim", markup=False)


@app.command("info")
def info_cmd(dataset_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one catalog entry (ids are case-insensitive)."""
    from .catalog import entry_as_json

    cat = _catalog()
    try:
        e = cat.get(_resolve_id(dataset_id))
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
    num_proc: Optional[int] = typer.Option(None, "--num-proc", min=1, help="worker processes (default: one per core, at most 4; 1 = no worker pool)"),
    max_samples: Optional[int] = typer.Option(None, "--max-samples", min=1, help="convert only the first N images"),
    overwrite: bool = typer.Option(False, "--overwrite", help="reconvert even when up to date"),
    seed: int = typer.Option(0, "--seed", help="seed of the grouped split for sources without one"),
    allow_partial: bool = typer.Option(False, "--allow-partial",
                                       help="convert what is present when images the annotations reference are "
                                            "missing (e.g. WBCAtt with part of PBC); lists every missing image"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="list every skipped, orphaned, repaired or flagged input"),
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
    ids = [_resolve_id(i) for i in ids]

    from .convert import default_num_proc
    from .progress import estimate_images, progress_bar

    opts = ConvertOptions(num_proc=num_proc or default_num_proc(), max_samples=max_samples, overwrite=overwrite,
                          seed=seed, allow_partial=allow_partial)
    with progress_bar(err) as prog:
        tasks: dict[str, int] = {}

        def on_progress(sid: str, n: int) -> None:
            if sid not in tasks:
                total = estimate_images(sid, raw_dir)
                if total is not None and max_samples is not None:
                    total = min(total, max_samples)
                tasks[sid] = prog.add_task(f"convert {sid}", total=total)
            task = tasks[sid]
            if prog.tasks[task].total is not None and n > prog.tasks[task].total:
                prog.update(task, total=None)  # the estimate was short: no ETA rather than a wrong one
            prog.update(task, completed=n)

        try:
            reports = convert(ids, raw_dir, out, opts, on_progress)
        except ConversionError as e:
            err.print(f"[red]conversion failed:[/red] {e}\n{out} was left unchanged for that source.")
            raise typer.Exit(1)
    _print_reports(reports, out, verbose)


def _print_reports(reports, out: Path, verbose: bool = False) -> None:
    from .outdir import MANIFEST

    # sources and numbers never wrap; the flags column wraps between flags (80 columns when piped);
    # the run report (skipped/orphaned/repaired/flagged inputs) follows per source below the table
    t = Table(title="conversion", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    t.add_column("source", no_wrap=True, min_width=max([len(r.source) for r in reports] + [6]))
    t.add_column("status", no_wrap=True)
    for col in ("train", "val", "test", "dups"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("qc flags", min_width=10)
    t.add_column("s", justify="right", no_wrap=True)
    for r in reports:
        t.add_row(r.source, r.status.replace("_", "-"), *(str(r.counts.get(s, 0)) for s in ("train", "validation", "test")),
                  str(r.duplicates), " ".join(f"{k}={v}" for k, v in sorted(r.flags.items())) or "-",
                  f"{r.seconds:.1f}")
    console.print(t)
    for r in reports:
        console.print(f"{r.source}: {r.status} ({r.total} images from {r.root})", markup=False, soft_wrap=True)
        _print_inputs(r, verbose)
        if r.missing:
            err.print(f"{r.source}: --allow-partial: {len(r.missing)} referenced images are missing and were "
                      f"skipped (all listed in {out / MANIFEST} under sources.{r.source}.partial):",
                      markup=False, soft_wrap=True)
            for m in r.missing[:10]:
                err.print(f"  missing {m}", markup=False, soft_wrap=True)
            if len(r.missing) > 10:
                err.print(f"  ... and {len(r.missing) - 10} more", markup=False)
        for src, moves in sorted(r.moved_by_source.items()):  # the split policy (README), over the whole OUT
            console.print(f"  moved in {src}: " + ", ".join(f"{k}: {n}" for k, n in moves.items()), markup=False,
                          soft_wrap=True)
        if r.rewritten:
            console.print(f"  rows of {', '.join(r.rewritten)} rewritten (split or flags changed)", markup=False)
        for ts in r.stale_textsets:
            err.print(f"note: text set {ts} was built from the previous {r.source}; rebuild it with "
                      f"`unihema-data generate {ts.rsplit('_', 1)[-1]} --from {out}`", markup=False, soft_wrap=True)


def _print_inputs(r, verbose: bool) -> None:
    """The run report: counts always (with an example), every entry with ``--verbose``."""
    rep = getattr(r, "inputs", None)
    for k, v in sorted(getattr(r, "info", {}).items()):
        console.print(f"  {k}: {v}", markup=False, soft_wrap=True)
    if not rep:
        return
    for kind, n in rep.counts().items():
        items = rep.of(kind)
        if verbose:
            console.print(f"  {kind} ({n}):", markup=False)
            for path, reason in items:
                console.print(f"    {path}: {reason}", markup=False, soft_wrap=True)
        else:
            more = f" (+{n - 1} more; --verbose lists them)" if n > 1 else ""
            console.print(f"  {kind} {n} input(s), e.g. {items[0][0]}: {items[0][1]}{more}", markup=False, soft_wrap=True)


@app.command("validate")
def validate_cmd(
    out: Path,
    num_proc: int = typer.Option(1, "--num-proc", min=1),
    as_json: bool = typer.Option(False, "--json", help="machine-readable report on stdout (exit codes unchanged)"),
) -> None:
    """Re-check every row of OUT; exits 1 with a report when anything is wrong."""
    from .progress import progress_bar
    from .validate import validate

    _out_folder(out)
    with progress_bar(err, disable=as_json) as prog:
        task = prog.add_task(f"validate {out}", total=None)
        rep = validate(out, num_proc=num_proc, on_progress=lambda n, total: prog.update(task, completed=n, total=total))
    if as_json:
        typer.echo(json.dumps({"ok": rep.ok, "rows": rep.rows, "shards": rep.files,
                               "problem_count": sum(rep.counts_by_kind.values()),
                               "problems_by_kind": dict(sorted(rep.counts_by_kind.items())),
                               "problems": rep.problems}, indent=2))
    else:
        (console.print if rep.ok else err.print)(rep.summary(), markup=False, soft_wrap=True)
    if not rep.ok:
        raise typer.Exit(1)


@app.command("stats")
def stats_cmd(out: Path, as_json: bool = typer.Option(False, "--json", help="machine-readable counts on stdout")) -> None:
    """Counts per source / split / task / label."""
    from .stats import compute_stats

    _out_folder(out)
    st = compute_stats(out).as_dict()
    if as_json:
        typer.echo(json.dumps(st, indent=2))
        return
    for key, title in (("images", "images per split"), ("tasks", "rows per task"), ("labels", "image labels"),
                       ("objects", "objects per category"), ("flags", "qc flags"),
                       ("moved", "rows moved by the split policy (from->to, why)")):
        if not st[key]:
            continue
        t = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
        t.add_column("source", no_wrap=True)
        t.add_column({"flags": "flag", "moved": "move"}.get(key, key[:-1]), no_wrap=key != "moved")
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
        adapter = get_adapter(_resolve_id(dataset_id))
    except KeyError as e:
        err.print(f"[red]{e.args[0]}[/red]")
        raise typer.Exit(2)
    truth = adapter.fake(out, seed=seed)
    console.print(f"wrote {truth.num_images} images, {truth.num_objects} objects of {adapter.id} under {truth.root}",
                  markup=False, soft_wrap=True)


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


@app.command("new-adapter")
def new_adapter_cmd(
    dataset_id: str = typer.Argument(..., help="catalog id of the source"),
    family: str = typer.Option(..., "--family", help="class_folders | voc | yolo | image_mask | instance_mask | coco | cvat"),
    root: Path = typer.Option(Path(__file__).resolve().parent.parent, "--root", help="repository root to write into"),
) -> None:
    """Write a new adapter skeleton (module + fake, alias-table stub, catalog status)."""
    from .scaffold import ScaffoldError, new_adapter

    try:
        written = new_adapter(dataset_id, family, root)
    except ScaffoldError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2)
    for p in written:
        console.print(f"wrote {p}", markup=False, soft_wrap=True)
    console.print(f"next: fill the TODOs, map the labels in taxonomy.yaml, then run "
                  f"`pytest tests/test_adapters.py -k {dataset_id}` (see docs/adding-an-adapter.md)", markup=False)



def main() -> None:  # console script entry point
    app()


if __name__ == "__main__":
    main()
