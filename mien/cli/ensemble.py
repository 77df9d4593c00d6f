"""`mien ensemble RUN RUN... --out DIR`: several finished runs as one model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def ensemble_command(
    runs: Annotated[list[Path], typer.Argument(
        help="Run folders of `mien train` with the same data, classes and input.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New folder for the ensemble.")],
    weights: Annotated[str, typer.Option(
        help="best: each run's best epoch (model.safetensors); last: its last epoch.")] = "best",
    tta: Annotated[str | None, typer.Option(
        help="none | flip: replaces the members' test-time augmentation [default: theirs].")
    ] = None,
) -> None:
    """Average the class probabilities of RUNS (e.g. one config trained with different --seed):
    more accurate than each, and as slow as all of them together. The folder works wherever a
    run folder does (evaluate, analyze --model, serve, compare)."""
    from mien.training.ensemble import combine_runs

    r = combine_runs(runs, out, weights=weights, tta=tta, echo=typer.echo)
    for run, acc in zip(r.members, r.member_accuracies, strict=True):
        typer.echo(f"  {str(run):<40} val accuracy {acc:.4f}")
    last = ("" if r.last_val_accuracy is None
            else f", last-epoch weights {r.last_val_accuracy:.4f}")
    typer.echo(f"  {'ensemble':<40} val accuracy {r.val_accuracy:.4f} (balanced "
               f"{r.val_balanced_accuracy:.4f}{last})")
    typer.echo(f"written {r.run_dir}")


def register(app: typer.Typer) -> None:
    app.command("ensemble")(ensemble_command)
