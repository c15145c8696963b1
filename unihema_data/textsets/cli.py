"""``unihema-data generate {vqa,mlm,caption} --from OUT``: build the text sets into OUT.

Exit codes: 0 success; 1 generation failure; 2 usage error or missing parent source.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

generate_app = typer.Typer(
    help="Generate the semi-synthetic text sets (VQA, MLM, captions) from converted attribute annotations.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)

_FROM = typer.Option(..., "--from", help="Hub-layout output folder holding the converted parent source")
_SEED = typer.Option(0, "--seed", help="seed of template, value and mask choices")
_PAIRS = typer.Option(None, "--pairs-per-image", min=0,
                      help="texts per image (default: 2 VQA pairs, 3 MLM samples, 1 caption; VQA 0 = all questions)")
_MAXIMG = typer.Option(None, "--max-images", min=1, help="use only the first N parent images")
_PARA = typer.Option(None, "--paraphraser", help="local seq2seq model folder used to rephrase templates (verified)")
_OVER = typer.Option(False, "--overwrite", help="regenerate even when up to date")


def _run(textset: str, out: Path, **kw) -> None:
    from .writer import GenerateOptions, TextsetError, generate

    from ..progress import progress_bar

    opts = GenerateOptions(**kw)
    try:
        with progress_bar(err) as prog:  # images read / total, rate, ETA (on stderr, removed when done)
            task = prog.add_task(f"generate {textset}", total=None)
            rep = generate(textset, out, opts,
                           on_progress=lambda n, total: prog.update(task, completed=n, total=total))
    except TextsetError as e:
        err.print(f"[red]generation failed:[/red] {e}")
        raise typer.Exit(2 if "not converted" in str(e) or "unknown" in str(e) or "must be" in str(e) else 1)
    print_report(rep)


def print_report(rep) -> None:
    t = Table(title=f"{rep.textset}: {rep.status}, {rep.total} rows from {rep.images_used}/{rep.images} images")
    t.add_column("section")
    t.add_column("key")
    t.add_column("count", justify="right")
    sections = (("split", rep.counts), ("type", rep.question_types), ("answer", rep.answer_balance),
                ("subject", rep.subjects), ("rejected", rep.rejections or {"(none)": 0}),
                ("skipped image", rep.skipped_images), ("mask", rep.masks),
                ("paraphrase", {k: v for k, v in rep.paraphrase.items() if k != "examples"}),
                ("template", rep.templates))
    for name, d in sections:
        for k, v in d.items():
            t.add_row(name, str(k), str(v))
    if rep.split_conflicts:
        t.add_row("split", "conflicts (moved)", str(rep.split_conflicts))
    console.print(t)
    for ex in rep.rejection_examples[:5]:
        console.print(f"rejected: {ex}", markup=False)


@generate_app.command("vqa")
def vqa_cmd(
    out: Path = _FROM, seed: int = _SEED, pairs_per_image: Optional[int] = _PAIRS,
    question_types: str = typer.Option("open,yesno", "--question-types", help="comma list of open, yesno, choice"),
    paraphraser: Optional[Path] = _PARA, max_images: Optional[int] = _MAXIMG, overwrite: bool = _OVER,
) -> None:
    """WBCAtt-VQA (config wbcatt_vqa) from the converted wbcatt source."""
    types = tuple(t.strip() for t in question_types.split(",") if t.strip())
    _run("wbcatt_vqa", out, seed=seed, pairs_per_image=pairs_per_image, question_types=types,
         paraphraser=str(paraphraser) if paraphraser else None, max_images=max_images, overwrite=overwrite)


@generate_app.command("mlm")
def mlm_cmd(
    out: Path = _FROM, seed: int = _SEED, pairs_per_image: Optional[int] = _PAIRS,
    max_cells: int = typer.Option(10, "--max-cells", min=1, help="describe at most N cells per field of view"),
    mask_fraction: float = typer.Option(0.3, "--mask-fraction", help="fraction of value spans masked (at least one)"),
    paraphraser: Optional[Path] = _PARA, max_images: Optional[int] = _MAXIMG, overwrite: bool = _OVER,
) -> None:
    """LeukemiaAttri-MLM (config leukemiaattri_mlm) from the converted leukemiaattri source."""
    _run("leukemiaattri_mlm", out, seed=seed, pairs_per_image=pairs_per_image, max_cells=max_cells,
         mask_fraction=mask_fraction, paraphraser=str(paraphraser) if paraphraser else None,
         max_images=max_images, overwrite=overwrite)


@generate_app.command("caption")
def caption_cmd(
    out: Path = _FROM, seed: int = _SEED, pairs_per_image: Optional[int] = _PAIRS,
    paraphraser: Optional[Path] = _PARA, max_images: Optional[int] = _MAXIMG, overwrite: bool = _OVER,
) -> None:
    """WBCAtt captions (config wbcatt_caption) from the converted wbcatt source."""
    _run("wbcatt_caption", out, seed=seed, pairs_per_image=pairs_per_image,
         paraphraser=str(paraphraser) if paraphraser else None, max_images=max_images, overwrite=overwrite)
