"""``unihema-predict``: run a trained Uni-Hema model on images.

    unihema-predict --checkpoint runs/stage6 smear.png cell.png [--task detection] [--prompt P] [--out DIR]

Prints one JSON object per image (boxes ``xyxy`` in original pixels with class names, scores and attributes;
class with probabilities; generated answers). With ``--out`` it also writes ``predictions.jsonl`` and, for
segmentation, one ``<image stem>_mask.png`` per image (255 = foreground). torch is imported only when it runs.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def predict(
    images: List[Path] = typer.Argument(..., help="image files"),
    checkpoint: Path = typer.Option(..., help="run directory written by unihema-train"),
    task: str = typer.Option("detection", help="detection | attributes | segmentation | classification | vqa | "
                                               "mlm | caption"),
    prompt: Optional[str] = typer.Option(None, help="question / masked text / disease prompt"),
    out: Optional[Path] = typer.Option(None, help="directory for predictions.jsonl and mask PNGs"),
    threshold: Optional[float] = typer.Option(None, help="score (detection) or probability (segmentation) floor"),
    device: Optional[str] = typer.Option(None, help="cpu | cuda (default: cuda when available)"),
) -> None:
    """Predict with a trained Uni-Hema model."""
    from .inference import UniHemaPipeline, save_mask_png

    try:
        pipe = UniHemaPipeline(checkpoint, device=device)
        results = pipe([str(p) for p in images], task=task, prompt=prompt, threshold=threshold)
    except (FileNotFoundError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    lines = []
    for path, res in zip(images, results):
        record = {"image": str(path), "task": task}
        if "mask" in res:
            mask = res.pop("mask")
            record["foreground_pixels"] = int(mask.sum())
            if out is not None:
                target = out / f"{path.stem}_mask.png"
                save_mask_png(mask, target)
                record["mask_png"] = str(target)
        record.update(res)
        lines.append(json.dumps(record))
        typer.echo(lines[-1])
    if out is not None:
        (out / "predictions.jsonl").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    try:
        rv = app(args=argv if argv is not None else sys.argv[1:], prog_name="unihema-predict", standalone_mode=False)
    except typer.Exit as e:
        return e.exit_code
    except Exception as err:
        import click

        if isinstance(err, click.ClickException):
            err.show()
            return 2
        raise
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
