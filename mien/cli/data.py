"""`mien data ...`: dataset checks, quarantine/restore, statistics and face crops."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mien.detection.base import DEFAULT_OPTIONS

data_app = typer.Typer(help="Check, summarise and face-crop image datasets.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


@data_app.command("check")
def check(
    root: Annotated[Path, typer.Argument(
        help="Dataset folder: ROOT/<class>/* or ROOT/{train,val,test}/<class>/*.")],
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write every finding with its files to this JSON file.")] = None,
    quarantine_dir: Annotated[Path | None, typer.Option(
        "--quarantine",
        help="Move flagged files here (one copy of each duplicate group stays); never deletes.",
    )] = None,
    near_threshold: Annotated[int, typer.Option(
        "--near-threshold",
        help="Largest pHash distance (0-64) of near-duplicate candidates; -1 skips the search.",
    )] = 6,
    strict: Annotated[bool, typer.Option(help="Also fail on notes (class imbalance).")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Threads that decode images.")] = 2,
) -> None:
    """Find unreadable, blank, blurred, duplicated, mislabelled and leaked images.

    Exit code 0: clean; 1: findings (see the table, or --json for every file).
    """
    import json
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from mien.data.check import check_dataset, quarantine

    err = Console(stderr=True)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task(f"scanning {root}", total=None)
        report = check_dataset(
            root,
            near_threshold=None if near_threshold < 0 else near_threshold,
            workers=workers,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    _print_report(report)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.to_dict(), indent=1))
        typer.echo(f"report: {json_out}")
    if quarantine_dir is not None:
        result = quarantine(report, quarantine_dir)
        typer.echo(
            f"moved {len(result.moved)} file(s) to {quarantine_dir}; undo with: "
            f"mien data restore {result.log}"
        )
    if report.failed(strict):
        raise typer.Exit(1)


def _print_report(report) -> None:
    from rich.console import Console
    from rich.table import Table

    from mien.data.check import SEVERITY

    console = Console()
    counts = Table(title=f"{report.root}: {report.files_scanned} files in {report.seconds:.1f} s")
    counts.add_column("class")
    splits = list(report.counts)
    for s in splits:
        counts.add_column(s, justify="right")
    classes = list(dict.fromkeys(c for per in report.counts.values() for c in per))
    for c in classes:
        counts.add_row(c, *(str(report.counts[s].get(c, 0)) for s in splits))
    console.print(counts)
    sizes = ", ".join(f"{k} ({v})" for k, v in list(report.sizes.items())[:5])
    more = f" and {len(report.sizes) - 5} more" if len(report.sizes) > 5 else ""
    sharp = ", ".join(f"{k} {v:.1f}" for k, v in report.sharpness.items())
    console.print(f"image sizes: {sizes or 'none'}{more}; median sharpness: {sharp or 'n/a'}")
    if not report.findings:
        console.print("[green]no findings[/green]")
        return
    table = Table(title="findings")
    for col in ("kind", "severity", "findings", "files", "example"):
        table.add_column(col, overflow="fold")
    colour = {"error": "red", "warning": "yellow", "note": "cyan"}
    for kind, n in report.summary().items():
        group = [f for f in report.findings if f.kind == kind]
        sev = SEVERITY[kind]
        table.add_row(
            kind,
            f"[{colour[sev]}]{sev}[/{colour[sev]}]",
            str(n),
            str(len({p for f in group for p in f.files})),
            group[0].detail,
        )
    console.print(table)


@data_app.command("restore")
def restore_cmd(
    log: Annotated[Path, typer.Argument(
        help="Quarantine log written by `mien data check --quarantine`.")],
) -> None:
    """Put every file a quarantine moved back where it was."""
    from mien.data.check import restore

    files = restore(log)
    typer.echo(f"restored {len(files)} file(s)")


@data_app.command("stats")
def stats(
    root: Annotated[Path, typer.Argument(help="Dataset folder, FER2013 CSV or CelebA folder.")],
    grid: Annotated[Path | None, typer.Option(
        help="Write a PNG of sample images per class to this file.")] = None,
    per_class: Annotated[int, typer.Option(min=1, help="Images per class in the grid.")] = 8,
    attribute: Annotated[str | None, typer.Option(
        help="CelebA folder: the attribute, e.g. Eyeglasses.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for drawing the sample images.")] = 0,
) -> None:
    """Image counts per split and class, and optionally a grid of samples."""
    from rich.console import Console
    from rich.table import Table

    from mien.data.datasets import open_dataset
    from mien.data.stats import sample_grid, split_counts

    splits = open_dataset(root, attribute=attribute)
    counts = split_counts(splits)
    table = Table(title=str(root))
    table.add_column("class")
    for s in counts:
        table.add_column(s, justify="right")
    table.add_column("total", justify="right")
    for c in next(iter(counts.values())):
        per = [counts[s][c] for s in counts]
        table.add_row(c, *map(str, per), str(sum(per)))
    totals = [sum(v.values()) for v in counts.values()]
    table.add_row("[bold]total[/bold]", *map(str, totals), str(sum(totals)))
    Console().print(table)
    if grid is not None:
        typer.echo(f"grid: {sample_grid(splits, grid, per_class=per_class, seed=seed)}")


@data_app.command("crop")
def crop(
    src: Annotated[Path, typer.Argument(
        help="Photos in class folders: SRC/<class>/* or SRC/{train,val,test}/<class>/*.")],
    dst: Annotated[Path, typer.Argument(help="New folder for the face crops, in the same tree.")],
    detector: Annotated[str | None, typer.Option(
        help="Face detector: haar, yunet or mtcnn [default: as `mien analyze`].")] = None,
    min_face: Annotated[int, typer.Option(
        min=1, help="Smallest face side, pixels.")] = DEFAULT_OPTIONS.min_face,
    margin: Annotated[float | None, typer.Option(
        min=0, help="Crop side = face box side x (1 + margin) [default: 0.2, as `mien train "
                    "--framing-margin`].")
    ] = None,
    align: Annotated[bool | None, typer.Option(
        "--align/--no-align",
        help="Level the eyes [default: on, as `mien train --framing-align`].")] = None,
    png: Annotated[bool, typer.Option(
        "--png", help="Write every crop as PNG (photo.jpg -> photo.jpg.png): lossless, the "
                      "pixels `mien analyze` shows a model [default: each photo's format; "
                      "JPEG quality 95].")] = False,
) -> None:
    """Cut the largest face of every photo into a training set, as `mien analyze` cuts faces.

    Train on DST with the same --framing-margin / --framing-align so `mien analyze` shows the
    model faces the way it learnt them. Photos without a face or unreadable are listed on
    stderr and skipped.
    """
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from mien.inference.crops import crop_folder
    from mien.inference.pipeline import Pipeline

    pipeline = Pipeline(detector, {}, margin=margin, align=align,
                        detector_options={"min_face": min_face})
    err = Console(stderr=True)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, transient=True,
                  disable=not err.is_terminal) as bar:
        task = bar.add_task(f"cropping {src}", total=None)
        made = crop_folder(src, dst, pipeline, png=png, progress=lambda done, total: bar.update(
            task, completed=done, total=total))
    for photo in made.no_face:
        print(f"no face: {photo}", file=sys.stderr)
    for error in made.unreadable:
        print(f"unreadable: {error}", file=sys.stderr)
    framing = pipeline.crop_framing
    typer.echo(f"{made.written} face crops (margin {framing.margin:g}, align "
               f"{'on' if framing.align else 'off'}, {pipeline.detector.name}) -> {dst}; "
               f"skipped {len(made.no_face)} without a face, {len(made.unreadable)} unreadable")
    if not made.written:
        raise typer.Exit(1)
