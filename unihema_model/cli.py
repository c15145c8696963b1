"""``unihema-train``: train, evaluate and convert weights for the Uni-Hema reference model.

Only typer is imported at module load: torch, transformers and accelerate are imported when a command runs, so
``unihema-train --help`` is instant. Commands::

    unihema-train train --recipe R --data OUT [--init-from RUN] [--resume CKPT] [--max-steps N] ...    unihema-train evaluate --checkpoint RUN --data OUT [--split test] [--out DIR]
    unihema-train convert-dino checkpoint0011_4scale.pth runs/dino_init [--preset paper]

Multi-GPU / multi-node: ``accelerate launch [--multi_gpu --num_processes N ...] -m unihema_model.cli train ...``.
Errors (bad recipe, missing data or weights) print one line ``error: ...`` and exit with status 2.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train, evaluate and convert weights for the Uni-Hema reference model.")


@app.callback()
def _root() -> None:
    """Train the Uni-Hema reference model (commands below)."""


class CliError(Exception):
    pass


def _fail(err: Exception) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(2)


@app.command("train")
def train_cmd(
    recipe: Path = typer.Option(..., help="recipe: a YAML path or a packaged name (tiny, smoke_cpu, stage1..stage6, hemblip_lora)"),
    data: Path = typer.Option(..., help="converted corpus folder (data/<source>/<split>-*.parquet)"),
    output: Optional[Path] = typer.Option(None, help="run directory (default: train.output_dir)"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", "--steps", help="stop after N optimizer steps"),
    epochs: Optional[int] = typer.Option(None, help="override train.epochs"),
    seed: Optional[int] = typer.Option(None, help="override train.seed"),
    init_from: Optional[Path] = typer.Option(None, help="start from a previous stage's run (weights + config)"),
    resume: Optional[Path] = typer.Option(None, help="continue exactly from a checkpoint (or a run's latest)"),
    random_init: bool = typer.Option(False, help="do not load pretrained weights named by the recipe"),
    overfit_batch: bool = typer.Option(False, help="train on one fixed multi-task batch (sanity check)"),
    mixed_precision: Optional[str] = typer.Option(None, help="no | bf16 | fp16 (overrides the recipe)"),
    cpu: bool = typer.Option(False, help="force CPU even when a GPU is present"),
    progress: bool = typer.Option(True, help="progress bar (otherwise JSON lines on stdout)"),
) -> None:
    """Train one stage (or all tasks) of Uni-Hema with accelerate."""
    from .train import Trainer, load_recipe

    try:
        r = load_recipe(recipe)
        if seed is not None:
            r.train.seed = seed
        if init_from is not None and resume is not None:
            raise ValueError("--init-from starts a new stage, --resume continues a run: give one of them")
        trainer = Trainer(r, data, output, init_from=init_from, resume=resume, random_init=random_init,
                          overfit_batch=overfit_batch, max_steps=max_steps, epochs=epochs,
                          mixed_precision=mixed_precision, cpu=cpu, progress=progress,
                          log=lambda m: typer.echo(m, err=True))
        result = trainer.train()
    except (FileNotFoundError, ValueError, CliError) as err:
        _fail(err)
    typer.echo(json.dumps(result))


@app.command("evaluate")
def evaluate_cmd(
    checkpoint: Path = typer.Option(..., help="run directory written by `unihema-train train`"),
    data: Path = typer.Option(..., help="converted corpus folder"),
    split: str = typer.Option("test", help="corpus split"),
    out: Optional[Path] = typer.Option(None, help="where to write metrics.json / metrics.md (default: checkpoint)"),
    tokenizer: Optional[str] = typer.Option(None, help="tokenizer (default: the run's recipe, else byt5)"),
    max_per_source: Optional[int] = typer.Option(None, help="at most N rows per source and task"),
    probe: bool = typer.Option(True, help="also the linear probe + kNN on frozen SCFE features (Table 2)"),
    cpu: bool = typer.Option(False, help="force CPU"),
) -> None:
    """Table-1 metrics (mAP50 per source + mean, F1, Dice/IoU, attribute F1, BLEU-4) and the SCFE probes."""
    from .evaluate import run_evaluation

    try:
        result = run_evaluation(checkpoint, data, split=split, out_dir=out, tokenizer=tokenizer,
                                max_per_source=max_per_source, probe=probe, cpu=cpu)
    except (FileNotFoundError, ValueError) as err:
        _fail(err)
    typer.echo(result["markdown"])


@app.command("convert-dino")
def convert_dino_cmd(
    checkpoint: Path = typer.Argument(..., help="DINO-4scale COCO checkpoint (checkpoint0011_4scale.pth)"),
    output: Path = typer.Argument(..., help="directory for the converted Uni-Hema model (use with --init-from)"),
    preset: str = typer.Option("paper", help="paper | released_code"),
) -> None:
    """Convert the DINO-4scale ResNet-50 COCO checkpoint into a Uni-Hema model (backbone, encoder, decoder)."""
    from .dino_weights import convert_dino_checkpoint

    try:
        report = convert_dino_checkpoint(checkpoint, output, preset)
    except (FileNotFoundError, ValueError) as err:
        _fail(err)
    typer.echo(json.dumps({k: len(v) for k, v in report.items()}))


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status (0 ok, 2 user error)."""
    try:
        rv = app(args=argv if argv is not None else sys.argv[1:], prog_name="unihema-train", standalone_mode=False)
    except typer.Exit as e:
        return e.exit_code
    except SystemExit as e:  # click usage errors
        return int(e.code or 0)
    except Exception as err:  # click.UsageError etc.
        import click

        if isinstance(err, click.ClickException):
            err.show()
            return 2
        raise
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
